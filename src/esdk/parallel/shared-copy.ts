/**
 * Copies `source` into `target` at `offset`. Into shared memory (a SharedArrayBuffer),
 * TypedArray.prototype.set, and Buffer.copy which is built on it, copies byte by byte unless source
 * and target happen to be aligned alike, which a message's frames at odd offsets seldom are
 * (measured here: 2.4–3 GB/s, against 18–25 GB/s for the same copy into ordinary memory). Buffer.fill
 * with the source as its pattern is one native memcpy whatever the memory.
 */
export function copyInto(target: Buffer, offset: number, source: Uint8Array): void {
  if (source.length === 0) return;
  if (target.buffer instanceof SharedArrayBuffer) target.fill(source, offset, offset + source.length);
  else target.set(source, offset);
}
