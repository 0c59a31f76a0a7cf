import { SecretBytes } from '../../crypto/secret-bytes.ts';
import { Sealer } from '../../crypto/seal.ts';
import { decryptSymmetric, encryptSymmetric } from '../../crypto/symmetric-ciphertext.ts';
import {
  ecdhSharedSecret,
  generateHmacKey,
  generateKeyPair,
  generateMac,
  publicKeyFromPrivate,
  rsaOaepDecrypt,
  rsaOaepEncrypt,
  sign,
  verify,
  verifyMac,
  type AsymmetricKeySpec,
  type EccKeySpec,
  type HmacKeySpec,
  type MacAlgorithm,
  type MessageType,
  type RsaEncryptionAlgorithm,
  type SigningAlgorithm,
} from '../../crypto/index.ts';
import type { KeyStore, KeyVersionHandle, SignRequest } from '../types.ts';

const SYMMETRIC_MATERIAL_BYTES = 32;

/**
 * New material for a key version: 256 random bits for SYMMETRIC_DEFAULT, an HMAC key of the
 * spec's size, or an asymmetric private key (PKCS#8 DER; the FIPS 204 seed for ML-DSA).
 */
async function newMaterial(keySpec: string): Promise<SecretBytes> {
  if (keySpec === 'SYMMETRIC_DEFAULT') return SecretBytes.random(SYMMETRIC_MATERIAL_BYTES);
  if (keySpec.startsWith('HMAC_')) return generateHmacKey(keySpec as HmacKeySpec);
  const { privateKey } = await generateKeyPair(keySpec as AsymmetricKeySpec);
  return privateKey;
}
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
  private readonly publicKeys = new Map<string, Buffer>();

  constructor(
    private readonly sealer: Sealer,
    private readonly maxCachedVersions = DEFAULT_CACHE_ENTRIES,
  ) {}

  async createVersionMaterial(keyId: string, version: number, keySpec: string): Promise<Buffer> {
    const material = await newMaterial(keySpec);
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

  async publicKey(handle: KeyVersionHandle, keySpec: string): Promise<Buffer> {
    const cacheKey = `${handle.keyId}:${handle.version}`;
    let publicKey = this.publicKeys.get(cacheKey);
    if (!publicKey) {
      publicKey = publicKeyFromPrivate(keySpec as AsymmetricKeySpec, this.material(handle));
      if (this.publicKeys.size >= this.maxCachedVersions) this.publicKeys.clear();
      this.publicKeys.set(cacheKey, publicKey);
    }
    return publicKey;
  }

  async sign(handle: KeyVersionHandle, request: SignRequest): Promise<Buffer> {
    return sign({
      spec: request.keySpec as AsymmetricKeySpec,
      algorithm: request.algorithm as SigningAlgorithm,
      privateKey: this.material(handle),
      message: request.message,
      messageType: request.messageType as MessageType,
    });
  }

  async verify(handle: KeyVersionHandle, request: SignRequest & { signature: Uint8Array }): Promise<boolean> {
    return verify({
      spec: request.keySpec as AsymmetricKeySpec,
      algorithm: request.algorithm as SigningAlgorithm,
      publicKey: await this.publicKey(handle, request.keySpec),
      message: request.message,
      messageType: request.messageType as MessageType,
      signature: request.signature,
    });
  }

  async rsaEncrypt(handle: KeyVersionHandle, keySpec: string, algorithm: string, plaintext: Uint8Array): Promise<Buffer> {
    return rsaOaepEncrypt({
      publicKey: await this.publicKey(handle, keySpec),
      algorithm: algorithm as RsaEncryptionAlgorithm,
      plaintext,
    });
  }

  async rsaDecrypt(handle: KeyVersionHandle, algorithm: string, ciphertext: Uint8Array): Promise<Buffer> {
    return rsaOaepDecrypt({ privateKey: this.material(handle), algorithm: algorithm as RsaEncryptionAlgorithm, ciphertext });
  }

  async generateMac(handle: KeyVersionHandle, algorithm: string, message: Uint8Array): Promise<Buffer> {
    return generateMac({ algorithm: algorithm as MacAlgorithm, key: this.material(handle), message });
  }

  async verifyMac(handle: KeyVersionHandle, algorithm: string, message: Uint8Array, mac: Uint8Array): Promise<boolean> {
    return verifyMac({ algorithm: algorithm as MacAlgorithm, key: this.material(handle), message, mac });
  }

  async deriveSharedSecret(handle: KeyVersionHandle, keySpec: string, peerPublicKey: Uint8Array): Promise<SecretBytes> {
    return ecdhSharedSecret({ spec: keySpec as EccKeySpec, privateKey: this.material(handle), peerPublicKey });
  }

  forget(keyId: string): void {
    const prefix = `${keyId}:`;
    for (const [cacheKey, material] of this.unsealed) {
      if (cacheKey.startsWith(prefix)) {
        material.zero();
        this.unsealed.delete(cacheKey);
      }
    }
    for (const cacheKey of this.publicKeys.keys()) {
      if (cacheKey.startsWith(prefix)) this.publicKeys.delete(cacheKey);
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
