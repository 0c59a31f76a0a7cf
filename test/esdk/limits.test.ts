import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MultiKeyring, RawAesKeyring, decrypt, decryptStream, encrypt, type CryptographicMaterialsManager } from '../../src/esdk/index.ts';
import { DefaultCryptographicMaterialsManager } from '../../src/esdk/index.ts';
import { aesKeyring, collect } from './support/fixtures.ts';

const children = [1, 2, 3].map((n) => new RawAesKeyring({ keyNamespace: 'strongroom-test', keyName: `child-${n}`, wrappingKey: Buffer.alloc(16, n) }));
const fourKeys = new MultiKeyring({ generator: aesKeyring, children });

describe('maximum encrypted data keys', () => {
  it('encrypt refuses more EDKs than the maximum, and accepts exactly the maximum', async () => {
    await assert.rejects(encrypt(Buffer.from('x'), { keyring: fourKeys, maxEncryptedDataKeys: 3 }), { code: 'TooManyEncryptedDataKeys' });
    const { header } = await encrypt(Buffer.from('x'), { keyring: fourKeys, maxEncryptedDataKeys: 4 });
    assert.equal(header.encryptedDataKeys.length, 4);
  });

  it('decrypt refuses a message with more EDKs than the maximum before asking any keyring', async () => {
    const { ciphertext } = await encrypt(Buffer.from('x'), { keyring: fourKeys });
    let asked = false;
    const spy: CryptographicMaterialsManager = {
      getEncryptionMaterials: () => Promise.reject(new Error('unused')),
      decryptMaterials: (request) => {
        asked = true;
        return new DefaultCryptographicMaterialsManager(children[2]).decryptMaterials(request);
      },
    };
    await assert.rejects(decrypt(ciphertext, { cmm: spy, maxEncryptedDataKeys: 3 }), { code: 'TooManyEncryptedDataKeys' });
    await assert.rejects(collect(decryptStream({ cmm: spy, maxEncryptedDataKeys: 3 }), [ciphertext]), { code: 'TooManyEncryptedDataKeys' });
    assert.equal(asked, false);
    assert.equal((await decrypt(ciphertext, { cmm: spy, maxEncryptedDataKeys: 4 })).plaintext.toString(), 'x');
    assert.equal(asked, true);
  });

  it('refuses a maximum that is not a positive integer', async () => {
    await assert.rejects(encrypt(Buffer.from('x'), { keyring: aesKeyring, maxEncryptedDataKeys: 0 }), { code: 'InvalidArgument' });
  });
});

describe('encryption context', () => {
  const context = { tenant: 'acme', purpose: 'backup', region: 'eu' };

  it('required keys are authenticated but not stored, and the decryptor must supply them', async () => {
    const { ciphertext, header } = await encrypt(Buffer.from('payload'), { keyring: aesKeyring, encryptionContext: context, requiredEncryptionContextKeys: ['tenant', 'region'] });
    assert.equal(Object.hasOwn(header.encryptionContext, 'tenant'), false);
    assert.equal(Object.hasOwn(header.encryptionContext, 'purpose'), true);
    assert.equal(ciphertext.includes(Buffer.from('acme')), false);
    const back = await decrypt(ciphertext, { keyring: aesKeyring, encryptionContext: { tenant: 'acme', region: 'eu' } });
    assert.equal(back.plaintext.toString(), 'payload');
    assert.equal((await collect(decryptStream({ keyring: aesKeyring, encryptionContext: { tenant: 'acme', region: 'eu' } }), [ciphertext])).toString(), 'payload');
    // Missing or different required values: the data key does not unwrap or the header tag fails.
    await assert.rejects(decrypt(ciphertext, { keyring: aesKeyring }));
    await assert.rejects(decrypt(ciphertext, { keyring: aesKeyring, encryptionContext: { tenant: 'evil', region: 'eu' } }));
  });

  it('a required key must be in the context', async () => {
    await assert.rejects(encrypt(Buffer.from('x'), { keyring: aesKeyring, encryptionContext: context, requiredEncryptionContextKeys: ['absent'] }), { code: 'ContextMismatch' });
  });

  it('a reproduced context whose value differs from the stored one fails with ContextMismatch', async () => {
    const { ciphertext } = await encrypt(Buffer.from('x'), { keyring: aesKeyring, encryptionContext: context });
    await assert.rejects(decrypt(ciphertext, { keyring: aesKeyring, encryptionContext: { tenant: 'other' } }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ContextMismatch');
      assert.ok(!error.message.includes('other') && !error.message.includes('acme'));
      return true;
    });
    assert.equal((await decrypt(ciphertext, { keyring: aesKeyring, encryptionContext: { tenant: 'acme' } })).plaintext.toString(), 'x');
  });

  it('the reserved aws-crypto- prefix is refused on encrypt', async () => {
    await assert.rejects(encrypt(Buffer.from('x'), { keyring: aesKeyring, encryptionContext: { 'aws-crypto-public-key': 'x' } }), { code: 'InvalidArgument' });
  });
});
