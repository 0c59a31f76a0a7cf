/**
 * The token side of the key ceremony (ceremony.ts), each step run by LocalHsmMember in a Security
 * Officer session of its own: only the SO may set CKA_TRUSTED (PKCS#11 v2.40 §4.10).
 */
import pkcs11js from 'pkcs11js';
import { Pkcs11Error, call, callAsync, returnValueOf, translate } from '../errors.ts';
import type { Handle } from '../module.ts';
import { checkBooleanAttributes, findObjects, findSecretKeys } from '../objects.ts';
import {
  AES_256_KEY_BYTES,
  TRANSPORT_MODULUS_BITS,
  clusterWrappingKeyTemplate,
  expectedBooleanAttributes,
  forUnwrap,
  requireNestedTemplates,
  transportKeyPairTemplates,
  trustedTransportPublicKeyTemplate,
} from '../templates.ts';
import type { TransportPublicKey } from './member.ts';

/** CKA_ID of the cluster wrapping key and of the ceremony's transport pair (never 28 bytes long). */
export const CLUSTER_KEY_ID = Buffer.from('strongroom/cluster-wrapping-key', 'latin1');
const TRANSPORT_ID = Buffer.from('strongroom/ceremony-transport-key', 'latin1');
export const CLUSTER_KEY_LABEL_PREFIX = 'strongroom:cluster-wrapping-key:';

/**
 * RSA-OAEP for the ceremony. SHA-1 because SoftHSMv2 2.6.1 refuses any other OAEP hash
 * (CKR_ARGUMENTS_BAD, measured); OAEP's security rests on the hash as a random oracle, not on
 * its collision resistance (RFC 8017 §7.1), so SHA-1 does not weaken it. CKZ_DATA_SPECIFIED, empty label.
 */
const RSA_OAEP: pkcs11js.Mechanism = {
  mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
  parameter: { type: pkcs11js.CK_PARAMS_RSA_OAEP, hashAlg: pkcs11js.CKM_SHA_1, mgf: pkcs11js.CKG_MGF1_SHA1, source: 1 } as pkcs11js.RsaOAEP,
};

const CKR_ATTRIBUTE_TYPE_INVALID = 0x12;

/** What the token sets itself, and sets false, for an unwrapped key (§4.10): not read back. */
export const TOKEN_SET = new Set<number>([pkcs11js.CKA_LOCAL, pkcs11js.CKA_ALWAYS_SENSITIVE, pkcs11js.CKA_NEVER_EXTRACTABLE]);

export const clusterKeyLabel = (clusterId: string): string => `${CLUSTER_KEY_LABEL_PREFIX}${clusterId}`;

export async function generateClusterKey(api: pkcs11js.PKCS11, session: Handle, member: string, clusterId: string): Promise<void> {
  requireNestedTemplates();
  if (findSecretKeys(api, session, CLUSTER_KEY_ID, 1).length > 0) throw clusterKeyExists(member);
  const template = clusterWrappingKeyTemplate(clusterKeyLabel(clusterId), CLUSTER_KEY_ID);
  const key = await callAsync('C_GenerateKey', () => api.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, template));
  try {
    checkBooleanAttributes(api, session, key, expectedBooleanAttributes(template), AES_256_KEY_BYTES);
  } catch (error) {
    call('C_DestroyObject', () => api.C_DestroyObject(session, key));
    throw error;
  }
}

/** A fresh RSA-3072 transport pair (token objects until completeJoin); returns the public half's numbers. */
export async function generateTransportKey(api: pkcs11js.PKCS11, session: Handle, member: string): Promise<TransportPublicKey> {
  requireNestedTemplates();
  if (findSecretKeys(api, session, CLUSTER_KEY_ID, 1).length > 0) throw clusterKeyExists(member);
  destroyTransportPair(api, session);
  const templates = transportKeyPairTemplates('strongroom:ceremony-transport-key', TRANSPORT_ID);
  const pair = await callAsync('C_GenerateKeyPair', () =>
    api.C_GenerateKeyPairAsync(session, { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN }, templates.publicKey, templates.privateKey),
  );
  const [modulus, exponent] = call('C_GetAttributeValue', () =>
    api.C_GetAttributeValue(session, pair.publicKey, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]),
  );
  // The public half is only needed for these two values; the private half waits for completeJoin.
  call('C_DestroyObject', () => api.C_DestroyObject(session, pair.publicKey));
  return { modulus: Buffer.from(modulus!.value!), exponent: Buffer.from(exponent!.value!) };
}

/** Refuses a weak or malformed transport key: it would expose the cluster key. RSA-3072+ with e = 65537 only. */
export function checkTransportKey(transport: TransportPublicKey): { modulus: Buffer; exponent: Buffer } {
  const modulus = stripLeadingZeros(transport.modulus);
  const exponent = stripLeadingZeros(transport.exponent);
  if (modulus.length * 8 < TRANSPORT_MODULUS_BITS || (modulus[0]! & 0x80) === 0 || !exponent.equals(Buffer.from([1, 0, 1]))) {
    throw new Pkcs11Error('CEREMONY_FAILED', 'the joining member offered an unacceptable transport key (RSA-3072 or larger, e = 65537)');
  }
  return { modulus, exponent };
}

/** Imports the transport key as a trusted session object and wraps the cluster key under it. */
export async function wrapClusterKey(api: pkcs11js.PKCS11, session: Handle, member: string, transport: TransportPublicKey): Promise<Buffer> {
  const { modulus, exponent } = checkTransportKey(transport);
  const [clusterKey] = findSecretKeys(api, session, CLUSTER_KEY_ID, 1);
  if (!clusterKey) throw clusterKeyMissing(member);
  // A session object: it disappears with this SO session whatever happens below.
  const transportKey = call('C_CreateObject', () => api.C_CreateObject(session, trustedTransportPublicKeyTemplate(modulus, exponent)));
  try {
    return await callAsync('C_WrapKey', () => api.C_WrapKeyAsync(session, RSA_OAEP, transportKey, clusterKey, Buffer.alloc(modulus.length)));
  } finally {
    call('C_DestroyObject', () => api.C_DestroyObject(session, transportKey));
  }
}

/** Unwraps the cluster key with the transport private key as a trusted CWK; destroys the pair whatever happens. */
export async function unwrapClusterKey(api: pkcs11js.PKCS11, session: Handle, member: string, clusterId: string, wrapped: Buffer): Promise<void> {
  try {
    if (findSecretKeys(api, session, CLUSTER_KEY_ID, 1).length > 0) throw clusterKeyExists(member);
    const [privateKey] = findObjects(
      api,
      session,
      [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_ID, value: TRANSPORT_ID },
      ],
      1,
    );
    if (!privateKey) throw new Pkcs11Error('CEREMONY_FAILED', `HSM member ${member} has no transport key: run beginJoin first`);
    const template = clusterWrappingKeyTemplate(clusterKeyLabel(clusterId), CLUSTER_KEY_ID);
    const key = await callAsync('C_UnwrapKey', () => api.C_UnwrapKeyAsync(session, RSA_OAEP, privateKey, wrapped, forUnwrap(template)));
    try {
      const expected = expectedBooleanAttributes(template).filter(({ type }) => !TOKEN_SET.has(type));
      checkBooleanAttributes(api, session, key, expected, undefined);
    } catch (error) {
      call('C_DestroyObject', () => api.C_DestroyObject(session, key));
      throw error;
    }
  } finally {
    destroyTransportPair(api, session);
  }
}

/**
 * Whether a cluster wrapping key carries this version's protections (templates.ts): unmodifiable,
 * a wrap template, and an unwrap template that pins CKA_SENSITIVE and CKA_WRAP_WITH_TRUSTED. A CWK
 * made before them has none, and none can be added (§4.7: set at creation only): with it, a
 * crypto-user PIN holder can unwrap any KMS key as a readable object (docs/hsm-cluster.md).
 */
export function clusterKeyProtected(api: pkcs11js.PKCS11, session: Handle, key: Handle): boolean {
  let attributes: pkcs11js.Attribute[];
  try {
    attributes = api.C_GetAttributeValue(session, key, [
      { type: pkcs11js.CKA_MODIFIABLE },
      { type: pkcs11js.CKA_WRAP_TEMPLATE },
      { type: pkcs11js.CKA_UNWRAP_TEMPLATE },
    ]);
  } catch (error) {
    // A token that does not know the attributes cannot have set them; anything else (a lost
    // session, …) is an error, not a verdict.
    if (returnValueOf(error) === CKR_ATTRIBUTE_TYPE_INVALID) return false;
    throw translate(error, 'C_GetAttributeValue');
  }
  const [modifiable, wrapTemplate, unwrapTemplate] = attributes.map((attribute) => (Buffer.isBuffer(attribute.value) ? attribute.value : undefined));
  const unwrapTypes = templateTypes(unwrapTemplate);
  return (
    modifiable !== undefined &&
    modifiable.every((byte) => byte === 0) &&
    templateTypes(wrapTemplate).length > 0 &&
    unwrapTypes.includes(pkcs11js.CKA_SENSITIVE) &&
    unwrapTypes.includes(pkcs11js.CKA_WRAP_WITH_TRUSTED)
  );
}

/**
 * The attribute types of a template attribute read with C_GetAttributeValue: the token fills in
 * each CK_ATTRIBUTE's type and length, not the value (its pValue is NULL). CK_ATTRIBUTE is
 * { CK_ULONG type; void *pValue; CK_ULONG ulValueLen } (v2.40 §3.4): 24 bytes, type first, on
 * the LP64 platforms Node runs on here.
 */
function templateTypes(raw: Buffer | undefined): number[] {
  const size = 24;
  if (!raw || raw.length % size !== 0) return [];
  const types: number[] = [];
  for (let offset = 0; offset < raw.length; offset += size) types.push(Number(raw.readBigUInt64LE(offset)));
  return types;
}

function destroyTransportPair(api: pkcs11js.PKCS11, session: Handle): void {
  for (const object of findObjects(api, session, [{ type: pkcs11js.CKA_ID, value: TRANSPORT_ID }], 16)) {
    call('C_DestroyObject', () => api.C_DestroyObject(session, object));
  }
}

function stripLeadingZeros(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return bytes.subarray(start);
}

export const clusterKeyExists = (member: string): Pkcs11Error =>
  new Pkcs11Error('CLUSTER_KEY_EXISTS', `HSM member ${member} already holds a cluster wrapping key (it belongs to a cluster)`);
export const clusterKeyMissing = (member: string): Pkcs11Error =>
  new Pkcs11Error('CLUSTER_KEY_MISSING', `HSM member ${member} holds no cluster wrapping key (run the key ceremony)`);
