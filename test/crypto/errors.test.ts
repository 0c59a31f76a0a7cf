import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CryptoError } from '../../src/crypto/errors.ts';

test('CryptoError is an Error named CryptoError carrying exactly the message it was given', () => {
  const error = new CryptoError('decryption failed');
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'CryptoError');
  assert.equal(error.message, 'decryption failed');
  assert.equal(error.cause, undefined);
  assert.match(String(error), /^CryptoError: decryption failed$/);
});
