import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type { SealingBackend } from '../../crypto/seal.ts';
import { SecretBytes } from '../../crypto/secret-bytes.ts';
import { Pkcs11Error, call } from './errors.ts';
import { Pkcs11Token, type Handle } from './module.ts';
import { gcmMechanism, readUlong } from './objects.ts';
import { rootKeyTemplate } from './templates.ts';

/**
 * The service's root key inside a PKCS#11 token: a non-extractable AES-256 key that seals and
 * unseals everything at rest (software key versions, credentials, PINs, the audit signing key)
 * without ever leaving the token. Blobs:
 *
 *   0x02 ‖ IV (12, random) ‖ AES-256-GCM ciphertext ‖ tag (16)     AAD: the Sealer's binding AAD
 *
 * computed inside the token (CKM_AES_GCM). Nonce bound: one key, random 96-bit IVs, so at most
 * 2^32 seals (NIST SP 800-38D §8.3); seals happen when key versions, access keys and custom key
 * stores are made, orders of magnitude fewer. Unsealing is not limited.
 *
 * Synchronous like the key-file Sealer: one dedicated session of the logged-in token, used by one
 * call at a time (the event loop never interleaves synchronous calls). Sealing is rare and
 * unsealed material is cached by the key store, so the HSM round trip is off the request path.
 */
export const HSM_SEAL_FORMAT = 0x02;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

export interface Pkcs11RootKeyOptions {
  modulePath: string;
  tokenLabel: string;
  /** CKA_LABEL of the AES key. */
  objectLabel: string;
  pin: SecretBytes | Buffer;
}

export class Pkcs11RootKey implements SealingBackend {
  readonly formatVersion = HSM_SEAL_FORMAT;

  private constructor(
    private readonly token: Pkcs11Token,
    private readonly session: Handle,
    private readonly key: Handle,
  ) {}

  /**
   * Opens the token and finds the key; with `create`, generates it first (refusing if one with
   * that label exists). Refuses a key that is extractable or not sensitive: it would not be a
   * root key that never leaves the HSM.
   */
  static async open(options: Pkcs11RootKeyOptions & { create?: boolean }): Promise<Pkcs11RootKey> {
    const token = await Pkcs11Token.open({ modulePath: options.modulePath, tokenLabel: options.tokenLabel, pin: options.pin, sessions: 1 });
    const api = token.api;
    let session: Handle | undefined;
    try {
      session = call('C_OpenSession', () => api.C_OpenSession(token.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
      const found = findKeys(api, session as Handle, options.objectLabel);
      if (options.create) {
        if (found.length > 0) throw new Pkcs11Error('OBJECT_EXISTS', `the token already holds a key labelled ${options.objectLabel}`);
        call('C_GenerateKey', () => api.C_GenerateKey(session as Handle, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, rootKeyTemplate(options.objectLabel)));
      }
      const keys = options.create ? findKeys(api, session as Handle, options.objectLabel) : found;
      if (keys.length !== 1) {
        throw new Pkcs11Error(
          keys.length === 0 ? 'KEY_NOT_FOUND' : 'KEY_AMBIGUOUS',
          `the token holds ${keys.length === 0 ? 'no key' : 'more than one key'} labelled ${options.objectLabel}`,
        );
      }
      checkRootKey(api, session as Handle, keys[0]);
      return new Pkcs11RootKey(token, session as Handle, keys[0]);
    } catch (error) {
      if (session !== undefined) {
        try {
          api.C_CloseSession(session);
        } catch {
          // closing with the token below
        }
      }
      await token.close();
      throw error;
    }
  }

  seal(plaintext: Uint8Array, aad: Buffer): Buffer {
    const api = this.token.api;
    const iv = randomBytes(IV_LENGTH);
    call('C_EncryptInit', () => api.C_EncryptInit(this.session, gcmMechanism(iv, aad, TAG_LENGTH), this.key));
    const out = Buffer.alloc(plaintext.length + TAG_LENGTH);
    const sealed = call('C_Encrypt', () => api.C_Encrypt(this.session, Buffer.from(plaintext), out));
    if (sealed.length !== plaintext.length + TAG_LENGTH) throw new Pkcs11Error('FAILED', 'the token returned a sealed blob of the wrong length');
    return Buffer.concat([Buffer.of(HSM_SEAL_FORMAT), iv, sealed]);
  }

  unseal(sealed: Uint8Array, aad: Buffer): Buffer {
    const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (bytes.length < 1 + IV_LENGTH + TAG_LENGTH || bytes[0] !== HSM_SEAL_FORMAT) throw new Pkcs11Error('FAILED', 'not an HSM-sealed blob');
    const api = this.token.api;
    const iv = bytes.subarray(1, 1 + IV_LENGTH);
    call('C_DecryptInit', () => api.C_DecryptInit(this.session, gcmMechanism(Buffer.from(iv), aad, TAG_LENGTH), this.key));
    // Room for the whole input: SoftHSMv2 asks for it before it knows the tag checks out.
    const input = bytes.subarray(1 + IV_LENGTH);
    const out = Buffer.alloc(input.length);
    const opened = call('C_Decrypt', () => api.C_Decrypt(this.session, input, out));
    if (opened.length !== input.length - TAG_LENGTH) {
      out.fill(0);
      throw new Pkcs11Error('FAILED', 'the token returned an unsealed secret of the wrong length');
    }
    return opened;
  }

  async close(): Promise<void> {
    try {
      this.token.api.C_CloseSession(this.session);
    } catch {
      // the token's close below ends it anyway
    }
    await this.token.close();
  }
}

function findKeys(api: pkcs11js.PKCS11, session: Handle, label: string): Handle[] {
  call('C_FindObjectsInit', () =>
    api.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]),
  );
  try {
    return call('C_FindObjects', () => api.C_FindObjects(session, 2));
  } finally {
    call('C_FindObjectsFinal', () => api.C_FindObjectsFinal(session));
  }
}

function checkRootKey(api: pkcs11js.PKCS11, session: Handle, key: Handle): void {
  const attributes = call('C_GetAttributeValue', () =>
    api.C_GetAttributeValue(session, key, [
      { type: pkcs11js.CKA_KEY_TYPE },
      { type: pkcs11js.CKA_VALUE_LEN },
      { type: pkcs11js.CKA_SENSITIVE },
      { type: pkcs11js.CKA_EXTRACTABLE },
      { type: pkcs11js.CKA_ENCRYPT },
      { type: pkcs11js.CKA_DECRYPT },
    ]),
  );
  const flag = (index: number) => (attributes[index].value as Buffer | undefined)?.some((byte) => byte !== 0) === true;
  const keyType = readUlong(attributes[0].value as Buffer);
  const length = readUlong(attributes[1].value as Buffer);
  if (keyType !== pkcs11js.CKK_AES || length !== 32) throw new Pkcs11Error('KEY_ATTRIBUTES_WRONG', 'the root key must be an AES-256 key');
  if (!flag(2) || flag(3)) throw new Pkcs11Error('KEY_ATTRIBUTES_WRONG', 'the root key must be sensitive and not extractable');
  if (!flag(4) || !flag(5)) throw new Pkcs11Error('KEY_ATTRIBUTES_WRONG', 'the root key must be allowed to encrypt and decrypt');
}

