import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALGORITHM_SUITE_IDS, decrypt, decryptStream, encrypt, encryptStream, getAlgorithmSuite, PUBLIC_KEY_CONTEXT_KEY } from '../../src/esdk/index.ts';
import { SUITES, aesKeyring, collect, pattern, policyFor } from './support/fixtures.ts';

describe('ESDK round trips', () => {
  it('knows exactly the eleven ESDK suites and refuses 0x0000, DBE and S3EC ids', () => {
    assert.deepEqual([...ALGORITHM_SUITE_IDS].sort((a, b) => a - b), SUITES);
    for (const id of [0x0000, 0x6700, 0x6701, 0x0070, 0x0074, 0x0479]) {
      assert.throws(() => getAlgorithmSuite(id), { code: 'UnsupportedSuite' });
    }
  });

  for (const suiteId of SUITES) {
    const suite = getAlgorithmSuite(suiteId);
    it(`suite 0x${suiteId.toString(16).padStart(4, '0')}: framed and non-framed, buffered and streaming, lengths around the frame`, async () => {
      const context = { purpose: 'round trip', 'ключ': 'значение' };
      for (const length of [0, 1, 99, 100, 101, 1000]) {
        const plaintext = pattern(length, suiteId + length);
        for (const contentType of ['framed', 'non-framed'] as const) {
          const options = {
            keyring: aesKeyring,
            suiteId,
            commitmentPolicy: policyFor(suiteId),
            encryptionContext: context,
            contentType,
            ...(contentType === 'framed' ? { frameLength: 100 } : {}),
          };
          const { ciphertext, header } = await encrypt(plaintext, options);
          assert.equal(header.version, suite.messageFormatVersion);
          assert.equal(header.suiteId, suiteId);
          assert.equal(header.contentType, contentType);
          assert.equal(header.frameLength, contentType === 'framed' ? 100 : 0);
          assert.equal(header.messageId.length, suite.committing ? 32 : 16);
          assert.equal(Object.hasOwn(header.encryptionContext, PUBLIC_KEY_CONTEXT_KEY), suite.signature !== undefined);
          assert.equal(ciphertext[0], suite.messageFormatVersion);
          const decrypted = await decrypt(ciphertext, { keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT', encryptionContext: context });
          assert.deepEqual(decrypted.plaintext, plaintext);
          assert.deepEqual(decrypted.header.encryptionContext, header.encryptionContext);

          const streamed = await collect(encryptStream({ ...options, plaintextLength: length }), [plaintext.subarray(0, 37), plaintext.subarray(37)]);
          const chunks = [];
          for (let i = 0; i < streamed.length; i += 61) chunks.push(streamed.subarray(i, i + 61));
          assert.deepEqual(await collect(decryptStream({ keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }), chunks), plaintext);
          assert.deepEqual((await decrypt(streamed, { keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })).plaintext, plaintext);
        }
      }
    });
  }

  it('uses 0x0578 and 4096-byte frames by default, and writes a final frame even after full frames', async () => {
    const plaintext = pattern(8192);
    const { ciphertext, header } = await encrypt(plaintext, { keyring: aesKeyring });
    assert.equal(header.suiteId, 0x0578);
    assert.equal(header.frameLength, 4096);
    const { plaintext: decrypted } = await decrypt(ciphertext, { keyring: aesKeyring });
    assert.deepEqual(decrypted, plaintext);
  });

  it('the header info carries the commitment key and the header authentication, the same on both sides', async () => {
    for (const suiteId of [0x0578, 0x0478, 0x0378, 0x0014]) {
      const options = { keyring: aesKeyring, suiteId, commitmentPolicy: policyFor(suiteId) };
      const { ciphertext, header } = await encrypt(Buffer.from('x'), options);
      const { header: read } = await decrypt(ciphertext, options);
      const version = suiteId >= 0x0478 ? 2 : 1;
      assert.equal(header.commitmentKey?.length, version === 2 ? 32 : undefined);
      assert.deepEqual(read.commitmentKey && Buffer.from(read.commitmentKey), header.commitmentKey && Buffer.from(header.commitmentKey));
      assert.deepEqual(Buffer.from(read.headerAuth.tag), Buffer.from(header.headerAuth.tag));
      assert.equal(header.headerAuth.tag.length, 16);
      // Version 1 carries its header IV (zeros when written by us), version 2 uses 12 zero bytes.
      assert.deepEqual(Buffer.from(read.headerAuth.iv), Buffer.alloc(12));
      const tagAt = ciphertext.indexOf(Buffer.from(header.headerAuth.tag));
      assert.ok(tagAt > 0 && tagAt < 400, 'the tag is the header tag of this message');
    }
  });

  it('refuses bad options with InvalidArgument', async () => {
    await assert.rejects(encrypt(Buffer.alloc(1), { keyring: aesKeyring, frameLength: 0 }), { code: 'InvalidArgument' });
    await assert.rejects(encrypt(Buffer.alloc(1), { keyring: aesKeyring, frameLength: 2 ** 32 }), { code: 'InvalidArgument' });
    await assert.rejects(encrypt(Buffer.alloc(1), {}), { code: 'InvalidArgument' });
    await assert.rejects(encrypt(Buffer.alloc(1), { keyring: aesKeyring, encryptionContext: { 'aws-crypto-x': 'y' } }), { code: 'InvalidArgument' });
    await assert.rejects(encrypt(Buffer.alloc(1), { keyring: aesKeyring, plaintextLength: 2 }), { code: 'InvalidArgument' });
    await assert.rejects(encrypt(Buffer.alloc(1), { keyring: aesKeyring, suiteId: 0x0479 }), { code: 'UnsupportedSuite' });
    assert.throws(() => decryptStream({}), { code: 'InvalidArgument' });
  });
});
