import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CryptoError } from '../../src/crypto/errors.ts';
import { Sealer } from '../../src/crypto/seal.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';

const BINDING = 'key-version:1234abcd-12ab-34cd-56ef-1234567890ab:1';
const SECRET = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');

function isUnsealFailure(error: unknown): boolean {
  return error instanceof CryptoError && error.message === 'unseal failed';
}

describe('Sealer', () => {
  const sealer = new Sealer(SecretBytes.random(32));

  test('round-trips a SecretBytes and a plain Uint8Array under the same binding', () => {
    assert.deepEqual(sealer.unseal(sealer.seal(SecretBytes.from(SECRET), BINDING), BINDING).exposeSecretBytes(), SECRET);
    assert.deepEqual(sealer.unseal(sealer.seal(new Uint8Array(SECRET), BINDING), BINDING).exposeSecretBytes(), SECRET);
  });

  test('returns the unsealed secret as a redacted SecretBytes', () => {
    const unsealed = sealer.unseal(sealer.seal(SECRET, BINDING), BINDING);
    assert.ok(unsealed instanceof SecretBytes);
    assert.equal(`${unsealed}`, '[SecretBytes redacted]');
  });

  test('round-trips an empty secret', () => {
    assert.equal(sealer.unseal(sealer.seal(new Uint8Array(0), BINDING), BINDING).length, 0);
  });

  test('writes version 0x01, a 32-byte salt, a 12-byte IV, the ciphertext and a 16-byte tag', () => {
    const sealed = sealer.seal(SECRET, BINDING);
    assert.equal(sealed[0], 0x01);
    assert.equal(sealed.length, 1 + 32 + 12 + SECRET.length + 16);
    assert.ok(!sealed.includes(SECRET));
  });

  test('seals the same secret differently every time', () => {
    assert.notDeepEqual(sealer.seal(SECRET, BINDING), sealer.seal(SECRET, BINDING));
  });

  test('rejects unsealing under a wrong binding', () => {
    const sealed = sealer.seal(SECRET, BINDING);
    for (const binding of [
      'key-version:1234abcd-12ab-34cd-56ef-1234567890ab:2',
      'key-version:0987dcba-09ab-87cd-65ef-0987654321ab:1',
      'access-key:AKIAEXAMPLE',
      `${BINDING}\0`,
      BINDING.toUpperCase(),
    ]) {
      assert.throws(() => sealer.unseal(sealed, binding), isUnsealFailure);
    }
  });

  test('rejects unsealing with another root key', () => {
    const sealed = sealer.seal(SECRET, BINDING);
    assert.throws(() => new Sealer(SecretBytes.random(32)).unseal(sealed, BINDING), isUnsealFailure);
  });

  const regions: ReadonlyArray<readonly [string, number]> = [
    ['version byte', 0],
    ['salt', 1],
    ['salt (last byte)', 32],
    ['IV', 33],
    ['IV (last byte)', 44],
    ['ciphertext', 45],
    ['tag', 45 + SECRET.length],
    ['tag (last byte)', 45 + SECRET.length + 15],
  ];
  for (const [region, index] of regions) {
    test(`rejects a sealed secret whose ${region} was altered`, () => {
      const sealed = sealer.seal(SECRET, BINDING);
      sealed[index] ^= 0x01;
      assert.throws(() => sealer.unseal(sealed, BINDING), isUnsealFailure);
    });
  }

  test('rejects a sealed secret that was truncated or extended', () => {
    const sealed = sealer.seal(SECRET, BINDING);
    assert.throws(() => sealer.unseal(sealed.subarray(0, sealed.length - 1), BINDING), isUnsealFailure);
    assert.throws(() => sealer.unseal(Buffer.concat([sealed, Buffer.from([0])]), BINDING), isUnsealFailure);
    assert.throws(() => sealer.unseal(sealed.subarray(0, 60), BINDING), isUnsealFailure);
    assert.throws(() => sealer.unseal(new Uint8Array(0), BINDING), isUnsealFailure);
  });

  test('refuses an empty binding or one with an unpaired surrogate', () => {
    assert.throws(() => sealer.seal(SECRET, ''), CryptoError);
    assert.throws(() => sealer.seal(SECRET, 'access-key:\ud800'), CryptoError);
    const sealed = sealer.seal(SECRET, BINDING);
    assert.throws(() => sealer.unseal(sealed, ''), isUnsealFailure);
  });

  test('refuses a root key shorter than 32 bytes', () => {
    assert.throws(() => new Sealer(SecretBytes.random(16)), CryptoError);
    assert.doesNotThrow(() => new Sealer(SecretBytes.random(64)));
  });

  test('stops working once its root key is zeroed', () => {
    const rootKey = SecretBytes.random(32);
    const owned = new Sealer(rootKey);
    const sealed = owned.seal(SECRET, BINDING);
    rootKey.zero();
    assert.throws(() => owned.seal(SECRET, BINDING), CryptoError);
    assert.throws(() => owned.unseal(sealed, BINDING), isUnsealFailure);
  });
});
