import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { aesGcmDecrypt, aesGcmEncrypt } from '../../src/crypto/aead.ts';
import { CryptoError } from '../../src/crypto/errors.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';

/**
 * Every case of Wycheproof's aes_gcm_test.json (test/vectors/wycheproof, Apache-2.0, see LICENSE
 * there) through src/crypto's aesGcmEncrypt and aesGcmDecrypt.
 *
 * - valid: encrypt must give exactly ct and tag, and decrypt must give back msg — unless the case
 *   uses a parameter aead.ts deliberately refuses (below), in which case both must throw CryptoError.
 * - invalid: decrypt must throw CryptoError; encrypt must throw CryptoError or produce a ct‖tag other
 *   than the vector's.
 * - acceptable: the file has none. Any result kind other than valid/invalid fails the test, so a
 *   future file that adds acceptable cases has to be read and decided, not silently passed.
 *
 * Parameters aead.ts refuses although the vectors call them valid:
 * - IVs longer than 128 bytes (OpenSSL 3 caps a GCM IV at 128 bytes; this file has three 257-byte
 *   IV cases, tcIds 268, 272 and 276, flagged LongIv);
 * - tags other than 12..16 bytes (this file has only 16-byte tags).
 */

interface AeadTest {
  tcId: number;
  comment: string;
  flags: string[];
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: 'valid' | 'invalid' | 'acceptable';
}

interface AeadTestGroup {
  keySize: number;
  ivSize: number;
  tagSize: number;
  type: string;
  tests: AeadTest[];
}

interface AeadTestFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: AeadTestGroup[];
}

const file = JSON.parse(
  readFileSync(new URL('../vectors/wycheproof/aes_gcm_test.json', import.meta.url), 'utf8'),
) as AeadTestFile;

const hex = (text: string): Buffer => Buffer.from(text, 'hex');

function supportedByAead(ivLength: number, tagLength: number): boolean {
  return ivLength >= 1 && ivLength <= 128 && tagLength >= 12 && tagLength <= 16;
}

function throwsCryptoError(attempt: () => unknown): boolean {
  try {
    attempt();
    return false;
  } catch (error) {
    return error instanceof CryptoError;
  }
}

test('aes_gcm_test.json: every Wycheproof AES-GCM case gives the expected result', () => {
  assert.equal(file.algorithm, 'AES-GCM');
  const failures: string[] = [];
  const refused: number[] = [];
  let checked = 0;

  for (const group of file.testGroups) {
    assert.equal(group.type, 'AeadTest');
    const tagLength = group.tagSize / 8;
    for (const vector of group.tests) {
      checked++;
      const label = `tcId ${vector.tcId} (${vector.result}; ${vector.flags.join(', ')})`;
      const key = SecretBytes.from(hex(vector.key));
      const iv = hex(vector.iv);
      const aad = hex(vector.aad);
      const msg = hex(vector.msg);
      const ct = hex(vector.ct);
      const tag = hex(vector.tag);
      assert.equal(key.length * 8, group.keySize, label);
      assert.equal(iv.length * 8, group.ivSize, label);

      if (vector.result === 'valid') {
        if (!supportedByAead(iv.length, tagLength)) {
          refused.push(vector.tcId);
          if (!throwsCryptoError(() => aesGcmEncrypt(key, iv, msg, aad, tagLength))) {
            failures.push(`${label}: encrypt accepted a parameter aead.ts should refuse`);
          }
          if (!throwsCryptoError(() => aesGcmDecrypt(key, iv, ct, tag, aad))) {
            failures.push(`${label}: decrypt accepted a parameter aead.ts should refuse`);
          }
          continue;
        }
        const encrypted = aesGcmEncrypt(key, iv, msg, aad, tagLength);
        if (!encrypted.ciphertext.equals(ct) || !encrypted.tag.equals(tag)) {
          failures.push(`${label}: encrypt gave a different ct or tag`);
        }
        let decrypted: Buffer | undefined;
        try {
          decrypted = aesGcmDecrypt(key, iv, ct, tag, aad);
        } catch {
          failures.push(`${label}: decrypt rejected a valid ciphertext`);
        }
        if (decrypted !== undefined && !decrypted.equals(msg)) {
          failures.push(`${label}: decrypt gave a different plaintext`);
        }
      } else if (vector.result === 'invalid') {
        if (!throwsCryptoError(() => aesGcmDecrypt(key, iv, ct, tag, aad))) {
          failures.push(`${label}: decrypt accepted an invalid ciphertext`);
        }
        let encrypted: { ciphertext: Buffer; tag: Buffer } | undefined;
        try {
          encrypted = aesGcmEncrypt(key, iv, msg, aad, tagLength);
        } catch (error) {
          if (!(error instanceof CryptoError)) {
            failures.push(`${label}: encrypt threw something other than CryptoError`);
          }
        }
        if (encrypted !== undefined && encrypted.ciphertext.equals(ct) && encrypted.tag.equals(tag)) {
          failures.push(`${label}: encrypt reproduced an invalid ciphertext`);
        }
      } else {
        failures.push(`${label}: result kind "${vector.result}" has no decided handling`);
      }
    }
  }

  assert.deepEqual(failures, []);
  assert.equal(checked, file.numberOfTests);
  assert.deepEqual(refused, [268, 272, 276]);
});
