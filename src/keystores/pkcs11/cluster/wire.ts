/**
 * The hsm-agent protocol, inside mutual TLS 1.3 (agent-server.ts, remote-member.ts).
 *
 *   frame   = length u32 BE (of the rest, at most MAX_FRAME_BYTES) || request id u32 BE
 *             || kind u8 || field count u32 BE || field*
 *   field   = length u32 BE || bytes
 *
 * A request's kind is its operation (OP); the response carries the same request id and kind
 * RESPONSE_OK or RESPONSE_ERROR (fields: code, message). Requests on one connection may be
 * answered out of order. Every field is bytes; numbers and flags are encoded by the operation.
 * A frame over the limit, or one that does not parse, closes the connection.
 */
import { Pkcs11Error } from '../errors.ts';

export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
const MAX_FIELDS = 1 << 20;

export const OP = {
  /** Answer: [] or [sessions u32 BE], the member's session count. */
  connect: 1,
  health: 2,
  generateAesKey: 3,
  wrap: 4,
  unwrap: 5,
  encrypt: 6,
  decrypt: 7,
  destroy: 8,
  listObjects: 9,
  createClusterKey: 10,
  beginJoin: 11,
  wrapClusterKeyFor: 12,
  completeJoin: 13,
  generateRandom: 14,
  /** Field: a PIN. Answer: [1] if it is the PIN the agent logged in with, [0] if not. */
  verifyPin: 15,
} as const;

export const RESPONSE_OK = 0x80;
export const RESPONSE_ERROR = 0x81;

export interface Frame {
  readonly requestId: number;
  readonly kind: number;
  readonly fields: Buffer[];
}

export function encodeFrame(requestId: number, kind: number, fields: readonly Buffer[]): Buffer {
  let length = 9;
  for (const field of fields) length += 4 + field.length;
  if (length > MAX_FRAME_BYTES) throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent frame too large');
  const frame = Buffer.allocUnsafe(4 + length);
  frame.writeUInt32BE(length, 0);
  frame.writeUInt32BE(requestId >>> 0, 4);
  frame[8] = kind;
  frame.writeUInt32BE(fields.length, 9);
  let offset = 13;
  for (const field of fields) {
    frame.writeUInt32BE(field.length, offset);
    field.copy(frame, offset + 4);
    offset += 4 + field.length;
  }
  return frame;
}

/** Splits a byte stream into frames; throws PROTOCOL_ERROR for an oversized or malformed one. */
export class FrameReader {
  #buffered: Buffer[] = [];
  #length = 0;

  push(chunk: Buffer): Frame[] {
    this.#buffered.push(chunk);
    this.#length += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.#length < 4) break;
      const head = this.#peek(4);
      const length = head.readUInt32BE(0);
      if (length < 9 || length > MAX_FRAME_BYTES) throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent frame length out of range');
      if (this.#length < 4 + length) break;
      const bytes = this.#take(4 + length);
      frames.push(parseBody(bytes.subarray(4)));
    }
    return frames;
  }

  #peek(count: number): Buffer {
    if (this.#buffered[0]!.length >= count) return this.#buffered[0]!;
    const joined = Buffer.concat(this.#buffered);
    this.#buffered = [joined];
    return joined;
  }

  #take(count: number): Buffer {
    const joined = this.#buffered.length === 1 ? this.#buffered[0]! : Buffer.concat(this.#buffered);
    const taken = joined.subarray(0, count);
    const rest = joined.subarray(count);
    this.#buffered = rest.length > 0 ? [rest] : [];
    this.#length -= count;
    return taken;
  }
}

function parseBody(body: Buffer): Frame {
  const requestId = body.readUInt32BE(0);
  const kind = body[4]!;
  const count = body.readUInt32BE(5);
  if (count > MAX_FIELDS) throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent frame has too many fields');
  const fields: Buffer[] = [];
  let offset = 9;
  for (let index = 0; index < count; index++) {
    if (offset + 4 > body.length) throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent frame truncated');
    const length = body.readUInt32BE(offset);
    if (offset + 4 + length > body.length) throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent frame truncated');
    fields.push(body.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  if (offset !== body.length) throw new Pkcs11Error('PROTOCOL_ERROR', 'hsm-agent frame has trailing bytes');
  return { requestId, kind, fields };
}

export const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');
