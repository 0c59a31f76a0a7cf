import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MacAlgorithm } from '../../src/crypto/asymmetric/key-specs.ts';
import { generateMac, verifyMac } from '../../src/crypto/asymmetric/mac.ts';
import { verify } from '../../src/crypto/asymmetric/signatures.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { checkEveryCase, hex, label, outcomeOf, type SignatureVector, type WycheproofVector } from './wycheproof.ts';

/**
 * ed25519_test.json through verify() with ED25519_SHA_512 / RAW (the only message type KMS allows
 * for it): valid must be accepted, invalid rejected (false). No acceptable cases; any other result
 * kind fails the test. (Ed25519ph has no Wycheproof file; see signatures.test.ts.)
 *
 * hmac_sha{224,256,384,512}_test.json through generateMac and verifyMac. Each file has groups with
 * full-length tags and groups with tags truncated to half the digest:
 * - full-length tags: valid → generateMac gives exactly tag and verifyMac accepts it; invalid →
 *   verifyMac rejects it.
 * - truncated tags: KMS's VerifyMac takes only the full MAC, so verifyMac must reject every
 *   truncated tag, valid ones included (counted and asserted); for valid ones the tag must be the
 *   prefix of generateMac's output.
 * - acceptable: the files have none; any other result kind fails the test.
 */

interface EddsaGroup {
  publicKeyDer: string;
  tests: SignatureVector[];
}

test('ed25519_test.json: every case verifies as expected through ED25519_SHA_512 RAW', () => {
  checkEveryCase<EddsaGroup>('ed25519_test.json', 'EDDSA', (group, failures) => {
    const publicKey = hex(group.publicKeyDer);
    return (vector) => {
      const outcome = outcomeOf(() =>
        verify({
          spec: 'ECC_NIST_EDWARDS25519',
          algorithm: 'ED25519_SHA_512',
          publicKey,
          message: hex(vector.msg),
          messageType: 'RAW',
          signature: hex(vector.sig),
        }),
      );
      const expected = vector.result === 'valid' ? 'accepted' : vector.result === 'invalid' ? 'rejected' : 'undecided';
      if (outcome !== expected) {
        failures.push(`${label(vector)}: ${outcome}`);
      }
    };
  });
});

interface MacGroup {
  keySize: number;
  tagSize: number;
  tests: Array<WycheproofVector & { key: string; msg: string; tag: string }>;
}

const MAC_FILES: ReadonlyArray<readonly [string, MacAlgorithm, string, number]> = [
  ['hmac_sha224_test.json', 'HMAC_SHA_224', 'HMACSHA224', 224],
  ['hmac_sha256_test.json', 'HMAC_SHA_256', 'HMACSHA256', 256],
  ['hmac_sha384_test.json', 'HMAC_SHA_384', 'HMACSHA384', 384],
  ['hmac_sha512_test.json', 'HMAC_SHA_512', 'HMACSHA512', 512],
];

for (const [fileName, algorithm, wycheproofName, fullBits] of MAC_FILES) {
  test(`${fileName}: every case generates and verifies as expected`, () => {
    let truncatedValid = 0;
    checkEveryCase<MacGroup>(fileName, wycheproofName, (group, failures) => (vector) => {
      const key = SecretBytes.from(hex(vector.key));
      const message = hex(vector.msg);
      const tag = hex(vector.tag);
      const mac = generateMac({ algorithm, key, message });
      const verified = verifyMac({ algorithm, key, message, mac: tag });
      if (vector.result === 'valid' && group.tagSize === fullBits) {
        if (!mac.equals(tag)) {
          failures.push(`${label(vector)}: generateMac gave a different tag`);
        }
        if (!verified) {
          failures.push(`${label(vector)}: verifyMac rejected a valid tag`);
        }
      } else if (vector.result === 'valid') {
        truncatedValid++;
        if (!mac.subarray(0, tag.length).equals(tag)) {
          failures.push(`${label(vector)}: the truncated tag is not a prefix of generateMac's`);
        }
        if (verified) {
          failures.push(`${label(vector)}: verifyMac accepted a truncated tag`);
        }
      } else if (vector.result === 'invalid') {
        if (verified) {
          failures.push(`${label(vector)}: verifyMac accepted an invalid tag`);
        }
      } else {
        failures.push(`${label(vector)}: result kind has no decided handling`);
      }
    });
    assert.equal(truncatedValid, 33); // 27 + 3 + 3 valid cases in the three truncated-tag groups
  });
}
