import assert from 'node:assert/strict';
import { test } from 'node:test';
import { publicKeyFromPrivate } from '../../src/crypto/asymmetric/key-pairs.ts';
import { sign, verify } from '../../src/crypto/asymmetric/signatures.ts';
import type { RsaKeySpec, SigningAlgorithm } from '../../src/crypto/asymmetric/key-specs.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import {
  checkEveryCase,
  digest,
  hex,
  label,
  pushPathMismatches,
  type SignatureVector,
  verifyBothPaths,
} from './wycheproof.ts';

/**
 * Wycheproof's RSASSA-PKCS1-v1_5 files through src/crypto's sign and verify.
 *
 * rsa_signature_{2048,3072,4096}_sha{256,384,512}_test.json (verify): every case twice, through
 * verify() with messageType RAW (node:crypto) and with DIGEST (the SHA of msg computed here; the
 * EM' comparison of rsa-digest.ts).
 * - valid: both paths must accept.
 * - invalid: both must reject (return false; a CryptoError would also count, but none occurs).
 * - acceptable: one case per file, flagged MissingNull (a DigestInfo whose AlgorithmIdentifier
 *   omits the NULL parameters, which RFC 8017 §9.2 note 1 lets verifiers accept). Strongroom
 *   rejects it on both paths: the DIGEST path compares against the one DER encoding with NULL,
 *   and OpenSSL 3 does the same for RAW. The test asserts that rejection, so both paths stay
 *   consistent.
 *
 * rsa_pkcs1_{2048,3072,4096}_sig_gen_test.json (sign): PKCS#1 v1.5 is deterministic, so sign()
 * with RAW and with DIGEST must both give exactly sig, and verify() must accept it.
 * - valid and acceptable (SmallPublicKey: e = 3 keys, which OpenSSL signs with) alike.
 * - Groups hashing with SHA-1 or SHA-224 cannot be expressed: no KMS signing algorithm uses them.
 *   They are counted and the count asserted.
 */

interface VerifyGroup {
  keySize: number;
  sha: string;
  publicKeyDer: string;
  tests: SignatureVector[];
}

interface SignGroup {
  keySize: number;
  sha: string;
  privateKeyPkcs8: string;
  tests: SignatureVector[];
}

const ALGORITHMS: Readonly<Record<string, SigningAlgorithm>> = {
  'SHA-256': 'RSASSA_PKCS1_V1_5_SHA_256',
  'SHA-384': 'RSASSA_PKCS1_V1_5_SHA_384',
  'SHA-512': 'RSASSA_PKCS1_V1_5_SHA_512',
};

for (const bits of [2048, 3072, 4096]) {
  for (const sha of ['256', '384', '512']) {
    const fileName = `rsa_signature_${bits}_sha${sha}_test.json`;
    test(`${fileName}: every case verifies as expected through RAW and DIGEST`, () => {
      const spec = `RSA_${bits}` as RsaKeySpec;
      let acceptable = 0;
      checkEveryCase<VerifyGroup>(fileName, 'RSASSA-PKCS1-v1_5', (group, failures) => {
        const algorithm = ALGORITHMS[group.sha];
        assert.ok(algorithm !== undefined && group.keySize === bits);
        const publicKey = hex(group.publicKeyDer);
        return (vector) => {
          const paths = verifyBothPaths(spec, algorithm, publicKey, group.sha, vector);
          const expected = vector.result === 'valid' ? 'accepted' : 'rejected';
          if (vector.result === 'acceptable') {
            acceptable++;
            assert.deepEqual(vector.flags, ['MissingNull'], label(vector));
          }
          pushPathMismatches(failures, label(vector), expected, paths);
        };
      });
      assert.equal(acceptable, 1);
    });
  }
}

for (const bits of [2048, 3072, 4096]) {
  const fileName = `rsa_pkcs1_${bits}_sig_gen_test.json`;
  test(`${fileName}: sign reproduces every signature through RAW and DIGEST`, () => {
    const spec = `RSA_${bits}` as RsaKeySpec;
    let weakHash = 0;
    checkEveryCase<SignGroup>(fileName, 'RSASSA-PKCS1-v1_5', (group, failures) => {
      const algorithm = ALGORITHMS[group.sha];
      const privateKey = SecretBytes.from(hex(group.privateKeyPkcs8));
      const spki = publicKeyFromPrivate(spec, privateKey);
      return (vector) => {
        if (algorithm === undefined) {
          weakHash++;
          return;
        }
        const msg = hex(vector.msg);
        const expected = hex(vector.sig);
        const raw = sign({ spec, algorithm, privateKey, message: msg, messageType: 'RAW' });
        const viaDigest = sign({ spec, algorithm, privateKey, message: digest(group.sha, msg), messageType: 'DIGEST' });
        if (!raw.equals(expected)) {
          failures.push(`${label(vector)}: RAW gave a different signature`);
        }
        if (!viaDigest.equals(expected)) {
          failures.push(`${label(vector)}: DIGEST gave a different signature`);
        }
        if (!verify({ spec, algorithm, publicKey: spki, message: msg, messageType: 'RAW', signature: expected })) {
          failures.push(`${label(vector)}: verify rejected the expected signature`);
        }
      };
    });
    assert.equal(weakHash, bits === 2048 ? 16 : 0); // 8 SHA-1 (acceptable, WeakHash) + 8 SHA-224 cases
  });
}
