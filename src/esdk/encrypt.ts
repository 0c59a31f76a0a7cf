import { createHash } from 'node:crypto';
import { FINAL_FRAME_MARKER, IV_LENGTH, TAG_LENGTH } from './body.ts';
import { MessageSigner } from './ecdsa-presigned.ts';
import { beginEncryption, type EncryptSession } from './encrypt-session.ts';
import { EsdkError } from './errors.ts';
import { runOnHelper, worthHashHelper, worthHelper } from './parallel/frame-pool.ts';
import { sealLarge } from './parallel/large-message.ts';
import type { EncryptOptions, MessageHeaderInfo } from './options.ts';

/** Longest DER ECDSA signature we can write (P-384: 2 × 49-byte INTEGERs + 6 bytes of framing). */
export const MAX_SIGNATURE_LENGTH = 110;

/** Bytes of a framed body for `length` bytes of plaintext (message-body.md). */
export function framedBodyLength(length: number, frameLength: number): number {
  const fullFrames = Math.floor(length / frameLength);
  const finalLength = length - fullFrames * frameLength;
  return fullFrames * (4 + IV_LENGTH + frameLength + TAG_LENGTH) + 4 + 4 + IV_LENGTH + 4 + finalLength + TAG_LENGTH;
}

/**
 * Encrypts a whole plaintext into one ESDK message (client-apis/encrypt.md). The message is
 * written into one buffer sized up front; the signature (signing suites) covers header and body.
 */
export async function encrypt(plaintext: Uint8Array, options: EncryptOptions): Promise<{ ciphertext: Buffer; header: MessageHeaderInfo }> {
  if (!(plaintext instanceof Uint8Array)) throw new EsdkError('InvalidArgument', 'plaintext must be a Uint8Array');
  if (options?.plaintextLength !== undefined && options.plaintextLength !== plaintext.length) {
    throw new EsdkError('InvalidArgument', 'plaintextLength does not match the plaintext');
  }
  const session = await beginEncryption(options, plaintext.length);
  return { ciphertext: await writeEncrypted(session, plaintext), header: session.headerInfo };
}

/**
 * One thread, or two: a signed message whose signature's hash is worth the helper thread is hashed
 * there while this thread seals it (writeHashedBeside); a large framed one has its frames split
 * between the threads (sealLarge).
 */
async function writeEncrypted(session: EncryptSession, plaintext: Uint8Array): Promise<Buffer> {
  const signer = session.signingKey ? new MessageSigner(session.suite.signature!.hash, session.signingKey) : undefined;
  if (!session.framed) return writeMessage(session, plaintext, signer);
  if (signer?.signsDigests && worthHashHelper(plaintext.length)) return writeHashedBeside(session, plaintext, signer);
  if (worthHelper(plaintext.length, session.frameLength)) return sealLarge(session, plaintext, signer);
  return writeMessage(session, plaintext, signer);
}

/** Bytes for the whole message: header, body and, for a signing suite, the longest footer. */
function messageLength(session: EncryptSession, length: number): number {
  const bodyLength = session.framed ? framedBodyLength(length, session.frameLength) : IV_LENGTH + 8 + length + TAG_LENGTH;
  return session.header.length + bodyLength + (session.signingKey ? 2 + MAX_SIGNATURE_LENGTH : 0);
}

/** `signer`: the one for this message (signing suites); one is made when not given. */
export function writeMessage(session: EncryptSession, plaintext: Uint8Array, signer?: MessageSigner): Buffer {
  const out = Buffer.allocUnsafe(messageLength(session, plaintext.length));
  const bodyEnd = writeBody(session, plaintext, out);
  if (!session.signingKey) return out.subarray(0, bodyEnd);
  signer ??= new MessageSigner(session.suite.signature!.hash, session.signingKey);
  signer.update(out.subarray(0, bodyEnd));
  return out.subarray(0, writeFooter(signer.sign(), out, bodyEnd));
}

/**
 * Header and body into `out` from its start; returns where the body ends. `written(end)` is told,
 * after each regular frame, that the bytes before `end` are final.
 */
function writeBody(session: EncryptSession, plaintext: Uint8Array, out: Buffer, written?: (end: number) => void): number {
  const { header, body, framed, frameLength } = session;
  header.copy(out, 0);
  let offset = header.length;
  if (!framed) {
    const iv = body.frameIv(1);
    iv.copy(out, offset);
    out.writeUInt32BE(Math.floor(plaintext.length / 0x100000000), offset + IV_LENGTH);
    out.writeUInt32BE(plaintext.length >>> 0, offset + IV_LENGTH + 4);
    return body.seal('single', 1, iv, plaintext, out, offset + IV_LENGTH + 8);
  }
  const fullFrames = Math.floor(plaintext.length / frameLength);
  // The final frame is always written, empty when the length is a multiple of the frame length.
  if (fullFrames + 1 > 0xffffffff - 1) throw new EsdkError('InvalidArgument', 'plaintext needs more frames than the format allows');
  let position = 0;
  for (let sequenceNumber = 1; sequenceNumber <= fullFrames; sequenceNumber++) {
    out.writeUInt32BE(sequenceNumber, offset);
    const iv = body.frameIv(sequenceNumber);
    iv.copy(out, offset + 4);
    offset = body.seal('frame', sequenceNumber, iv, plaintext.subarray(position, position + frameLength), out, offset + 4 + IV_LENGTH);
    position += frameLength;
    written?.(offset);
  }
  return writeFinalFrame(session, fullFrames + 1, plaintext.subarray(position), out, offset);
}

/** The helper hashes in steps of this many bytes: it is woken at most once per step. */
const HASH_STEP = 64 * 1024;

/**
 * The signature's hash runs on the helper thread, behind this thread as it seals the frames into
 * shared memory: this thread publishes how far the message is final (Atomics on a shared counter)
 * and never waits for the helper until the digest. No plaintext is copied for the helper, and the
 * hash, the slower half (SHA-384 runs at 0.4–0.6 GB/s on the Intel hosts, 1.2 on the AMD ones; AES-GCM at 3–4), no longer follows the
 * sealing but runs beside it. Needs a signer that signs digests (a pooled signing key).
 */
async function writeHashedBeside(session: EncryptSession, plaintext: Uint8Array, signer: MessageSigner): Promise<Buffer> {
  const out = Buffer.from(new SharedArrayBuffer(messageLength(session, plaintext.length)));
  const bodyEnd = session.header.length + framedBodyLength(plaintext.length, session.frameLength);
  const progress = new Int32Array(new SharedArrayBuffer(4));
  const publish = (steps: number): void => {
    Atomics.store(progress, 0, steps);
    Atomics.notify(progress, 0);
  };
  const digest = runOnHelper({ op: 'hash', algorithm: session.suite.signature!.hash, message: out.buffer as SharedArrayBuffer, end: bodyEnd, unit: HASH_STEP, progress: progress.buffer as SharedArrayBuffer });
  let published = 0;
  try {
    writeBody(session, plaintext, out, (end) => {
      const steps = Math.floor(end / HASH_STEP);
      if (steps > published) publish((published = steps));
    });
  } catch (error) {
    publish(-1); // the helper stops waiting for the rest
    await digest.catch(() => undefined);
    throw error;
  }
  publish(Math.ceil(bodyEnd / HASH_STEP));
  let hashed: Buffer;
  try {
    hashed = (await digest) as Buffer;
  } catch {
    // The helper failed (it died, or could not load): the body is complete and the nonce unused.
    hashed = createHash(session.suite.signature!.hash).update(out.subarray(0, bodyEnd)).digest();
  }
  const signature = signer.signDigest(hashed);
  return out.subarray(0, writeFooter(signature, out, bodyEnd));
}

export function writeFinalFrame(session: EncryptSession, sequenceNumber: number, content: Uint8Array, out: Buffer, offset: number): number {
  out.writeUInt32BE(FINAL_FRAME_MARKER, offset);
  out.writeUInt32BE(sequenceNumber, offset + 4);
  const iv = session.body.frameIv(sequenceNumber);
  iv.copy(out, offset + 8);
  out.writeUInt32BE(content.length, offset + 8 + IV_LENGTH);
  return session.body.seal('final', sequenceNumber, iv, content, out, offset + 12 + IV_LENGTH);
}

/** Footer (message-footer.md): uint16 length ‖ DER ECDSA signature over header and body; returns the message's end. */
function writeFooter(signature: Buffer, out: Buffer, offset: number): number {
  out.writeUInt16BE(signature.length, offset);
  signature.copy(out, offset + 2);
  return offset + 2 + signature.length;
}
