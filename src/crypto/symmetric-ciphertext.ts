import { createHmac } from 'node:crypto';
import { aesGcmDecrypt, aesGcmEncrypt } from './aead.ts';
import { canonicalEncryptionContext } from './encryption-context.ts';
import { CryptoError } from './errors.ts';
import { bytesToUuid, fillRandom, uuidToBytes } from './random.ts';
import { SecretBytes } from './secret-bytes.ts';

/**
 * The self-describing ciphertext blob of a KMS symmetric (SYMMETRIC_DEFAULT) key, format v1.
 *
 *   offset  length  field
 *   0       1       format version, 0x01
 *   1       16      key id: the 16 raw bytes of its UUID
 *   17      4       key version, uint32 big-endian, >= 1
 *   21      16      salt, random
 *   37      12      IV, random
 *   49      n       AES-256-GCM ciphertext (n = plaintext length)
 *   49+n    16      GCM tag
 *
 * Total length: n + 65 (SYMMETRIC_CIPHERTEXT_OVERHEAD).
 *
 * Keys: each message has its own data-encryption key, from a KDF in counter mode
 * (SP 800-108r1, HMAC-SHA256 PRF keyed with the key version material):
 *   DEK  = HMAC-SHA256(material, [1]_32 || "strongroom/kms-symmetric-ciphertext/v1" || 0x00
 *                                || bytes 0..36 || [256]_32)
 *   AAD  = bytes 0..48 (the whole header) || canonicalEncryptionContext(context)
 * so every header byte is authenticated: the key id, version and salt select the DEK through the
 * KDF context and are in the AAD, and the IV is in the AAD. Moving a blob to another key id or
 * version, or changing the context, makes the tag fail; decrypt has no other failure mode.
 *
 * Nonce bound. With random 96-bit IVs, one AES-GCM key may encrypt at most 2^32 messages
 * (SP 800-38D §8.3) before the chance of an IV collision — which reveals the XOR of two plaintexts
 * and the GHASH key — passes 2^-32. Here no GCM key is the key version material: every message
 * derives its own DEK from a fresh 128-bit salt, and each DEK encrypts exactly one message. Two
 * messages share a DEK only if their salts collide, which after q messages has probability about
 * q^2 / 2^129 (birthday bound; reaching 2^-32 needs q ≈ 2^48.5, and an even chance needs 2^64).
 * Even then GCM is only broken if the two 96-bit IVs collide as well, another factor of 2^-96.
 * So the 2^32 limit does not apply to a key version, and the bound that does is far beyond any
 * rotation period at tens of thousands of messages per second (2^48 messages at 10^5/s is ~90 years).
 * The KDF's own limit is not approached either: its security is that of HMAC-SHA256 as a PRF
 * under a 256-bit key.
 */

export const SYMMETRIC_CIPHERTEXT_OVERHEAD = 65;

const FORMAT_VERSION = 0x01;
const KEY_ID_OFFSET = 1;
const KEY_VERSION_OFFSET = 17;
const SALT_OFFSET = 21;
const IV_OFFSET = 37;
const HEADER_LENGTH = 49;
const TAG_LENGTH = 16;
const MATERIAL_LENGTH = 32;
const MAX_KEY_VERSION = 0xffff_ffff;

const DEK_LABEL = Buffer.from('strongroom/kms-symmetric-ciphertext/v1', 'utf8');

export interface EncryptSymmetricArgs {
  readonly keyId: string;
  readonly keyVersion: number;
  readonly material: SecretBytes;
  readonly plaintext: Uint8Array;
  readonly encryptionContext?: Readonly<Record<string, string>>;
}

export interface DecryptSymmetricArgs {
  readonly material: SecretBytes;
  readonly blob: Uint8Array;
  readonly encryptionContext?: Readonly<Record<string, string>>;
}

export function encryptSymmetric(args: EncryptSymmetricArgs): Buffer {
  const { keyId, keyVersion, material, plaintext, encryptionContext } = args;
  if (!Number.isInteger(keyVersion) || keyVersion < 1 || keyVersion > MAX_KEY_VERSION) {
    throw new CryptoError('invalid key version');
  }
  if (material.length !== MATERIAL_LENGTH) {
    throw new CryptoError('invalid key length');
  }
  const context = canonicalEncryptionContext(encryptionContext);

  // The AAD buffer is built first and its first 49 bytes are the header; the blob copies them.
  const aad = Buffer.allocUnsafe(HEADER_LENGTH + context.length);
  aad[0] = FORMAT_VERSION;
  uuidToBytes(keyId).copy(aad, KEY_ID_OFFSET);
  aad.writeUInt32BE(keyVersion, KEY_VERSION_OFFSET);
  fillRandom(aad, SALT_OFFSET, HEADER_LENGTH - SALT_OFFSET); // salt and IV in one call
  context.copy(aad, HEADER_LENGTH);

  const dek = deriveDataKey(material, aad);
  let sealed: { ciphertext: Buffer; tag: Buffer };
  try {
    sealed = aesGcmEncrypt(dek, aad.subarray(IV_OFFSET, HEADER_LENGTH), plaintext, aad);
  } finally {
    dek.zero();
  }

  const blob = Buffer.allocUnsafe(HEADER_LENGTH + sealed.ciphertext.length + TAG_LENGTH);
  aad.copy(blob, 0, 0, HEADER_LENGTH);
  sealed.ciphertext.copy(blob, HEADER_LENGTH);
  sealed.tag.copy(blob, HEADER_LENGTH + sealed.ciphertext.length);
  return blob;
}

/**
 * The smallest blob of each format that shares v1's first 21 bytes (version, key id, key version):
 * v1 (software keys, here), v2 (HSM keys: keystores/pkcs11/ciphertext.ts, 49 bytes of overhead) and
 * v3 (external keys: keystores/xks, double encryption).
 */
const MIN_LENGTH_BY_FORMAT: Readonly<Record<number, number>> = { 0x01: SYMMETRIC_CIPHERTEXT_OVERHEAD, 0x02: 49, 0x03: 49 };

/**
 * Reads which key and version a blob claims, so the caller can fetch the material. Nothing is
 * authenticated yet: the claim is only trusted once the key's store decrypts with that material.
 * Every symmetric format starts with the same 21 bytes, so Decrypt without a KeyId finds the key
 * whatever store holds it; the store then refuses a format that is not its own.
 */
export function parseSymmetricCiphertextHeader(blob: Uint8Array): { keyId: string; keyVersion: number; format: number } {
  const bytes = asBuffer(blob);
  const minLength = bytes.length > 0 ? MIN_LENGTH_BY_FORMAT[bytes[0]] : undefined;
  if (minLength === undefined || bytes.length < minLength) {
    throw new CryptoError('invalid ciphertext');
  }
  const keyVersion = bytes.readUInt32BE(KEY_VERSION_OFFSET);
  if (keyVersion === 0) {
    throw new CryptoError('invalid ciphertext');
  }
  return { keyId: bytesToUuid(bytes.subarray(KEY_ID_OFFSET, KEY_VERSION_OFFSET)), keyVersion, format: bytes[0] };
}

/** Decrypts a v1 blob with the material of the key version it names. Any failure is one error. */
export function decryptSymmetric(args: DecryptSymmetricArgs): Buffer {
  const { material, blob, encryptionContext } = args;
  const bytes = asBuffer(blob);
  if (
    bytes.length < SYMMETRIC_CIPHERTEXT_OVERHEAD ||
    bytes[0] !== FORMAT_VERSION ||
    bytes.readUInt32BE(KEY_VERSION_OFFSET) === 0 ||
    material.length !== MATERIAL_LENGTH
  ) {
    throw new CryptoError('decryption failed');
  }
  let context: Buffer;
  try {
    context = canonicalEncryptionContext(encryptionContext);
  } catch {
    throw new CryptoError('decryption failed');
  }
  const aad = Buffer.allocUnsafe(HEADER_LENGTH + context.length);
  bytes.copy(aad, 0, 0, HEADER_LENGTH);
  context.copy(aad, HEADER_LENGTH);

  const tagOffset = bytes.length - TAG_LENGTH;
  let dek: SecretBytes | undefined;
  try {
    dek = deriveDataKey(material, aad);
    return aesGcmDecrypt(
      dek,
      bytes.subarray(IV_OFFSET, HEADER_LENGTH),
      bytes.subarray(HEADER_LENGTH, tagOffset),
      bytes.subarray(tagOffset),
      aad,
    );
  } catch {
    throw new CryptoError('decryption failed');
  } finally {
    dek?.zero();
  }
}

/**
 * DEK = KDF in counter mode (NIST SP 800-108r1 §4.1) with HMAC-SHA256 as the PRF, one block:
 *   HMAC-SHA256(material, [1]_32 || label || 0x00 || header[0..37) || [256]_32)
 * The context header[0..37) is format version, key id, key version and the message's salt.
 * HKDF's extract step exists for non-uniform input; key version material is 256 uniformly random
 * bits, so the PRF alone is the textbook KDF — and one HMAC instead of three keeps this off the
 * profile of every Encrypt and Decrypt.
 */
function deriveDataKey(material: SecretBytes, header: Buffer): SecretBytes {
  const input = Buffer.allocUnsafe(4 + DEK_LABEL.length + 1 + IV_OFFSET + 4);
  let offset = input.writeUInt32BE(1, 0);
  offset += DEK_LABEL.copy(input, offset);
  input[offset++] = 0x00;
  offset += header.copy(input, offset, 0, IV_OFFSET);
  input.writeUInt32BE(256, offset);
  const dek = createHmac('sha256', material.exposeSecretBytes()).update(input).digest();
  try {
    return SecretBytes.from(dek);
  } finally {
    dek.fill(0);
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
