import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CryptoError } from '../../src/crypto/errors.ts';
import type { RsaEncryptionAlgorithm } from '../../src/crypto/asymmetric/key-specs.ts';
import { rsaOaepDecrypt } from '../../src/crypto/asymmetric/rsa-encryption.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { checkEveryCase, hex, label, type WycheproofVector } from './wycheproof.ts';

/**
 * Wycheproof's RSAES-OAEP decryption files with KMS's parameters (OAEP and MGF1 over the same
 * hash) through src/crypto's rsaOaepDecrypt.
 *
 * - valid with an empty label: decrypt must give exactly msg.
 * - valid with a non-empty label (flag EncryptionWithLabel): KMS's OAEP has no label, so the API
 *   cannot express the case; decrypting with the empty label must fail with
 *   CryptoError('decryption failed') — the label is authenticated. Counted and asserted.
 * - invalid: decrypt must throw CryptoError('decryption failed').
 * - acceptable: these files have none; any other result kind fails the test.
 */

interface OaepGroup {
  keySize: number;
  sha: string;
  mgf: string;
  mgfSha: string;
  privateKeyPkcs8: string;
  tests: Array<WycheproofVector & { msg: string; ct: string; label: string }>;
}

const FILES: ReadonlyArray<readonly [string, RsaEncryptionAlgorithm, number]> = [
  ['rsa_oaep_2048_sha1_mgf1sha1_test.json', 'RSAES_OAEP_SHA_1', 7],
  ['rsa_oaep_2048_sha256_mgf1sha256_test.json', 'RSAES_OAEP_SHA_256', 8],
  ['rsa_oaep_3072_sha256_mgf1sha256_test.json', 'RSAES_OAEP_SHA_256', 8],
  ['rsa_oaep_4096_sha256_mgf1sha256_test.json', 'RSAES_OAEP_SHA_256', 8],
];

function isDecryptionFailure(attempt: () => unknown): boolean {
  try {
    attempt();
    return false;
  } catch (error) {
    return error instanceof CryptoError && error.message === 'decryption failed';
  }
}

for (const [fileName, algorithm, expectedLabelled] of FILES) {
  test(`${fileName}: every case decrypts or fails as expected`, () => {
    let labelled = 0;
    checkEveryCase<OaepGroup>(fileName, 'RSAES-OAEP', (group, failures) => {
      assert.equal(group.mgf, 'MGF1');
      assert.equal(group.mgfSha, group.sha);
      const privateKey = SecretBytes.from(hex(group.privateKeyPkcs8));
      return (vector) => {
        const ciphertext = hex(vector.ct);
        const decrypt = () => rsaOaepDecrypt({ privateKey, algorithm, ciphertext });
        if (vector.result === 'valid' && vector.label === '') {
          let plaintext: Buffer | undefined;
          try {
            plaintext = decrypt();
          } catch {
            failures.push(`${label(vector)}: rejected a valid ciphertext`);
          }
          if (plaintext !== undefined && !plaintext.equals(hex(vector.msg))) {
            failures.push(`${label(vector)}: decrypted to a different plaintext`);
          }
        } else if (vector.result === 'valid') {
          labelled++;
          if (!isDecryptionFailure(decrypt)) {
            failures.push(`${label(vector)}: decrypted a ciphertext under a label it was not given`);
          }
        } else if (vector.result === 'invalid') {
          if (!isDecryptionFailure(decrypt)) {
            failures.push(`${label(vector)}: did not fail with "decryption failed"`);
          }
        } else {
          failures.push(`${label(vector)}: result kind has no decided handling`);
        }
      };
    });
    assert.equal(labelled, expectedLabelled);
  });
}
