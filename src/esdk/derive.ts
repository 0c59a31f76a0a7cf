import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { EsdkError } from './errors.ts';
import type { AlgorithmSuite } from './types.ts';

/**
 * Content-key derivation (framework/transitive-requirements.md, algorithm-suites.md):
 * - identity suites use the data key as is;
 * - non-committing HKDF suites: salt = hash-length zeros, info = suite id ‖ message id;
 * - committing suites: salt = the 32-byte message id; the encryption key has info = suite id ‖
 *   "DERIVEKEY", the commitment key info = "COMMITKEY", both 32 bytes.
 */
const DERIVE_LABEL = Buffer.from('DERIVEKEY', 'utf8');
const COMMIT_LABEL = Buffer.from('COMMITKEY', 'utf8');
/** RFC 5869 §2.2: no salt means HashLen zero bytes. */
const ZERO_SALT = { sha256: Buffer.alloc(32), sha384: Buffer.alloc(48), sha512: Buffer.alloc(64) } as const;

/** A KeyObject for the content key; the transient buffer is wiped (the KeyObject holds its own copy). */
function secretKey(bytes: Buffer): KeyObject {
  const key = createSecretKey(bytes);
  bytes.fill(0);
  return key;
}

export interface DerivedKeys {
  contentKey: KeyObject;
  /** Commitment key (the header's suite data) for committing suites. */
  commitment: Buffer | undefined;
}

/**
 * HKDF (RFC 5869) for outputs no longer than one hash block, which is every ESDK derivation:
 * PRK = HMAC(salt, IKM); OKM = first L bytes of HMAC(PRK, info ‖ 0x01). Written out because one
 * extract then serves both committing-suite outputs, and two HMACs cost less than node's hkdfSync.
 */
function hkdfExtract(hash: string, salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac(hash, salt).update(ikm).digest();
}

function hkdfExpandOneBlock(hash: string, prk: Buffer, info: Uint8Array, length: number): Buffer {
  const block = createHmac(hash, prk).update(info).update(ONE).digest();
  const okm = Buffer.from(block.subarray(0, length));
  block.fill(0);
  return okm;
}

const ONE = Buffer.from([1]);

export function deriveKeys(suite: AlgorithmSuite, dataKey: Uint8Array, messageId: Uint8Array): DerivedKeys {
  if (dataKey.length !== suite.keyLength) throw new EsdkError('KeyringFailure', 'data key length does not match the algorithm suite');
  if (suite.kdf.kind === 'identity') return { contentKey: createSecretKey(Buffer.from(dataKey)), commitment: undefined };
  const suiteIdBytes = Buffer.from([suite.id >> 8, suite.id & 0xff]);
  if (!suite.committing) {
    const prk = hkdfExtract(suite.kdf.hash, ZERO_SALT[suite.kdf.hash], dataKey);
    const key = hkdfExpandOneBlock(suite.kdf.hash, prk, Buffer.concat([suiteIdBytes, messageId]), suite.keyLength);
    prk.fill(0);
    return { contentKey: secretKey(key), commitment: undefined };
  }
  const prk = hkdfExtract(suite.kdf.hash, messageId, dataKey);
  const key = hkdfExpandOneBlock(suite.kdf.hash, prk, Buffer.concat([suiteIdBytes, DERIVE_LABEL]), suite.keyLength);
  const commitment = hkdfExpandOneBlock(suite.kdf.hash, prk, COMMIT_LABEL, 32);
  prk.fill(0);
  return { contentKey: secretKey(key), commitment };
}

/** Constant-time comparison of the header's suite data with the derived commitment key. */
export function assertCommitment(expected: Buffer, suiteData: Uint8Array | undefined): void {
  if (!suiteData || suiteData.length !== expected.length || !timingSafeEqual(expected, suiteData)) {
    throw new EsdkError('CommitmentMismatch', 'key commitment does not match: the message was not made with this data key');
  }
}
