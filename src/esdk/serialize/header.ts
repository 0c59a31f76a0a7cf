import { malformed } from '../errors.ts';
import { getAlgorithmSuite } from '../suites.ts';
import type { AlgorithmSuite, EncryptedDataKey } from '../types.ts';
import { decodeUtf8, parseEncryptionContext } from './encryption-context.ts';

/**
 * Message header (data-format/message-header.md), big-endian.
 * v1 body: 01 80 suite(2) messageId(16) aad edks contentType(1) reserved(4)=0 ivLength(1)=12 frameLength(4)
 * v2 body: 02 suite(2) messageId(32) aad edks contentType(1) frameLength(4) suiteData(32)
 * Authentication: v1 IV(12) ‖ tag(16); v2 tag(16).
 */
export const CONTENT_TYPE_NON_FRAMED = 1;
export const CONTENT_TYPE_FRAMED = 2;

export interface HeaderFields {
  suite: AlgorithmSuite;
  messageId: Uint8Array;
  /** Serialized stored context (may be empty). */
  serializedContext: Uint8Array;
  encryptedDataKeys: readonly EncryptedDataKey[];
  contentType: 1 | 2;
  frameLength: number;
  /** 32-byte commitment key for committing suites. */
  suiteData: Uint8Array | undefined;
}

export interface ParsedHeader extends HeaderFields {
  version: 1 | 2;
  encryptionContext: Record<string, string>;
  /** The header body exactly as received: the header tag's AAD starts with it. */
  headerBody: Buffer;
  headerIv: Buffer;
  headerTag: Buffer;
  /** Bytes of header body + authentication. */
  length: number;
}

/** Thrown (and caught by streaming parsers) when more bytes are needed; never escapes to callers. */
export class Incomplete extends Error {
  /** How many bytes the parser needs at least before it can get further. */
  readonly needed: number;
  constructor(needed: number) {
    super('incomplete');
    this.needed = needed;
  }
}

export function serializeHeaderBody(fields: HeaderFields): Buffer {
  const { suite, messageId, serializedContext, encryptedDataKeys, contentType, frameLength, suiteData } = fields;
  const edkBytes = encryptedDataKeys.map((edk) => [Buffer.from(edk.providerId, 'utf8'), edk.providerInfo, edk.ciphertext] as const);
  let size = suite.messageFormatVersion === 1 ? 1 + 1 + 2 + 16 + 2 + 2 + 1 + 4 + 1 + 4 : 1 + 2 + 32 + 2 + 2 + 1 + 4 + 32;
  size += serializedContext.length;
  for (const [a, b, c] of edkBytes) size += 6 + a.length + b.length + c.length;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  if (suite.messageFormatVersion === 1) {
    out[o++] = 1;
    out[o++] = 0x80;
  } else {
    out[o++] = 2;
  }
  out.writeUInt16BE(suite.id, o);
  o += 2;
  out.set(messageId, o);
  o += messageId.length;
  out.writeUInt16BE(serializedContext.length, o);
  out.set(serializedContext, o + 2);
  o += 2 + serializedContext.length;
  out.writeUInt16BE(edkBytes.length, o);
  o += 2;
  for (const parts of edkBytes) {
    for (const part of parts) {
      out.writeUInt16BE(part.length, o);
      out.set(part, o + 2);
      o += 2 + part.length;
    }
  }
  out[o++] = contentType;
  if (suite.messageFormatVersion === 1) {
    out.writeUInt32BE(0, o);
    out[o + 4] = 12;
    o += 5;
  }
  out.writeUInt32BE(frameLength, o);
  o += 4;
  if (suite.messageFormatVersion === 2) {
    out.set(suiteData as Uint8Array, o);
    o += 32;
  }
  return out;
}

/**
 * Parses a header from the start of `bytes`. Throws Incomplete when the bytes end early (streaming
 * callers wait for more; buffered callers turn it into MalformedMessage), EsdkError otherwise.
 * `maxEncryptedDataKeys` is checked as soon as the count is read, before any key is parsed.
 */
export function parseHeader(bytes: Buffer, maxEncryptedDataKeys: number, onTooMany: (count: number) => never): ParsedHeader {
  let o = 0;
  const need = (n: number): void => {
    if (o + n > bytes.length) throw new Incomplete(o + n);
  };
  need(1);
  const version = bytes[0];
  if (version !== 1 && version !== 2) throw malformed('unsupported message format version');
  o = 1;
  if (version === 1) {
    need(1);
    if (bytes[o] !== 0x80) throw malformed('unsupported message type');
    o++;
  }
  need(2);
  const suite = getAlgorithmSuite(bytes.readUInt16BE(o));
  o += 2;
  if (suite.messageFormatVersion !== version) throw malformed('algorithm suite does not match the message format version');
  const idLength = version === 1 ? 16 : 32;
  need(idLength);
  const messageId = Buffer.from(bytes.subarray(o, o + idLength));
  o += idLength;
  need(2);
  const aadLength = bytes.readUInt16BE(o);
  o += 2;
  need(aadLength);
  const serializedContext = bytes.subarray(o, o + aadLength);
  o += aadLength;
  const encryptionContext = parseEncryptionContext(serializedContext);
  need(2);
  const edkCount = bytes.readUInt16BE(o);
  o += 2;
  if (edkCount === 0) throw malformed('no encrypted data keys');
  if (edkCount > maxEncryptedDataKeys) onTooMany(edkCount);
  const encryptedDataKeys: EncryptedDataKey[] = [];
  for (let i = 0; i < edkCount; i++) {
    const parts: Buffer[] = [];
    for (let p = 0; p < 3; p++) {
      need(2);
      const length = bytes.readUInt16BE(o);
      need(2 + length);
      parts.push(Buffer.from(bytes.subarray(o + 2, o + 2 + length)));
      o += 2 + length;
    }
    encryptedDataKeys.push({ providerId: decodeUtf8(parts[0]), providerInfo: parts[1], ciphertext: parts[2] });
  }
  need(1);
  const contentType = bytes[o++];
  if (contentType !== CONTENT_TYPE_FRAMED && contentType !== CONTENT_TYPE_NON_FRAMED) throw malformed('unknown content type');
  if (version === 1) {
    need(5);
    if (bytes.readUInt32BE(o) !== 0) throw malformed('reserved bytes are not zero');
    if (bytes[o + 4] !== 12) throw malformed('IV length is not 12');
    o += 5;
  }
  need(4);
  const frameLength = bytes.readUInt32BE(o);
  o += 4;
  if (contentType === CONTENT_TYPE_NON_FRAMED && frameLength !== 0) throw malformed('non-framed message with a frame length');
  if (contentType === CONTENT_TYPE_FRAMED && frameLength === 0) throw malformed('framed message with a zero frame length');
  let suiteData: Buffer | undefined;
  if (version === 2) {
    need(32);
    suiteData = Buffer.from(bytes.subarray(o, o + 32));
    o += 32;
  }
  const headerBody = Buffer.from(bytes.subarray(0, o));
  let headerIv: Buffer;
  if (version === 1) {
    need(12);
    headerIv = Buffer.from(bytes.subarray(o, o + 12));
    o += 12;
  } else {
    headerIv = Buffer.alloc(12);
  }
  need(16);
  const headerTag = Buffer.from(bytes.subarray(o, o + 16));
  o += 16;
  return {
    version,
    suite,
    messageId,
    serializedContext: Buffer.from(serializedContext),
    encryptionContext,
    encryptedDataKeys,
    contentType,
    frameLength,
    suiteData,
    headerBody,
    headerIv,
    headerTag,
    length: o,
  };
}
