import { createCipheriv, timingSafeEqual } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { IV_LENGTH, TAG_LENGTH } from './body.ts';
import { createSpillFile, emitInOrder, removeSpillFile, spillFailure, spillIv, type SpillFile, type SpillOptions, type Withheld } from './spill.ts';

/**
 * The frames of a signed framed message that decryptStream must withhold until the footer's
 * signature verified, kept in constant memory (the framed counterpart of WithheldPlaintext).
 *
 * Up to `threshold` bytes of the first frames are decrypted (authenticated) as they arrive and
 * kept in memory as plaintext. From the first frame that would pass the threshold on, the frames'
 * own bytes, as the message carried them (IV, ciphertext, tag), go to a spill file undecrypted; once
 * the signature verified, they are read back and each is authenticated (its GCM tag under the data
 * key) and decrypted just before its plaintext is released, at the reader's pace. So:
 * - nothing is released before the signature verified, and no frame before its own tag verified;
 * - the disk never holds plaintext;
 * - each spilled byte costs one AES pass and one createDecipheriv per frame, as a message that is not
 *   withheld does, plus a GMAC (below). (Decrypting in both passes, or sealing the plaintext under a
 *   spill key as WithheldPlaintext does, cost 2–3 passes: docs/esdk.md "Performance design".)
 *
 * The frames' own tags do not protect the file from whoever holds the data key: every recipient of
 * the message does, and the signature is there so that they cannot forge its content. So the file
 * is written in batches of BATCH_FRAMES frames, each followed by a GMAC (AES-256-GCM over nothing,
 * the batch as its additional data) under a key made for this one spill and held only in memory,
 * with IV = the batch's number: a batch changed, moved, dropped or replaced on disk fails it before
 * any of its frames is decrypted. Each frame's sequence number, kind and the final frame's length
 * come from memory, not from the disk, and its GCM tag is checked again on the way out.
 *
 * A batch or frame that fails on read-back stops the stream with AuthenticationFailed; what was
 * released before it was authenticated (spill file altered mid-release, or a message its own author
 * malformed, since the signature verified). The file (spill.ts's createSpillFile) is created 0600
 * with O_EXCL and unlinked at once. One write is in flight while the next batch is parsed; on
 * release the next batch is read while the current one is decrypted. Frames spilled but not yet
 * written when the message ends (less than a batch) are released from memory.
 */
const WRITE_BYTES = 1024 * 1024;
/** Bytes of a regular frame around its content: sequence number, IV, tag. */
const FRAME_OVERHEAD = 4 + IV_LENGTH + TAG_LENGTH;
/** Bytes of the final frame around its content: end marker, sequence number, IV, content length, tag. */
const FINAL_OVERHEAD = 4 + 4 + IV_LENGTH + 4 + TAG_LENGTH;
const MAC_LENGTH = 16;
/** Views per batch beyond which the batch is copied into one buffer (64 KB input chunks give ~17). */
const MAX_PIECES = 64;

export type FrameKind = 'frame' | 'final';
/** Authenticates and decrypts one frame (BodyCrypto.open); throws when its tag does not verify. */
export type FrameOpener = (kind: FrameKind, sequenceNumber: number, iv: Uint8Array, content: Uint8Array, tag: Uint8Array) => Buffer;

export class WithheldFrames implements Withheld {
  readonly #options: SpillOptions;
  readonly #frameLength: number;
  readonly #open: FrameOpener;
  /** Frames per batch on disk: about WRITE_BYTES of them, at least one. */
  readonly #batchFrames: number;
  /** Plaintext of the frames before the spill began, in order. */
  #memory: Buffer[] = [];
  #memoryLength = 0;
  /** From the first spilled frame on: its sequence number, how many regular frames, the final frame's content length. */
  #spillFrom = 0;
  #regularFrames = 0;
  #finalLength: number | undefined;
  /** Spilled frames not yet handed to a write, each as the pieces it arrived in. */
  #pending: Buffer[][] = [];
  /** Batches written to the file or being written. */
  #batches = 0;
  #writing: Promise<void> | undefined;
  #spill: SpillFile | undefined;
  #discarded = false;

  constructor(options: SpillOptions, frameLength: number, open: FrameOpener) {
    this.#options = options;
    this.#frameLength = frameLength;
    this.#open = open;
    this.#batchFrames = Math.max(1, Math.floor(WRITE_BYTES / (FRAME_OVERHEAD + frameLength)));
  }

  get #spilling(): boolean {
    return this.#regularFrames > 0 || this.#finalLength !== undefined;
  }

  /** Whether a frame with this much content is kept in memory (decrypted now) rather than spilled. */
  keeps(contentLength: number): boolean {
    return !this.#spilling && this.#memoryLength + contentLength <= this.#options.threshold;
  }

  /** The plaintext of a frame authenticated now, kept in memory (owned from here on; zeroed if discarded). */
  keep(plaintext: Buffer): void {
    this.#memory.push(plaintext);
    this.#memoryLength += plaintext.length;
  }

  /**
   * A frame to spill: its bytes as the message carried them, from the sequence number (or the end
   * marker) to the tag, in the pieces they arrived in, kept, not copied, until written (the input
   * chunks must not be changed once written to the stream, as for any Writable). It is
   * authenticated when read back.
   */
  spill(kind: FrameKind, sequenceNumber: number, frame: Buffer[]): void {
    if (!this.#spilling) this.#spillFrom = sequenceNumber;
    if (kind === 'final') {
      let length = 0;
      for (const piece of frame) length += piece.length;
      this.#finalLength = length - FINAL_OVERHEAD;
    } else {
      this.#regularFrames++;
    }
    this.#pending.push(frame);
  }

  get mustWrite(): boolean {
    return this.#pending.length >= this.#batchFrames;
  }

  /**
   * Starts writing every whole batch of pending frames, each followed by its MAC, after the previous
   * write finished (one in flight: memory stays at about two batches while the disk and the parsing
   * overlap). Its failure surfaces at the next write(), at release() before anything is emitted, or
   * as the rejection of this one.
   */
  async write(): Promise<void> {
    if (this.#discarded || !this.mustWrite) return;
    await this.#settleWrite();
    const { file } = this.#spill ?? (await this.#create());
    if (this.#discarded) return; // destroyed meanwhile: the key is gone, nothing more is written
    const batches = Math.floor(this.#pending.length / this.#batchFrames);
    const frames = this.#pending.splice(0, batches * this.#batchFrames);
    const buffers: Buffer[] = [];
    for (let b = 0; b < batches; b++) {
      let pieces = coalesce(frames.slice(b * this.#batchFrames, (b + 1) * this.#batchFrames).flat());
      // Input in many small chunks: one copy rather than a GMAC call and an iovec per piece.
      if (pieces.length > MAX_PIECES) pieces = [Buffer.concat(pieces)];
      for (const piece of pieces) buffers.push(piece);
      buffers.push(this.#mac(this.#batches + b, pieces));
    }
    const position = this.#batchPosition(this.#batches);
    this.#batches += batches;
    const writing = writeAll(file, buffers, position);
    writing.catch(() => undefined); // awaited later; not an unhandled rejection meanwhile
    this.#writing = writing;
  }

  async #settleWrite(): Promise<void> {
    const writing = this.#writing;
    if (!writing) return;
    await writing;
    this.#writing = undefined;
  }

  async release(emit: (plaintext: Buffer) => Promise<void>): Promise<void> {
    // Every write must have succeeded before the first byte leaves: a full disk fails the stream
    // with nothing emitted.
    await this.#settleWrite();
    const memory = this.#memory;
    this.#memory = [];
    this.#memoryLength = 0;
    if (!(await emitInOrder(memory, emit, () => this.#discarded)) || !this.#spilling) return;
    // The batches on disk, each checked against its MAC before any of its frames is decrypted;
    // the next one read while the current one is released.
    const read = (batch: number) => {
      const reading = this.#read(this.#batchPosition(batch), this.#batchBytes(batch));
      reading.catch(() => undefined); // awaited in turn; not an unhandled rejection meanwhile
      return reading;
    };
    let next = 0; // the next spilled frame to decrypt
    let reading = this.#batches > 0 ? read(0) : undefined;
    for (let batch = 0; batch < this.#batches; batch++) {
      const bytes = await (reading as Promise<Buffer>);
      if (this.#discarded) return; // the reader gave up meanwhile: the file and key are gone
      reading = batch + 1 < this.#batches ? read(batch + 1) : undefined;
      const framesEnd = bytes.length - MAC_LENGTH;
      if (!timingSafeEqual(this.#mac(batch, [bytes.subarray(0, framesEnd)]), bytes.subarray(framesEnd))) throw spillFailure();
      let offset = 0;
      for (const end = next + this.#batchFrames; next < end; next++) {
        const size = this.#frameSize(next);
        await emit(this.#reopen(next, bytes.subarray(offset, offset + size)));
        offset += size;
        if (this.#discarded) return;
      }
    }
    // Then the frames never written (less than a batch), from memory.
    const pending = this.#pending;
    this.#pending = [];
    for (const pieces of pending) {
      await emit(this.#reopen(next++, pieces.length === 1 ? pieces[0] : Buffer.concat(pieces)));
      if (this.#discarded) return;
    }
  }

  /** GMAC of a batch's frames under the spill's key: AES-256-GCM over nothing, IV = the batch's number. */
  #mac(batch: number, frames: readonly Buffer[]): Buffer {
    const gmac = createCipheriv('aes-256-gcm', (this.#spill as SpillFile).key, spillIv(batch), { authTagLength: MAC_LENGTH });
    for (const piece of frames) gmac.setAAD(piece);
    gmac.final();
    return gmac.getAuthTag();
  }

  /** The size on disk of spilled frame `index` (0: the first spilled), from memory's record. */
  #frameSize(index: number): number {
    return index < this.#regularFrames ? FRAME_OVERHEAD + this.#frameLength : FINAL_OVERHEAD + (this.#finalLength as number);
  }

  /** Where batch `batch` starts: every batch before it holds BATCH_FRAMES regular frames and a MAC. */
  #batchPosition(batch: number): number {
    return batch * (this.#batchFrames * (FRAME_OVERHEAD + this.#frameLength) + MAC_LENGTH);
  }

  /** The bytes of batch `batch` on disk, MAC included (only the last can hold the final frame). */
  #batchBytes(batch: number): number {
    let bytes = MAC_LENGTH;
    for (let index = batch * this.#batchFrames; index < (batch + 1) * this.#batchFrames; index++) bytes += this.#frameSize(index);
    return bytes;
  }

  /** Reads exactly `length` bytes (a read may return fewer: over 2 GiB on Linux); a short file fails. */
  async #read(position: number, length: number): Promise<Buffer> {
    const bytes = Buffer.allocUnsafe(length);
    for (let done = 0; done < length; ) {
      const { bytesRead } = await (this.#spill as SpillFile).file.read(bytes, done, length - done, position + done);
      if (bytesRead === 0) throw spillFailure();
      done += bytesRead;
    }
    return bytes;
  }

  /**
   * Authenticates and decrypts spilled frame `index` (0: the first spilled) read back, as what
   * memory says it must be: its kind, sequence number and size.
   */
  #reopen(index: number, bytes: Buffer): Buffer {
    if (bytes.length !== this.#frameSize(index)) throw spillFailure();
    const kind: FrameKind = index < this.#regularFrames ? 'frame' : 'final';
    const ivAt = kind === 'final' ? 8 : 4;
    const contentAt = ivAt + IV_LENGTH + (kind === 'final' ? 4 : 0);
    const tagAt = bytes.length - TAG_LENGTH;
    // BodyCrypto.open: AuthenticationFailed naming the frame when its tag does not verify.
    return this.#open(kind, this.#spillFrom + index, bytes.subarray(ivAt, ivAt + IV_LENGTH), bytes.subarray(contentAt, tagAt), bytes.subarray(tagAt));
  }

  async discard(): Promise<void> {
    this.#discarded = true;
    for (const plaintext of this.#memory) plaintext.fill(0);
    this.#memory = [];
    this.#memoryLength = 0;
    this.#pending = [];
    await this.#writing?.catch(() => undefined);
    this.#writing = undefined;
    const spill = this.#spill;
    this.#spill = undefined; // the key goes with it
    await removeSpillFile(spill);
  }

  async #create(): Promise<SpillFile> {
    this.#spill = await createSpillFile(this.#options.directory, () => this.#discarded);
    return this.#spill;
  }
}

/**
 * The same bytes in fewer views: neighbours that are adjacent in one ArrayBuffer (consecutive frames
 * of one input chunk) become one view, so the GMAC and writev get a call or entry per chunk rather
 * than three per frame. Nothing is copied.
 */
function coalesce(pieces: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const piece of pieces) {
    if (piece.length === 0) continue;
    const last = out[out.length - 1];
    if (last && last.buffer === piece.buffer && last.byteOffset + last.length === piece.byteOffset) {
      out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + piece.length);
    } else {
      out.push(piece);
    }
  }
  return out;
}

/** Writes the buffers at `position`, with as few calls as the kernel allows (writev). */
async function writeAll(file: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    const { bytesWritten } = await file.writev(rest, position);
    position += bytesWritten;
    let skipped = bytesWritten;
    let index = 0;
    while (index < rest.length && skipped >= rest[index].length) skipped -= rest[index++].length;
    rest = rest.slice(index);
    if (skipped > 0) rest[0] = rest[0].subarray(skipped);
  }
}
