import { EsdkError, malformed } from '../errors.ts';
import type { EncryptionContext } from '../types.ts';

/**
 * Encryption-context serialisation (framework/structures.md#serialization): empty → zero bytes;
 * otherwise uint16 count, then (uint16 length, key, uint16 length, value) pairs sorted by the UTF-8
 * bytes of the key. Both the header's AAD field and the raw keyrings' wrapping AAD use this form.
 */
const EMPTY = Buffer.alloc(0);
// ignoreBOM: a context key or value may itself begin with U+FEFF; the default decoder would drop it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function serializeEncryptionContext(context: EncryptionContext): Buffer {
  const keys = Object.keys(context);
  if (keys.length === 0) return EMPTY;
  if (keys.length > 0xffff) throw new EsdkError('InvalidArgument', 'encryption context has too many pairs');
  const pairs: [Buffer, Buffer][] = [];
  let size = 2;
  for (const key of keys) {
    const value = context[key];
    if (typeof value !== 'string') throw new EsdkError('InvalidArgument', 'encryption context values must be strings');
    // A lone UTF-16 surrogate becomes U+FFFD in UTF-8: two keys could collide, and no reader would
    // see the context the caller passed. Refused here, as no message made with it can be decrypted.
    if (!key.isWellFormed() || !value.isWellFormed()) {
      throw new EsdkError('InvalidArgument', 'encryption context keys and values must be well-formed Unicode (no lone surrogates)');
    }
    const k = Buffer.from(key, 'utf8');
    const v = Buffer.from(value, 'utf8');
    if (k.length > 0xffff || v.length > 0xffff) throw new EsdkError('InvalidArgument', 'encryption context entry too long');
    pairs.push([k, v]);
    size += 4 + k.length + v.length;
  }
  if (size > 0xffff) throw new EsdkError('InvalidArgument', 'serialized encryption context exceeds 65535 bytes');
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const out = Buffer.allocUnsafe(size);
  out.writeUInt16BE(pairs.length, 0);
  let offset = 2;
  for (const [k, v] of pairs) {
    out.writeUInt16BE(k.length, offset);
    k.copy(out, offset + 2);
    offset += 2 + k.length;
    out.writeUInt16BE(v.length, offset);
    v.copy(out, offset + 2);
    offset += 2 + v.length;
  }
  return out;
}

/** Parses a serialized context exactly filling `bytes`; duplicate keys and bad UTF-8 are malformed. */
export function parseEncryptionContext(bytes: Uint8Array): Record<string, string> {
  const context: Record<string, string> = Object.create(null) as Record<string, string>;
  if (bytes.length === 0) return { ...context };
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.length < 2) throw malformed('encryption context truncated');
  const count = view.readUInt16BE(0);
  if (count === 0) throw malformed('encryption context has a zero pair count');
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const key = readString(view, offset);
    offset += 2 + key.length;
    const value = readString(view, offset);
    offset += 2 + value.length;
    const k = decodeUtf8(key);
    if (Object.hasOwn(context, k)) throw malformed('duplicate encryption context key');
    context[k] = decodeUtf8(value);
  }
  if (offset !== view.length) throw malformed('encryption context length mismatch');
  return { ...context };
}

function readString(view: Buffer, offset: number): Buffer {
  if (offset + 2 > view.length) throw malformed('encryption context truncated');
  const length = view.readUInt16BE(offset);
  if (offset + 2 + length > view.length) throw malformed('encryption context truncated');
  return view.subarray(offset + 2, offset + 2 + length);
}

export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw malformed('invalid UTF-8');
  }
}
