import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RsaKeySpec, SigningAlgorithm } from '../../src/crypto/asymmetric/key-specs.ts';
import { checkEveryCase, hex, label, pushPathMismatches, type SignatureVector, verifyBothPaths } from './wycheproof.ts';

/**
 * Wycheproof's RSASSA-PSS verification files through src/crypto's verify, every case twice:
 * messageType RAW (node:crypto, salt length fixed to the digest length) and DIGEST (the SHA of
 * msg computed here; EMSA-PSS-VERIFY written in rsa-digest.ts).
 *
 * rsa_pss_{2048_sha256_mgf1_32, 2048_sha384_mgf1_48, 3072_sha256_mgf1_32, 4096_sha256_mgf1_32,
 * 4096_sha384_mgf1_48, 4096_sha512_mgf1_64}_test.json use exactly KMS's parameters (MGF1 with the
 * message hash, salt length = digest length):
 * - valid: both paths must accept; invalid: both must return false.
 * - acceptable: these files have none; any other result kind fails the test.
 *
 * rsa_pss_misc_test.json (150 valid cases, one per parameter set, all 2048-bit keys) mostly uses
 * parameters KMS does not: other salt lengths and MGF1 hashes. Its cases are sorted three ways:
 * - message hash SHA-256/384/512, MGF1 with the same hash, salt = digest length: KMS's own
 *   parameters, so both paths must accept (3 cases);
 * - message hash SHA-256/384/512 with any other MGF1 hash or salt length: a valid PSS signature
 *   under parameters no KMS algorithm uses, so verify() with the algorithm of that hash must
 *   reject it on both paths (87 cases) — this is what pins the salt length and MGF1 hash;
 * - message hash SHA-1 or SHA-224: no KMS algorithm to run it through (60 cases), counted.
 */

interface PssGroup {
  keySize: number;
  sha: string;
  mgf: string;
  mgfSha: string;
  sLen: number;
  publicKeyDer: string;
  tests: SignatureVector[];
}

const ALGORITHMS: Readonly<Record<string, SigningAlgorithm>> = {
  'SHA-256': 'RSASSA_PSS_SHA_256',
  'SHA-384': 'RSASSA_PSS_SHA_384',
  'SHA-512': 'RSASSA_PSS_SHA_512',
};
const DIGEST_LENGTHS: Readonly<Record<string, number>> = { 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

const KMS_PARAMETER_FILES = [
  'rsa_pss_2048_sha256_mgf1_32_test.json',
  'rsa_pss_2048_sha384_mgf1_48_test.json',
  'rsa_pss_3072_sha256_mgf1_32_test.json',
  'rsa_pss_4096_sha256_mgf1_32_test.json',
  'rsa_pss_4096_sha384_mgf1_48_test.json',
  'rsa_pss_4096_sha512_mgf1_64_test.json',
];

for (const fileName of KMS_PARAMETER_FILES) {
  test(`${fileName}: every case verifies as expected through RAW and DIGEST`, () => {
    checkEveryCase<PssGroup>(fileName, 'RSASSA-PSS', (group, failures) => {
      const algorithm = ALGORITHMS[group.sha];
      assert.ok(algorithm !== undefined);
      assert.equal(group.mgf, 'MGF1');
      assert.equal(group.mgfSha, group.sha);
      assert.equal(group.sLen, DIGEST_LENGTHS[group.sha]);
      const spec = `RSA_${group.keySize}` as RsaKeySpec;
      const publicKey = hex(group.publicKeyDer);
      return (vector) => {
        if (vector.result !== 'valid' && vector.result !== 'invalid') {
          failures.push(`${label(vector)}: result kind has no decided handling`);
          return;
        }
        const expected = vector.result === 'valid' ? 'accepted' : 'rejected';
        pushPathMismatches(failures, label(vector), expected, verifyBothPaths(spec, algorithm, publicKey, group.sha, vector));
      };
    });
  });
}

test('rsa_pss_misc_test.json: accepts KMS parameters and rejects every other salt length and MGF1 hash', () => {
  let kmsParameters = 0;
  let otherParameters = 0;
  let noKmsAlgorithm = 0;
  checkEveryCase<PssGroup>('rsa_pss_misc_test.json', 'RSASSA-PSS', (group, failures) => {
    const algorithm = ALGORITHMS[group.sha];
    const spec = `RSA_${group.keySize}` as RsaKeySpec;
    const publicKey = hex(group.publicKeyDer);
    return (vector) => {
      assert.equal(vector.result, 'valid', label(vector));
      if (algorithm === undefined) {
        noKmsAlgorithm++;
        return;
      }
      const isKms = group.mgf === 'MGF1' && group.mgfSha === group.sha && group.sLen === DIGEST_LENGTHS[group.sha];
      const expected = isKms ? 'accepted' : 'rejected';
      if (isKms) {
        kmsParameters++;
      } else {
        otherParameters++;
      }
      const where = `${label(vector)} ${group.sha}/MGF1-${group.mgfSha}/sLen ${group.sLen}`;
      pushPathMismatches(failures, where, expected, verifyBothPaths(spec, algorithm, publicKey, group.sha, vector));
    };
  });
  assert.deepEqual({ kmsParameters, otherParameters, noKmsAlgorithm }, { kmsParameters: 3, otherParameters: 87, noKmsAlgorithm: 60 });
});
