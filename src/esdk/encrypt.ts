import { FINAL_FRAME_MARKER, IV_LENGTH, TAG_LENGTH } from './body.ts';
import { MessageSigner } from './ecdsa-presigned.ts';
import { beginEncryption, type EncryptSession } from './encrypt-session.ts';
import { EsdkError } from './errors.ts';
import { worthHelper } from './parallel/frame-pool.ts';
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
  const ciphertext =
    session.framed && worthHelper(plaintext.length, session.frameLength) ? await sealLarge(session, plaintext) : writeMessage(session, plaintext);
  return { ciphertext, header: session.headerInfo };
}

export function writeMessage(session: EncryptSession, plaintext: Uint8Array): Buffer {
  const { header, body, framed, frameLength } = session;
  const bodyLength = framed ? framedBodyLength(plaintext.length, frameLength) : IV_LENGTH + 8 + plaintext.length + TAG_LENGTH;
  const footerRoom = session.signingKey ? 2 + MAX_SIGNATURE_LENGTH : 0;
  const out = Buffer.allocUnsafe(header.length + bodyLength + footerRoom);
  header.copy(out, 0);
  let offset = header.length;
  if (framed) {
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
    }
    offset = writeFinalFrame(session, fullFrames + 1, plaintext.subarray(position), out, offset);
  } else {
    const iv = body.frameIv(1);
    iv.copy(out, offset);
    out.writeUInt32BE(Math.floor(plaintext.length / 0x100000000), offset + IV_LENGTH);
    out.writeUInt32BE(plaintext.length >>> 0, offset + IV_LENGTH + 4);
    offset = body.seal('single', 1, iv, plaintext, out, offset + IV_LENGTH + 8);
  }
  if (session.signingKey) offset = writeFooter(session, out, offset);
  return out.subarray(0, offset);
}

export function writeFinalFrame(session: EncryptSession, sequenceNumber: number, content: Uint8Array, out: Buffer, offset: number): number {
  out.writeUInt32BE(FINAL_FRAME_MARKER, offset);
  out.writeUInt32BE(sequenceNumber, offset + 4);
  const iv = session.body.frameIv(sequenceNumber);
  iv.copy(out, offset + 8);
  out.writeUInt32BE(content.length, offset + 8 + IV_LENGTH);
  return session.body.seal('final', sequenceNumber, iv, content, out, offset + 12 + IV_LENGTH);
}

/** Footer (message-footer.md): uint16 length ‖ DER ECDSA signature over header and body. */
function writeFooter(session: EncryptSession, out: Buffer, offset: number): number {
  const signer = new MessageSigner(session.suite.signature!.hash, session.signingKey!);
  signer.update(out.subarray(0, offset));
  const signature = signer.sign();
  out.writeUInt16BE(signature.length, offset);
  signature.copy(out, offset + 2);
  return offset + 2 + signature.length;
}
