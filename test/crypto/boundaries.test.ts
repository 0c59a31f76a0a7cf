import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as crypto from '../../src/crypto/index.ts';

// src/crypto is the bottom layer: no I/O, and nothing imported beyond its own files and the few
// node built-ins that do no I/O. (The repository-wide layering check is dependency-cruiser's job;
// this one states the crypto layer's own rule next to its tests.)
const ALLOWED_BUILTINS = new Set(['node:crypto', 'node:buffer', 'node:util']);
const sourceDirectory = new URL('../../src/crypto/', import.meta.url);

test('src/crypto imports only its own files and I/O-free node built-ins', () => {
  const sourceFiles = readdirSync(sourceDirectory).filter((name) => name.endsWith('.ts'));
  assert.ok(sourceFiles.length >= 9);
  const violations: string[] = [];
  for (const name of sourceFiles) {
    const source = readFileSync(new URL(name, sourceDirectory), 'utf8');
    for (const match of source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/g)) {
      const specifier = match[1];
      const local = /^\.\/[a-z-]+\.ts$/.test(specifier) && sourceFiles.includes(specifier.slice(2));
      if (!local && !ALLOWED_BUILTINS.has(specifier)) {
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
    'SYMMETRIC_CIPHERTEXT_OVERHEAD',
    'Sealer',
    'SecretBytes',
    'aesGcmDecrypt',
    'aesGcmEncrypt',
    'bytesToUuid',
    'canonicalEncryptionContext',
    'constantTimeEqual',
    'decryptSymmetric',
    'encryptSymmetric',
    'hkdf',
    'parseSymmetricCiphertextHeader',
    'randomBytes',
    'randomUuid',
    'uuidToBytes',
  ];
  assert.deepEqual(Object.keys(crypto).sort(), expected.sort());
});
