import { constants, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt, type KeyObject } from 'node:crypto';
import { randomBytes } from '../random.ts';
import { EsdkError } from '../errors.ts';
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from '../types.ts';
import { pkcs1Unpad } from './pkcs1-unpad.ts';

export type RsaPadding = 'pkcs1' | 'oaep-sha1' | 'oaep-sha256' | 'oaep-sha384' | 'oaep-sha512';

export interface RawRsaKeyringOptions {
  /** Provider id of the encrypted data keys; must not be "aws-kms". */
  keyNamespace: string;
  keyName: string;
  /** Needed to encrypt; derived from privateKey when omitted. PEM, DER (SPKI) or KeyObject. */
  publicKey?: KeyObject | string | Uint8Array;
  /** Needed to decrypt. PEM, DER (PKCS#8) or KeyObject. */
  privateKey?: KeyObject | string | Uint8Array;
  /** PKCS#1 v1.5 or OAEP with MGF1 over the same hash (framework/raw-rsa-keyring.md). */
  padding: RsaPadding;
}

const OAEP_HASH: Readonly<Record<RsaPadding, string | undefined>> = {
  pkcs1: undefined,
  'oaep-sha1': 'sha1',
  'oaep-sha256': 'sha256',
  'oaep-sha384': 'sha384',
  'oaep-sha512': 'sha512',
};

function toKey(key: KeyObject | string | Uint8Array, kind: 'public' | 'private'): KeyObject {
  try {
    if (typeof key === 'object' && 'type' in key && !(key instanceof Uint8Array)) return key;
    if (typeof key === 'string') return kind === 'public' ? createPublicKey(key) : createPrivateKey(key);
    const der = Buffer.from(key);
    return kind === 'public' ? createPublicKey({ key: der, format: 'der', type: 'spki' }) : createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    throw new EsdkError('InvalidArgument', `raw RSA keyring: unreadable ${kind} key`);
  }
}

/**
 * Raw RSA keyring (framework/raw-rsa-keyring.md): the data key is RSA-encrypted under a local key.
 * Provider id = key namespace, provider info = key name. A keyring with only a public key can
 * encrypt but never decrypts.
 */
export class RawRsaKeyring implements Keyring {
  readonly keyNamespace: string;
  readonly keyName: string;
  readonly #keyNameBytes: Buffer;
  readonly #publicKey: KeyObject | undefined;
  readonly #privateKey: KeyObject | undefined;
  readonly #oaepHash: string | undefined;

  constructor(options: RawRsaKeyringOptions) {
    if (typeof options.keyNamespace !== 'string' || typeof options.keyName !== 'string') {
      throw new EsdkError('InvalidArgument', 'raw RSA keyring needs a key namespace and key name');
    }
    if (options.keyNamespace === 'aws-kms') throw new EsdkError('InvalidArgument', 'a raw keyring namespace must not be "aws-kms"');
    if (!Object.hasOwn(OAEP_HASH, options.padding)) throw new EsdkError('InvalidArgument', 'raw RSA keyring: unknown padding');
    if (!options.publicKey && !options.privateKey) throw new EsdkError('InvalidArgument', 'raw RSA keyring needs a public or private key');
    this.#privateKey = options.privateKey ? toKey(options.privateKey, 'private') : undefined;
    this.#publicKey = options.publicKey ? toKey(options.publicKey, 'public') : this.#privateKey && createPublicKey(this.#privateKey);
    for (const key of [this.#privateKey, this.#publicKey]) {
      if (key && key.asymmetricKeyType !== 'rsa') throw new EsdkError('InvalidArgument', 'raw RSA keyring needs an RSA key');
    }
    this.keyNamespace = options.keyNamespace;
    this.keyName = options.keyName;
    this.#keyNameBytes = Buffer.from(options.keyName, 'utf8');
    this.#oaepHash = OAEP_HASH[options.padding];
  }

  async onEncrypt(materials: EncryptionMaterials): Promise<EncryptionMaterials> {
    if (!this.#publicKey) throw new EsdkError('KeyringFailure', 'raw RSA keyring has no public key to encrypt with');
    const dataKey = materials.plaintextDataKey ?? randomBytes(materials.suite.keyLength);
    const ciphertext = this.#oaepHash
      ? publicEncrypt({ key: this.#publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: this.#oaepHash }, dataKey)
      : publicEncrypt({ key: this.#publicKey, padding: constants.RSA_PKCS1_PADDING }, dataKey);
    const edk: EncryptedDataKey = { providerId: this.keyNamespace, providerInfo: Buffer.from(this.#keyNameBytes), ciphertext };
    return { ...materials, plaintextDataKey: dataKey, encryptedDataKeys: [...materials.encryptedDataKeys, edk] };
  }

  async onDecrypt(materials: DecryptionMaterials, encryptedDataKeys: readonly EncryptedDataKey[]): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey || !this.#privateKey) return materials;
    for (const edk of encryptedDataKeys) {
      if (edk.providerId !== this.keyNamespace || !this.#keyNameBytes.equals(edk.providerInfo)) continue;
      const dataKey = this.#unwrap(edk.ciphertext, materials.suite.keyLength);
      if (dataKey) return { ...materials, plaintextDataKey: dataKey };
    }
    return materials;
  }

  #unwrap(ciphertext: Uint8Array, keyLength: number): Uint8Array | undefined {
    const key = this.#privateKey as KeyObject;
    try {
      if (this.#oaepHash) {
        const dataKey = privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: this.#oaepHash }, ciphertext);
        return dataKey.length === keyLength ? dataKey : undefined;
      }
      return pkcs1Unpad(privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, ciphertext), keyLength);
    } catch {
      return undefined; // wrong key or damaged ciphertext: try the next one
    }
  }
}
