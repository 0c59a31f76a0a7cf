import { randomFillSync, randomUUID } from 'node:crypto';
import { CryptoError } from './errors.ts';

/**
 * `n` bytes straight from the CSPRNG, in a buffer of their own (not a slice of Node's shared
 * pool), fit for secrets that are later wiped. (fillRandom's pool is for public values.)
 */
export function randomBytes(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new CryptoError('invalid random length');
  }
  return randomFillSync(Buffer.alloc(n));
}

const POOL_BYTES = 16 * 1024;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;

/**
 * For public values only (salts, IVs): fills target[offset, offset+length) from the CSPRNG
 * through a per-process pool. Each call into
 * OpenSSL's RAND costs microseconds of fixed overhead in Node 20, whatever the length, and every
 * Encrypt needs a salt and an IV: drawing 16 KiB at a time makes that overhead vanish (Node's own
 * randomUUID does the same). Bytes handed out are wiped from the pool at once, so the pool never
 * holds a value that was given to a caller. Processes are spawned, never forked, so no two share a
 * pool.
 */
export function fillRandom(target: Buffer, offset: number, length: number): void {
  if (!Number.isSafeInteger(length) || length < 0 || offset < 0 || offset + length > target.length) {
    throw new CryptoError('invalid random length');
  }
  if (length > POOL_BYTES / 4) {
    randomFillSync(target, offset, length);
    return;
  }
  if (poolOffset + length > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  pool.copy(target, offset, poolOffset, poolOffset + length);
  pool.fill(0, poolOffset, poolOffset + length);
  poolOffset += length;
}

/** A random (version 4) UUID in lowercase 8-4-4-4-12 form: the shape of every key id. */
export function randomUuid(): string {
  return randomUUID();
}

// Only the canonical lowercase form, so that one key id has exactly one string (and one byte) form:
// uppercase, braces, "urn:uuid:" prefixes and missing dashes are rejected rather than normalised.
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The 16 raw bytes of a UUID given in canonical lowercase form. */
export function uuidToBytes(uuid: string): Buffer {
  if (typeof uuid !== 'string' || !CANONICAL_UUID.test(uuid)) {
    throw new CryptoError('invalid uuid');
  }
  const bytes = Buffer.alloc(16);
  bytes.write(uuid.slice(0, 8), 0, 'hex');
  bytes.write(uuid.slice(9, 13), 4, 'hex');
  bytes.write(uuid.slice(14, 18), 6, 'hex');
  bytes.write(uuid.slice(19, 23), 8, 'hex');
  bytes.write(uuid.slice(24, 36), 10, 'hex');
  return bytes;
}

/** The canonical lowercase form of 16 raw UUID bytes. */
export function bytesToUuid(bytes: Uint8Array): string {
  if (bytes.byteLength !== 16) {
    throw new CryptoError('invalid uuid');
  }
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
