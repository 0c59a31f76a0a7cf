import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EccKeySpec, SigningAlgorithm } from '../../src/crypto/asymmetric/key-specs.ts';
import { verify } from '../../src/crypto/asymmetric/signatures.ts';
import { digest, hex, label, loadWycheproof, outcomeOf, type WycheproofVector } from './wycheproof.ts';

/**
 * Wycheproof's ECDSA (DER signature) verification files through src/crypto's verify, every case
 * twice: messageType RAW (node:crypto / OpenSSL) and DIGEST (the SHA of msg computed here;
 * @noble/curves with prehash off, DER format, high S allowed as OpenSSL allows it).
 *
 * - valid: both paths must accept — including the high-S cases, which is why verify turns noble's
 *   default low-S rule off.
 * - invalid (BER and other non-DER encodings, out-of-range r and s, wrong points, …): both must
 *   return false.
 * - acceptable: these files have none; any other result kind fails the test.
 */

interface EcdsaGroup {
  sha: string;
  publicKeyDer: string;
  tests: Array<WycheproofVector & { msg: string; sig: string }>;
}

const FILES: ReadonlyArray<readonly [string, EccKeySpec, SigningAlgorithm]> = [
  ['ecdsa_secp256r1_sha256_test.json', 'ECC_NIST_P256', 'ECDSA_SHA_256'],
  ['ecdsa_secp384r1_sha384_test.json', 'ECC_NIST_P384', 'ECDSA_SHA_384'],
  ['ecdsa_secp521r1_sha512_test.json', 'ECC_NIST_P521', 'ECDSA_SHA_512'],
  ['ecdsa_secp256k1_sha256_test.json', 'ECC_SECG_P256K1', 'ECDSA_SHA_256'],
];

for (const [fileName, spec, algorithm] of FILES) {
  test(`${fileName}: every case verifies as expected through RAW and DIGEST`, () => {
    const file = loadWycheproof<EcdsaGroup>(fileName);
    assert.equal(file.algorithm, 'ECDSA');
    const failures: string[] = [];
    let checked = 0;
    for (const group of file.testGroups) {
      const publicKey = hex(group.publicKeyDer);
      for (const vector of group.tests) {
        checked++;
        if (vector.result !== 'valid' && vector.result !== 'invalid') {
          failures.push(`${label(vector)}: result kind has no decided handling`);
          continue;
        }
        const msg = hex(vector.msg);
        const signature = hex(vector.sig);
        const expected = vector.result === 'valid' ? 'accepted' : 'rejected';
        const raw = outcomeOf(() => verify({ spec, algorithm, publicKey, message: msg, messageType: 'RAW', signature }));
        const viaDigest = outcomeOf(() =>
          verify({ spec, algorithm, publicKey, message: digest(group.sha, msg), messageType: 'DIGEST', signature }),
        );
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
