import { randomFillSync, timingSafeEqual } from 'node:crypto';
import { CryptoError } from './errors.ts';

const REDACTED = '[SecretBytes redacted]';
const inspectCustom: unique symbol = Symbol.for('nodejs.util.inspect.custom');

/**
 * Key material. Copied in, so the caller's buffer can be wiped or reused; redacted in every string
 * form (String(), template literals, JSON.stringify, util.inspect, console.log); compared in
 * constant time; zeroed when done. Reading the bytes is one explicit, greppable call:
 * `exposeSecretBytes()`.
 *
 * The bytes live in their own, unpooled ArrayBuffer (Buffer.alloc, never Buffer.from or
 * allocUnsafe, which may hand out a slice of Node's shared 8 KiB pool). So `zero()` really
 * erases the only copy this object holds, and the exposed Buffer's `.buffer` holds nothing else.
 */
export class SecretBytes {
  #bytes: Buffer | undefined;
  readonly #length: number;

  private constructor(ownedBytes: Buffer) {
    this.#bytes = ownedBytes;
    this.#length = ownedBytes.length;
  }

  /** Copies `bytes`; later changes to `bytes` do not affect the SecretBytes. */
  static from(bytes: Uint8Array): SecretBytes {
    const owned = Buffer.alloc(bytes.length);
    owned.set(bytes);
    return new SecretBytes(owned);
  }

  /** `length` bytes from the CSPRNG. */
  static random(length: number): SecretBytes {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new CryptoError('invalid secret length');
    }
    return new SecretBytes(randomFillSync(Buffer.alloc(length)));
  }

  get length(): number {
    return this.#length;
  }

  /**
   * The internal buffer itself, not a copy: do not keep it, log it or hand it beyond the call that
   * needs it. Throws once the secret has been zeroed.
   */
  exposeSecretBytes(): Buffer {
    if (this.#bytes === undefined) {
      throw new CryptoError('secret has been destroyed');
    }
    return this.#bytes;
  }

  /** Constant-time comparison; lengths are not secret, so a length mismatch returns false early. */
  equals(other: SecretBytes): boolean {
    return constantTimeEqual(this.exposeSecretBytes(), other.exposeSecretBytes());
  }

  /** Overwrites the bytes with zeros and makes every later read throw. Idempotent. */
  zero(): void {
    this.#bytes?.fill(0);
    this.#bytes = undefined;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspectCustom](): string {
    return REDACTED;
  }
}

/**
 * Compares two byte strings in time independent of their contents (crypto.timingSafeEqual).
 * The lengths are treated as public: unequal lengths return false at once.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) {
    return false;
  }
  return timingSafeEqual(a, b);
}
