import { MultiKeyring, RawAesKeyring, RawRsaKeyring, type Keyring, type RsaPadding } from '../../../src/esdk/index.ts';
import type { KeySpec, MasterKeySpec } from './vector-scenarios.ts';

/** Strongroom keyrings for the vector master keys, built once per distinct description. */
export class StrongroomVectorKeyrings {
  readonly #keys: Map<string, KeySpec>;
  readonly #cache = new Map<string, Keyring>();
  readonly #kms: (spec: MasterKeySpec) => Keyring;

  constructor(keys: Map<string, KeySpec>, kms: (spec: MasterKeySpec) => Keyring) {
    this.#keys = keys;
    this.#kms = kms;
  }

  keyring(spec: MasterKeySpec): Keyring {
    const cacheKey = JSON.stringify(spec);
    let keyring = this.#cache.get(cacheKey);
    if (!keyring) {
      keyring = this.#build(spec);
      this.#cache.set(cacheKey, keyring);
    }
    return keyring;
  }

  /** First master key generates, the rest wrap the same data key (the vectors' convention). */
  forEncrypt(specs: MasterKeySpec[]): Keyring {
    const [generator, ...children] = specs.map((s) => this.keyring(s));
    return children.length ? new MultiKeyring({ generator, children }) : generator;
  }

  forDecrypt(specs: MasterKeySpec[]): Keyring {
    return new MultiKeyring({ children: specs.map((s) => this.keyring(s)) });
  }

  #build(spec: MasterKeySpec): Keyring {
    if (spec.type === 'aws-kms') return this.#kms(spec);
    const key = this.#keys.get(spec.key);
    if (!key?.material) throw new Error(`vector key ${spec.key} has no material`);
    const keyNamespace = spec.providerId as string;
    if (spec.encryptionAlgorithm === 'aes') {
      return new RawAesKeyring({ keyNamespace, keyName: key.keyId, wrappingKey: Buffer.from(key.material, 'base64') });
    }
    const padding = (spec.paddingAlgorithm === 'pkcs1' ? 'pkcs1' : `oaep-${spec.paddingHash}`) as RsaPadding;
    return key.type === 'private'
      ? new RawRsaKeyring({ keyNamespace, keyName: key.keyId, privateKey: key.material, padding })
      : new RawRsaKeyring({ keyNamespace, keyName: key.keyId, publicKey: key.material, padding });
  }
}
