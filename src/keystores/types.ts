/**
 * Where key material lives and crypto happens. A key store gets a key version handle and bytes
 * and returns bytes: it never sees HTTP, policy or the database. Software keys now; PKCS#11 HSM
 * clusters and external (XKS) key stores implement the same interface later.
 */

export interface KeyVersionHandle {
  readonly keyId: string;
  readonly version: number;
  /** What the store returned from createVersionMaterial, as persisted. */
  readonly sealedMaterial: Buffer;
}

export interface KeyStore {
  /** Makes material for a new key version; returns it in the form to persist. */
  createVersionMaterial(keyId: string, version: number, keySpec: string): Promise<Buffer>;
  /** Encrypts under the version, producing a self-describing ciphertext blob. */
  encrypt(
    handle: KeyVersionHandle,
    plaintext: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
  ): Promise<Buffer>;
  /** Decrypts a blob made by encrypt; throws on any authentication failure. */
  decrypt(
    handle: KeyVersionHandle,
    ciphertextBlob: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
  ): Promise<Buffer>;
  /** Drops anything held in memory for the key (called when its material is destroyed). */
  forget(keyId: string): void;
}
