/**
 * PostgreSQL's key version cache (src/storage/postgres/key-version-cache.ts): bounded, least
 * recently used out first, never caching an absent row, dropping a key's versions when this
 * node destroys it. Whether a cached version of a key destroyed elsewhere can be *used* is the
 * service's question: test/service/multi-node.test.ts answers it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { KeyVersionCache } from '../../src/storage/postgres/key-version-cache.ts';
import { PostgresMetadataStore } from '../../src/storage/postgres/postgres-store.ts';
import type { KeyVersionRecord } from '../../src/storage/types.ts';
import { postgresQuery, postgresUrl, testKeyRecord, testSchemaName } from './backends.ts';

const T0 = new Date('2025-01-01T00:00:00Z');

const version = (keyId: string, n: number): KeyVersionRecord => ({
  keyId,
  version: n,
  keyMaterialId: randomBytes(32).toString('hex'),
  sealedMaterial: randomBytes(60),
  createdAt: T0,
});

describe('KeyVersionCache', () => {
  test('holds at most its bound, evicting the least recently used', () => {
    const cache = new KeyVersionCache(3);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((keyId) => version(keyId, 1));
    cache.put(a);
    cache.put(b);
    cache.put(c);
    assert.ok(cache.get('a', 1)); // a is now the most recent: b is the oldest
    cache.put(d);
    assert.equal(cache.size, 3);
    assert.equal(cache.get('b', 1), undefined);
    for (const keyId of ['a', 'c', 'd']) assert.equal(cache.get(keyId, 1)?.keyId, keyId);
  });

  test("forgetKey drops every version of that key and no other key's", () => {
    const cache = new KeyVersionCache();
    for (const n of [1, 2, 3]) cache.put(version('doomed', n));
    cache.put(version('doomed-too', 1)); // a key id that shares a prefix
    cache.forgetKey('doomed');
    assert.equal(cache.size, 1);
    assert.ok(cache.get('doomed-too', 1));
  });

  test('cached records are frozen: one caller cannot change what another is handed', () => {
    const cache = new KeyVersionCache();
    const record = cache.put(version('k', 1));
    assert.throws(() => {
      (record as { version: number }).version = 2;
    }, TypeError);
  });
});

describe('PostgreSQL key version reads', () => {
  let schema: string;
  const stores: PostgresMetadataStore[] = [];
  const open = async () => {
    const store = await PostgresMetadataStore.open(postgresUrl(schema));
    stores.push(store);
    return store;
  };

  async function createKey(store: PostgresMetadataStore): Promise<string> {
    const key = testKeyRecord();
    await store.createKey(key, version(key.keyId, 1), []);
    return key.keyId;
  }

  beforeEach(() => {
    schema = testSchemaName();
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close().catch(() => {});
    await postgresQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  test('a version read once is answered from memory after that', async () => {
    const store = await open();
    const keyId = await createKey(store);
    const first = await store.getKeyVersion(keyId, 1);
    assert.ok(first);
    // Behind the store's back (nothing in Strongroom deletes a version alone): still answered.
    await postgresQuery('DELETE FROM key_versions WHERE key_id = $1', [keyId], schema);
    assert.equal(await store.getKeyVersion(keyId, 1), first);
  });

  test('a version that did not exist is read again: a rotation on another node is seen at once', async () => {
    const a = await open();
    const b = await open();
    const keyId = await createKey(a);
    assert.equal(await a.getKeyVersion(keyId, 2), undefined);
    assert.equal(await b.addKeyVersion(version(keyId, 2), 1, { countOnDemand: true }), true);
    assert.equal((await a.getKeyVersion(keyId, 2))?.version, 2);
  });

  test("this node's destruction of a key drops its cached versions", async () => {
    const store = await open();
    const keyId = await createKey(store);
    const due = await createKey(store);
    assert.ok(await store.getKeyVersion(keyId, 1));
    assert.ok(await store.getKeyVersion(due, 1));
    await store.destroyKey(keyId);
    await store.updateKey(due, { state: 'PendingDeletion', deletionDate: T0, pendingWindowInDays: 7 }, ['Enabled']);
    assert.equal(await store.destroyKeyIfDue(due, T0), true);
    assert.equal(await store.getKeyVersion(keyId, 1), undefined);
    assert.equal(await store.getKeyVersion(due, 1), undefined);
  });
});
