import type { SecretBytes } from '../crypto/secret-bytes.ts';

/**
 * Where key material lives and crypto happens. A key store gets a key version handle and bytes
 * and returns bytes: it never sees HTTP, policy or the database. Software keys now; PKCS#11 HSM
 * clusters and external (XKS) key stores implement the same interface later.
 *
 * Algorithm and spec names are AWS's (`RSASSA_PSS_SHA_256`, `ECC_NIST_P256`, …); the service
 * has already checked that they fit the key.
 */

export interface KeyVersionHandle {
  readonly keyId: string;
  readonly version: number;
  /** What the store returned from createVersionMaterial, as persisted. */
  readonly sealedMaterial: Buffer;
}

export interface SignRequest {
  readonly keySpec: string;
  readonly algorithm: string;
  readonly message: Uint8Array;
  readonly messageType: string;
}

export interface KeyStore {
  /** Makes material for a new key version of any supported spec; returns it in the form to persist. */
  createVersionMaterial(keyId: string, version: number, keySpec: string): Promise<Buffer>;

  /** SYMMETRIC_DEFAULT: encrypts under the version, producing a self-describing ciphertext blob. */
  encrypt(
    handle: KeyVersionHandle,
    plaintext: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
  ): Promise<Buffer>;
  /** SYMMETRIC_DEFAULT: decrypts a blob made by encrypt; throws CryptoError on any authentication failure. */
  decrypt(
    handle: KeyVersionHandle,
    ciphertextBlob: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
  ): Promise<Buffer>;

  /** Asymmetric specs: the DER SubjectPublicKeyInfo. */
  publicKey(handle: KeyVersionHandle, keySpec: string): Promise<Buffer>;
  sign(handle: KeyVersionHandle, request: SignRequest): Promise<Buffer>;
  verify(handle: KeyVersionHandle, request: SignRequest & { signature: Uint8Array }): Promise<boolean>;
  /** RSA ENCRYPT_DECRYPT keys: RSAES-OAEP. Decrypt throws CryptoError on any failure. */
  rsaEncrypt(handle: KeyVersionHandle, keySpec: string, algorithm: string, plaintext: Uint8Array): Promise<Buffer>;
  rsaDecrypt(handle: KeyVersionHandle, algorithm: string, ciphertext: Uint8Array): Promise<Buffer>;
  /** HMAC keys. */
  generateMac(handle: KeyVersionHandle, algorithm: string, message: Uint8Array): Promise<Buffer>;
  verifyMac(handle: KeyVersionHandle, algorithm: string, message: Uint8Array, mac: Uint8Array): Promise<boolean>;
  /** KEY_AGREEMENT keys: ECDH with a peer's DER SPKI; throws CryptoError for an unusable peer key. */
  deriveSharedSecret(handle: KeyVersionHandle, keySpec: string, peerPublicKey: Uint8Array): Promise<SecretBytes>;

  /** Drops anything held in memory for the key (called when its material is destroyed). */
  forget(keyId: string): void;
}
