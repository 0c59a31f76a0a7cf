import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { randomBytes } from '../random.ts';
import { EsdkError } from '../errors.ts';
import { serializeEncryptionContext } from '../serialize/encryption-context.ts';
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from '../types.ts';

export interface RawAesKeyringOptions {
  /** Provider id of the encrypted data keys; must not be "aws-kms". */
  keyNamespace: string;
  keyName: string;
  /** 16, 24 or 32 bytes: the wrapping algorithm is AES-GCM with that key length. Copied. */
  wrappingKey: Uint8Array | KeyObject;
}

const TAG_BITS = 128;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

/**
 * Raw AES keyring (framework/raw-aes-keyring.md): wraps the data key with AES-GCM under a local
 * key, AAD = the serialized encryption context.
 * Provider info = key name ‖ uint32 tag length in bits ‖ uint32 IV length ‖ IV;
 * EDK ciphertext = wrapped key ‖ tag.
 */
export class RawAesKeyring implements Keyring {
  readonly keyNamespace: string;
  readonly keyName: string;
  readonly #keyNameBytes: Buffer;
  readonly #wrappingKey: KeyObject;
  readonly #cipher: 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';

  constructor(options: RawAesKeyringOptions) {
    if (typeof options.keyNamespace !== 'string' || typeof options.keyName !== 'string') {
      throw new EsdkError('InvalidArgument', 'raw AES keyring needs a key namespace and key name');
    }
    if (options.keyNamespace === 'aws-kms') throw new EsdkError('InvalidArgument', 'a raw keyring namespace must not be "aws-kms"');
    const key = options.wrappingKey instanceof Uint8Array ? createSecretKey(Buffer.from(options.wrappingKey)) : options.wrappingKey;
    if (key.type !== 'secret') throw new EsdkError('InvalidArgument', 'raw AES wrapping key must be a secret key');
    const size = key.symmetricKeySize;
    if (size !== 16 && size !== 24 && size !== 32) throw new EsdkError('InvalidArgument', 'raw AES wrapping key must be 16, 24 or 32 bytes');
    this.keyNamespace = options.keyNamespace;
    this.keyName = options.keyName;
    this.#keyNameBytes = Buffer.from(options.keyName, 'utf8');
    this.#wrappingKey = key;
    this.#cipher = `aes-${size * 8}-gcm` as 'aes-128-gcm';
  }

  async onEncrypt(materials: EncryptionMaterials): Promise<EncryptionMaterials> {
    const dataKey = materials.plaintextDataKey ?? randomBytes(materials.suite.keyLength);
    const iv = randomBytes(IV_LENGTH);
    const cipher = createCipheriv(this.#cipher, this.#wrappingKey, iv, { authTagLength: TAG_LENGTH });
    cipher.setAAD(serializeEncryptionContext(materials.encryptionContext));
    const wrapped = cipher.update(dataKey);
    cipher.final();
    const providerInfo = Buffer.allocUnsafe(this.#keyNameBytes.length + 8 + IV_LENGTH);
    this.#keyNameBytes.copy(providerInfo, 0);
    providerInfo.writeUInt32BE(TAG_BITS, this.#keyNameBytes.length);
    providerInfo.writeUInt32BE(IV_LENGTH, this.#keyNameBytes.length + 4);
    iv.copy(providerInfo, this.#keyNameBytes.length + 8);
    const edk: EncryptedDataKey = { providerId: this.keyNamespace, providerInfo, ciphertext: Buffer.concat([wrapped, cipher.getAuthTag()]) };
    return { ...materials, plaintextDataKey: dataKey, encryptedDataKeys: [...materials.encryptedDataKeys, edk] };
  }

  async onDecrypt(materials: DecryptionMaterials, encryptedDataKeys: readonly EncryptedDataKey[]): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey) return materials;
    const keyLength = materials.suite.keyLength;
    let aad: Buffer | undefined;
    for (const edk of encryptedDataKeys) {
      const iv = this.#ivFor(edk);
      if (!iv || edk.ciphertext.length !== keyLength + TAG_LENGTH) continue;
      aad ??= serializeEncryptionContext(materials.encryptionContext);
      try {
        const decipher = createDecipheriv(this.#cipher, this.#wrappingKey, iv, { authTagLength: TAG_LENGTH });
        decipher.setAAD(aad);
        decipher.setAuthTag(edk.ciphertext.subarray(keyLength));
        const dataKey = Buffer.concat([decipher.update(edk.ciphertext.subarray(0, keyLength)), decipher.final()]);
        return { ...materials, plaintextDataKey: dataKey };
      } catch {
        // Not ours after all (or tampered): keep trying the other keys (raw-aes-keyring.md OnDecrypt).
      }
    }
    return materials;
  }

  /** The IV when this EDK names this keyring with the expected provider-info layout, else undefined. */
  #ivFor(edk: EncryptedDataKey): Uint8Array | undefined {
    const info = edk.providerInfo;
    const nameLength = this.#keyNameBytes.length;
    if (edk.providerId !== this.keyNamespace || info.length !== nameLength + 8 + IV_LENGTH) return undefined;
    const view = Buffer.from(info.buffer, info.byteOffset, info.byteLength);
    if (!this.#keyNameBytes.equals(view.subarray(0, nameLength))) return undefined;
    if (view.readUInt32BE(nameLength) !== TAG_BITS || view.readUInt32BE(nameLength + 4) !== IV_LENGTH) return undefined;
    return view.subarray(nameLength + 8);
  }
}
