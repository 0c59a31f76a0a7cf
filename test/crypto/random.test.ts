import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CryptoError } from '../../src/crypto/errors.ts';
import { bytesToUuid, fillRandom, randomBytes, randomUuid, uuidToBytes } from '../../src/crypto/random.ts';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY_ID_BYTES = Buffer.from('1234abcd12ab34cd56ef1234567890ab', 'hex');

describe('random', () => {
  test('randomBytes returns the requested number of bytes, different on each call', () => {
    assert.equal(randomBytes(0).length, 0);
    assert.equal(randomBytes(32).length, 32);
    assert.notDeepEqual(randomBytes(32), randomBytes(32));
  });

  test('fillRandom never hands out the same bytes twice, across pool refills', () => {
    // 2,000 draws of 28 bytes cross the 16 KiB pool boundary several times.
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const target = Buffer.alloc(28);
      fillRandom(target, 0, 28);
      assert.notDeepEqual(target, Buffer.alloc(28));
      seen.add(target.toString('hex'));
    }
    assert.equal(seen.size, 2000);
  });

  test('fillRandom writes only the requested range and refuses one outside the target', () => {
    const target = Buffer.alloc(40);
    fillRandom(target, 8, 24);
    assert.deepEqual(target.subarray(0, 8), Buffer.alloc(8));
    assert.deepEqual(target.subarray(32), Buffer.alloc(8));
    assert.throws(() => fillRandom(target, 30, 16), CryptoError);
    assert.throws(() => fillRandom(target, -1, 4), CryptoError);
  });

  test('fillRandom serves large requests straight from the CSPRNG', () => {
    const target = Buffer.alloc(64 * 1024);
    fillRandom(target, 0, target.length);
    assert.ok(target.subarray(target.length - 32).some((byte) => byte !== 0));
  });

  test('randomBytes refuses a negative or fractional length', () => {
    assert.throws(() => randomBytes(-1), CryptoError);
    assert.throws(() => randomBytes(2.5), CryptoError);
  });

  test('randomUuid returns distinct canonical lowercase UUIDs that survive a byte round trip', () => {
    const first = randomUuid();
    assert.match(first, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(first, randomUuid());
    assert.equal(bytesToUuid(uuidToBytes(first)), first);
  });

  test('uuidToBytes and bytesToUuid convert between a key id and its 16 raw bytes', () => {
    assert.deepEqual(uuidToBytes(KEY_ID), KEY_ID_BYTES);
    assert.equal(bytesToUuid(KEY_ID_BYTES), KEY_ID);
    assert.equal(bytesToUuid(new Uint8Array(KEY_ID_BYTES)), KEY_ID);
    assert.equal(bytesToUuid(Buffer.concat([Buffer.alloc(3), KEY_ID_BYTES]).subarray(3)), KEY_ID);
  });

  const nonCanonical: ReadonlyArray<readonly [string, string]> = [
    ['uppercase hex', KEY_ID.toUpperCase()],
    ['no dashes', KEY_ID.replaceAll('-', '')],
    ['braces', `{${KEY_ID}}`],
    ['a urn prefix', `urn:uuid:${KEY_ID}`],
    ['a non-hex digit', KEY_ID.replace('a', 'g')],
    ['a misplaced dash', '1234abcd1-2ab-34cd-56ef-1234567890ab'],
    ['trailing whitespace', `${KEY_ID} `],
    ['a trailing newline', `${KEY_ID}\n`],
    ['the empty string', ''],
    ['an alias name', 'alias/my-key'],
  ];
  for (const [what, text] of nonCanonical) {
    test(`uuidToBytes rejects a UUID with ${what}`, () => {
      assert.throws(() => uuidToBytes(text), CryptoError);
    });
  }

  test('bytesToUuid rejects anything but 16 bytes', () => {
    assert.throws(() => bytesToUuid(new Uint8Array(15)), CryptoError);
    assert.throws(() => bytesToUuid(new Uint8Array(17)), CryptoError);
  });
});
