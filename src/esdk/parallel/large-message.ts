import { FINAL_FRAME_MARKER, IV_LENGTH, TAG_LENGTH } from '../body.ts';
import type { DecryptSession } from '../decrypt-session.ts';
import { MessageSigner } from '../ecdsa-presigned.ts';
import type { EncryptSession } from '../encrypt-session.ts';
import { EsdkError, malformed } from '../errors.ts';
import { runOnHelper, shared } from './frame-pool.ts';
import type { FrameJob } from './frame-worker.ts';
import { copyInto } from './shared-copy.ts';

/**
 * Large buffered messages on two threads. Frames are independent AES-GCM operations, so the
 * calling thread seals/opens the first half while the helper thread does the second, both writing
 * into one SharedArrayBuffer. For signing suites the signature is then computed over the finished
 * message (encrypt; from 4 MiB, a signing key with a precomputed nonce instead has encrypt.ts seal
 * every frame on this thread while the helper hashes), or checked on the calling thread while the
 * helper opens every frame (decrypt: the ciphertext is all there, so hashing need not wait). The
 * helper's input is a reused copy (frame-pool.ts, shared()). The output is the same bytes the
 * single-threaded path writes; the returned Buffer is backed by a SharedArrayBuffer.
 */
const FRAME_OVERHEAD = 4 + IV_LENGTH + TAG_LENGTH;
const FINAL_OVERHEAD = 4 + 4 + IV_LENGTH + 4 + TAG_LENGTH;
const MAX_SIGNATURE_LENGTH = 110;

/** `signer`: the message's (signing suites); it hashes the finished message on this thread. */
export async function sealLarge(session: EncryptSession, plaintext: Uint8Array, signer?: MessageSigner): Promise<Buffer> {
  const { header, frameLength, body } = session;
  const fullFrames = Math.floor(plaintext.length / frameLength);
  const finalLength = plaintext.length - fullFrames * frameLength;
  const bodyLength = fullFrames * (frameLength + FRAME_OVERHEAD) + FINAL_OVERHEAD + finalLength;
  const footerRoom = session.signingKey ? 2 + MAX_SIGNATURE_LENGTH : 0;
  const out = Buffer.from(new SharedArrayBuffer(header.length + bodyLength + footerRoom));
  header.copy(out, 0);
  const mine = Math.floor(fullFrames / 2);
  const input = shared(plaintext, mine * frameLength, plaintext.length);
  const job: FrameJob = {
    op: 'seal',
    suiteId: session.suite.id,
    key: session.contentKey,
    messageId: session.messageId,
    frameLength,
    firstSequence: mine + 1,
    lastSequence: fullFrames,
    finalLength,
    input: input.buffer,
    inputOffset: input.offset,
    wipeInput: input.buffer !== plaintext.buffer,
    output: out.buffer as SharedArrayBuffer,
    outputOffset: header.length + mine * (frameLength + FRAME_OVERHEAD),
  };
  const helper = runOnHelper(job);
  let offset = header.length;
  try {
    for (let sequence = 1; sequence <= mine; sequence++) {
      out.writeUInt32BE(sequence, offset);
      const iv = body.frameIv(sequence);
      iv.copy(out, offset + 4);
      offset = body.seal('frame', sequence, iv, plaintext.subarray((sequence - 1) * frameLength, sequence * frameLength), out, offset + 4 + IV_LENGTH);
    }
  } finally {
    // A failed job may have left plaintext in frames the helper did not reach: zeroed, not reused.
    await helper.catch((error: unknown) => {
      input.discard();
      throw error;
    });
  }
  // Only after success: the helper zeroed every frame it sealed, so a reused copy holds no plaintext.
  input.release();
  const bodyEnd = header.length + bodyLength;
  if (!session.signingKey) return out.subarray(0, bodyEnd);
  signer ??= new MessageSigner(session.suite.signature!.hash, session.signingKey);
  signer.update(out.subarray(0, bodyEnd));
  const signature = signer.sign();
  out.writeUInt16BE(signature.length, bodyEnd);
  signature.copy(out, bodyEnd + 2);
  return out.subarray(0, bodyEnd + 2 + signature.length);
}

interface Layout {
  regularFrames: number;
  finalOffset: number;
  finalLength: number;
  bodyEnd: number;
}

/** Checks the framing of the whole body (sequence numbers, final frame) without decrypting. */
function layout(message: Buffer, start: number, frameLength: number): Layout {
  const frameSize = frameLength + FRAME_OVERHEAD;
  let offset = start;
  for (let expected = 1; ; expected++) {
    if (offset + 4 > message.length) throw malformed('message is truncated');
    const marker = message.readUInt32BE(offset);
    if (marker === FINAL_FRAME_MARKER) {
      if (offset + 12 + IV_LENGTH > message.length) throw malformed('message is truncated');
      if (message.readUInt32BE(offset + 4) !== expected) throw malformed('frame out of sequence');
      const finalLength = message.readUInt32BE(offset + 8 + IV_LENGTH);
      if (finalLength > frameLength) throw malformed('final frame longer than the frame length');
      const bodyEnd = offset + FINAL_OVERHEAD + finalLength;
      if (bodyEnd > message.length) throw malformed('message is truncated');
      return { regularFrames: expected - 1, finalOffset: offset, finalLength, bodyEnd };
    }
    if (marker !== expected) throw malformed('frame out of sequence');
    if (expected === FINAL_FRAME_MARKER - 1) throw malformed('too many frames');
    if (offset + frameSize > message.length) throw malformed('message is truncated');
    offset += frameSize;
  }
}

/**
 * `oneThread` reads the body on the calling thread alone: used when the framing is broken, so that
 * a message both tampered with and truncated (say) reports what the single-threaded path would,
 * the first problem in message order, rather than the framing fault layout() finds first.
 */
export async function openLarge(session: DecryptSession, message: Buffer, start: number, verifyFooter: (bodyEnd: number) => number, oneThread: () => Buffer): Promise<Buffer> {
  const { header, body } = session;
  const frameLength = header.frameLength;
  let framing: Layout;
  try {
    framing = layout(message, start, frameLength);
  } catch {
    return oneThread();
  }
  const { regularFrames, finalLength, bodyEnd } = framing;
  const frameSize = frameLength + FRAME_OVERHEAD;
  const out = Buffer.from(new SharedArrayBuffer(regularFrames * frameLength + finalLength));
  // Signed: the helper opens every frame while this thread checks the signature.
  const mine = session.verificationKey ? 0 : Math.floor(regularFrames / 2);
  const jobStart = start + mine * frameSize;
  const input = shared(message, jobStart, bodyEnd);
  const helper = runOnHelper({
    op: 'open',
    suiteId: header.suite.id,
    key: session.contentKey,
    messageId: header.messageId,
    frameLength,
    firstSequence: mine + 1,
    lastSequence: regularFrames,
    finalLength,
    input: input.buffer,
    inputOffset: input.offset,
    output: out.buffer as SharedArrayBuffer,
    outputOffset: mine * frameLength,
  });
  let footerEnd = bodyEnd;
  let failure: unknown;
  try {
    let offset = start;
    for (let sequence = 1; sequence <= mine; sequence++) {
      const ivEnd = offset + 4 + IV_LENGTH;
      const plaintext = body.open('frame', sequence, message.subarray(offset + 4, ivEnd), message.subarray(ivEnd, ivEnd + frameLength), message.subarray(ivEnd + frameLength, ivEnd + frameLength + TAG_LENGTH));
      copyInto(out, (sequence - 1) * frameLength, plaintext);
      offset += frameSize;
    }
    if (session.verificationKey) footerEnd = verifyFooter(bodyEnd);
  } catch (error) {
    failure = error;
  }
  try {
    await helper;
    input.release();
  } catch (error) {
    // Report the earliest problem, as the single-threaded path does: the calling thread's frames
    // come first; when it only checked the signature, a frame failure comes before it.
    failure = failure === undefined || mine === 0 ? error : failure;
  }
  if (!failure && footerEnd !== message.length) failure = malformed('trailing bytes after the message');
  if (failure) {
    out.fill(0);
    throw failure instanceof EsdkError ? failure : new EsdkError('AuthenticationFailed', 'message body authentication failed');
  }
  return out;
}
