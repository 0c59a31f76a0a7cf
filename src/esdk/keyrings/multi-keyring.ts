import { EsdkError } from '../errors.ts';
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from '../types.ts';

export interface MultiKeyringOptions {
  /** Generates the data key (unless the materials already have one) and wraps it. */
  generator?: Keyring;
  /** Each wraps the same data key once more. */
  children?: Keyring[];
}

/**
 * Multi-keyring (framework/multi-keyring.md). Encrypt: the generator, then every child, each adding
 * an encrypted data key; any failure fails the call. Decrypt: generator then children in order; the
 * first that yields a data key wins, errors of the others are swallowed (a later one may succeed).
 */
export class MultiKeyring implements Keyring {
  readonly generator: Keyring | undefined;
  readonly children: readonly Keyring[];

  constructor(options: MultiKeyringOptions) {
    if (!options.generator && !options.children?.length) throw new EsdkError('InvalidArgument', 'multi-keyring needs a generator or children');
    this.generator = options.generator;
    this.children = [...(options.children ?? [])];
  }

  async onEncrypt(materials: EncryptionMaterials): Promise<EncryptionMaterials> {
    let current = materials;
    if (this.generator) {
      current = await this.generator.onEncrypt(current);
      if (!current.plaintextDataKey) throw new EsdkError('KeyringFailure', 'multi-keyring generator did not produce a data key');
    } else if (!current.plaintextDataKey) {
      throw new EsdkError('KeyringFailure', 'multi-keyring without a generator needs a data key already in the materials');
    }
    for (const child of this.children) current = await child.onEncrypt(current);
    return current;
  }

  async onDecrypt(materials: DecryptionMaterials, encryptedDataKeys: readonly EncryptedDataKey[]): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey) return materials;
    const keyrings = this.generator ? [this.generator, ...this.children] : this.children;
    for (const keyring of keyrings) {
      try {
        const result = await keyring.onDecrypt(materials, encryptedDataKeys);
        if (result.plaintextDataKey) return result;
      } catch {
        // multi-keyring.md: collect and continue; NoDecryptableKey is reported by the caller.
      }
    }
    return materials;
  }
}
