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
    // multi-keyring.md: a failing keyring's error is collected, and the next keyring tried.
    const failures: { position: number; error: unknown }[] = [];
    for (const [index, keyring] of keyrings.entries()) {
      try {
        const result = await keyring.onDecrypt(materials, encryptedDataKeys);
        if (!result.plaintextDataKey) continue;
        if (result.plaintextDataKey.length === materials.suite.keyLength) return result;
        result.plaintextDataKey.fill(0);
        failures.push({ position: index + 1, error: new EsdkError('KeyringFailure', 'the keyring returned a data key of the wrong length') });
      } catch (error) {
        failures.push({ position: index + 1, error });
      }
    }
    if (failures.length === 0) return materials; // nothing failed, nothing matched: NoDecryptableKey, from the caller
    throw new EsdkError(
      'KeyringFailure',
      `no keyring could decrypt any of the encrypted data keys; ${failures.length} of ${keyrings.length} failed ` +
        `(counted from 1${this.generator ? ', the generator first' : ''}): ` +
        failures.map(({ position, error }) => `keyring ${position}: ${describe(error)}`).join('; '),
      { cause: new AggregateError(failures.map(({ error }) => error), 'child keyring errors') },
    );
  }
}

/** A child's error in one line: its code or name and its message (shortened; keyrings' messages carry no secrets). */
function describe(error: unknown): string {
  const label = error instanceof EsdkError ? error.code : error instanceof Error ? error.name : 'Error';
  const text = error instanceof Error ? error.message : String(error);
  return `${label}: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`;
}
