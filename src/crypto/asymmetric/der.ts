/**
 * Just enough DER (X.690) for the structures node:crypto cannot produce or take apart for us:
 * the ML-DSA SubjectPublicKeyInfo and PrivateKeyInfo, and the scalar inside a SEC1 ECPrivateKey.
 * Every reader is strict — definite, minimal lengths that stay inside the input — and returns
 * undefined rather than throwing, so callers fail closed with their own CryptoError.
 */

export const TAG_SEQUENCE = 0x30;
export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_OID = 0x06;

/** The DER length octets for a content of `length` bytes (X.690 §8.1.3, definite form). */
export function derLength(length: number): Buffer {
  if (length < 0x80) {
    return Buffer.from([length]);
  }
  const octets: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) {
    octets.unshift(rest & 0xff);
  }
  return Buffer.from([0x80 | octets.length, ...octets]);
}

export function derTlv(tag: number, ...contents: Uint8Array[]): Buffer {
  const length = contents.reduce((sum, part) => sum + part.byteLength, 0);
  return Buffer.concat([Buffer.from([tag]), derLength(length), ...contents]);
}

export interface DerElement {
  readonly tag: number;
  /** The contents, as a view of the input (not a copy). */
  readonly contents: Buffer;
  /** Offset just past this element in the input. */
  readonly end: number;
}

/** Reads one element at `offset`. Only low tag numbers and lengths up to 4 octets are accepted. */
export function readDer(input: Buffer, offset: number): DerElement | undefined {
  if (offset + 2 > input.length) {
    return undefined;
  }
  const tag = input[offset];
  if ((tag & 0x1f) === 0x1f) {
    return undefined;
  }
  let length = input[offset + 1];
  let position = offset + 2;
  if (length >= 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4 || position + octets > input.length || input[position] === 0) {
      return undefined; // indefinite, oversized or non-minimal length
    }
    length = 0;
    for (let i = 0; i < octets; i++) {
      length = length * 256 + input[position + i];
    }
    position += octets;
    if (length < 0x80) {
      return undefined; // the long form for a short length is not DER
    }
  }
  if (position + length > input.length) {
    return undefined;
  }
  return { tag, contents: input.subarray(position, position + length), end: position + length };
}
