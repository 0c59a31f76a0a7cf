import { test } from 'node:test';
import type { EccKeySpec, SigningAlgorithm } from '../../src/crypto/asymmetric/key-specs.ts';
import { checkEveryCase, hex, label, pushPathMismatches, type SignatureVector, verifyBothPaths } from './wycheproof.ts';

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
  tests: SignatureVector[];
}

const FILES: ReadonlyArray<readonly [string, EccKeySpec, SigningAlgorithm]> = [
  ['ecdsa_secp256r1_sha256_test.json', 'ECC_NIST_P256', 'ECDSA_SHA_256'],
  ['ecdsa_secp384r1_sha384_test.json', 'ECC_NIST_P384', 'ECDSA_SHA_384'],
  ['ecdsa_secp521r1_sha512_test.json', 'ECC_NIST_P521', 'ECDSA_SHA_512'],
  ['ecdsa_secp256k1_sha256_test.json', 'ECC_SECG_P256K1', 'ECDSA_SHA_256'],
];

for (const [fileName, spec, algorithm] of FILES) {
  test(`${fileName}: every case verifies as expected through RAW and DIGEST`, () => {
    checkEveryCase<EcdsaGroup>(fileName, 'ECDSA', (group, failures) => {
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
