import type { AlgorithmSuite, AlgorithmSuiteId, CommitmentPolicy } from './types.ts';
import { EsdkError } from './errors.ts';

/**
 * The ESDK algorithm suites (framework/algorithm-suites.md). Every suite is AES-GCM with a 12-byte
 * IV and a 16-byte tag; they differ in key length, KDF, signature and commitment.
 */
function suite(
  id: number,
  keyLength: 16 | 24 | 32,
  kdf: AlgorithmSuite['kdf'],
  signature: AlgorithmSuite['signature'],
  committing: boolean,
): AlgorithmSuite {
  return Object.freeze({ id, messageFormatVersion: committing ? 2 : 1, keyLength, ivLength: 12, tagLength: 16, kdf, committing, signature });
}

const IDENTITY = { kind: 'identity' } as const;
const HKDF256 = { kind: 'hkdf', hash: 'sha256' } as const;
const HKDF384 = { kind: 'hkdf', hash: 'sha384' } as const;
const HKDF512 = { kind: 'hkdf', hash: 'sha512' } as const;
const P256 = { curve: 'P-256', hash: 'sha256' } as const;
const P384 = { curve: 'P-384', hash: 'sha384' } as const;

const SUITES: ReadonlyMap<number, AlgorithmSuite> = new Map(
  [
    suite(0x0014, 16, IDENTITY, undefined, false),
    suite(0x0046, 24, IDENTITY, undefined, false),
    suite(0x0078, 32, IDENTITY, undefined, false),
    suite(0x0114, 16, HKDF256, undefined, false),
    suite(0x0146, 24, HKDF256, undefined, false),
    suite(0x0178, 32, HKDF256, undefined, false),
    suite(0x0214, 16, HKDF256, P256, false),
    suite(0x0346, 24, HKDF384, P384, false),
    suite(0x0378, 32, HKDF384, P384, false),
    suite(0x0478, 32, HKDF512, undefined, true),
    suite(0x0578, 32, HKDF512, P384, true),
  ].map((s) => [s.id, s]),
);

export const ALGORITHM_SUITE_IDS: readonly AlgorithmSuiteId[] = [...SUITES.keys()];

/** The suite for an id, or an UnsupportedSuite error (0x0000, DBE and S3EC suites included). */
export function getAlgorithmSuite(id: AlgorithmSuiteId): AlgorithmSuite {
  const found = SUITES.get(id);
  if (!found) throw new EsdkError('UnsupportedSuite', `unsupported algorithm suite 0x${hex4(id)}`);
  return found;
}

export function hex4(id: number): string {
  return (id >>> 0).toString(16).padStart(4, '0');
}

/** Default suite for a commitment policy (client-apis/encrypt.md): 0x0578 when committing, else 0x0378. */
export function defaultSuiteId(policy: CommitmentPolicy): AlgorithmSuiteId {
  return policy === 'FORBID_ENCRYPT_ALLOW_DECRYPT' ? 0x0378 : 0x0578;
}

const POLICIES: readonly CommitmentPolicy[] = ['FORBID_ENCRYPT_ALLOW_DECRYPT', 'REQUIRE_ENCRYPT_ALLOW_DECRYPT', 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'];

export function checkPolicy(policy: unknown): CommitmentPolicy {
  if (!POLICIES.includes(policy as CommitmentPolicy)) throw new EsdkError('InvalidArgument', 'unknown commitment policy');
  return policy as CommitmentPolicy;
}

/** client-apis/client.md: FORBID encrypts only non-committing suites, REQUIRE_* only committing ones. */
export function assertEncryptAllowed(policy: CommitmentPolicy, s: AlgorithmSuite): void {
  const ok = policy === 'FORBID_ENCRYPT_ALLOW_DECRYPT' ? !s.committing : s.committing;
  if (!ok) throw new EsdkError('PolicyViolation', `algorithm suite 0x${hex4(s.id)} is not allowed for encryption under ${policy}`);
}

/** REQUIRE_ENCRYPT_REQUIRE_DECRYPT decrypts only committing suites; the others decrypt anything. */
export function assertDecryptAllowed(policy: CommitmentPolicy, s: AlgorithmSuite): void {
  if (policy === 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' && !s.committing) {
    throw new EsdkError('PolicyViolation', `algorithm suite 0x${hex4(s.id)} is not allowed for decryption under ${policy}`);
  }
}
