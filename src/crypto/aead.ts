import { createCipheriv, createDecipheriv, type CipherGCMTypes } from 'node:crypto';
import { CryptoError } from './errors.ts';
import type { SecretBytes } from './secret-bytes.ts';

/**
 * AES-GCM (NIST SP 800-38D) over node:crypto, with every parameter checked here so that a bad
 * parameter is a CryptoError rather than whatever OpenSSL happens to do.
 *
 * Parameters accepted:
 * - Key: 16, 24 or 32 bytes, selecting AES-128, AES-192 or AES-256.
 * - IV: 1 to 128 bytes. An empty IV is refused: GCM with a zero-length IV leaks the authentication
 *   key (CVE-2017-7822; Wycheproof "ZeroLengthIv"). 128 bytes is OpenSSL 3's ceiling for a GCM IV
 *   (GCM_IV_MAX_SIZE); Node refuses longer IVs, so we refuse them first, with our own error.
 *   IVs other than 12 bytes are GHASHed into the counter block (SP 800-38D §7.1); Strongroom's own
 *   formats only ever use 12.
 * - Tag: 12 to 16 bytes. SP 800-38D §5.2.1.2 allows 128, 120, 112, 104 and 96 bits for general use;
 *   32- and 64-bit tags only under the extra limits of its Appendix C, which nothing here enforces,
 *   so they are refused although Node would accept them. The length is always passed to Node as
 *   `authTagLength`, so Node enforces it too (and does not fall back to accepting any short tag).
 *
 * A GCM tag of t bytes is the first t bytes of the full tag (§7.1 step 6: MSB_t). aesGcmDecrypt takes
 * the tag length from `tag.length`, so a format that carries tags must fix their length itself —
 * as Strongroom's formats do, by slicing a fixed 16 bytes — otherwise an attacker could shorten a
 * tag and still pass verification with a weaker forgery bound.
 */

const MIN_IV_LENGTH = 1;
const MAX_IV_LENGTH = 128;
const MIN_TAG_LENGTH = 12;
const MAX_TAG_LENGTH = 16;

function cipherName(key: SecretBytes): CipherGCMTypes | undefined {
  switch (key.length) {
    case 16:
      return 'aes-128-gcm';
    case 24:
      return 'aes-192-gcm';
    case 32:
      return 'aes-256-gcm';
    default:
      return undefined;
  }
}

function validIv(iv: Uint8Array): boolean {
  return iv.byteLength >= MIN_IV_LENGTH && iv.byteLength <= MAX_IV_LENGTH;
}

function validTagLength(tagLength: number): boolean {
  return Number.isInteger(tagLength) && tagLength >= MIN_TAG_LENGTH && tagLength <= MAX_TAG_LENGTH;
}

/**
 * Encrypts `plaintext`, authenticating `aad` with it. The ciphertext has the plaintext's length.
 * The caller guarantees that (key, iv) is never used twice.
 */
export function aesGcmEncrypt(
  key: SecretBytes,
  iv: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  tagLength = 16,
): { ciphertext: Buffer; tag: Buffer } {
  const algorithm = cipherName(key);
  if (algorithm === undefined) {
    throw new CryptoError('invalid key length');
  }
  if (!validIv(iv)) {
    throw new CryptoError('invalid iv length');
  }
  if (!validTagLength(tagLength)) {
    throw new CryptoError('invalid tag length');
  }
  let ciphertext: Buffer;
  let tag: Buffer;
  try {
    const cipher = createCipheriv(algorithm, key.exposeSecretBytes(), iv, { authTagLength: tagLength });
    cipher.setAAD(aad);
    ciphertext = cipher.update(plaintext);
    // GCM is a stream mode: final() emits nothing. Concatenate only if that ever changes.
    const rest = cipher.final();
    if (rest.length > 0) {
      ciphertext = Buffer.concat([ciphertext, rest]);
    }
    tag = cipher.getAuthTag();
  } catch {
    throw new CryptoError('encryption failed');
  }
  return { ciphertext, tag };
}

/**
 * Decrypts and verifies. Any failure — bad key, IV or tag length, wrong key, altered ciphertext,
 * tag or AAD — is the same CryptoError('decryption failed'), and no unverified plaintext escapes:
 * what was decrypted before verification failed is zeroed.
 */
export function aesGcmDecrypt(
  key: SecretBytes,
  iv: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad: Uint8Array,
): Buffer {
  const algorithm = cipherName(key);
  if (algorithm === undefined || !validIv(iv) || !validTagLength(tag.byteLength)) {
    throw new CryptoError('decryption failed');
  }
  let plaintext: Buffer | undefined;
  try {
    const decipher = createDecipheriv(algorithm, key.exposeSecretBytes(), iv, {
      authTagLength: tag.byteLength,
    });
    decipher.setAuthTag(tag);
    decipher.setAAD(aad);
    plaintext = decipher.update(ciphertext);
    const rest = decipher.final(); // throws here if the tag does not verify
    return rest.length > 0 ? Buffer.concat([plaintext, rest]) : plaintext;
  } catch {
    plaintext?.fill(0);
    throw new CryptoError('decryption failed');
  }
}
