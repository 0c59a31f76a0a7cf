import { randomFillSync } from 'node:crypto';

/**
 * Small random values (message ids, IVs, data keys) from a pooled CSPRNG buffer: one
 * randomFillSync per 4 KiB instead of a call per value, which costs more than the value itself
 * on small messages. Bytes are copied out and wiped from the pool as they are handed out, so the
 * pool never holds a value that is in use.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let position = POOL_SIZE;

export function randomBytes(length: number): Buffer {
  if (length > 256) return randomFillSync(Buffer.allocUnsafe(length));
  if (position + length > POOL_SIZE) {
    randomFillSync(pool);
    position = 0;
  }
  const out = Buffer.allocUnsafe(length);
  pool.copy(out, 0, position, position + length);
  pool.fill(0, position, position + length);
  position += length;
  return out;
}
