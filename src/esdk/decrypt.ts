import { verify } from 'node:crypto';
import { FINAL_FRAME_MARKER, IV_LENGTH, MAX_NON_FRAMED_LENGTH, TAG_LENGTH } from './body.ts';
import { beginDecryption, checkBodySize, decryptSettings, tryParseHeader, type DecryptSession, type DecryptSettings } from './decrypt-session.ts';
import { EsdkError, malformed } from './errors.ts';
import type { DecryptOptions, MessageHeaderInfo } from './options.ts';
import { worthHelper } from './parallel/frame-pool.ts';
import { openLarge } from './parallel/large-message.ts';

/**
 * Decrypts a whole ESDK message (client-apis/decrypt.md). The plaintext is returned only when every
 * frame and, for signing suites, the footer signature verified; trailing bytes are refused.
 */
export async function decrypt(ciphertext: Uint8Array, options: DecryptOptions): Promise<{ plaintext: Buffer; header: MessageHeaderInfo }> {
  if (!(ciphertext instanceof Uint8Array)) throw new EsdkError('InvalidArgument', 'ciphertext must be a Uint8Array');
  const settings = decryptSettings(options);
  const message = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  const header = tryParseHeader(message, settings);
  if (!header) throw malformed('message ends inside the header');
  const session = await beginDecryption(header, options, settings);
  const plaintext =
    header.contentType === 2 && worthHelper(message.length - header.length, header.frameLength, session.verificationKey !== undefined)
      ? await openLarge(session, message, header.length, (bodyEnd) => verifyFooter(session, message, bodyEnd), () => readBody(session, settings, message, header.length))
      : readBody(session, settings, message, header.length);
  return { plaintext, header: session.headerInfo };
}

function readBody(session: DecryptSession, settings: DecryptSettings, message: Buffer, start: number): Buffer {
  const { header, body } = session;
  // Plaintext is never longer than the ciphertext that remains.
  const out = Buffer.allocUnsafe(Math.max(0, message.length - start));
  let written = 0;
  let offset = start;
  const need = (n: number): void => {
    if (offset + n > message.length) throw malformed('message is truncated');
  };
  if (header.contentType === 2) {
    const frameLength = header.frameLength;
    for (let expected = 1; ; expected++) {
      need(4);
      const marker = message.readUInt32BE(offset);
      if (marker === FINAL_FRAME_MARKER) {
        need(12 + IV_LENGTH);
        if (message.readUInt32BE(offset + 4) !== expected) throw malformed('frame out of sequence');
        const iv = message.subarray(offset + 8, offset + 8 + IV_LENGTH);
        const length = message.readUInt32BE(offset + 8 + IV_LENGTH);
        if (length > frameLength) throw malformed('final frame longer than the frame length');
        offset += 12 + IV_LENGTH;
        need(length + TAG_LENGTH);
        const plain = body.open('final', expected, iv, message.subarray(offset, offset + length), message.subarray(offset + length, offset + length + TAG_LENGTH));
        plain.copy(out, written);
        written += plain.length;
        offset += length + TAG_LENGTH;
        break;
      }
      if (marker !== expected) throw malformed('frame out of sequence');
      if (expected === FINAL_FRAME_MARKER - 1) throw malformed('too many frames');
      need(4 + IV_LENGTH + frameLength + TAG_LENGTH);
      const iv = message.subarray(offset + 4, offset + 4 + IV_LENGTH);
      offset += 4 + IV_LENGTH;
      const plain = body.open('frame', expected, iv, message.subarray(offset, offset + frameLength), message.subarray(offset + frameLength, offset + frameLength + TAG_LENGTH));
      plain.copy(out, written);
      written += plain.length;
      offset += frameLength + TAG_LENGTH;
    }
  } else {
    need(IV_LENGTH + 8);
    const iv = message.subarray(offset, offset + IV_LENGTH);
    const length = message.readUInt32BE(offset + IV_LENGTH) * 0x100000000 + message.readUInt32BE(offset + IV_LENGTH + 4);
    if (length > MAX_NON_FRAMED_LENGTH) throw malformed('non-framed content too long');
    checkBodySize(length, settings, 'non-framed content length');
    offset += IV_LENGTH + 8;
    need(length + TAG_LENGTH);
    const plain = body.open('single', 1, iv, message.subarray(offset, offset + length), message.subarray(offset + length, offset + length + TAG_LENGTH));
    plain.copy(out, written);
    written += plain.length;
    offset += length + TAG_LENGTH;
  }
  if (session.verificationKey) offset = verifyFooter(session, message, offset);
  if (offset !== message.length) {
    out.fill(0, 0, written);
    throw malformed('trailing bytes after the message');
  }
  return out.subarray(0, written);
}

function verifyFooter(session: DecryptSession, message: Buffer, offset: number): number {
  if (offset + 2 > message.length) throw malformed('message is truncated before the signature');
  const length = message.readUInt16BE(offset);
  if (offset + 2 + length > message.length) throw malformed('message is truncated in the signature');
  const signature = message.subarray(offset + 2, offset + 2 + length);
  let valid = false;
  try {
    valid = verify(session.header.suite.signature?.hash, message.subarray(0, offset), { key: session.verificationKey!, dsaEncoding: 'der' }, signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new EsdkError('SignatureInvalid', 'message signature verification failed');
  return offset + 2 + length;
}
