import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import { CryptoError } from '../../src/crypto/errors.ts';
import { SecretBytes, constantTimeEqual } from '../../src/crypto/secret-bytes.ts';

const REDACTED = '[SecretBytes redacted]';
const MATERIAL = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

describe('SecretBytes', () => {
  test('copies its input, so later changes to the input do not reach the secret', () => {
    const input = Buffer.from(MATERIAL);
    const secret = SecretBytes.from(input);
    input.fill(0xff);
    assert.deepEqual(secret.exposeSecretBytes(), MATERIAL);
    assert.equal(secret.length, 16);
  });

  test('keeps its bytes out of the shared Buffer pool', () => {
    const exposed = SecretBytes.from(MATERIAL).exposeSecretBytes();
    assert.equal(exposed.byteOffset, 0);
    assert.equal(exposed.buffer.byteLength, MATERIAL.length);
  });

  test('draws random secrets of the requested length that differ from each other', () => {
    const first = SecretBytes.random(32);
    const second = SecretBytes.random(32);
    assert.equal(first.length, 32);
    assert.equal(first.equals(second), false);
    assert.equal(SecretBytes.random(0).length, 0);
  });

  test('refuses a negative or fractional random length', () => {
    assert.throws(() => SecretBytes.random(-1), CryptoError);
    assert.throws(() => SecretBytes.random(1.5), CryptoError);
  });

  test('redacts itself in String(), template literals, JSON.stringify and util.inspect', () => {
    const secret = SecretBytes.from(MATERIAL);
    const hex = MATERIAL.toString('hex');
    const renderings = [
      String(secret),
      `${secret}`,
      'key: ' + secret,
      JSON.stringify(secret),
      JSON.stringify({ material: secret }),
      inspect(secret),
      inspect({ nested: { material: secret } }, { depth: 10, showHidden: true }),
    ];
    for (const rendering of renderings) {
      assert.ok(rendering.includes(REDACTED), rendering);
      assert.ok(!rendering.includes(hex), rendering);
      assert.ok(!rendering.includes('0x00, 0x11'), rendering);
    }
    assert.equal(JSON.stringify({ material: secret }), `{"material":"${REDACTED}"}`);
  });

  test('compares equal contents as equal and different contents or lengths as different', () => {
    const secret = SecretBytes.from(MATERIAL);
    assert.equal(secret.equals(SecretBytes.from(MATERIAL)), true);
    const flipped = Buffer.from(MATERIAL);
    flipped[15] ^= 1;
    assert.equal(secret.equals(SecretBytes.from(flipped)), false);
    assert.equal(secret.equals(SecretBytes.from(MATERIAL.subarray(0, 15))), false);
  });

  test('zero() overwrites the bytes and makes later reads throw CryptoError', () => {
    const secret = SecretBytes.from(MATERIAL);
    const exposed = secret.exposeSecretBytes();
    secret.zero();
    assert.deepEqual(exposed, Buffer.alloc(16));
    assert.throws(() => secret.exposeSecretBytes(), CryptoError);
    assert.throws(() => secret.equals(SecretBytes.from(MATERIAL)), CryptoError);
    assert.doesNotThrow(() => secret.zero());
  });
});

describe('constantTimeEqual', () => {
  test('returns true only for identical byte strings of equal length', () => {
    assert.equal(constantTimeEqual(Buffer.from('abc'), new Uint8Array([0x61, 0x62, 0x63])), true);
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd')), false);
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abcd')), false);
    assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  });
});
