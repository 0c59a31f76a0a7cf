import { SecretBytes } from '../../crypto/secret-bytes.ts';
import { Sealer } from '../../crypto/seal.ts';
import { decryptSymmetric, encryptSymmetric } from '../../crypto/symmetric-ciphertext.ts';
import type { KeyStore, KeyVersionHandle } from '../types.ts';

const SYMMETRIC_MATERIAL_BYTES = 32;
const DEFAULT_CACHE_ENTRIES = 10_000;

/** Stored material that does not unseal under its own binding: a storage fault, never the caller's. */
export class SealedMaterialError extends Error {
  constructor(keyId: string, version: number) {
    super(`sealed material of key ${keyId} version ${version} does not unseal (damaged, moved, or another root key)`);
    this.name = 'SealedMaterialError';
  }
}

/** The binding sealed material carries, so a row cannot be moved to another key or version. */
export const keyVersionBinding = (keyId: string, version: number): string => `key-version:${keyId}:${version}`;

/**
 * Software key versions: 256-bit material generated here, stored sealed under the root key with
 * the key id and version bound in. Unsealed material is cached per version (material of a
 * version never changes) in a bounded map whose evicted entries are zeroed; whether a key may be
 * used is decided above, on fresh metadata, on every request.
 */
export class SoftwareKeyStore implements KeyStore {
  private readonly unsealed = new Map<string, SecretBytes>();

  constructor(
    private readonly sealer: Sealer,
    private readonly maxCachedVersions = DEFAULT_CACHE_ENTRIES,
  ) {}

  async createVersionMaterial(keyId: string, version: number, keySpec: string): Promise<Buffer> {
    if (keySpec !== 'SYMMETRIC_DEFAULT') {
      throw new Error(`software key store cannot make material for ${keySpec}`);
    }
    const material = SecretBytes.random(SYMMETRIC_MATERIAL_BYTES);
    try {
      return this.sealer.seal(material, keyVersionBinding(keyId, version));
    } finally {
      material.zero();
    }
  }

  async encrypt(
    handle: KeyVersionHandle,
    plaintext: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
  ): Promise<Buffer> {
    return encryptSymmetric({
      keyId: handle.keyId,
      keyVersion: handle.version,
      material: this.material(handle),
      plaintext,
      encryptionContext: encryptionContext as Record<string, string> | undefined,
    });
  }

  async decrypt(
    handle: KeyVersionHandle,
    ciphertextBlob: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
  ): Promise<Buffer> {
    return decryptSymmetric({
      material: this.material(handle),
      blob: ciphertextBlob,
      encryptionContext: encryptionContext as Record<string, string> | undefined,
    });
  }

  forget(keyId: string): void {
    const prefix = `${keyId}:`;
    for (const [cacheKey, material] of this.unsealed) {
      if (cacheKey.startsWith(prefix)) {
        material.zero();
        this.unsealed.delete(cacheKey);
      }
    }
  }

  private material(handle: KeyVersionHandle): SecretBytes {
    const cacheKey = `${handle.keyId}:${handle.version}`;
    const cached = this.unsealed.get(cacheKey);
    if (cached) return cached;
    let material: SecretBytes;
    try {
      material = this.sealer.unseal(handle.sealedMaterial, keyVersionBinding(handle.keyId, handle.version));
    } catch {
      // Not a CryptoError on purpose: this is damaged or swapped storage (or the wrong root key),
      // not a bad ciphertext from the caller, and must surface as our fault and be logged.
      throw new SealedMaterialError(handle.keyId, handle.version);
    }
    if (this.unsealed.size >= this.maxCachedVersions) {
      const [oldestKey, oldest] = this.unsealed.entries().next().value as [string, SecretBytes];
      this.unsealed.delete(oldestKey);
      oldest.zero();
    }
    this.unsealed.set(cacheKey, material);
    return material;
  }
}
