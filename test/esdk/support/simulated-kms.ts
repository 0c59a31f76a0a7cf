import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from '../../../src/esdk/index.ts';

/**
 * A stand-in for the two AWS KMS keys the vectors name (us-west-2 aliases EncryptDecrypt and
 * EncryptOnly), so the vectors' aws-kms scenarios run without AWS. It keeps KMS's observable contract
 * for the ESDK: responses name the full key ARN (which becomes the EDK's provider info), the blob is
 * bound to the encryption context, and the encrypt-only key refuses Decrypt. Both processes derive
 * the same key material from the ARN, so a blob made on one side opens on the other.
 * What it does not prove: that Strongroom's KMS keyring speaks to a real KMS (test/esdk/kms-*.test.ts).
 */
const ENCRYPT_ONLY = new Set(['arn:aws:kms:us-west-2:658956600833:alias/EncryptOnly']);

interface KmsResponse {
  KeyId: string;
  CiphertextBlob?: Uint8Array;
  Plaintext?: Uint8Array;
}

export class SimulatedKms {
  keyArnFor(keyId: string): string {
    if (keyId.includes(':key/')) return keyId;
    const hex = createHash('sha256').update(keyId).digest('hex');
    return `${keyId.slice(0, keyId.lastIndexOf(':') + 1)}key/${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
  }

  #aliasOf(keyArn: string): string | undefined {
    for (const alias of ['arn:aws:kms:us-west-2:658956600833:alias/EncryptDecrypt', ...ENCRYPT_ONLY]) {
      if (this.keyArnFor(alias) === keyArn) return alias;
    }
    return undefined;
  }

  #material(keyArn: string): Buffer {
    return createHash('sha256').update(`strongroom-simulated-kms:${keyArn}`).digest();
  }

  #aad(context: Record<string, string> | undefined): Buffer {
    return Buffer.from(JSON.stringify(Object.entries(context ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  }

  encrypt(keyId: string, plaintext: Uint8Array, context: Record<string, string> | undefined): KmsResponse {
    const keyArn = this.keyArnFor(keyId);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#material(keyArn), iv);
    cipher.setAAD(this.#aad(context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { KeyId: keyArn, CiphertextBlob: Buffer.concat([iv, body, cipher.getAuthTag()]) };
  }

  generateDataKey(keyId: string, numberOfBytes: number, context: Record<string, string> | undefined): KmsResponse {
    const plaintext = randomBytes(numberOfBytes);
    return { ...this.encrypt(keyId, plaintext, context), Plaintext: plaintext };
  }

  decrypt(keyId: string, blob: Uint8Array, context: Record<string, string> | undefined): KmsResponse {
    const keyArn = this.keyArnFor(keyId);
    const alias = this.#aliasOf(keyArn);
    if (!alias || ENCRYPT_ONLY.has(alias)) throw Object.assign(new Error('AccessDeniedException'), { name: 'AccessDeniedException' });
    const bytes = Buffer.from(blob);
    const decipher = createDecipheriv('aes-256-gcm', this.#material(keyArn), bytes.subarray(0, 12));
    decipher.setAAD(this.#aad(context));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    const plaintext = Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]);
    return { KeyId: keyArn, Plaintext: plaintext };
  }

  /** The structural client the official KMS keyring calls (v3 style: methods returning promises). */
  officialClient(): unknown {
    return {
      generateDataKey: async (p: { KeyId: string; NumberOfBytes: number; EncryptionContext?: Record<string, string> }) =>
        this.generateDataKey(p.KeyId, p.NumberOfBytes, p.EncryptionContext),
      encrypt: async (p: { KeyId: string; Plaintext: Uint8Array; EncryptionContext?: Record<string, string> }) => this.encrypt(p.KeyId, p.Plaintext, p.EncryptionContext),
      decrypt: async (p: { KeyId: string; CiphertextBlob: Uint8Array; EncryptionContext?: Record<string, string> }) =>
        this.decrypt(p.KeyId, p.CiphertextBlob, p.EncryptionContext),
    };
  }
}

/**
 * Minimal KMS keyring (framework/aws-kms/aws-kms-keyring.md) over the simulated KMS for the
 * Strongroom side of the aws-kms vectors: provider id "aws-kms", provider info = the response's key ARN.
 */
export class SimulatedKmsKeyring implements Keyring {
  readonly #kms: SimulatedKms;
  readonly #keyId: string;

  constructor(kms: SimulatedKms, keyId: string) {
    this.#kms = kms;
    this.#keyId = keyId;
  }

  async onEncrypt(materials: EncryptionMaterials): Promise<EncryptionMaterials> {
    const context = { ...materials.encryptionContext };
    const response = materials.plaintextDataKey
      ? this.#kms.encrypt(this.#keyId, materials.plaintextDataKey, context)
      : this.#kms.generateDataKey(this.#keyId, materials.suite.keyLength, context);
    const edk: EncryptedDataKey = { providerId: 'aws-kms', providerInfo: Buffer.from(response.KeyId, 'utf8'), ciphertext: response.CiphertextBlob! };
    return { ...materials, plaintextDataKey: materials.plaintextDataKey ?? response.Plaintext, encryptedDataKeys: [...materials.encryptedDataKeys, edk] };
  }

  async onDecrypt(materials: DecryptionMaterials, edks: readonly EncryptedDataKey[]): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey) return materials;
    const keyArn = this.#kms.keyArnFor(this.#keyId);
    for (const edk of edks) {
      if (edk.providerId !== 'aws-kms' || Buffer.from(edk.providerInfo).toString('utf8') !== keyArn) continue;
      try {
        const response = this.#kms.decrypt(keyArn, edk.ciphertext, { ...materials.encryptionContext });
        if (response.KeyId === keyArn && response.Plaintext?.length === materials.suite.keyLength) return { ...materials, plaintextDataKey: response.Plaintext };
      } catch {
        // Refused or not ours: try the next key.
      }
    }
    return materials;
  }
}
