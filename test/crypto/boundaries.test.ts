import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { posix, sep } from 'node:path';
import { test } from 'node:test';
import * as crypto from '../../src/crypto/index.ts';

// src/crypto is the bottom layer: no I/O, and nothing imported beyond its own files, the few
// node built-ins that do no I/O, and the pure-JavaScript @noble libraries (curves, hashes,
// post-quantum) for what node:crypto lacks. (The repository-wide layering check is
// dependency-cruiser's job; this one states the crypto layer's own rule next to its tests.)
const ALLOWED_BUILTINS = new Set(['node:crypto', 'node:buffer', 'node:util']);
const ALLOWED_PACKAGE = /^@noble\/(curves|hashes|post-quantum)\/[a-z0-9-]+\.js$/;
const sourceDirectory = new URL('../../src/crypto/', import.meta.url);

test('src/crypto imports only its own files, I/O-free node built-ins and @noble', () => {
  const sourceFiles = readdirSync(sourceDirectory, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => name.split(sep).join('/'));
  assert.ok(sourceFiles.length >= 20);
  assert.ok(sourceFiles.includes('asymmetric/signatures.ts'));
  const violations: string[] = [];
  for (const name of sourceFiles) {
    const source = readFileSync(new URL(name, sourceDirectory), 'utf8');
    for (const match of source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/g)) {
      const specifier = match[1];
      const resolved = posix.normalize(posix.join(posix.dirname(name), specifier));
      const local = /^\.\.?\/[a-z0-9-/.]+\.ts$/.test(specifier) && !resolved.startsWith('..') && sourceFiles.includes(resolved);
      if (!local && !ALLOWED_BUILTINS.has(specifier) && !ALLOWED_PACKAGE.test(specifier)) {
        violations.push(`${name}: ${specifier}`);
      }
    }
    if (/\brequire\s*\(|\bimport\s*\(|\bprocess\.|\bfetch\s*\(/.test(source)) {
      violations.push(`${name}: dynamic import, require, process or fetch`);
    }
  }
  assert.deepEqual(violations, []);
});

test('src/crypto/index.ts exports the whole public API of the crypto layer', () => {
  const expected = [
    'CryptoError',
    'InvalidPublicKeyError',
    'SYMMETRIC_CIPHERTEXT_OVERHEAD',
    'Sealer',
    'SecretBytes',
    'aesGcmDecrypt',
    'aesGcmEncrypt',
    'bytesToUuid',
    'canonicalEncryptionContext',
    'constantTimeEqual',
    'decryptSymmetric',
    'digestLength',
    'ecdhSharedSecret',
    'encryptSymmetric',
    'generateHmacKey',
    'generateKeyPair',
    'generateMac',
    'hkdf',
    'parseSymmetricCiphertextHeader',
    'privateKeyToPkcs8',
    'publicKeyFromPrivate',
    'randomBytes',
    'randomUuid',
    'rsaOaepDecrypt',
    'rsaOaepEncrypt',
    'rsaOaepMaxPlaintext',
    'sign',
    'uuidToBytes',
    'verify',
    'verifyMac',
  ];
  assert.deepEqual(Object.keys(crypto).sort(), expected.sort());
});
