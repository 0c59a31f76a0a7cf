import { unlink, type FileHandle } from 'node:fs/promises';
import { IV_LENGTH, TAG_LENGTH } from './body.ts';
import { createSpillFile, spillFailure, type SpillOptions, type Withheld } from './spill.ts';

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
 * - the disk never holds plaintext and needs no key of its own: the message's data key, held only
 *   in memory, is what makes the file readable;
 * - each spilled byte costs one AES pass and one createDecipheriv per frame, as a message that is not
 *   withheld does. (Decrypting in both passes, or sealing the plaintext under a spill key as
 *   WithheldPlaintext does, cost 2–3 passes: docs/esdk.md "Performance design".)
 * A spilled frame whose tag fails on read-back stops the stream with AuthenticationFailed; the frames
 * before it were released. With the signature verified, only two things can cause that: the message's
 * own author (who holds the signing key and the data key) wrote a bad frame, or the spill file was
 * altered on disk. Either way nothing unauthenticated is released. Read back, each frame's sequence
 * number, kind and the final frame's length come from memory, not from the disk, so a frame moved,
 * dropped or replaced on disk fails too.
 *
 * The file (spill.ts's createSpillFile) is created 0600 with O_EXCL and unlinked at once. Writes go
 * in batches of WRITE_BYTES with one in flight while the next batch is parsed; reads back in batches
 * of READ_BYTES, the next read started before the current batch is decrypted.
 */
const WRITE_BYTES = 1024 * 1024;
const READ_BYTES = 1024 * 1024;
/** Bytes of a regular frame around its content: sequence number, IV, tag. */
const FRAME_OVERHEAD = 4 + IV_LENGTH + TAG_LENGTH;
/** Bytes of the final frame around its content: end marker, sequence number, IV, content length, tag. */
const FINAL_OVERHEAD = 4 + 4 + IV_LENGTH + 4 + TAG_LENGTH;

export type FrameKind = 'frame' | 'final';
/** Authenticates and decrypts one frame (BodyCrypto.open); throws when its tag does not verify. */
export type FrameOpener = (kind: FrameKind, sequenceNumber: number, iv: Uint8Array, content: Uint8Array, tag: Uint8Array) => Buffer;

export class WithheldFrames implements Withheld {
  readonly #options: SpillOptions;
  readonly #frameLength: number;
  readonly #open: FrameOpener;
  /** Plaintext of the frames before the spill began, in order. */
  #memory: Buffer[] = [];
  #memoryLength = 0;
  /** From the first spilled frame on: its sequence number, how many regular frames, the final frame's content length. */
  #spillFrom = 0;
  #regularFrames = 0;
  #finalLength: number | undefined;
  /** Spilled frames not yet handed to a write, each as the pieces it arrived in. */
  #pending: Buffer[][] = [];
  #pendingLength = 0;
  /** Bytes written to the file or being written. */
  #fileLength = 0;
  #writing: Promise<void> | undefined;
  #file: FileHandle | undefined;
  #path: string | undefined;
  #discarded = false;

  constructor(options: SpillOptions, frameLength: number, open: FrameOpener) {
    this.#options = options;
    this.#frameLength = frameLength;
    this.#open = open;
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
   * marker) to the tag, in the pieces they arrived in, kept, not copied, until written. It is
   * authenticated when read back.
   */
  spill(kind: FrameKind, sequenceNumber: number, frame: Buffer[]): void {
    let length = 0;
    for (const piece of frame) length += piece.length;
    if (!this.#spilling) this.#spillFrom = sequenceNumber;
    if (kind === 'final') this.#finalLength = length - FINAL_OVERHEAD;
    else this.#regularFrames++;
    this.#pending.push(frame);
    this.#pendingLength += length;
  }

  get mustWrite(): boolean {
    return this.#pendingLength >= WRITE_BYTES;
  }

  /**
   * Starts writing the pending frames, after the previous write finished (one in flight: memory
   * stays at two batches while the disk and the decryption overlap). Its failure surfaces at the
   * next write(), release() or as the rejection of this one.
   */
  async write(): Promise<void> {
    if (this.#discarded || !this.mustWrite) return;
    await this.#settleWrite();
    const file = this.#file ?? (await this.#create());
    const frames = this.#pending;
    const position = this.#fileLength;
    this.#fileLength += this.#pendingLength;
    this.#pending = [];
    this.#pendingLength = 0;
    const writing = writeFrames(file, frames.flat(), position);
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
    const memory = this.#memory;
    this.#memory = [];
    this.#memoryLength = 0;
    for (const plaintext of memory) {
      await emit(plaintext);
      if (this.#discarded) return;
    }
    if (!this.#spilling) return;
    await this.#settleWrite();
    // The frames on disk, in batches of whole frames up to READ_BYTES, the next batch read ahead.
    // Planned one batch at a time from what memory recorded (constant memory at any size).
    let planned = 0; // frames covered by the batches planned so far
    let position = 0;
    const plan = (): { first: number; end: number; reading: Promise<Buffer> } | undefined => {
      if (position >= this.#fileLength) return undefined;
      const first = planned;
      let length = 0;
      while (planned < this.#frameCount) {
        const size = this.#frameSize(planned);
        if (position + length + size > this.#fileLength || (length > 0 && length + size > READ_BYTES)) break;
        length += size;
        planned++;
      }
      if (length === 0) throw spillFailure(); // the file does not end on a frame boundary
      const reading = this.#read(position, length);
      reading.catch(() => undefined); // awaited in turn; not an unhandled rejection meanwhile
      position += length;
      return { first, end: planned, reading };
    };
    let next = 0; // the next frame to decrypt
    for (let batch = plan(); batch; ) {
      const bytes = await batch.reading;
      const following = plan();
      let offset = 0;
      for (; next < batch.end; next++) {
        const size = this.#frameSize(next);
        await emit(this.#reopen(next, bytes.subarray(offset, offset + size)));
        offset += size;
        if (this.#discarded) return;
      }
      batch = following;
    }
    // Then the frames never written (the last partial batch), from memory.
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingLength = 0;
    for (const pieces of pending) {
      await emit(this.#reopen(next++, pieces.length === 1 ? pieces[0] : Buffer.concat(pieces)));
      if (this.#discarded) return;
    }
  }

  /** Spilled frames: the regular ones, then the final one if it was spilled. */
  get #frameCount(): number {
    return this.#regularFrames + (this.#finalLength === undefined ? 0 : 1);
  }

  /** The size on disk of spilled frame `index` (0: the first spilled), from memory's record. */
  #frameSize(index: number): number {
    return index < this.#regularFrames ? FRAME_OVERHEAD + this.#frameLength : FINAL_OVERHEAD + (this.#finalLength as number);
  }

  async #read(position: number, length: number): Promise<Buffer> {
    const bytes = Buffer.allocUnsafe(length);
    const { bytesRead } = await (this.#file as FileHandle).read(bytes, 0, length, position);
    if (bytesRead !== length) throw spillFailure();
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
    this.#pendingLength = 0;
    await this.#writing?.catch(() => undefined);
    this.#writing = undefined;
    const file = this.#file;
    const path = this.#path;
    this.#file = undefined;
    this.#path = undefined;
    await file?.close().catch(() => undefined);
    if (path) await unlink(path).catch(() => undefined);
  }

  async #create(): Promise<FileHandle> {
    const { file, path } = await createSpillFile(this.#options.directory);
    this.#file = file;
    this.#path = path;
    if (this.#discarded) {
      await this.discard();
      throw spillFailure();
    }
    return file;
  }
}

/** Writes whole frames at `position`, with as few calls as the kernel allows (writev). */
async function writeFrames(file: FileHandle, frames: Buffer[], position: number): Promise<void> {
  let rest = frames;
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
