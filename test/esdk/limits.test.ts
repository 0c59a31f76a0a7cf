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

describe('maximum body size (maxBodySize)', () => {
  it('refuses a framed message whose frame length exceeds it before asking any keyring, buffered and streaming', async () => {
    const { ciphertext } = await encrypt(Buffer.alloc(100_000, 1), { keyring: aesKeyring, frameLength: 65_536 });
    let asked = 0;
    const spy: CryptographicMaterialsManager = {
      getEncryptionMaterials: () => Promise.reject(new Error('unused')),
      decryptMaterials: (request) => {
        asked++;
        return new DefaultCryptographicMaterialsManager(aesKeyring).decryptMaterials(request);
      },
    };
    const tooLarge = { code: 'BodyTooLarge', message: 'frame length 65536 exceeds maxBodySize 65535' };
    await assert.rejects(decrypt(ciphertext, { cmm: spy, maxBodySize: 65_535 }), tooLarge);
    await assert.rejects(collect(decryptStream({ cmm: spy, maxBodySize: 65_535 }), [ciphertext]), tooLarge);
    assert.equal(asked, 0);
    assert.equal((await decrypt(ciphertext, { cmm: spy, maxBodySize: 65_536 })).plaintext.length, 100_000);
    assert.equal((await collect(decryptStream({ cmm: spy, maxBodySize: 65_536 }), [ciphertext])).length, 100_000);
  });

  it('refuses a non-framed message whose content exceeds it, buffered and streaming', async () => {
    const { ciphertext } = await encrypt(Buffer.alloc(5000, 2), { keyring: aesKeyring, contentType: 'non-framed' });
    const tooLarge = { code: 'BodyTooLarge', message: 'non-framed content length 5000 exceeds maxBodySize 4999' };
    await assert.rejects(decrypt(ciphertext, { keyring: aesKeyring, maxBodySize: 4999 }), tooLarge);
    await assert.rejects(collect(decryptStream({ keyring: aesKeyring, maxBodySize: 4999 }), [ciphertext]), tooLarge);
    assert.equal((await decrypt(ciphertext, { keyring: aesKeyring, maxBodySize: 5000 })).plaintext.length, 5000);
  });

  it('refuses a maximum that is not a positive integer', async () => {
    const { ciphertext } = await encrypt(Buffer.from('x'), { keyring: aesKeyring });
    for (const maxBodySize of [0, -1, 1.5, Number.NaN, Infinity, '10' as unknown as number]) {
      await assert.rejects(decrypt(ciphertext, { keyring: aesKeyring, maxBodySize }), { code: 'InvalidArgument' });
      assert.throws(() => decryptStream({ keyring: aesKeyring, maxBodySize }), { code: 'InvalidArgument' });
    }
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
