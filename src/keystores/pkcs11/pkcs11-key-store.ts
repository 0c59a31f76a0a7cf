import pkcs11js from 'pkcs11js';
import type { SecretBytes } from '../../crypto/secret-bytes.ts';
import type { KeyStore, KeyVersionHandle } from '../types.ts';
import {
  HSM_HEADER_LENGTH,
  HSM_IV_LENGTH,
  HSM_IV_OFFSET,
  HSM_TAG_LENGTH,
  decryptionFailed,
  newHsmHeader,
  parseHsmBlob,
} from './ciphertext.ts';
import {
  CKR_ENCRYPTED_DATA_INVALID,
  CKR_ENCRYPTED_DATA_LEN_RANGE,
  CKR_GENERAL_ERROR,
  Pkcs11Error,
  Pkcs11NotSupportedError,
  call,
  callAsync,
  returnValueOf,
  translate,
} from './errors.ts';
import { Pkcs11Token, type Handle, type Pkcs11TokenOptions } from './module.ts';
import { checkBooleanAttributes, findSecretKeys, gcmMechanism } from './objects.ts';
import { decodeReference, encodeReference, newObjectId } from './reference.ts';
import { AES_256_KEY_BYTES, expectedBooleanAttributes, keyVersionTemplate, type TemplateAttribute } from './templates.ts';

export interface Pkcs11KeyStoreOptions {
  /** See templates.ts: off by default, so objects can never leave the token. */
  readonly exportableToTrustedWrappingKey?: boolean;
  /** Object handles kept per key version (default 10,000). */
  readonly maxCachedHandles?: number;
}

// C_Decrypt answers for a tag that does not verify: CKR_ENCRYPTED_DATA_INVALID per the spec;
// SoftHSMv2 2.6.1 answers CKR_GENERAL_ERROR (measured), so that one cannot be told apart from
// a real device fault here and is taken as the caller's bad ciphertext.
const AUTHENTICATION_FAILURES = new Set([CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_GENERAL_ERROR]);

// SoftHSM answers CKR_ARGUMENTS_BAD to a NULL data pointer, which is what an empty Buffer gives,
// and leaves the operation active; a zero-length view of a real allocation has a pointer.
const EMPTY_INPUT = Buffer.alloc(1).subarray(0, 0);

/**
 * SYMMETRIC_DEFAULT key versions generated and used inside a PKCS#11 token. What the service
 * persists per version is a reference (reference.ts), never key bytes; ciphertexts are the
 * self-describing blob format v2 (ciphertext.ts): GCM directly under the token's AES-256 key.
 * Asymmetric, HMAC and key-agreement keys are refused with Pkcs11NotSupportedError.
 */
export class Pkcs11KeyStore implements KeyStore {
  readonly #token: Pkcs11Token;
  readonly #ownsToken: boolean;
  readonly #exportable: boolean;
  readonly #maxCachedHandles: number;
  /** `${keyId}:${version}:${CKA_ID hex}` → object handle, valid while the token's handle epoch holds. */
  readonly #handles = new Map<string, { object: Handle; epoch: number }>();

  constructor(token: Pkcs11Token, options: Pkcs11KeyStoreOptions = {}, ownsToken = false) {
    this.#token = token;
    this.#ownsToken = ownsToken;
    this.#exportable = options.exportableToTrustedWrappingKey === true;
    this.#maxCachedHandles = options.maxCachedHandles ?? 10_000;
  }

  /** Opens the token and a store that closes it with itself. */
  static async open(options: Pkcs11TokenOptions & Pkcs11KeyStoreOptions): Promise<Pkcs11KeyStore> {
    return new Pkcs11KeyStore(await Pkcs11Token.open(options), options, true);
  }

  get token(): Pkcs11Token {
    return this.#token;
  }

  async close(): Promise<void> {
    this.#handles.clear();
    if (this.#ownsToken) await this.#token.close();
  }

  /** Generates the AES-256 key inside the token (CKM_AES_KEY_GEN, v2.40 §5.14 C_GenerateKey). */
  async createVersionMaterial(keyId: string, version: number, keySpec: string): Promise<Buffer> {
    if (keySpec !== 'SYMMETRIC_DEFAULT') throw new Pkcs11NotSupportedError(`Key spec ${keySpec}`);
    const api = this.#token.api;
    return this.#token.withSession(async (session) => {
      // A fresh CKA_ID per attempt: a retried generation never makes two objects with one id.
      const objectId = newObjectId(keyId, version);
      const template = keyVersionTemplate({ keyId, version, objectId, exportableToTrustedWrappingKey: this.#exportable });
      const object = await callAsync('C_GenerateKey', () =>
        api.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, template),
      );
      try {
        this.#checkAttributes(session, object, template);
      } catch (error) {
        call('C_DestroyObject', () => api.C_DestroyObject(session, object));
        throw error;
      }
      this.#remember(cacheKey(keyId, version, objectId), object);
      return encodeReference(objectId);
    });
  }

  /** AES-256-GCM in the token (CKM_AES_GCM): random 96-bit IV, 128-bit tag, header and context as AAD. */
  async encrypt(
    handle: KeyVersionHandle,
    plaintext: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
  ): Promise<Buffer> {
    const objectId = decodeReference(handle.sealedMaterial, handle.keyId, handle.version);
    const { header, aad } = newHsmHeader(handle.keyId, handle.version, encryptionContext);
    const input = plaintext.length === 0 ? EMPTY_INPUT : asBuffer(plaintext);
    const blob = Buffer.allocUnsafe(HSM_HEADER_LENGTH + plaintext.length + HSM_TAG_LENGTH);
    header.copy(blob, 0);
    const mechanism = gcm(aad.subarray(HSM_IV_OFFSET, HSM_IV_OFFSET + HSM_IV_LENGTH), aad);
    const api = this.#token.api;
    // A retry (session lost) repeats the same IV with the same key, plaintext and AAD: the same
    // output, so nothing leaks.
    const sealed = await this.#withKey(handle, objectId, async (session, object) => {
      call('C_EncryptInit', () => api.C_EncryptInit(session, mechanism, object));
      return callAsync('C_Encrypt', () => api.C_EncryptAsync(session, input, blob.subarray(HSM_HEADER_LENGTH)));
    });
    if (sealed.length !== plaintext.length + HSM_TAG_LENGTH) {
      throw new Pkcs11Error('FAILED', 'PKCS#11 C_Encrypt returned an unexpected length');
    }
    return blob;
  }

  /** Decrypts a v2 blob of this key version; every authentication failure is one CryptoError. */
  async decrypt(
    handle: KeyVersionHandle,
    ciphertextBlob: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
  ): Promise<Buffer> {
    const objectId = decodeReference(handle.sealedMaterial, handle.keyId, handle.version);
    const blob = parseHsmBlob(ciphertextBlob, encryptionContext);
    // The header is in the AAD anyway; refusing here only saves the token a call.
    if (blob.keyId !== handle.keyId || blob.keyVersion !== handle.version) throw decryptionFailed();
    const mechanism = gcm(blob.iv, blob.aad);
    const api = this.#token.api;
    // SoftHSM wants room for the whole input (CKR_BUFFER_TOO_SMALL for exactly n bytes, measured).
    const out = Buffer.alloc(blob.sealed.length);
    return this.#withKey(handle, objectId, async (session, object) => {
      call('C_DecryptInit', () => api.C_DecryptInit(session, mechanism, object));
      try {
        return await api.C_DecryptAsync(session, blob.sealed, out);
      } catch (error) {
        out.fill(0);
        const rv = returnValueOf(error);
        if (rv !== undefined && AUTHENTICATION_FAILURES.has(rv)) throw decryptionFailed();
        throw translate(error, 'C_Decrypt');
      }
    });
  }

  /**
   * Destroys the version's token object (v2.40 §5.7 C_DestroyObject), every object with its
   * CKA_ID if there are several. Returns whether there was one; destroying twice is harmless.
   */
  async destroyVersionMaterial(handle: KeyVersionHandle): Promise<boolean> {
    const objectId = decodeReference(handle.sealedMaterial, handle.keyId, handle.version);
    const api = this.#token.api;
    this.#handles.delete(cacheKey(handle.keyId, handle.version, objectId));
    return this.#token.withSession((session) => {
      const objects = this.#find(session, objectId, 16);
      for (const object of objects) call('C_DestroyObject', () => api.C_DestroyObject(session, object));
      return objects.length > 0;
    });
  }

  async publicKey(): Promise<Buffer> {
    throw new Pkcs11NotSupportedError('GetPublicKey');
  }

  async sign(): Promise<Buffer> {
    throw new Pkcs11NotSupportedError('Sign');
  }

  async verify(): Promise<boolean> {
    throw new Pkcs11NotSupportedError('Verify');
  }

  async rsaEncrypt(): Promise<Buffer> {
    throw new Pkcs11NotSupportedError('RSA encryption');
  }

  async rsaDecrypt(): Promise<Buffer> {
    throw new Pkcs11NotSupportedError('RSA decryption');
  }

  async generateMac(): Promise<Buffer> {
    throw new Pkcs11NotSupportedError('GenerateMac');
  }

  async verifyMac(): Promise<boolean> {
    throw new Pkcs11NotSupportedError('VerifyMac');
  }

  async deriveSharedSecret(): Promise<SecretBytes> {
    throw new Pkcs11NotSupportedError('DeriveSharedSecret');
  }

  forget(keyId: string): void {
    const prefix = `${keyId}:`;
    for (const key of this.#handles.keys()) if (key.startsWith(prefix)) this.#handles.delete(key);
  }

  /**
   * Runs fn with a session and the version's object handle: cached, else found by CKA_ID. A
   * cached handle the token no longer knows (CKR_OBJECT_HANDLE_INVALID / CKR_KEY_HANDLE_INVALID at
   * *Init) is dropped and the object found again once.
   */
  async #withKey<T>(
    handle: KeyVersionHandle,
    objectId: Buffer,
    fn: (session: Handle, object: Handle) => Promise<T>,
  ): Promise<T> {
    const key = cacheKey(handle.keyId, handle.version, objectId);
    return this.#token.withSession(async (session) => {
      const cached = this.#cached(key);
      const object = cached ?? this.#findOne(session, objectId, handle, key);
      try {
        return await fn(session, object);
      } catch (error) {
        if (!cached || !(error instanceof Pkcs11Error) || error.code !== 'KEY_NOT_FOUND') throw error;
        this.#handles.delete(key);
        return fn(session, this.#findOne(session, objectId, handle, key));
      }
    });
  }

  #cached(key: string): Handle | undefined {
    const entry = this.#handles.get(key);
    if (!entry) return undefined;
    if (entry.epoch === this.#token.handleEpoch) return entry.object;
    this.#handles.delete(key);
    return undefined;
  }

  #remember(key: string, object: Handle): void {
    if (this.#handles.size >= this.#maxCachedHandles) {
      const oldest = this.#handles.keys().next().value;
      if (oldest !== undefined) this.#handles.delete(oldest);
    }
    this.#handles.set(key, { object, epoch: this.#token.handleEpoch });
  }

  #findOne(session: Handle, objectId: Buffer, handle: KeyVersionHandle, key: string): Handle {
    const found = this.#find(session, objectId, 2);
    if (found.length === 0) {
      throw new Pkcs11Error('KEY_NOT_FOUND', `key ${handle.keyId} version ${handle.version} has no object in the token (destroyed?)`);
    }
    if (found.length > 1) {
      throw new Pkcs11Error('KEY_AMBIGUOUS', `key ${handle.keyId} version ${handle.version} has ${found.length} objects with its CKA_ID`);
    }
    this.#remember(key, found[0]);
    return found[0];
  }

  /** Token secret-key objects with this CKA_ID, at most `limit` (v2.40 §5.7 C_FindObjects*). */
  #find(session: Handle, objectId: Buffer, limit: number): Handle[] {
    return findSecretKeys(this.#token.api, session, objectId, limit);
  }

  /** Reads back what the template asked for: a token that ignored part of it is caught here. */
  #checkAttributes(session: Handle, object: Handle, template: readonly TemplateAttribute[]): void {
    checkBooleanAttributes(this.#token.api, session, object, expectedBooleanAttributes(template), AES_256_KEY_BYTES);
  }
}

function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  return gcmMechanism(iv, aad, HSM_TAG_LENGTH);
}

const cacheKey = (keyId: string, version: number, objectId: Buffer): string => `${keyId}:${version}:${objectId.toString('hex')}`;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
