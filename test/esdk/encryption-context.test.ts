import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/client-node';
import { decrypt, decryptStream, encrypt } from '../../src/esdk/index.ts';
import { AES_KEY, aesKeyring, collect } from './support/fixtures.ts';

/** The official raw AES keyring; `utf8Sorting` orders its wrapping AAD by UTF-8 bytes, as the specification does. */
function officialKeyring(utf8Sorting: boolean): RawAesKeyringNode {
  return new RawAesKeyringNode({
    keyNamespace: 'strongroom-test',
    keyName: 'aes-256',
    unencryptedMasterKey: new Uint8Array(AES_KEY),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    utf8Sorting,
  });
}

const official = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

describe('encryption context encoding', () => {
  it('keeps a leading U+FEFF in keys and values, byte for byte, buffered and streaming', async () => {
    const encryptionContext = { '\uFEFFpurpose': 'x', other: '\uFEFFvalue', '\uFEFF': '\uFEFF' };
    const { ciphertext } = await encrypt(Buffer.from('hello'), { keyring: aesKeyring, encryptionContext, suiteId: 0x0478 });
    const { plaintext, header } = await decrypt(ciphertext, { keyring: aesKeyring, encryptionContext });
    assert.equal(plaintext.toString(), 'hello');
    assert.deepEqual({ ...header.encryptionContext }, encryptionContext);
    assert.equal((await collect(decryptStream({ keyring: aesKeyring }), [ciphertext])).toString(), 'hello');
    // A key with and without the mark are two keys.
    const both = await encrypt(Buffer.from('y'), { keyring: aesKeyring, encryptionContext: { '\uFEFFa': '1', a: '2' }, suiteId: 0x0478 });
    assert.deepEqual({ ...(await decrypt(both.ciphertext, { keyring: aesKeyring })).header.encryptionContext }, { '\uFEFFa': '1', a: '2' });
    // The official SDK reads the same context from our message, and we from its.
    const theirs = await official.decrypt(officialKeyring(true), ciphertext);
    assert.deepEqual({ ...theirs.messageHeader.encryptionContext }, encryptionContext);
    const fromOfficial = await official.encrypt(officialKeyring(true), Buffer.from('z'), { encryptionContext: { tenant: '\uFEFFacme' } }); // 0x0578
    assert.equal((await decrypt(Buffer.from(fromOfficial.result), { keyring: aesKeyring })).header.encryptionContext.tenant, '\uFEFFacme');
  });

  it('refuses keys and values with a lone UTF-16 surrogate (UTF-8 cannot carry them)', async () => {
    for (const encryptionContext of [{ '\uD800': 'a', '\uDFFF': 'b' }, { k: '\uD800' }, { k: 'ok\uDC00' }] as Record<string, string>[]) {
      await assert.rejects(encrypt(Buffer.from('x'), { keyring: aesKeyring, encryptionContext }), { code: 'InvalidArgument', message: /well-formed Unicode/ });
    }
    // A surrogate pair is a character like any other.
    const { ciphertext } = await encrypt(Buffer.from('x'), { keyring: aesKeyring, encryptionContext: { '\u{1F511}': '\u{10000}' } });
    assert.equal((await decrypt(ciphertext, { keyring: aesKeyring })).header.encryptionContext['\u{1F511}'], '\u{10000}');
  });

  it('interoperates with the official raw AES keyring on contexts whose UTF-8 and UTF-16 orders differ, given utf8Sorting', async () => {
    for (const encryptionContext of [{ a: '1', B: '2' }, { '\uE000': '1', '\u{10000}': '2' }] as Record<string, string>[]) {
      const ours = await encrypt(Buffer.from('x'), { keyring: aesKeyring, encryptionContext });
      assert.equal(Buffer.from((await official.decrypt(officialKeyring(true), ours.ciphertext)).plaintext).toString(), 'x');
      const theirs = await official.encrypt(officialKeyring(true), Buffer.from('y'), { encryptionContext });
      assert.equal((await decrypt(Buffer.from(theirs.result), { keyring: aesKeyring })).plaintext.toString(), 'y');
      // The documented difference: without utf8Sorting the official keyring orders its wrapping AAD otherwise.
      await assert.rejects(official.decrypt(officialKeyring(false), ours.ciphertext));
    }
  });
});
