import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CryptoError } from '../../src/crypto/errors.ts';
import { hkdf, type HkdfHash } from '../../src/crypto/kdf.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';

const hex = (text: string): Buffer => Buffer.from(text, 'hex');

describe('hkdf', () => {
  // RFC 5869 Appendix A.1.
  test('matches RFC 5869 test case 1', () => {
    const okm = hkdf(
      'sha256',
      SecretBytes.from(hex('0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b')),
      hex('000102030405060708090a0b0c'),
      hex('f0f1f2f3f4f5f6f7f8f9'),
      42,
    );
    assert.equal(
      okm.exposeSecretBytes().toString('hex'),
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    );
  });

  test('returns a SecretBytes, redacted when printed', () => {
    const okm = hkdf('sha256', SecretBytes.random(32), Buffer.alloc(16), Buffer.alloc(0), 32);
    assert.ok(okm instanceof SecretBytes);
    assert.equal(String(okm), '[SecretBytes redacted]');
  });

  test('derives different keys for different salts and infos', () => {
    const ikm = SecretBytes.random(32);
    const base = hkdf('sha256', ikm, Buffer.from('salt'), Buffer.from('info'), 32);
    assert.equal(base.equals(hkdf('sha256', ikm, Buffer.from('salt'), Buffer.from('info'), 32)), true);
    assert.equal(base.equals(hkdf('sha256', ikm, Buffer.from('Salt'), Buffer.from('info'), 32)), false);
    assert.equal(base.equals(hkdf('sha256', ikm, Buffer.from('salt'), Buffer.from('Info'), 32)), false);
  });

  const limits: ReadonlyArray<readonly [HkdfHash, number]> = [
    ['sha256', 32 * 255],
    ['sha384', 48 * 255],
    ['sha512', 64 * 255],
  ];
  for (const [hash, maximum] of limits) {
    test(`with ${hash} accepts outputs of 1 to ${maximum} bytes and rejects 0 and ${maximum + 1}`, () => {
      const ikm = SecretBytes.random(32);
      assert.equal(hkdf(hash, ikm, Buffer.alloc(0), Buffer.alloc(0), 1).length, 1);
      assert.equal(hkdf(hash, ikm, Buffer.alloc(0), Buffer.alloc(0), maximum).length, maximum);
      for (const length of [0, -1, maximum + 1, 1.5, Number.NaN]) {
        assert.throws(() => hkdf(hash, ikm, Buffer.alloc(0), Buffer.alloc(0), length), CryptoError);
      }
    });
  }

  test('rejects an unsupported hash', () => {
    const ikm = SecretBytes.random(32);
    for (const hash of ['sha1', 'md5', 'toString', '__proto__']) {
      assert.throws(() => hkdf(hash as HkdfHash, ikm, Buffer.alloc(0), Buffer.alloc(0), 32), CryptoError);
    }
  });

  test('rejects an info longer than 1024 bytes with CryptoError', () => {
    const ikm = SecretBytes.random(32);
    assert.equal(hkdf('sha256', ikm, Buffer.alloc(0), Buffer.alloc(1024), 32).length, 32);
    assert.throws(() => hkdf('sha256', ikm, Buffer.alloc(0), Buffer.alloc(1025), 32), CryptoError);
  });

  test('rejects a destroyed input key', () => {
    const ikm = SecretBytes.random(32);
    ikm.zero();
    assert.throws(() => hkdf('sha256', ikm, Buffer.alloc(0), Buffer.alloc(0), 32), CryptoError);
  });
});
