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
    const frames = this.#layout();
    let next = 0; // the next frame to decrypt
    // Frames on disk: in batches of whole frames up to READ_BYTES, the next batch read ahead.
    const batches = this.#batches(frames);
    let reading = batches.length > 0 ? this.#read(batches[0]) : undefined;
    for (let b = 0; b < batches.length; b++) {
      const bytes = await (reading as Promise<Buffer>);
      reading = b + 1 < batches.length ? this.#read(batches[b + 1]) : undefined;
      reading?.catch(() => undefined);
      let offset = 0;
      for (; next < batches[b].end; next++) {
        const frame = frames[next];
        await emit(this.#reopen(frame, bytes.subarray(offset, offset + frame.size)));
        offset += frame.size;
        if (this.#discarded) return;
      }
    }
    // Then the frames never written (the last partial batch), from memory.
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingLength = 0;
    for (const pieces of pending) {
      await emit(this.#reopen(frames[next++], pieces.length === 1 ? pieces[0] : Buffer.concat(pieces)));
      if (this.#discarded) return;
    }
  }

  /** Every spilled frame in order: kind, sequence number, size, from memory's record of them. */
  #layout(): { kind: FrameKind; sequenceNumber: number; size: number }[] {
    const frames: { kind: FrameKind; sequenceNumber: number; size: number }[] = [];
    for (let i = 0; i < this.#regularFrames; i++) {
      frames.push({ kind: 'frame', sequenceNumber: this.#spillFrom + i, size: FRAME_OVERHEAD + this.#frameLength });
    }
    if (this.#finalLength !== undefined) {
      frames.push({ kind: 'final', sequenceNumber: this.#spillFrom + this.#regularFrames, size: FINAL_OVERHEAD + this.#finalLength });
    }
    return frames;
  }

  /** The reads covering the file: [position, length) and the index one past their last frame. */
  #batches(frames: { size: number }[]): { position: number; length: number; end: number }[] {
    const batches: { position: number; length: number; end: number }[] = [];
    let position = 0;
    let index = 0;
    while (position < this.#fileLength) {
      let length = 0;
      while (index < frames.length && position + length + frames[index].size <= this.#fileLength && (length === 0 || length + frames[index].size <= READ_BYTES)) {
        length += frames[index++].size;
      }
      if (length === 0) throw spillFailure(); // the file does not end on a frame boundary
      batches.push({ position, length, end: index });
      position += length;
    }
    return batches;
  }

  async #read({ position, length }: { position: number; length: number }): Promise<Buffer> {
    const bytes = Buffer.allocUnsafe(length);
    const { bytesRead } = await (this.#file as FileHandle).read(bytes, 0, length, position);
    if (bytesRead !== length) throw spillFailure();
    return bytes;
  }

  /** Authenticates and decrypts a spilled frame, as what memory says it must be (kind, sequence number, size). */
  #reopen(frame: { kind: FrameKind; sequenceNumber: number; size: number }, bytes: Buffer): Buffer {
    if (bytes.length !== frame.size) throw spillFailure();
    const ivAt = frame.kind === 'final' ? 8 : 4;
    const contentAt = ivAt + IV_LENGTH + (frame.kind === 'final' ? 4 : 0);
    const tagAt = bytes.length - TAG_LENGTH;
    // BodyCrypto.open: AuthenticationFailed naming the frame when its tag does not verify.
    return this.#open(frame.kind, frame.sequenceNumber, bytes.subarray(ivAt, ivAt + IV_LENGTH), bytes.subarray(contentAt, tagAt), bytes.subarray(tagAt));
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
