import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CryptoError } from '../../src/crypto/errors.ts';
import { hkdf, type HkdfHash } from '../../src/crypto/kdf.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';

/**
 * Every case of Wycheproof's hkdf_sha{256,384,512}_test.json (test/vectors/wycheproof, Apache-2.0,
 * see LICENSE there) through src/crypto's hkdf.
 *
 * - valid: the output must be exactly okm.
 * - invalid (all flagged SizeTooLarge: more than 255 × HashLen bytes requested): hkdf must throw
 *   CryptoError.
 * - acceptable: the files have none. Any result kind other than valid/invalid fails the test, so a
 *   future file that adds acceptable cases has to be read and decided, not silently passed.
 */

interface HkdfTest {
  tcId: number;
  comment: string;
  flags: string[];
  ikm: string;
  salt: string;
  info: string;
  size: number;
  okm: string;
  result: 'valid' | 'invalid' | 'acceptable';
}

interface HkdfTestFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: Array<{ type: string; keySize: number; tests: HkdfTest[] }>;
}

const FILES: ReadonlyArray<readonly [HkdfHash, string, string]> = [
  ['sha256', 'hkdf_sha256_test.json', 'HKDF-SHA-256'],
  ['sha384', 'hkdf_sha384_test.json', 'HKDF-SHA-384'],
  ['sha512', 'hkdf_sha512_test.json', 'HKDF-SHA-512'],
];

const hex = (text: string): Buffer => Buffer.from(text, 'hex');

for (const [hash, fileName, algorithm] of FILES) {
  test(`${fileName}: every Wycheproof ${algorithm} case gives the expected result`, () => {
    const file = JSON.parse(
      readFileSync(new URL(`../vectors/wycheproof/${fileName}`, import.meta.url), 'utf8'),
    ) as HkdfTestFile;
    assert.equal(file.algorithm, algorithm);
    const failures: string[] = [];
    let checked = 0;
    let invalid = 0;

    for (const group of file.testGroups) {
      assert.equal(group.type, 'HkdfTest');
      for (const vector of group.tests) {
        checked++;
        const label = `tcId ${vector.tcId} (${vector.result}; ${vector.flags.join(', ')})`;
        const ikm = SecretBytes.from(hex(vector.ikm));
        const derive = (): SecretBytes => hkdf(hash, ikm, hex(vector.salt), hex(vector.info), vector.size);

        if (vector.result === 'valid') {
          let okm: SecretBytes | undefined;
          try {
            okm = derive();
          } catch {
            failures.push(`${label}: rejected a valid derivation`);
          }
          if (okm !== undefined && !okm.exposeSecretBytes().equals(hex(vector.okm))) {
            failures.push(`${label}: derived a different okm`);
          }
        } else if (vector.result === 'invalid') {
          invalid++;
          try {
            derive();
            failures.push(`${label}: accepted an invalid derivation`);
          } catch (error) {
            if (!(error instanceof CryptoError)) {
              failures.push(`${label}: threw something other than CryptoError`);
            }
          }
        } else {
          failures.push(`${label}: result kind "${vector.result}" has no decided handling`);
        }
      }
    }

    assert.deepEqual(failures, []);
    assert.equal(checked, file.numberOfTests);
    assert.ok(invalid > 0, 'the file should exercise the output size limit');
  });
}
