import { createVerify, type DecipherGCM, type Verify } from 'node:crypto';
import { Transform, type Duplex, type TransformCallback } from 'node:stream';
import { FINAL_FRAME_MARKER, IV_LENGTH, MAX_NON_FRAMED_LENGTH, TAG_LENGTH } from './body.ts';
import { ByteQueue } from './byte-queue.ts';
import { beginDecryption, checkBodySize, decryptSettings, tryParseHeader, type DecryptSession, type DecryptSettings } from './decrypt-session.ts';
import { EsdkError, malformed } from './errors.ts';
import type { DecryptOptions } from './options.ts';
import type { ParsedHeader } from './serialize/header.ts';
import { WithheldFrames, type FrameKind } from './spill-frames.ts';
import { DEFAULT_SPILL_THRESHOLD, WithheldPlaintext, type SpillOptions, type Withheld } from './spill.ts';

type State = 'header' | 'frame' | 'single-header' | 'single-content' | 'single-tag' | 'footer' | 'done';

/**
 * Streaming decrypt: message in, plaintext out, with the Transform's backpressure; memory is one
 * frame plus the chunk in hand (plus up to `spillThreshold` of withheld plaintext and 2 MiB of
 * frames on their way to the spill) at any size.
 * - Framed, non-signing suites: each frame's plaintext leaves once its tag verified.
 * - Signing suites: plaintext is withheld until the footer signature verified, unless
 *   `allowUnsignedStreaming` releases it frame by frame as above — then a bad signature is only
 *   reported at the end, after plaintext was emitted.
 * - Non-framed bodies: one GCM tag covers all content, so plaintext is always withheld until it
 *   verifies (node's decipher yields it before final()).
 * What is withheld beyond the threshold goes to a spill file and is emitted only after the whole
 * message was read and its signature or tag verified, at the pace the reader takes it: a signed
 * framed message's frames as they came, each authenticated as it is released (spill-frames.ts); a
 * non-framed body's plaintext sealed under a key of the spill's own (spill.ts). On a failure before
 * the release nothing withheld is emitted, and the spill is removed in any case.
 */
class DecryptStream extends Transform {
  readonly #options: DecryptOptions;
  readonly #settings: DecryptSettings;
  readonly #queue = new ByteQueue();
  readonly #hint = { needed: 1 };
  #state: State = 'header';
  #session: DecryptSession | undefined;
  #verifier: Verify | undefined;
  #releaseEarly = false;
  readonly #spill: SpillOptions;
  #withheld: Withheld | undefined;
  /** Resolves a release waiting for the reader (set while push() said the buffer is full). */
  #wake: (() => void) | undefined;
  #sequenceNumber = 1;
  #decipher: DecipherGCM | undefined;
  #contentLeft = 0;

  constructor(options: DecryptOptions) {
    super();
    this.#options = options;
    this.#settings = decryptSettings(options);
    this.#spill = spillOptions(options);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!Buffer.isBuffer(chunk)) return callback(new EsdkError('InvalidArgument', 'decryptStream takes bytes'));
    this.#queue.push(chunk);
    if (this.#state !== 'header') return this.#step(callback);
    if (this.#queue.length < this.#hint.needed) return callback();
    let header;
    try {
      header = tryParseHeader(this.#queue.all(), this.#settings, this.#hint);
    } catch (error) {
      return callback(error as Error);
    }
    if (!header) return callback();
    beginDecryption(header, this.#options, this.#settings).then((session) => {
      // A throw here (or in a 'header' listener) must fail the stream, not escape as an unhandled rejection.
      try {
        this.#begin(header, session);
      } catch (error) {
        return callback(error as Error);
      }
      this.#step(callback);
    }, callback);
  }

  /** The header is parsed and its data key decrypted: sets up what the body needs. */
  #begin(header: ParsedHeader, session: DecryptSession): void {
    this.#session = session;
    const signature = header.suite.signature;
    if (signature) this.#verifier = createVerify(signature.hash);
    this.#releaseEarly = !signature || this.#options.allowUnsignedStreaming === true;
    if (header.contentType !== 2) this.#withheld = new WithheldPlaintext(this.#spill);
    else if (!this.#releaseEarly) {
      const body = session.body;
      this.#withheld = new WithheldFrames(this.#spill, header.frameLength, (kind, sequenceNumber, iv, content, tag) =>
        body.open(kind, sequenceNumber, iv, content, tag),
      );
    }
    this.#consume(header.length);
    this.#state = header.contentType === 2 ? 'frame' : 'single-header';
    this.emit('header', session.headerInfo);
  }

  /**
   * Decrypts what the queue holds, then puts withheld plaintext beyond the threshold on disk before
   * asking for more input (so a slow disk slows the writer, and memory stays bounded).
   */
  #step(callback: TransformCallback): void {
    if (this.destroyed) return callback(); // e.g. destroyed while the keyring was asked: start no spill
    try {
      this.#drain();
    } catch (error) {
      return callback(error as Error);
    }
    const withheld = this.#withheld;
    if (!withheld?.mustWrite) return callback();
    withheld.write().then(() => callback(), callback);
  }

  /** Takes n message bytes off the queue, feeding the signature verifier (everything before the footer). */
  #consume(n: number): Buffer {
    const bytes = this.#queue.take(n);
    this.#verifier?.update(bytes);
    return bytes;
  }

  /**
   * Takes one whole frame off the queue (it is all there) and decrypts and pushes it now, decrypts
   * and keeps it in memory, or spills it as it is, to be authenticated and decrypted on release
   * (spill-frames.ts). The content is never copied into one buffer: a frame usually spans two input
   * chunks, and copying it cost about as much as decrypting it.
   */
  #frame(kind: FrameKind, headLength: number, contentLength: number): void {
    const head = this.#consume(headLength);
    const content = this.#queue.takePieces(contentLength);
    if (this.#verifier) for (const piece of content) this.#verifier.update(piece);
    const tag = this.#consume(TAG_LENGTH);
    const frames = this.#releaseEarly ? undefined : (this.#withheld as WithheldFrames);
    if (frames && !frames.keeps(contentLength)) return frames.spill(kind, this.#sequenceNumber, [head, ...content, tag]);
    const ivAt = kind === 'final' ? 8 : 4;
    const plaintext = (this.#session as DecryptSession).body.openPieces(kind, this.#sequenceNumber, head.subarray(ivAt, ivAt + IV_LENGTH), content, tag);
    for (const piece of plaintext) {
      if (frames) frames.keep(piece);
      else this.push(piece);
    }
  }

  /** Parses and decrypts as much of the queue as is complete. */
  #drain(): void {
    const queue = this.#queue;
    const session = this.#session as DecryptSession;
    for (;;) {
      switch (this.#state) {
        case 'frame': {
          if (queue.length < 4) return;
          const marker = queue.peek(4).readUInt32BE(0);
          const frameLength = session.header.frameLength;
          if (marker === FINAL_FRAME_MARKER) {
            if (queue.length < 12 + IV_LENGTH) return;
            const head = queue.peek(12 + IV_LENGTH);
            const length = head.readUInt32BE(8 + IV_LENGTH);
            if (head.readUInt32BE(4) !== this.#sequenceNumber) throw malformed('frame out of sequence');
            if (length > frameLength) throw malformed('final frame longer than the frame length');
            if (queue.length < 12 + IV_LENGTH + length + TAG_LENGTH) return;
            this.#frame('final', 12 + IV_LENGTH, length);
            this.#state = this.#verifier ? 'footer' : 'done';
            break;
          }
          if (marker !== this.#sequenceNumber) throw malformed('frame out of sequence');
          if (marker === FINAL_FRAME_MARKER - 1) throw malformed('too many frames');
          if (queue.length < 4 + IV_LENGTH + frameLength + TAG_LENGTH) return;
          this.#frame('frame', 4 + IV_LENGTH, frameLength);
          this.#sequenceNumber++;
          break;
        }
        case 'single-header': {
          if (queue.length < IV_LENGTH + 8) return;
          const head = this.#consume(IV_LENGTH + 8);
          const length = head.readUInt32BE(IV_LENGTH) * 0x100000000 + head.readUInt32BE(IV_LENGTH + 4);
          if (length > MAX_NON_FRAMED_LENGTH) throw malformed('non-framed content too long');
          checkBodySize(length, this.#settings, 'non-framed content length');
          this.#decipher = session.body.singleDecipher(head.subarray(0, IV_LENGTH), length);
          this.#contentLeft = length;
          this.#state = 'single-content';
          break;
        }
        case 'single-content': {
          const n = Math.min(this.#contentLeft, queue.length);
          if (n > 0) {
            // Unauthenticated until the tag: always withheld, whatever allowUnsignedStreaming says.
            for (const piece of queue.takePieces(n)) {
              this.#verifier?.update(piece);
              (this.#withheld as WithheldPlaintext).add((this.#decipher as DecipherGCM).update(piece));
            }
            this.#contentLeft -= n;
          }
          if (this.#contentLeft > 0) return;
          this.#state = 'single-tag';
          break;
        }
        case 'single-tag': {
          if (queue.length < TAG_LENGTH) return;
          const decipher = this.#decipher as DecipherGCM;
          decipher.setAuthTag(this.#consume(TAG_LENGTH));
          try {
            decipher.final();
          } catch {
            throw new EsdkError('AuthenticationFailed', 'message body authentication failed (content)');
          }
          this.#state = this.#verifier ? 'footer' : 'done';
          break;
        }
        case 'footer': {
          if (queue.length < 2) return;
          const length = queue.peek(2).readUInt16BE(0);
          if (queue.length < 2 + length) return;
          const signature = queue.take(2 + length).subarray(2);
          let valid = false;
          try {
            valid = (this.#verifier as Verify).verify({ key: session.verificationKey!, dsaEncoding: 'der' }, signature);
          } catch {
            valid = false;
          }
          if (!valid) throw new EsdkError('SignatureInvalid', 'message signature verification failed');
          this.#state = 'done';
          break;
        }
        case 'done':
          if (queue.length > 0) throw malformed('trailing bytes after the message');
          return;
        default:
          return;
      }
    }
  }

  /** Emits the withheld plaintext at the reader's pace: after a push() that said "full", waits for _read. */
  #pushWhenWanted(plaintext: Buffer): Promise<void> {
    if (this.destroyed || this.push(plaintext)) return Promise.resolve();
    return new Promise((resolve) => (this.#wake = resolve));
  }

  override _read(size: number): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    super._read(size);
  }

  /** The whole message is in and verified (state 'done', nothing trailing): release what was withheld. */
  override _flush(callback: TransformCallback): void {
    if (this.#state !== 'done') {
      return callback(this.#state === 'header' && this.#queue.length === 0 ? malformed('empty message') : malformed('message is truncated'));
    }
    const withheld = this.#withheld;
    if (!withheld) return callback();
    withheld
      .release((plaintext) => this.#pushWhenWanted(plaintext))
      .then(() => withheld.discard())
      .then(() => callback(), (error: Error) => callback(error));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const wake = this.#wake;
    this.#wake = undefined;
    const withheld = this.#withheld;
    if (!withheld) return callback(error);
    // discard() marks the release as abandoned at once, so the woken release stops emitting.
    withheld.discard().then(() => callback(error), () => callback(error));
    wake?.();
  }
}

function spillOptions(options: DecryptOptions): SpillOptions {
  const { spillDirectory, spillThreshold } = options;
  if (spillDirectory !== undefined && (typeof spillDirectory !== 'string' || spillDirectory === '')) {
    throw new EsdkError('InvalidArgument', 'spillDirectory must be a directory path');
  }
  if (spillThreshold !== undefined && (!Number.isSafeInteger(spillThreshold) || spillThreshold < 0)) {
    throw new EsdkError('InvalidArgument', 'spillThreshold must be a non-negative integer');
  }
  // os.tmpdir() reads the environment on every call (a fifth of a 1 KB streaming decrypt): the spill looks it up only if it makes a file.
  return { directory: spillDirectory, threshold: spillThreshold ?? DEFAULT_SPILL_THRESHOLD };
}

export function decryptStream(options: DecryptOptions): Duplex {
  return new DecryptStream(options);
}
