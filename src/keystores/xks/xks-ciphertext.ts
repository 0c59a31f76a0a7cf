import { CryptoError } from '../../crypto/errors.ts';
import { bytesToUuid, uuidToBytes } from '../../crypto/random.ts';

/**
 * The ciphertext blob of an EXTERNAL_KEY_STORE key version, format v3 (double encryption):
 *
 *   offset  length  field
 *   0       1       format version, 0x03
 *   1       16      key id (raw UUID bytes)          } the same 21 bytes as v1 and v2, so
 *   17      4       key version, uint32 big-endian   } Decrypt finds the key from the blob
 *   21      1       IV length i (12 or 16)
 *   22      i       IV the proxy chose
 *   22+i    1       ciphertext-metadata length m (0..20)
 *   23+i    m       the proxy's ciphertextMetadata
 *   23+i+m  16      the proxy's AES-GCM tag
 *   39+i+m  n       the proxy's ciphertext of the inner blob
 *
 * The inner blob is a v1 blob (crypto/symmetric-ciphertext.ts) made with the KMS key version's own
 * material, bound to the encryption context; the proxy encrypts it again under the external key,
 * with the first 21 bytes as its additionalAuthenticatedData (so the outer layer is bound to the
 * key and version too). Neither side alone can decrypt: Strongroom without the proxy's external key
 * has only the outer ciphertext, and the proxy sees only the inner blob, never the plaintext.
 */
export const XKS_FORMAT_VERSION = 0x03;
export const XKS_HEADER_LENGTH = 21;
const TAG_LENGTH = 16;
const MAX_METADATA_LENGTH = 20;

export interface XksOuterParts {
  header: Buffer;
  iv: Buffer;
  ciphertextMetadata: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

export function xksHeader(keyId: string, version: number): Buffer {
  const header = Buffer.alloc(XKS_HEADER_LENGTH);
  header[0] = XKS_FORMAT_VERSION;
  uuidToBytes(keyId).copy(header, 1);
  header.writeUInt32BE(version, 17);
  return header;
}

export function encodeXksBlob(parts: XksOuterParts): Buffer {
  if ((parts.iv.length !== 12 && parts.iv.length !== 16) || parts.tag.length !== TAG_LENGTH) {
    throw new CryptoError('invalid external ciphertext parts');
  }
  if (parts.ciphertextMetadata.length > MAX_METADATA_LENGTH) throw new CryptoError('invalid external ciphertext parts');
  return Buffer.concat([
    parts.header,
    Buffer.of(parts.iv.length),
    parts.iv,
    Buffer.of(parts.ciphertextMetadata.length),
    parts.ciphertextMetadata,
    parts.tag,
    parts.ciphertext,
  ]);
}

export function decodeXksBlob(blob: Uint8Array, keyId: string, version: number): XksOuterParts {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const fail = () => new CryptoError('decryption failed');
  if (bytes.length < XKS_HEADER_LENGTH + 2 || bytes[0] !== XKS_FORMAT_VERSION) throw fail();
  if (bytesToUuid(bytes.subarray(1, 17)) !== keyId || bytes.readUInt32BE(17) !== version) throw fail();
  let offset = XKS_HEADER_LENGTH;
  const ivLength = bytes[offset++];
  if ((ivLength !== 12 && ivLength !== 16) || bytes.length < offset + ivLength + 1) throw fail();
  const iv = bytes.subarray(offset, offset + ivLength);
  offset += ivLength;
  const metadataLength = bytes[offset++];
  if (metadataLength > MAX_METADATA_LENGTH || bytes.length < offset + metadataLength + TAG_LENGTH + 1) throw fail();
  const ciphertextMetadata = bytes.subarray(offset, offset + metadataLength);
  offset += metadataLength;
  const tag = bytes.subarray(offset, offset + TAG_LENGTH);
  offset += TAG_LENGTH;
  return { header: bytes.subarray(0, XKS_HEADER_LENGTH), iv, ciphertextMetadata, tag, ciphertext: bytes.subarray(offset) };
}

/** An external key version's persisted form: the external key id, then the KMS half's sealed material. */
export function encodeXksMaterial(xksKeyId: string, innerMaterial: Buffer): Buffer {
  const id = Buffer.from(xksKeyId, 'utf8');
  if (id.length === 0 || id.length > 128) throw new CryptoError('invalid external key id');
  return Buffer.concat([Buffer.of(0x58, id.length), id, innerMaterial]);
}

export function decodeXksMaterial(material: Buffer): { xksKeyId: string; innerMaterial: Buffer } {
  if (material.length < 3 || material[0] !== 0x58 || material.length < 2 + material[1]) {
    throw new CryptoError('invalid external key material');
  }
  const length = material[1];
  return { xksKeyId: material.subarray(2, 2 + length).toString('utf8'), innerMaterial: material.subarray(2 + length) };
}
