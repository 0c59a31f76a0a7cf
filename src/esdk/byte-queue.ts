/**
 * Bytes received but not yet consumed by the streaming decrypter: a list of chunks, read from the
 * front. `take(n)` is zero-copy when the first chunk holds n bytes, and copies only across a chunk
 * boundary, so memory is what the parser is waiting for plus the chunk in hand.
 */
const EMPTY = Buffer.alloc(0);

export class ByteQueue {
  #chunks: Buffer[] = [];
  #head = 0;
  #offset = 0;
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first `n` bytes, without consuming them (copied only if they span chunks). */
  peek(n: number): Buffer {
    const first = this.#chunks[this.#head];
    if (first && first.length - this.#offset >= n) return first.subarray(this.#offset, this.#offset + n);
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    for (let i = this.#head, offset = this.#offset; copied < n; i++, offset = 0) {
      const chunk = this.#chunks[i];
      const count = Math.min(chunk.length - offset, n - copied);
      chunk.copy(out, copied, offset, offset + count);
      copied += count;
    }
    return out;
  }

  /** Everything buffered, as one buffer (used for the header, which is parsed from a prefix). */
  all(): Buffer {
    return this.peek(this.length);
  }

  /**
   * The first `n` bytes as views of the chunks that hold them (one view when one chunk does), never
   * copied; consumed. For a frame's content, which a decipher can take in pieces.
   */
  takePieces(n: number): Buffer[] {
    const pieces: Buffer[] = [];
    let left = n;
    for (let i = this.#head, offset = this.#offset; left > 0; i++, offset = 0) {
      const chunk = this.#chunks[i];
      const count = Math.min(chunk.length - offset, left);
      pieces.push(chunk.subarray(offset, offset + count));
      left -= count;
    }
    this.#discard(n);
    return pieces;
  }

  take(n: number): Buffer {
    const bytes = this.peek(n);
    this.#discard(n);
    return bytes;
  }

  #discard(n: number): void {
    this.length -= n;
    while (n > 0) {
      const chunk = this.#chunks[this.#head];
      const rest = chunk.length - this.#offset;
      if (n < rest) {
        this.#offset += n;
        break;
      }
      n -= rest;
      // Let go of a consumed chunk at once: keeping it until the array is compacted would keep
      // every byte received whenever no read happens to end on a chunk boundary.
      this.#chunks[this.#head++] = EMPTY;
      this.#offset = 0;
    }
    if (this.#head > 64 || this.#head === this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}
