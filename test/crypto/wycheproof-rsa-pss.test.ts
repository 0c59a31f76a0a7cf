import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RsaKeySpec, SigningAlgorithm } from '../../src/crypto/asymmetric/key-specs.ts';
import { verify } from '../../src/crypto/asymmetric/signatures.ts';
import { digest, hex, label, loadWycheproof, outcomeOf, type WycheproofVector } from './wycheproof.ts';

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
  tests: Array<WycheproofVector & { msg: string; sig: string }>;
}

const ALGORITHMS: Readonly<Record<string, SigningAlgorithm>> = {
  'SHA-256': 'RSASSA_PSS_SHA_256',
  'SHA-384': 'RSASSA_PSS_SHA_384',
  'SHA-512': 'RSASSA_PSS_SHA_512',
};
const DIGEST_LENGTHS: Readonly<Record<string, number>> = { 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

function bothPaths(spec: RsaKeySpec, algorithm: SigningAlgorithm, group: PssGroup, vector: PssGroup['tests'][number]) {
  const publicKey = hex(group.publicKeyDer);
  const msg = hex(vector.msg);
  const signature = hex(vector.sig);
  return {
    raw: outcomeOf(() => verify({ spec, algorithm, publicKey, message: msg, messageType: 'RAW', signature })),
    viaDigest: outcomeOf(() =>
      verify({ spec, algorithm, publicKey, message: digest(group.sha, msg), messageType: 'DIGEST', signature }),
    ),
  };
}

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
    const file = loadWycheproof<PssGroup>(fileName);
    assert.equal(file.algorithm, 'RSASSA-PSS');
    const failures: string[] = [];
    let checked = 0;
    for (const group of file.testGroups) {
      const algorithm = ALGORITHMS[group.sha];
      assert.ok(algorithm !== undefined);
      assert.equal(group.mgf, 'MGF1');
      assert.equal(group.mgfSha, group.sha);
      assert.equal(group.sLen, DIGEST_LENGTHS[group.sha]);
      const spec = `RSA_${group.keySize}` as RsaKeySpec;
      for (const vector of group.tests) {
        checked++;
        if (vector.result !== 'valid' && vector.result !== 'invalid') {
          failures.push(`${label(vector)}: result kind has no decided handling`);
          continue;
        }
        const expected = vector.result === 'valid' ? 'accepted' : 'rejected';
        const { raw, viaDigest } = bothPaths(spec, algorithm, group, vector);
        if (raw !== expected) {
          failures.push(`${label(vector)}: RAW ${raw}`);
        }
        if (viaDigest !== expected) {
          failures.push(`${label(vector)}: DIGEST ${viaDigest}`);
        }
      }
    }
    assert.deepEqual(failures, []);
    assert.equal(checked, file.numberOfTests);
  });
}

test('rsa_pss_misc_test.json: accepts KMS parameters and rejects every other salt length and MGF1 hash', () => {
  const file = loadWycheproof<PssGroup>('rsa_pss_misc_test.json');
  assert.equal(file.algorithm, 'RSASSA-PSS');
  const failures: string[] = [];
  let checked = 0;
  let kmsParameters = 0;
  let otherParameters = 0;
  let noKmsAlgorithm = 0;
  for (const group of file.testGroups) {
    const algorithm = ALGORITHMS[group.sha];
    const spec = `RSA_${group.keySize}` as RsaKeySpec;
    for (const vector of group.tests) {
      checked++;
      assert.equal(vector.result, 'valid', label(vector));
      if (algorithm === undefined) {
        noKmsAlgorithm++;
        continue;
      }
      const isKms = group.mgf === 'MGF1' && group.mgfSha === group.sha && group.sLen === DIGEST_LENGTHS[group.sha];
      const expected = isKms ? 'accepted' : 'rejected';
      if (isKms) {
        kmsParameters++;
      } else {
        otherParameters++;
      }
      const { raw, viaDigest } = bothPaths(spec, algorithm, group, vector);
      const where = `${label(vector)} ${group.sha}/MGF1-${group.mgfSha}/sLen ${group.sLen}`;
      if (raw !== expected) {
        failures.push(`${where}: RAW ${raw}`);
      }
      if (viaDigest !== expected) {
        failures.push(`${where}: DIGEST ${viaDigest}`);
      }
    }
  }
  assert.deepEqual(failures, []);
  assert.equal(checked, file.numberOfTests);
  assert.deepEqual({ kmsParameters, otherParameters, noKmsAlgorithm }, { kmsParameters: 3, otherParameters: 87, noKmsAlgorithm: 60 });
});
