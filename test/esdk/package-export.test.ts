import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

describe("the package export 'strongroom/esdk'", () => {
  test('exports everything src/esdk/index.ts does, and encrypts and decrypts through it', async () => {
    // The package's own name resolves through its "exports" (Node's self-reference), as an
    // application that installed Strongroom would import it.
    const esdk = (await import('strongroom/esdk')) as typeof import('../../src/esdk/index.ts');
    const source = await import('../../src/esdk/index.ts');
    const runtimeNames = (module: object) => Object.keys(module).filter((name) => name !== 'default').sort();
    assert.deepEqual(runtimeNames(esdk), runtimeNames(source));
    const keyring = new esdk.RawAesKeyring({ keyNamespace: 'app', keyName: 'k1', wrappingKey: randomBytes(32) });
    const plaintext = Buffer.from('through the package export');
    const { ciphertext } = await esdk.encrypt(plaintext, { keyring, encryptionContext: { purpose: 'test' } });
    const { plaintext: decrypted, header } = await esdk.decrypt(ciphertext, { keyring });
    assert.deepEqual(decrypted, plaintext);
    assert.equal(header.encryptionContext.purpose, 'test');
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { exports: Record<string, unknown> };
    assert.ok(manifest.exports['./esdk']);
  });
});
