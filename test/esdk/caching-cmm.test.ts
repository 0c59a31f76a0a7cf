/**
 * The caching materials manager: cache ids byte-equal to the official SDK's, and — against a real
 * `strongroom serve` through a KMS keyring — that it really cuts KMS calls, within its limits
 * (max age, messages, bytes), per partition, never for identity-KDF suites or unknown lengths.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildCryptographicMaterialsCacheKeyHelpers } from '@aws-crypto/cache-material';
import type { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CachingCryptographicMaterialsManager,
  LocalCryptographicMaterialsCache,
  decryptionCacheId,
  encryptionCacheId,
  type CachingCmmOptions,
} from '../../src/esdk/caching-cmm.ts';
import { decrypt, encrypt } from '../../src/esdk/index.ts';
import { KmsKeyring, type KmsClientLike } from '../../src/esdk/kms-keyring.ts';
import type { EncryptedDataKey } from '../../src/esdk/types.ts';
import { createKey } from '../support/kms-assertions.ts';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

describe('cache entry ids (caching-cmm.md appendix) equal the official SDK’s', () => {
  const official = buildCryptographicMaterialsCacheKeyHelpers(
    (text: string) => Buffer.from(text, 'utf8'),
    (bytes: Uint8Array) => Buffer.from(bytes).toString('hex'),
    async (...parts: (string | Uint8Array)[]) => {
      const hash = createHash('sha512');
      for (const part of parts) hash.update(part);
      return hash.digest();
    },
  );
  const contexts: Record<string, string>[] = [{}, { tenant: 'acme' }, { b: '2', a: '1', 'aws-crypto-public-key': 'A1b2', 'ключ': 'значение' }];
  const edks: EncryptedDataKey[] = [
    { providerId: 'aws-kms', providerInfo: Buffer.from('arn:aws:kms:us-east-1:111122223333:key/abc'), ciphertext: randomBytes(184) },
    { providerId: 'raw-aes', providerInfo: randomBytes(30), ciphertext: randomBytes(48) },
  ];
  for (const partition of ['p', 'a partition of 64 characters…'.padEnd(64, 'x')]) {
    for (const context of contexts) {
      for (const suiteId of [undefined, 0x0578, 0x0114]) {
        it(`encrypt id: partition ${partition.length} chars, ${Object.keys(context).length} pairs, suite ${suiteId ?? 'none'}`, async () => {
          const expected = await official.buildEncryptionMaterialCacheKey(partition, {
            suite: suiteId === undefined ? undefined : ({ id: suiteId } as never),
            encryptionContext: context,
          } as never);
          assert.equal(encryptionCacheId(partition, suiteId, context).toString('hex'), expected);
        });
      }
      it(`decrypt id: partition ${partition.length} chars, ${Object.keys(context).length} pairs, EDKs in any order`, async () => {
        // The official serialiser takes provider info as text: compare on the KMS EDK, whose info is an ASCII ARN.
        const ascii = [edks[0]];
        const expected = await official.buildDecryptionMaterialCacheKey(partition, {
          suite: { id: 0x0478 },
          encryptedDataKeys: ascii.map((edk) => ({ providerId: edk.providerId, providerInfo: Buffer.from(edk.providerInfo).toString('utf8'), encryptedDataKey: edk.ciphertext })),
          encryptionContext: context,
        } as never);
        assert.equal(decryptionCacheId(partition, 0x0478, ascii, context).toString('hex'), expected);
        assert.deepEqual(decryptionCacheId(partition, 0x0478, edks, context), decryptionCacheId(partition, 0x0478, [...edks].reverse(), context));
      });
    }
  }

  it('separates decrypt entries by reproduced context, and equals the spec id without one', () => {
    const id = (reproduced?: Record<string, string>) => decryptionCacheId('p', 0x0478, edks, { a: '1' }, reproduced).toString('hex');
    assert.equal(id({}), id());
    assert.notEqual(id({ b: '2' }), id());
    assert.notEqual(id({ b: '2' }), id({ b: '3' }));
  });
});

describe('the caching materials manager against strongroom serve', () => {
  let server: RunningServer;
  let kms: KMSClient;
  let keyArn: string;
  const calls: string[] = [];
  /** A real client counting the calls that reach the server. */
  let counting: KmsClientLike;
  const kmsCalls = (name: string) => calls.filter((call) => call === name).length;

  before(async () => {
    server = await startServer({ timeoutMs: 60_000 }); // generous: the CI machine may be busy
    kms = server.kms();
    keyArn = (await createKey(kms)).Arn as string;
    counting = {
      config: kms.config,
      send: (command: GenerateDataKeyCommand | EncryptCommand | DecryptCommand) => {
        calls.push(command.constructor.name.replace(/Command$/, ''));
        return kms.send(command as DecryptCommand);
      },
    } as unknown as KmsClientLike;
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  const keyring = () => new KmsKeyring({ generatorKeyId: keyArn, client: counting });
  const caching = (options: Partial<CachingCmmOptions> = {}) => new CachingCryptographicMaterialsManager({ underlying: keyring(), maxAge: 60_000, ...options });
  const context = { tenant: 'acme' };

  async function encryptMany(cmm: CachingCryptographicMaterialsManager, count: number, size = 1024, encryptionContext = context): Promise<Buffer[]> {
    const messages: Buffer[] = [];
    for (let index = 0; index < count; index++) messages.push((await encrypt(randomBytes(size), { cmm, encryptionContext })).ciphertext);
    return messages;
  }

  it('encrypts 20 messages with one GenerateDataKey and decrypts them with one Decrypt', async () => {
    calls.length = 0;
    const cmm = caching();
    const messages = await encryptMany(cmm, 20);
    assert.deepEqual(calls, ['GenerateDataKey']);
    const plain = new KmsKeyring({ keyIds: [keyArn], client: kms });
    for (const message of messages) assert.equal((await decrypt(message, { keyring: plain })).plaintext.length, 1024);

    calls.length = 0;
    for (const message of messages) assert.equal((await decrypt(message, { cmm })).plaintext.length, 1024);
    assert.deepEqual(calls, ['Decrypt']);
    assert.deepEqual(cmm.stats, { encryptHits: 19, encryptMisses: 1, decryptHits: 19, decryptMisses: 1, bypassed: 0 });
  });

  it('without it, every message costs a KMS call (the baseline the cache cuts)', async () => {
    calls.length = 0;
    for (let index = 0; index < 5; index++) await encrypt(randomBytes(16), { keyring: keyring(), encryptionContext: context });
    assert.equal(kmsCalls('GenerateDataKey'), 5);
  });

  it('uses one data key for at most maxMessagesEncrypted messages', async () => {
    calls.length = 0;
    await encryptMany(caching({ maxMessagesEncrypted: 3 }), 10);
    assert.equal(kmsCalls('GenerateDataKey'), 4);
  });

  it('uses one data key for at most maxBytesEncrypted bytes, and never caches a larger message', async () => {
    calls.length = 0;
    await encryptMany(caching({ maxBytesEncrypted: 2500 }), 5, 1000);
    assert.equal(kmsCalls('GenerateDataKey'), 3);
    calls.length = 0;
    await encryptMany(caching({ maxBytesEncrypted: 2500 }), 3, 3000);
    assert.equal(kmsCalls('GenerateDataKey'), 3);
  });

  it('does not use an entry older than maxAge, for encryption or decryption', async () => {
    let now = 1_000_000;
    const cmm = caching({ maxAge: 500, now: () => now });
    calls.length = 0;
    const [first] = await encryptMany(cmm, 2);
    now += 500;
    await encryptMany(cmm, 1);
    assert.equal(kmsCalls('GenerateDataKey'), 1, 'an entry exactly maxAge old is still used');
    now += 1;
    await encryptMany(cmm, 1);
    assert.equal(kmsCalls('GenerateDataKey'), 2);

    await decrypt(first, { cmm });
    await decrypt(first, { cmm });
    assert.equal(kmsCalls('Decrypt'), 1);
    now += 501;
    await decrypt(first, { cmm });
    assert.equal(kmsCalls('Decrypt'), 2);
  });

  it('keeps separate entries per encryption context', async () => {
    calls.length = 0;
    const cmm = caching();
    await encryptMany(cmm, 2, 100, { tenant: 'a' });
    await encryptMany(cmm, 2, 100, { tenant: 'b' });
    assert.equal(kmsCalls('GenerateDataKey'), 2);
  });

  it('shares entries between managers of one partition over one cache, not across partitions', async () => {
    const cache = new LocalCryptographicMaterialsCache(10);
    calls.length = 0;
    await encryptMany(caching({ cache, partition: 'billing' }), 2);
    await encryptMany(caching({ cache, partition: 'billing' }), 2);
    assert.equal(kmsCalls('GenerateDataKey'), 1);
    await encryptMany(caching({ cache, partition: 'reports' }), 1);
    await encryptMany(caching({ cache }), 1);
    assert.equal(kmsCalls('GenerateDataKey'), 3);
  });

  it('evicts the least recently used entry beyond its capacity', async () => {
    const cmm = caching({ capacity: 2 });
    calls.length = 0;
    for (const tenant of ['a', 'b', 'a', 'c', 'a', 'b']) await encryptMany(cmm, 1, 10, { tenant });
    // a, b miss; a hits; c evicts b; a hits; b misses again.
    assert.equal(kmsCalls('GenerateDataKey'), 4);
  });

  it('never caches an identity-KDF suite', async () => {
    const cmm = caching();
    calls.length = 0;
    for (let index = 0; index < 3; index++) {
      await encrypt(randomBytes(10), { cmm, encryptionContext: context, suiteId: 0x0078, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' });
    }
    assert.equal(kmsCalls('GenerateDataKey'), 3);
    assert.equal(cmm.stats.bypassed, 3);
  });

  it('bypasses the cache when the plaintext length is unknown', async () => {
    const cmm = caching();
    calls.length = 0;
    const request = { encryptionContext: context, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' as const };
    await cmm.getEncryptionMaterials(request);
    await cmm.getEncryptionMaterials(request);
    assert.equal(kmsCalls('GenerateDataKey'), 2);
    await cmm.getEncryptionMaterials({ ...request, plaintextLength: 10 });
    await cmm.getEncryptionMaterials({ ...request, plaintextLength: 10 });
    assert.equal(kmsCalls('GenerateDataKey'), 3);
  });

  it('hands out copies: zeroing one message’s data key does not touch the cached one', async () => {
    const cmm = caching();
    const request = { encryptionContext: context, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' as const, plaintextLength: 1 };
    const first = await cmm.getEncryptionMaterials(request);
    const original = Buffer.from(first.plaintextDataKey as Uint8Array);
    first.plaintextDataKey?.fill(0);
    const second = await cmm.getEncryptionMaterials(request);
    assert.deepEqual(Buffer.from(second.plaintextDataKey as Uint8Array), original);
    assert.notEqual(second.plaintextDataKey, first.plaintextDataKey);
  });

  it('does not serve a non-committing entry to a caller that requires commitment', async () => {
    const cmm = caching();
    const forbid = await cmm.getEncryptionMaterials({ encryptionContext: context, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT', plaintextLength: 1 });
    assert.equal(forbid.suite.id, 0x0378);
    const require = await cmm.getEncryptionMaterials({ encryptionContext: context, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT', plaintextLength: 1 });
    assert.equal(require.suite.id, 0x0578);
  });

  it('still refuses a message whose reproduced context differs from a cached one', async () => {
    const cmm = caching();
    const [message] = await encryptMany(cmm, 1);
    await decrypt(message, { cmm, encryptionContext: context });
    await assert.rejects(decrypt(message, { cmm, encryptionContext: { tenant: 'globex' } }), { code: 'ContextMismatch' });
  });

  it('still enforces REQUIRE_ENCRYPT_REQUIRE_DECRYPT on a cached non-committing message', async () => {
    const cmm = caching();
    const { ciphertext } = await encrypt(randomBytes(10), { cmm, encryptionContext: context, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' });
    await decrypt(ciphertext, { cmm, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' });
    await assert.rejects(decrypt(ciphertext, { cmm, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' }), { code: 'PolicyViolation' });
  });

  const badOptions: [string, Partial<CachingCmmOptions>][] = [
    ['no maxAge', { maxAge: undefined }],
    ['a zero maxAge', { maxAge: 0 }],
    ['maxMessagesEncrypted above 2^32', { maxMessagesEncrypted: 2 ** 32 + 1 }],
    ['a zero maxBytesEncrypted', { maxBytesEncrypted: 0 }],
    ['an empty partition', { partition: '' }],
    ['a zero capacity', { capacity: 0 }],
  ];
  for (const [title, options] of badOptions) {
    it(`rejects ${title}`, () => {
      assert.throws(() => new CachingCryptographicMaterialsManager({ underlying: keyring(), maxAge: 1000, ...options } as CachingCmmOptions), { code: 'InvalidArgument' });
    });
  }
});
