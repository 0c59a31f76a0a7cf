/** Finding token objects and checking what a token made: shared by the key store and cluster members. */
import pkcs11js from 'pkcs11js';
import { Pkcs11Error, call } from './errors.ts';
import type { Handle } from './session-pool.ts';
import type { TemplateAttribute } from './templates.ts';

/** Objects matching the template, at most `limit` (v2.40 §5.7 C_FindObjectsInit/C_FindObjects/Final). */
export function findObjects(api: pkcs11js.PKCS11, session: Handle, template: TemplateAttribute[], limit: number): Handle[] {
  call('C_FindObjectsInit', () => api.C_FindObjectsInit(session, template));
  const found: Handle[] = [];
  try {
    while (found.length < limit) {
      const batch = call('C_FindObjects', () => api.C_FindObjects(session, Math.min(256, limit - found.length)));
      if (batch.length === 0) break;
      found.push(...batch);
    }
  } catch (error) {
    try {
      api.C_FindObjectsFinal(session);
    } catch {
      // the session is discarded for the first error anyway
    }
    throw error;
  }
  call('C_FindObjectsFinal', () => api.C_FindObjectsFinal(session));
  return found;
}

/** Token secret-key objects with this CKA_ID. */
export function findSecretKeys(api: pkcs11js.PKCS11, session: Handle, objectId: Buffer, limit: number): Handle[] {
  return findObjects(
    api,
    session,
    [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_ID, value: objectId },
    ],
    limit,
  );
}

/**
 * Reads back the boolean attributes `expected` names and CKA_VALUE_LEN: a token that silently
 * ignored part of a template is caught here, before the object is used.
 */
export function checkBooleanAttributes(
  api: pkcs11js.PKCS11,
  session: Handle,
  object: Handle,
  expected: ReadonlyArray<{ type: number; value: boolean }>,
  /** Undefined for an unwrapped key: SoftHSMv2 2.6.1 reports CKA_VALUE_LEN 0 for those (measured). */
  valueLength: number | undefined,
): void {
  const actual = call('C_GetAttributeValue', () =>
    api.C_GetAttributeValue(session, object, [...expected.map(({ type }) => ({ type })), { type: pkcs11js.CKA_VALUE_LEN }]),
  );
  expected.forEach(({ type, value }, index) => {
    const bytes = actual[index]?.value;
    const isTrue = bytes !== undefined && bytes.some((byte) => byte !== 0);
    if (isTrue !== value) {
      throw new Pkcs11Error('KEY_ATTRIBUTES_WRONG', `the token made a key with attribute 0x${type.toString(16)} ${isTrue}, asked ${value}`);
    }
  });
  const length = actual[expected.length]?.value;
  if (valueLength !== undefined && (!length || readUlong(length) !== valueLength)) {
    throw new Pkcs11Error('KEY_ATTRIBUTES_WRONG', 'the token made a key of the wrong length');
  }
}

/** A CK_ULONG attribute value (native byte order: little-endian on the platforms Node runs on here). */
export function readUlong(bytes: Buffer): number {
  if (bytes.length === 8) return Number(bytes.readBigUInt64LE(0));
  if (bytes.length === 4) return bytes.readUInt32LE(0);
  return -1;
}

/**
 * CK_GCM_PARAMS (PKCS#11 v3.0; the v2.40 header's, with ulIvBits). pkcs11js' CK_PARAMS_AES_GCM
 * form leaves ulIvBits unset, so the v2.40 form is used and sets it to 96.
 */
export function gcmMechanism(iv: Buffer, aad: Buffer, tagBytes: number): pkcs11js.Mechanism {
  const parameter: pkcs11js.AesGCM = { type: pkcs11js.CK_PARAMS_AES_GCM_v240, iv, aad, ivBits: iv.length * 8, tagBits: tagBytes * 8 };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
}
