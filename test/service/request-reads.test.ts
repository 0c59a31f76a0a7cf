/**
 * The per-request read path: a signed request reads each row it depends on once, not once per
 * layer that needs it. The store is wrapped by a counter above any cache it has, so the counts
 * are what a store without a cache (PostgreSQL) would be asked; the request goes through the
 * real `strongroom serve` handler with a real SDK client over loopback.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import pino from 'pino';
import { createRequestHandler, type ServeOptions } from '../../src/cli/serve.ts';
import { AccessKeyResolver, newAccessKey, storeAccessKey } from '../../src/service/access-keys.ts';
import type { ServiceContext } from '../../src/service/context.ts';
import type { MetadataStore } from '../../src/storage/types.ts';
import { Harness } from '../support/service-harness.ts';

const COUNTED = ['getAccessKey', 'getPrincipal', 'listIdentityPolicies', 'getKey', 'getKeyVersion', 'getAlias'] as const;

function countingStore(store: MetadataStore, counts: Map<string, number>): MetadataStore {
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (!(COUNTED as readonly (string | symbol)[]).includes(property)) return value.bind(target);
      return (...args: unknown[]) => {
        counts.set(property as string, (counts.get(property as string) ?? 0) + 1);
        return value.apply(target, args);
      };
    },
  });
}

describe('one request, one read of each row it depends on', () => {
  let dataDir: string;
  let h: Harness;
  let keyId: string;
  let server: Server;
  let kms: KMSClient;
  const counts = new Map<string, number>();

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strongroom-request-reads-'));
    h = await Harness.open(dataDir);
    keyId = await h.createKey();
    await h.call('CreateAlias', { AliasName: 'alias/reads', TargetKeyId: keyId });
    const store = countingStore(h.instance.store, counts);
    const context: ServiceContext = { ...h.instance.context, store, now: () => new Date() };
    const accessKey = newAccessKey();
    await storeAccessKey(store, context.sealer, accessKey, h.principalArn, new Date());
    const instance = { ...h.instance, store, context, accessKeys: new AccessKeyResolver(store, context.sealer) };
    const options = { region: 'us-east-1' } as ServeOptions;
    server = createServer(createRequestHandler(instance, options, pino({ level: 'silent' }), { context }));
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    kms = new KMSClient({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: 'us-east-1',
      credentials: {
        accessKeyId: accessKey.accessKeyId,
        secretAccessKey: accessKey.secretAccessKey.exposeSecretBytes().toString('utf8'),
      },
      maxAttempts: 1,
    });
    // The first request records the access key's use (once an hour): not part of the steady path.
    await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('warm') }));
  });

  beforeEach(() => counts.clear());

  after(async () => {
    kms.destroy();
    await new Promise((done) => server.close(done));
    await h.instance.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** What one Encrypt or Decrypt by key id reads: each record once. */
  const ENCRYPT_READS = { getAccessKey: 1, getKey: 1, getPrincipal: 1, listIdentityPolicies: 1, getKeyVersion: 1 };

  test('Encrypt by key id reads the access key, the principal, its policies, the key and the version once each', async () => {
    await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
    assert.deepEqual(Object.fromEntries(counts), ENCRYPT_READS);
  });

  test('Encrypt by alias adds only the alias read; Decrypt reads as Encrypt does', async () => {
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: 'alias/reads', Plaintext: Buffer.from('x') }));
    assert.deepEqual(Object.fromEntries(counts), { ...ENCRYPT_READS, getAlias: 1 });
    counts.clear();
    await kms.send(new DecryptCommand({ CiphertextBlob }));
    assert.deepEqual(Object.fromEntries(counts), ENCRYPT_READS);
  });

  test('a request refused before any policy decision still names its user, read once for the event', async () => {
    await assert.rejects(kms.send(new EncryptCommand({ KeyId: 'not-a-key', Plaintext: Buffer.from('x') })), {
      name: 'NotFoundException',
    });
    assert.equal(counts.get('getAccessKey'), 1);
    assert.equal(counts.get('getPrincipal'), 1);
  });
});
