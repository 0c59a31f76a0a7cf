import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalEncryptionContext } from '../../src/crypto/encryption-context.ts';
import { CryptoError } from '../../src/crypto/errors.ts';

describe('canonicalEncryptionContext', () => {
  test('encodes an absent and an empty context as the same four zero bytes', () => {
    assert.deepEqual(canonicalEncryptionContext(undefined), Buffer.alloc(4));
    assert.deepEqual(canonicalEncryptionContext({}), Buffer.alloc(4));
  });

  test('writes the count, then length-prefixed keys and values in big-endian', () => {
    assert.equal(
      canonicalEncryptionContext({ b: '', a: 'xyz' }).toString('hex'),
      '00000002' + '00000001' + '61' + '00000003' + '78797a' + '00000001' + '62' + '00000000',
    );
  });

  test('does not depend on the order the pairs were inserted in', () => {
    const forward = canonicalEncryptionContext({ department: 'finance', purpose: 'payroll', a: '1' });
    const backward = canonicalEncryptionContext({ a: '1', purpose: 'payroll', department: 'finance' });
    assert.deepEqual(forward, backward);
  });

  test('distinguishes {"a":"bc"} from {"ab":"c"}', () => {
    assert.notDeepEqual(canonicalEncryptionContext({ a: 'bc' }), canonicalEncryptionContext({ ab: 'c' }));
  });

  test('distinguishes contexts whose concatenated pairs would read the same', () => {
    const contexts: Array<Record<string, string>> = [
      { a: 'b', c: 'd' },
      { a: 'bcd' },
      { 'a\u0000b': 'c' },
      { a: 'b\u0000c\u0000d' },
      { ab: 'cd' },
      { a: 'b=c', d: '' },
    ];
    const encodings = new Set(contexts.map((context) => canonicalEncryptionContext(context).toString('hex')));
    assert.equal(encodings.size, contexts.length);
  });

  test('sorts keys by their UTF-8 bytes, not by UTF-16 code units', () => {
    // U+FF5E (EF BD 9E) sorts after U+1F600 (F0 9F 98 80) in UTF-16 order but before it in UTF-8.
    const encoded = canonicalEncryptionContext({ '\u{1f600}': 'emoji', '\uff5e': 'tilde' });
    const firstKeyLength = encoded.readUInt32BE(4);
    assert.equal(encoded.subarray(8, 8 + firstKeyLength).toString('utf8'), '\uff5e');
  });

  test('encodes keys and values as UTF-8 and counts bytes, not characters', () => {
    const encoded = canonicalEncryptionContext({ 'clé': '€' });
    assert.equal(encoded.readUInt32BE(4), 4);
    assert.equal(encoded.readUInt32BE(12), 3);
  });

  test('rejects a key or value with an unpaired surrogate, which UTF-8 cannot represent', () => {
    assert.throws(() => canonicalEncryptionContext({ '\ud800': 'x' }), CryptoError);
    assert.throws(() => canonicalEncryptionContext({ x: 'a\udfffb' }), CryptoError);
  });

  test('rejects a value that is not a string', () => {
    const notStrings = [{ a: 1 }, { a: null }, { a: ['x'] }] as unknown as Array<Record<string, string>>;
    for (const context of notStrings) {
      assert.throws(() => canonicalEncryptionContext(context), CryptoError);
    }
    assert.throws(() => canonicalEncryptionContext(null as unknown as undefined), CryptoError);
  });
});
