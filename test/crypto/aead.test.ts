import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, test } from 'node:test';
import { aesGcmDecrypt, aesGcmEncrypt } from '../../src/crypto/aead.ts';
import { CryptoError } from '../../src/crypto/errors.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';

const IV = Buffer.from('cafebabefacedbaddecaf888', 'hex');
const PLAINTEXT = Buffer.from('the quick brown fox jumps over the lazy dog');
const AAD = Buffer.from('associated data');

function isDecryptionFailure(error: unknown): boolean {
  return error instanceof CryptoError && error.message === 'decryption failed';
}

function flip(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] ^= 0x01;
  return copy;
}

describe('aesGcmEncrypt / aesGcmDecrypt', () => {
  // NIST GCM spec (McGrew & Viega), test case 3: AES-128, 96-bit IV, no AAD.
  test('matches the published AES-128-GCM test case 3', () => {
    const key = SecretBytes.from(Buffer.from('feffe9928665731c6d6a8f9467308308', 'hex'));
    const plaintext = Buffer.from(
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255',
      'hex',
    );
    const { ciphertext, tag } = aesGcmEncrypt(key, IV, plaintext, Buffer.alloc(0));
    assert.equal(
      ciphertext.toString('hex'),
      '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985',
    );
    assert.equal(tag.toString('hex'), '4d5c2af327cd64a62cf35abd2ba6fab4');
  });

  for (const keyLength of [16, 24, 32]) {
    test(`round-trips with a ${keyLength * 8}-bit key`, () => {
      const key = SecretBytes.random(keyLength);
      const { ciphertext, tag } = aesGcmEncrypt(key, IV, PLAINTEXT, AAD);
      assert.equal(ciphertext.length, PLAINTEXT.length);
      assert.equal(tag.length, 16);
      assert.notDeepEqual(ciphertext, PLAINTEXT);
      assert.deepEqual(aesGcmDecrypt(key, IV, ciphertext, tag, AAD), PLAINTEXT);
    });
  }

  test('round-trips an empty plaintext with empty AAD', () => {
    const key = SecretBytes.random(32);
    const { ciphertext, tag } = aesGcmEncrypt(key, IV, new Uint8Array(0), new Uint8Array(0));
    assert.equal(ciphertext.length, 0);
    assert.deepEqual(aesGcmDecrypt(key, IV, ciphertext, tag, new Uint8Array(0)), Buffer.alloc(0));
  });

  for (const keyLength of [0, 15, 17, 31, 33, 64]) {
    test(`rejects a ${keyLength}-byte key on encrypt and on decrypt`, () => {
      const key = SecretBytes.random(keyLength);
      assert.throws(() => aesGcmEncrypt(key, IV, PLAINTEXT, AAD), CryptoError);
      assert.throws(() => aesGcmDecrypt(key, IV, PLAINTEXT, Buffer.alloc(16), AAD), isDecryptionFailure);
    });
  }

  test('rejects an empty IV on encrypt and on decrypt', () => {
    const key = SecretBytes.random(32);
    assert.throws(() => aesGcmEncrypt(key, new Uint8Array(0), PLAINTEXT, AAD), CryptoError);
    assert.throws(
      () => aesGcmDecrypt(key, new Uint8Array(0), PLAINTEXT, Buffer.alloc(16), AAD),
      isDecryptionFailure,
    );
  });

  test('accepts IVs from 1 to 128 bytes and rejects a 129-byte IV', () => {
    const key = SecretBytes.random(16);
    for (const ivLength of [1, 8, 16, 64, 128]) {
      const iv = Buffer.alloc(ivLength, 7);
      const { ciphertext, tag } = aesGcmEncrypt(key, iv, PLAINTEXT, AAD);
      assert.deepEqual(aesGcmDecrypt(key, iv, ciphertext, tag, AAD), PLAINTEXT);
    }
    const longIv = Buffer.alloc(129, 7);
    assert.throws(() => aesGcmEncrypt(key, longIv, PLAINTEXT, AAD), CryptoError);
    assert.throws(() => aesGcmDecrypt(key, longIv, PLAINTEXT, Buffer.alloc(16), AAD), isDecryptionFailure);
  });

  test('produces 12- to 16-byte tags that are prefixes of the full tag, and verifies them', () => {
    const key = SecretBytes.random(32);
    const full = aesGcmEncrypt(key, IV, PLAINTEXT, AAD);
    for (const tagLength of [12, 13, 14, 15, 16]) {
      const { ciphertext, tag } = aesGcmEncrypt(key, IV, PLAINTEXT, AAD, tagLength);
      assert.equal(tag.length, tagLength);
      assert.deepEqual(tag, full.tag.subarray(0, tagLength));
      assert.deepEqual(aesGcmDecrypt(key, IV, ciphertext, tag, AAD), PLAINTEXT);
      assert.throws(() => aesGcmDecrypt(key, IV, ciphertext, flip(tag, tagLength - 1), AAD), isDecryptionFailure);
    }
  });

  test('refuses to produce tags shorter than 12 or longer than 16 bytes', () => {
    const key = SecretBytes.random(32);
    for (const tagLength of [0, 4, 8, 11, 17, 12.5]) {
      assert.throws(() => aesGcmEncrypt(key, IV, PLAINTEXT, AAD, tagLength), CryptoError);
    }
  });

  test('rejects a genuine 4- or 8-byte tag although node:crypto would verify it', () => {
    const key = SecretBytes.random(32);
    for (const tagLength of [4, 8]) {
      const cipher = createCipheriv('aes-256-gcm', key.exposeSecretBytes(), IV, { authTagLength: tagLength });
      cipher.setAAD(AAD);
      const ciphertext = Buffer.concat([cipher.update(PLAINTEXT), cipher.final()]);
      const tag = cipher.getAuthTag();
      assert.throws(() => aesGcmDecrypt(key, IV, ciphertext, tag, AAD), isDecryptionFailure);
    }
  });

  // GCM's short tags are truncations of the full tag (SP 800-38D §7.1), and aesGcmDecrypt takes the
  // tag length from the tag. This pins that behaviour: formats must fix the tag length themselves.
  test('verifies a 16-byte tag cut to 12 bytes, so a format must fix its tag length', () => {
    const key = SecretBytes.random(32);
    const { ciphertext, tag } = aesGcmEncrypt(key, IV, PLAINTEXT, AAD);
    assert.deepEqual(aesGcmDecrypt(key, IV, ciphertext, tag.subarray(0, 12), AAD), PLAINTEXT);
    assert.throws(() => aesGcmDecrypt(key, IV, ciphertext, tag.subarray(0, 11), AAD), isDecryptionFailure);
  });

  describe('rejects with one fixed error', () => {
    const key = SecretBytes.random(32);
    const { ciphertext, tag } = aesGcmEncrypt(key, IV, PLAINTEXT, AAD);
    const cases: ReadonlyArray<readonly [string, () => Buffer]> = [
      ['a ciphertext with one bit flipped', () => aesGcmDecrypt(key, IV, flip(ciphertext, 3), tag, AAD)],
      ['a truncated ciphertext', () => aesGcmDecrypt(key, IV, ciphertext.subarray(1), tag, AAD)],
      ['a tag with one bit flipped', () => aesGcmDecrypt(key, IV, ciphertext, flip(tag, 0), AAD)],
      ['a different IV', () => aesGcmDecrypt(key, flip(IV, 11), ciphertext, tag, AAD)],
      ['different AAD', () => aesGcmDecrypt(key, IV, ciphertext, tag, flip(AAD, 0))],
      ['missing AAD', () => aesGcmDecrypt(key, IV, ciphertext, tag, Buffer.alloc(0))],
      ['the wrong key', () => aesGcmDecrypt(SecretBytes.random(32), IV, ciphertext, tag, AAD)],
      ['a destroyed key', () => {
        const destroyed = SecretBytes.from(key.exposeSecretBytes());
        destroyed.zero();
        return aesGcmDecrypt(destroyed, IV, ciphertext, tag, AAD);
      }],
    ];
    for (const [what, attempt] of cases) {
      test(`a decryption with ${what}`, () => {
        assert.throws(attempt, isDecryptionFailure);
      });
    }
  });
});
