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
 * first that yields a data key wins. A child that fails (or yields a data key of the wrong length)
 * does not stop the others; if none yields a key, the children's errors are reported together
 * (`KeyringFailure`, the originals as the error's `cause`), and with no errors the caller reports
 * `NoDecryptableKey`.
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
    const errors: unknown[] = [];
    for (const keyring of keyrings) {
      try {
        const result = await keyring.onDecrypt(materials, encryptedDataKeys);
        if (!result.plaintextDataKey) continue;
        if (result.plaintextDataKey.length === materials.suite.keyLength) return result;
        errors.push(new EsdkError('KeyringFailure', 'the keyring returned a data key of the wrong length'));
      } catch (error) {
        errors.push(error); // multi-keyring.md: collect, and try the next keyring
      }
    }
    if (errors.length === 0) return materials; // nothing failed, nothing matched: NoDecryptableKey, from the caller
    throw new EsdkError(
      'KeyringFailure',
      `no keyring could decrypt any of the encrypted data keys; ${errors.length} of ${keyrings.length} failed: ` +
        errors.map((error, index) => `#${index + 1} ${describe(error)}`).join('; '),
      { cause: new AggregateError(errors, 'child keyring errors') },
    );
  }
}

/** A child's error in one line: its code or name and its message (shortened; keyrings' messages carry no secrets). */
function describe(error: unknown): string {
  const label = error instanceof EsdkError ? error.code : error instanceof Error ? error.name : 'Error';
  const text = error instanceof Error ? error.message : String(error);
  return `${label}: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`;
}
