import { createHash } from 'node:crypto';

/**
 * The audit trail's hash chain (docs/audit.md "The chain"):
 *
 *   hash(seq) = SHA-256( hash(seq-1) ‖ UTF-8(eventText) )      hash(0) = 32 zero bytes
 */

export const CHAIN_HASH_LENGTH = 32;

/** hash(0): what the first event chains from, and the first digest's previousDigestHash. */
export const ZERO_HASH: Buffer = Buffer.alloc(CHAIN_HASH_LENGTH);

export function chainHash(previous: Uint8Array, text: string): Buffer {
  return createHash('sha256').update(previous).update(text, 'utf8').digest();
}

export function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(data).digest();
}
