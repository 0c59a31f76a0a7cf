import { createCipheriv, createDecipheriv, type CipherGCM, type DecipherGCM, type KeyObject } from 'node:crypto';
import { EsdkError } from './errors.ts';
import { copyInto } from './parallel/shared-copy.ts';
import type { AlgorithmSuite } from './types.ts';

/**
 * Body encryption (data-format/message-body.md, message-body-aad.md). Each frame is one AES-GCM
 * operation with IV = sequence number left-padded to 12 bytes and
 * AAD = message id ‖ content string ‖ uint32 sequence number ‖ uint64 content length.
 */
export const FINAL_FRAME_MARKER = 0xffffffff;
export const TAG_LENGTH = 16;
export const IV_LENGTH = 12;
/** Largest non-framed content (message-body.md): 2^36 − 32 bytes. */
export const MAX_NON_FRAMED_LENGTH = 2 ** 36 - 32;
export const MAX_FRAME_LENGTH = 0xffffffff;

export type CipherName = 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';

export function cipherName(suite: AlgorithmSuite): CipherName {
  return `aes-${suite.keyLength * 8}-gcm` as CipherName;
}

const FRAME = Buffer.from('AWSKMSEncryptionClient Frame', 'utf8');
const FINAL = Buffer.from('AWSKMSEncryptionClient Final Frame', 'utf8');
const SINGLE = Buffer.from('AWSKMSEncryptionClient Single Block', 'utf8');

/**
 * Reusable AAD and IV buffers for one message: node copies both when a cipher is created or
 * setAAD is called, so one buffer per kind serves every frame without allocating.
 */
export class BodyCrypto {
  readonly #key: KeyObject;
  readonly #cipher: CipherName;
  readonly #frameAad: Buffer;
  readonly #finalAad: Buffer;
  readonly #singleAad: Buffer;
  readonly iv = Buffer.alloc(IV_LENGTH);

  constructor(suite: AlgorithmSuite, key: KeyObject, messageId: Uint8Array) {
    this.#key = key;
    this.#cipher = cipherName(suite);
    this.#frameAad = aadTemplate(messageId, FRAME);
    this.#finalAad = aadTemplate(messageId, FINAL);
    this.#singleAad = aadTemplate(messageId, SINGLE);
  }

  #aad(kind: 'frame' | 'final' | 'single', sequenceNumber: number, length: number): Buffer {
    const aad = kind === 'frame' ? this.#frameAad : kind === 'final' ? this.#finalAad : this.#singleAad;
    const end = aad.length;
    aad.writeUInt32BE(sequenceNumber, end - 12);
    aad.writeUInt32BE(Math.floor(length / 0x100000000), end - 8);
    aad.writeUInt32BE(length >>> 0, end - 4);
    return aad;
  }

  /** Sets `this.iv` to the frame IV for a sequence number (message-body.md "IV"). */
  frameIv(sequenceNumber: number): Buffer {
    this.iv.writeUInt32BE(sequenceNumber, 8);
    return this.iv;
  }

  /**
   * Encrypts `plaintext` into `out` at `offset` as ciphertext ‖ tag with the given IV; returns the
   * offset after the tag.
   */
  seal(kind: 'frame' | 'final' | 'single', sequenceNumber: number, iv: Buffer, plaintext: Uint8Array, out: Buffer, offset: number): number {
    const [ciphertext, tag] = this.sealPieces(kind, sequenceNumber, iv, plaintext);
    copyInto(out, offset, ciphertext);
    copyInto(out, offset + ciphertext.length, tag);
    return offset + ciphertext.length + TAG_LENGTH;
  }


  /** Encrypts `plaintext` with the given IV: the cipher's own output and the tag (emitted as they are, or copied by seal()). */
  sealPieces(kind: 'frame' | 'final' | 'single', sequenceNumber: number, iv: Buffer, plaintext: Uint8Array): [Buffer, Buffer] {
    const cipher = createCipheriv(this.#cipher, this.#key, iv, { authTagLength: TAG_LENGTH });
    cipher.setAAD(this.#aad(kind, sequenceNumber, plaintext.length));
    const ciphertext = cipher.update(plaintext);
    const rest = cipher.final();
    return [rest.length ? Buffer.concat([ciphertext, rest]) : ciphertext, cipher.getAuthTag()];
  }

  /** A cipher for a non-framed body of `length` bytes, fed by the caller (streaming). */
  singleCipher(length: number): CipherGCM {
    const cipher = createCipheriv(this.#cipher, this.#key, this.frameIv(1), { authTagLength: TAG_LENGTH });
    cipher.setAAD(this.#aad('single', 1, length));
    return cipher;
  }

  /** The decipher for a non-framed body (streaming): its plaintext is unauthenticated until final(). */
  singleDecipher(iv: Uint8Array, length: number): DecipherGCM {
    const decipher = createDecipheriv(this.#cipher, this.#key, iv, { authTagLength: TAG_LENGTH });
    decipher.setAAD(this.#aad('single', 1, length));
    return decipher;
  }

  /**
   * open() for content given in pieces (views of the input chunks a frame spans, not copied into
   * one buffer): the plaintext comes back in as many pieces, all of them only after the tag verified.
   */
  openPieces(kind: 'frame' | 'final', sequenceNumber: number, iv: Uint8Array, content: readonly Buffer[], tag: Uint8Array): Buffer[] {
    if (content.length === 1) return [this.open(kind, sequenceNumber, iv, content[0], tag)];
    let length = 0;
    for (const piece of content) length += piece.length;
    const decipher = createDecipheriv(this.#cipher, this.#key, iv, { authTagLength: TAG_LENGTH });
    decipher.setAuthTag(tag);
    decipher.setAAD(this.#aad(kind, sequenceNumber, length));
    const plaintext = content.map((piece) => decipher.update(piece));
    try {
      decipher.final();
      return plaintext;
    } catch {
      for (const piece of plaintext) piece.fill(0);
      throw new EsdkError('AuthenticationFailed', `message body authentication failed (frame ${sequenceNumber})`);
    }
  }

  /**
   * Decrypts and authenticates one frame; the plaintext is written to `out` at `offset` only after
   * the tag verified (GCM decrypts before it authenticates, so nothing is copied out earlier).
   */
  open(kind: 'frame' | 'final' | 'single', sequenceNumber: number, iv: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Buffer {
    const decipher = createDecipheriv(this.#cipher, this.#key, iv, { authTagLength: TAG_LENGTH });
    decipher.setAuthTag(tag);
    decipher.setAAD(this.#aad(kind, sequenceNumber, ciphertext.length));
    const plaintext = decipher.update(ciphertext);
    try {
      const rest = decipher.final();
      return rest.length ? Buffer.concat([plaintext, rest]) : plaintext;
    } catch {
      plaintext.fill(0);
      throw new EsdkError('AuthenticationFailed', `message body authentication failed (${kind === 'single' ? 'content' : `frame ${sequenceNumber}`})`);
    }
  }
}

function aadTemplate(messageId: Uint8Array, label: Buffer): Buffer {
  const aad = Buffer.alloc(messageId.length + label.length + 12);
  aad.set(messageId, 0);
  aad.set(label, messageId.length);
  return aad;
}

/** Header authentication tag: AES-GCM over nothing, AAD = header body ‖ serialized auth-only context. */
export function headerTag(suite: AlgorithmSuite, key: KeyObject, iv: Uint8Array, headerBody: Uint8Array, authOnlyContext: Uint8Array): Buffer {
  const cipher = createCipheriv(cipherName(suite), key, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(authOnlyContext.length ? Buffer.concat([headerBody, authOnlyContext]) : headerBody);
  cipher.final();
  return cipher.getAuthTag();
}

export function verifyHeaderTag(suite: AlgorithmSuite, key: KeyObject, iv: Uint8Array, headerBody: Uint8Array, authOnlyContext: Uint8Array, tag: Uint8Array): void {
  const decipher = createDecipheriv(cipherName(suite), key, iv, { authTagLength: TAG_LENGTH });
  decipher.setAuthTag(tag);
  decipher.setAAD(authOnlyContext.length ? Buffer.concat([headerBody, authOnlyContext]) : headerBody);
  try {
    decipher.final();
  } catch {
    throw new EsdkError('AuthenticationFailed', 'message header authentication failed');
  }
}
