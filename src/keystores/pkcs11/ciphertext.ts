import { canonicalEncryptionContext } from '../../crypto/encryption-context.ts';
import { CryptoError } from '../../crypto/errors.ts';
import { bytesToUuid, fillRandom, uuidToBytes } from '../../crypto/random.ts';

/**
 * The self-describing ciphertext blob of an HSM-backed SYMMETRIC_DEFAULT key version, format v2.
 *
 *   offset  length  field
 *   0       1       format version, 0x02
 *   1       16      key id: the 16 raw bytes of its UUID       (as in v1)
 *   17      4       key version, uint32 big-endian, >= 1       (as in v1)
 *   21      12      IV, random (CSPRNG)
 *   33      n       AES-256-GCM ciphertext, computed inside the token (CKM_AES_GCM)
 *   33+n    16      GCM tag
 *
 *   AAD = bytes 0..32 (the whole header) || canonicalEncryptionContext(context)
 *
 * Why not v1 (src/crypto/symmetric-ciphertext.ts): v1 derives a per-message key with
 * HMAC-SHA256 keyed by the version material (SP 800-108 counter mode). Inside a token that needs
 * an HMAC-capable key and a KDF mechanism whose output stays a token object: PKCS#11 3.0's
 * CKM_SP800_108_COUNTER_KDF, which SoftHSMv2 2.6.1 does not have (its only secret-key derivations
 * are CKM_AES_ECB/CBC_ENCRYPT_DATA), and which would still cost a C_DeriveKey and a
 * C_DestroyObject per message. Computing the HMAC with C_Sign would bring every message key out
 * of the HSM. So v2 runs GCM directly under the version's HSM key: two calls per message
 * (C_EncryptInit, C_Encrypt), and the key never leaves the token.
 *
 * The price is the random-IV bound: with 96-bit random IVs one GCM key may encrypt at most 2^32
 * messages (NIST SP 800-38D §8.3, keeping the IV-collision probability under 2^-32). The bound is
 * per key version across every member of a cluster, since they share the key. 2^32 messages at
 * 1,800 req/s (AWS's CloudHSM key-store quota) take 27 days; at 10,000 req/s, 5 days. Enforcing it
 * (a per-version encryption count, rotating before 2^32) is the service's job and not built yet.
 *
 * The key id and version sit at the same offsets as in v1, so one header reader serves both.
 */

export const HSM_FORMAT_VERSION = 0x02;
export const HSM_CIPHERTEXT_OVERHEAD = 49;

const KEY_ID_OFFSET = 1;
const KEY_VERSION_OFFSET = 17;
/** Key id (16 bytes) and version (4): also the first 20 bytes of the version's CKA_ID (reference.ts). */
const KEY_ID_AND_VERSION_LENGTH = 20;
export const HSM_IV_OFFSET = 21;
export const HSM_IV_LENGTH = 12;
export const HSM_HEADER_LENGTH = 33;
export const HSM_TAG_LENGTH = 16;
const MAX_KEY_VERSION = 0xffff_ffff;

/** Header and AAD of a new blob (fresh IV). The AAD's first 33 bytes are the header. */
export function newHsmHeader(
  keyId: string,
  keyVersion: number,
  encryptionContext: Readonly<Record<string, string>> | undefined,
): { header: Buffer; aad: Buffer } {
  if (!Number.isInteger(keyVersion) || keyVersion < 1 || keyVersion > MAX_KEY_VERSION) {
    throw new CryptoError('invalid key version');
  }
  const aad = newAad(encryptionContext);
  uuidToBytes(keyId).copy(aad, KEY_ID_OFFSET);
  aad.writeUInt32BE(keyVersion, KEY_VERSION_OFFSET);
  return { header: aad.subarray(0, HSM_HEADER_LENGTH), aad };
}

/**
 * The same for the version whose object has this CKA_ID: the CKA_ID starts with the 20 bytes the
 * header carries at offset 1 (key id, version: reference.ts), which decodeReference checked
 * against the key version. Spares the hot path a UUID parse.
 */
export function newHsmHeaderForObject(
  objectId: Buffer,
  encryptionContext: Readonly<Record<string, string>> | undefined,
): { header: Buffer; aad: Buffer } {
  if (objectId.length < KEY_ID_AND_VERSION_LENGTH || objectId.readUInt32BE(KEY_VERSION_OFFSET - KEY_ID_OFFSET) === 0) {
    throw new CryptoError('invalid key version');
  }
  const aad = newAad(encryptionContext);
  objectId.copy(aad, KEY_ID_OFFSET, 0, KEY_ID_AND_VERSION_LENGTH);
  return { header: aad.subarray(0, HSM_HEADER_LENGTH), aad };
}

/** Header || context, with the format byte, a fresh IV and the context in place. */
function newAad(encryptionContext: Readonly<Record<string, string>> | undefined): Buffer {
  const context = canonicalEncryptionContext(encryptionContext);
  const aad = Buffer.allocUnsafe(HSM_HEADER_LENGTH + context.length);
  aad[0] = HSM_FORMAT_VERSION;
  fillRandom(aad, HSM_IV_OFFSET, HSM_IV_LENGTH);
  context.copy(aad, HSM_HEADER_LENGTH);
  return aad;
}

export interface ParsedHsmBlob {
  readonly keyId: string;
  readonly keyVersion: number;
  readonly iv: Buffer;
  readonly aad: Buffer;
  /** Ciphertext followed by the tag: what C_Decrypt takes for CKM_AES_GCM. */
  readonly sealed: Buffer;
}

/**
 * Reads a v2 blob for decryption. Every failure, the context's included, is the one
 * "decryption failed" CryptoError, as for v1: nothing here is trusted until the tag verifies.
 */
export function parseHsmBlob(
  blob: Uint8Array,
  encryptionContext: Readonly<Record<string, string>> | undefined,
): ParsedHsmBlob {
  const bytes = Buffer.isBuffer(blob) ? blob : Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (bytes.length < HSM_CIPHERTEXT_OVERHEAD || bytes[0] !== HSM_FORMAT_VERSION) throw decryptionFailed();
  const keyVersion = bytes.readUInt32BE(KEY_VERSION_OFFSET);
  if (keyVersion === 0) throw decryptionFailed();
  let context: Buffer;
  try {
    context = canonicalEncryptionContext(encryptionContext);
  } catch {
    throw decryptionFailed();
  }
  const aad = Buffer.allocUnsafe(HSM_HEADER_LENGTH + context.length);
  bytes.copy(aad, 0, 0, HSM_HEADER_LENGTH);
  context.copy(aad, HSM_HEADER_LENGTH);
  return {
    keyId: bytesToUuid(bytes.subarray(KEY_ID_OFFSET, KEY_VERSION_OFFSET)),
    keyVersion,
    iv: aad.subarray(HSM_IV_OFFSET, HSM_HEADER_LENGTH),
    aad,
    sealed: bytes.subarray(HSM_HEADER_LENGTH),
  };
}

export function decryptionFailed(): CryptoError {
  return new CryptoError('decryption failed');
}
