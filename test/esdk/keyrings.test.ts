import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { EsdkError, MultiKeyring, RawAesKeyring, decrypt, encrypt, type Keyring } from '../../src/esdk/index.ts';
import { pkcs1Unpad } from '../../src/esdk/keyrings/pkcs1-unpad.ts';
import { aesKeyring, otherAesKeyring, rsaKeyring } from './support/fixtures.ts';

describe('raw AES keyring (framework/raw-aes-keyring.md)', () => {
  it('writes provider id = namespace and provider info = key name ‖ 128 ‖ 12 ‖ IV', async () => {
    const { header } = await encrypt(Buffer.from('x'), { keyring: aesKeyring });
    const [edk] = header.encryptedDataKeys;
    assert.equal(edk.providerId, 'strongroom-test');
    const info = Buffer.from(edk.providerInfo);
    assert.equal(info.subarray(0, 7).toString(), 'aes-256');
    assert.equal(info.readUInt32BE(7), 128);
    assert.equal(info.readUInt32BE(11), 12);
    assert.equal(info.length, 7 + 8 + 12);
    assert.equal(edk.ciphertext.length, 32 + 16);
  });

  it('accepts 128-, 192- and 256-bit wrapping keys and refuses others and the aws-kms namespace', async () => {
    for (const size of [16, 24, 32]) {
      const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: randomBytes(size) });
      const { ciphertext } = await encrypt(Buffer.from('x'), { keyring });
      assert.equal((await decrypt(ciphertext, { keyring })).plaintext.toString(), 'x');
    }
    assert.throws(() => new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: randomBytes(20) }), { code: 'InvalidArgument' });
    assert.throws(() => new RawAesKeyring({ keyNamespace: 'aws-kms', keyName: 'k', wrappingKey: randomBytes(32) }), { code: 'InvalidArgument' });
  });

  it('the wrong wrapping key, name or namespace decrypts nothing: NoDecryptableKey', async () => {
    const { ciphertext } = await encrypt(Buffer.from('x'), { keyring: aesKeyring });
    for (const keyring of [
      otherAesKeyring,
      new RawAesKeyring({ keyNamespace: 'strongroom-test', keyName: 'other', wrappingKey: Buffer.alloc(32) }),
      new RawAesKeyring({ keyNamespace: 'other', keyName: 'aes-256', wrappingKey: Buffer.alloc(32) }),
    ]) {
      await assert.rejects(decrypt(ciphertext, { keyring }), { code: 'NoDecryptableKey' });
    }
  });
});

describe('raw RSA keyring (framework/raw-rsa-keyring.md)', () => {
  for (const padding of ['pkcs1', 'oaep-sha1', 'oaep-sha256', 'oaep-sha384', 'oaep-sha512'] as const) {
    it(`${padding}: a public-key-only keyring encrypts, the private key decrypts; other paddings do not`, async () => {
      const { ciphertext, header } = await encrypt(Buffer.from('rsa'), { keyring: rsaKeyring(padding, 'public') });
      assert.equal(Buffer.from(header.encryptedDataKeys[0].providerInfo).toString(), 'rsa-2048');
      assert.equal(header.encryptedDataKeys[0].ciphertext.length, 256);
      assert.equal((await decrypt(ciphertext, { keyring: rsaKeyring(padding, 'private') })).plaintext.toString(), 'rsa');
      await assert.rejects(decrypt(ciphertext, { keyring: rsaKeyring(padding, 'public') }), { code: 'NoDecryptableKey' });
      const other = padding === 'pkcs1' ? 'oaep-sha256' : 'pkcs1';
      await assert.rejects(decrypt(ciphertext, { keyring: rsaKeyring(other, 'private') }), { code: 'NoDecryptableKey' });
    });
  }

  it('PKCS#1 v1.5 unpadding accepts only 00 02, ≥ 8 non-zero padding bytes, 00, and a message of the expected length', () => {
    const good = Buffer.concat([Buffer.from([0, 2]), Buffer.alloc(221, 0x5a), Buffer.from([0]), Buffer.alloc(32, 7)]);
    assert.deepEqual(Buffer.from(pkcs1Unpad(good, 32)!), Buffer.alloc(32, 7));
    assert.equal(pkcs1Unpad(good, 16), undefined);
    const badType = Buffer.from(good);
    badType[1] = 1;
    assert.equal(pkcs1Unpad(badType, 32), undefined);
    const shortPadding = Buffer.concat([Buffer.from([0, 2]), Buffer.alloc(7, 1), Buffer.from([0]), Buffer.alloc(246, 7)]);
    assert.equal(pkcs1Unpad(shortPadding, 246), undefined);
    const noSeparator = Buffer.concat([Buffer.from([0, 2]), Buffer.alloc(254, 1)]);
    assert.equal(pkcs1Unpad(noSeparator, 32), undefined);
  });
});

describe('multi-keyring (framework/multi-keyring.md)', () => {
  it('the generator makes the data key and every child wraps it; any one of them decrypts', async () => {
    const rsa = rsaKeyring('oaep-sha256');
    const multi = new MultiKeyring({ generator: aesKeyring, children: [rsa] });
    const { ciphertext, header } = await encrypt(Buffer.from('multi'), { keyring: multi });
    assert.deepEqual(header.encryptedDataKeys.map((k) => k.providerId), ['strongroom-test', 'strongroom-test']);
    assert.equal((await decrypt(ciphertext, { keyring: aesKeyring })).plaintext.toString(), 'multi');
    assert.equal((await decrypt(ciphertext, { keyring: rsa })).plaintext.toString(), 'multi');
    assert.equal((await decrypt(ciphertext, { keyring: new MultiKeyring({ children: [otherAesKeyring, rsa] }) })).plaintext.toString(), 'multi');
  });

  it('on decrypt, a failing child does not stop the next one', async () => {
    const failing: Keyring = { onEncrypt: () => Promise.reject(new Error('down')), onDecrypt: () => Promise.reject(new Error('down')) };
    const { ciphertext } = await encrypt(Buffer.from('x'), { keyring: aesKeyring });
    assert.equal((await decrypt(ciphertext, { keyring: new MultiKeyring({ children: [failing, aesKeyring] }) })).plaintext.toString(), 'x');
  });

  it('on decrypt, when no child yields the key, the children\'s errors are reported, each named', async () => {
    const { ciphertext } = await encrypt(Buffer.from('x'), { keyring: aesKeyring });
    const denied: Keyring = { onEncrypt: (m) => Promise.resolve(m), onDecrypt: () => Promise.reject(new EsdkError('KeyringFailure', 'AccessDeniedException: not authorized')) };
    const down: Keyring = { onEncrypt: (m) => Promise.resolve(m), onDecrypt: () => Promise.reject(new TypeError('socket hang up')) };
    await assert.rejects(decrypt(ciphertext, { keyring: new MultiKeyring({ children: [denied, otherAesKeyring, down] }) }), (error: EsdkError) => {
      assert.equal(error.code, 'KeyringFailure');
      assert.match(error.message, /2 of 3 failed \(counted from 1\): keyring 1: KeyringFailure: AccessDeniedException: not authorized; keyring 3: TypeError: socket hang up$/);
      assert.ok(error.cause instanceof AggregateError);
      assert.equal((error.cause as AggregateError).errors.length, 2);
      return true;
    });
    // No child failed, none matched: NoDecryptableKey, as from a single keyring.
    await assert.rejects(decrypt(ciphertext, { keyring: new MultiKeyring({ children: [otherAesKeyring] }) }), { code: 'NoDecryptableKey' });
  });

  it('on decrypt, a child yielding a data key of the wrong length is skipped for the next one', async () => {
    const { ciphertext } = await encrypt(Buffer.from('x'), { keyring: aesKeyring });
    const yielded: Buffer[] = [];
    const wrongLength: Keyring = {
      onEncrypt: (m) => Promise.resolve(m),
      onDecrypt: (m) => {
        yielded.push(Buffer.alloc(16, 7));
        return Promise.resolve({ ...m, plaintextDataKey: yielded[yielded.length - 1] });
      },
    };
    assert.equal((await decrypt(ciphertext, { keyring: new MultiKeyring({ children: [wrongLength, aesKeyring] }) })).plaintext.toString(), 'x');
    assert.deepEqual(yielded[0], Buffer.alloc(16), 'the refused key is wiped');
    await assert.rejects(decrypt(ciphertext, { keyring: new MultiKeyring({ children: [wrongLength] }) }), { code: 'KeyringFailure', message: /wrong length/ });
  });

  it('on encrypt, a failing child fails the call; no generator and no data key is an error', async () => {
    const failing: Keyring = { onEncrypt: () => Promise.reject(new EsdkError('KeyringFailure', 'down')), onDecrypt: (m) => Promise.resolve(m) };
    await assert.rejects(encrypt(Buffer.from('x'), { keyring: new MultiKeyring({ generator: aesKeyring, children: [failing] }) }), { code: 'KeyringFailure' });
    await assert.rejects(encrypt(Buffer.from('x'), { keyring: new MultiKeyring({ children: [aesKeyring] }) }), { code: 'KeyringFailure' });
    assert.throws(() => new MultiKeyring({}), { code: 'InvalidArgument' });
  });
});
