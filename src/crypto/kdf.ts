import { hkdfSync } from 'node:crypto';
import { CryptoError } from './errors.ts';
import { SecretBytes } from './secret-bytes.ts';

export type HkdfHash = 'sha256' | 'sha384' | 'sha512';

const DIGEST_LENGTH: Readonly<Record<HkdfHash, number>> = { sha256: 32, sha384: 48, sha512: 64 };

// Node refuses an info longer than 1024 bytes (OpenSSL's HKDF info buffer); refuse it first so the
// error is ours. Strongroom's infos are a label plus a short header.
const MAX_INFO_LENGTH = 1024;

/**
 * HKDF (RFC 5869): extract with `salt`, expand with `info` to `length` bytes.
 *
 * `length` must be 1 .. 255 × the digest length (RFC 5869 §2.3: L <= 255*HashLen; a longer output
 * would repeat blocks and let distinct requests collide). Zero is refused too: an empty key is
 * always a bug. An empty salt is allowed and means HashLen zero bytes (§2.2).
 */
export function hkdf(
  hash: HkdfHash,
  ikm: SecretBytes,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): SecretBytes {
  const digestLength = Object.hasOwn(DIGEST_LENGTH, hash) ? DIGEST_LENGTH[hash] : undefined;
  if (digestLength === undefined) {
    throw new CryptoError('unsupported hkdf hash');
  }
  if (!Number.isInteger(length) || length < 1 || length > 255 * digestLength) {
    throw new CryptoError('invalid hkdf output length');
  }
  if (info.byteLength > MAX_INFO_LENGTH) {
    throw new CryptoError('invalid hkdf info length');
  }
  let okm: Uint8Array;
  try {
    okm = new Uint8Array(hkdfSync(hash, ikm.exposeSecretBytes(), salt, info, length));
  } catch {
    throw new CryptoError('key derivation failed');
  }
  // SecretBytes.from copies into a buffer it owns; wipe Node's result so one copy remains.
  const derived = SecretBytes.from(okm);
  okm.fill(0);
  return derived;
}
