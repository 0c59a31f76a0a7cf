import { CryptoError } from './errors.ts';

/**
 * The canonical byte form of a KMS encryption context, bound into a ciphertext as associated data.
 *
 *   uint32 BE  pair count n
 *   n times, sorted by the key's UTF-8 bytes (Buffer.compare, i.e. unsigned bytewise order):
 *     uint32 BE  key byte length   | key, UTF-8
 *     uint32 BE  value byte length | value, UTF-8
 *
 * An absent and an empty context are both the 4 bytes 00 00 00 00, as in AWS KMS, where omitting
 * the context and passing {} decrypt each other's ciphertexts.
 *
 * Why it is unambiguous (two different contexts never give the same bytes):
 * - Decoding is deterministic: the count says how many pairs follow and every field carries its own
 *   length before its bytes, so a reader never has to guess where a key ends and its value begins.
 *   {"a":"bc"} is 00000001 00000001 61 00000002 6263 and {"ab":"c"} is 00000001 00000002 6162
 *   00000001 63. Nothing needs escaping, so keys and values may contain any character, ":" and
 *   NUL included.
 * - Encoding is deterministic: pairs are sorted by the bytes that are written, not by JS string
 *   order (UTF-16 code units, which disagrees with UTF-8 byte order above U+FFFF), and keys are
 *   unique in a record, so insertion order cannot change the output.
 * - UTF-8 is one-to-one only on well-formed strings. A lone surrogate ("\ud800", which JSON's \u
 *   escapes can produce) encodes as EF BF BD, the same bytes as "\ufffd", so such strings are refused
 *   rather than silently merged with another context.
 */
export function canonicalEncryptionContext(
  context: Readonly<Record<string, string>> | undefined,
): Buffer {
  if (context === undefined) {
    return Buffer.alloc(4);
  }
  if (context === null || typeof context !== 'object') {
    throw new CryptoError('invalid encryption context');
  }
  const pairs: Array<{ key: Buffer; value: Buffer }> = [];
  let total = 4;
  for (const key of Object.keys(context)) {
    const value = context[key];
    if (typeof value !== 'string' || !isWellFormed(key) || !isWellFormed(value)) {
      throw new CryptoError('invalid encryption context');
    }
    const pair = { key: Buffer.from(key, 'utf8'), value: Buffer.from(value, 'utf8') };
    pairs.push(pair);
    total += 8 + pair.key.length + pair.value.length;
  }
  pairs.sort((left, right) => Buffer.compare(left.key, right.key));

  const encoded = Buffer.allocUnsafe(total);
  let offset = encoded.writeUInt32BE(pairs.length, 0);
  for (let i = 0; i < pairs.length; i++) {
    const { key, value } = pairs[i];
    // Distinct well-formed strings have distinct UTF-8, so this cannot happen; fail closed if it does.
    if (i > 0 && key.equals(pairs[i - 1].key)) {
      throw new CryptoError('invalid encryption context');
    }
    offset = encoded.writeUInt32BE(key.length, offset);
    offset += key.copy(encoded, offset);
    offset = encoded.writeUInt32BE(value.length, offset);
    offset += value.copy(encoded, offset);
  }
  return encoded;
}

// With the u flag a surrogate pair is one code point, so this matches unpaired surrogates only.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}
