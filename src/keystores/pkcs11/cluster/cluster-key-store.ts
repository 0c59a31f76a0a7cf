import type { SecretBytes } from '../../../crypto/secret-bytes.ts';
import type { KeyStore, KeyStoreRequestInfo, KeyVersionHandle } from '../../types.ts';
import { HSM_HEADER_LENGTH, HSM_IV_LENGTH, HSM_IV_OFFSET, HSM_TAG_LENGTH, decryptionFailed, newHsmHeaderForObject, parseHsmBlob } from '../ciphertext.ts';
import { Pkcs11Error, Pkcs11NotSupportedError } from '../errors.ts';
import { ReferenceDecoder, decodeReference, encodeReference } from '../reference.ts';
import type { HsmCluster } from './cluster.ts';

/**
 * The KeyStore of an HSM cluster: SYMMETRIC_DEFAULT key versions generated in one member and
 * replicated to all (cluster.ts). Persisted per version: the 34-byte reference (reference.ts),
 * as for a single token; ciphertexts: blob format v2 (ciphertext.ts), so a blob made by any
 * member decrypts in any other.
 */
export class HsmClusterKeyStore implements KeyStore {
  readonly #references = new ReferenceDecoder();

  constructor(readonly cluster: HsmCluster) {}

  async createVersionMaterial(keyId: string, version: number, keySpec: string): Promise<Buffer> {
    if (keySpec !== 'SYMMETRIC_DEFAULT') throw new Pkcs11NotSupportedError(`Key spec ${keySpec}`);
    return encodeReference(await this.cluster.createKey(keyId, version));
  }

  /** `request` (the KMS request id and operation) goes to the cluster's HSM audit log with each member call. */
  async encrypt(
    handle: KeyVersionHandle,
    plaintext: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
    request?: KeyStoreRequestInfo,
  ): Promise<Buffer> {
    const objectId = this.#references.objectId(handle.sealedMaterial, handle.keyId, handle.version);
    const { header, aad } = newHsmHeaderForObject(objectId, encryptionContext);
    const sealed = await this.cluster.encrypt(objectId, aad.subarray(HSM_IV_OFFSET, HSM_IV_OFFSET + HSM_IV_LENGTH), aad, asBuffer(plaintext), request);
    if (sealed.length !== plaintext.length + HSM_TAG_LENGTH) throw new Pkcs11Error('FAILED', 'HSM member returned an unexpected ciphertext length');
    const blob = Buffer.allocUnsafe(HSM_HEADER_LENGTH + sealed.length);
    header.copy(blob, 0);
    sealed.copy(blob, HSM_HEADER_LENGTH);
    return blob;
  }

  async decrypt(
    handle: KeyVersionHandle,
    ciphertextBlob: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
    request?: KeyStoreRequestInfo,
  ): Promise<Buffer> {
    const objectId = this.#references.objectId(handle.sealedMaterial, handle.keyId, handle.version);
    const blob = parseHsmBlob(ciphertextBlob, encryptionContext);
    if (blob.keyId !== handle.keyId || blob.keyVersion !== handle.version) throw decryptionFailed();
    return this.cluster.decrypt(objectId, blob.iv, blob.aad, blob.sealed, request);
  }

  /** Destroys the version's object in every member (and managed backups); see HsmCluster.destroyKey. */
  async destroyVersionMaterial(handle: KeyVersionHandle): Promise<{ destroyedIn: string[]; owedBy: string[] }> {
    return this.cluster.destroyKey(decodeReference(handle.sealedMaterial, handle.keyId, handle.version));
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

  forget(): void {
    // Object handles are cached per member and checked against the token's handle epoch.
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
