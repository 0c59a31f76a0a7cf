import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from '../../src/storage/sqlite/schema.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite/sqlite-store.ts';
import {
  StoreConflictError,
  StoreKeyNotFoundError,
  StoreLimitError,
  type KeyRecord,
  type KeyVersionRecord,
  type MetadataStore,
  type TagRecord,
} from '../../src/storage/types.ts';
import { forEachBackend, type TestDatabase, testKeyRecord } from './backends.ts';

const T0 = new Date('2025-01-01T00:00:00Z');
const DAY_MS = 24 * 60 * 60 * 1000;

const keyRecord = testKeyRecord;

function versionRecord(keyId: string, version: number, overrides: Partial<KeyVersionRecord> = {}): KeyVersionRecord {
  return {
    keyId,
    version,
    keyMaterialId: randomBytes(32).toString('hex'),
    sealedMaterial: randomBytes(60),
    createdAt: T0,
    rotationType: undefined,
    ...overrides,
  };
}

/** Creates a key with its first version; returns the key id. */
async function createKey(store: MetadataStore, tags: TagRecord[] = [], overrides: Partial<KeyRecord> = {}) {
  const key = keyRecord(overrides);
  await store.createKey(key, versionRecord(key.keyId, 1), tags);
  return key.keyId;
}

/** Counts rows of `table` belonging to the key, read straight from the database. */
function countRows(db: TestDatabase, table: 'keys' | 'key_versions' | 'tags' | 'aliases', keyId: string): Promise<number> {
  const column = table === 'aliases' ? 'target_key_id' : 'key_id';
  return db.countRows(table, `${column} = ?`, keyId);
}

forEachBackend('MetadataStore: keys, versions, aliases and tags', (backend) => {
  let db: TestDatabase;
  let store: MetadataStore;

  beforeEach(async () => {
    db = await backend.create();
    store = await db.openMetadataStore();
  });

  afterEach(async () => {
    await store.close().catch(() => {});
    await db.drop();
  });

  describe('createKey', () => {
    test('stores the key, its first version and its tags together', async () => {
      const key = keyRecord({ description: 'orders' });
      const first = versionRecord(key.keyId, 1);
      await store.createKey(key, first, [
        { tagKey: 'b', tagValue: '2' },
        { tagKey: 'a', tagValue: '1' },
      ]);
      assert.deepEqual(await store.getKey(key.keyId), {
        ...key,
        deletionDate: undefined,
        pendingWindowInDays: undefined,
        rotationPeriodInDays: undefined,
        nextRotationAt: undefined,
      });
      assert.deepEqual(await store.getKeyVersion(key.keyId, 1), first);
      assert.deepEqual(await store.listTags(key.keyId), [
        { tagKey: 'a', tagValue: '1' },
        { tagKey: 'b', tagValue: '2' },
      ]);
    });

    test('leaves nothing behind when its first version cannot be stored', async () => {
      const key = keyRecord();
      // A version for a key that does not exist violates the foreign key, after the key row was inserted.
      const orphan = versionRecord(randomUUID(), 1);
      await assert.rejects(store.createKey(key, orphan, [{ tagKey: 'a', tagValue: '1' }]));
      assert.equal(await store.getKey(key.keyId), undefined);
      assert.equal(await countRows(db, 'keys', key.keyId), 0);
      assert.equal(await countRows(db, 'key_versions', orphan.keyId), 0);
      assert.equal(await countRows(db, 'tags', key.keyId), 0);
    });

    test('leaves nothing behind when one of its tags cannot be stored', async () => {
      const key = keyRecord();
      const badTag = { tagKey: 'b', tagValue: null } as unknown as TagRecord;
      await assert.rejects(store.createKey(key, versionRecord(key.keyId, 1), [{ tagKey: 'a', tagValue: '1' }, badTag]));
      assert.equal(await countRows(db, 'keys', key.keyId), 0);
      assert.equal(await countRows(db, 'key_versions', key.keyId), 0);
      assert.equal(await countRows(db, 'tags', key.keyId), 0);
    });
  });

  describe('addKeyVersion', () => {
    test('adds a version and makes it current when expectedCurrent is the current version', async () => {
      const keyId = await createKey(store, [], { rotationEnabled: true, nextRotationAt: new Date(T0.getTime() + DAY_MS) });
      const second = versionRecord(keyId, 2, { rotationType: 'AUTOMATIC' });
      const next = new Date(T0.getTime() + 91 * DAY_MS);
      assert.equal(await store.addKeyVersion(second, 1, { nextRotationAt: next, countOnDemand: false }), true);
      const key = await store.getKey(keyId);
      assert.equal(key?.currentVersion, 2);
      assert.deepEqual(key?.nextRotationAt, next);
      assert.equal(key?.onDemandRotationCount, 0);
      assert.deepEqual(await store.getKeyVersion(keyId, 2), second);
    });

    test('a stale expectedCurrent returns false and adds nothing', async () => {
      const keyId = await createKey(store);
      assert.equal(await store.addKeyVersion(versionRecord(keyId, 2), 1, { countOnDemand: true }), true);
      // A second writer that read version 1 loses the race.
      const loser = versionRecord(keyId, 2);
      assert.equal(await store.addKeyVersion(loser, 1, { countOnDemand: true }), false);
      const key = await store.getKey(keyId);
      assert.equal(key?.currentVersion, 2);
      assert.equal(key?.onDemandRotationCount, 1);
      const versions = await store.listKeyVersions(keyId);
      assert.deepEqual(
        versions.map((version) => version.version),
        [1, 2],
      );
      assert.notEqual(versions[1].keyMaterialId, loser.keyMaterialId);
    });

    test('returns false for a key that does not exist and adds no orphan version', async () => {
      const keyId = randomUUID();
      assert.equal(await store.addKeyVersion(versionRecord(keyId, 2), 1, { countOnDemand: false }), false);
      assert.equal(await countRows(db, 'key_versions', keyId), 0);
    });

    test('keeps, clears or sets the next rotation date as the patch says', async () => {
      const scheduled = new Date(T0.getTime() + 30 * DAY_MS);
      const keyId = await createKey(store, [], { rotationEnabled: true, nextRotationAt: scheduled });
      await store.addKeyVersion(versionRecord(keyId, 2), 1, { countOnDemand: true });
      assert.deepEqual((await store.getKey(keyId))?.nextRotationAt, scheduled, 'undefined keeps the date');
      await store.addKeyVersion(versionRecord(keyId, 3), 2, { nextRotationAt: null, countOnDemand: false });
      assert.equal((await store.getKey(keyId))?.nextRotationAt, undefined, 'null clears the date');
      assert.equal((await store.getKey(keyId))?.onDemandRotationCount, 1);
    });
  });

  describe('compare-and-set and limits', () => {
    test('updateKey applies the patch only in an expected state; null clears a field', async () => {
      const keyId = await createKey(store);
      const deletion = new Date(T0.getTime() + 7 * DAY_MS);
      assert.equal(await store.updateKey(keyId, { state: 'Enabled' }, ['Disabled']), false);
      assert.equal(await store.updateKey(keyId, { state: 'PendingDeletion', deletionDate: deletion, pendingWindowInDays: 7 }, ['Enabled', 'Disabled']), true);
      assert.deepEqual((await store.getKey(keyId))?.deletionDate, deletion);
      assert.equal(await store.updateKey(keyId, { state: 'Disabled' }, ['Enabled']), false, 'a stale expectation loses');
      assert.equal(await store.updateKey(keyId, { state: 'Disabled', deletionDate: null, pendingWindowInDays: null }, ['PendingDeletion']), true);
      const key = await store.getKey(keyId);
      assert.deepEqual([key?.state, key?.deletionDate, key?.pendingWindowInDays], ['Disabled', undefined, undefined]);
      assert.equal(await store.updateKey(keyId, { rotationEnabled: true, rotationPeriodInDays: 90 }, ['Disabled']), true);
      assert.equal((await store.getKey(keyId))?.rotationEnabled, true);
      assert.equal(await store.updateKey(keyId, {}, ['Disabled']), false, 'an empty patch changes nothing');
      assert.equal(await store.updateKey(randomUUID(), { state: 'Disabled' }, ['Enabled']), false);
    });

    test('destroyKeyIfDue destroys only a key still pending deletion whose date has come', async () => {
      const due = new Date(T0.getTime() + 7 * DAY_MS);
      const keyId = await createKey(store, [], { state: 'PendingDeletion', deletionDate: due, pendingWindowInDays: 7 });
      assert.equal(await store.destroyKeyIfDue(keyId, new Date(due.getTime() - 1)), false);
      await store.updateKey(keyId, { state: 'Disabled', deletionDate: null }, ['PendingDeletion']); // cancelled meanwhile
      assert.equal(await store.destroyKeyIfDue(keyId, due), false);
      await store.updateKey(keyId, { state: 'PendingDeletion', deletionDate: due }, ['Disabled']);
      assert.equal(await store.destroyKeyIfDue(keyId, due), true);
      assert.equal(await store.getKey(keyId), undefined);
      assert.equal(await countRows(db, 'key_versions', keyId), 0);
    });

    test('aliases and tags beyond their per-key limits are StoreLimitErrors and are not written', async () => {
      const keyId = await createKey(store, [{ tagKey: 'a', tagValue: '1' }]);
      for (const aliasName of ['alias/one', 'alias/two']) {
        await store.createAlias({ aliasName, targetKeyId: keyId, createdAt: T0, updatedAt: T0 }, 2);
      }
      await assert.rejects(store.createAlias({ aliasName: 'alias/three', targetKeyId: keyId, createdAt: T0, updatedAt: T0 }, 2), StoreLimitError);
      assert.equal(await store.getAlias('alias/three'), undefined);
      await store.putTags(keyId, [{ tagKey: 'b', tagValue: '2' }], 2);
      await assert.rejects(store.putTags(keyId, [{ tagKey: 'a', tagValue: 'changed' }, { tagKey: 'c', tagValue: '3' }], 2), StoreLimitError);
      assert.deepEqual(await store.listTags(keyId), [{ tagKey: 'a', tagValue: '1' }, { tagKey: 'b', tagValue: '2' }], 'rolled back whole');
      await store.putTags(keyId, [{ tagKey: 'a', tagValue: 'changed' }], 2); // replacing adds nothing
      await store.removeTags(keyId, ['b', 'absent']);
      assert.deepEqual(await store.listTags(keyId), [{ tagKey: 'a', tagValue: 'changed' }]);
    });

    test('an alias moves atomically, but never to a key that does not exist', async () => {
      const first = await createKey(store);
      const second = await createKey(store);
      await store.createAlias({ aliasName: 'alias/app', targetKeyId: first, createdAt: T0, updatedAt: T0 });
      const later = new Date(T0.getTime() + DAY_MS);
      assert.equal(await store.updateAlias('alias/app', second, later), true);
      assert.deepEqual(await store.getAlias('alias/app'), { aliasName: 'alias/app', targetKeyId: second, createdAt: T0, updatedAt: later });
      await assert.rejects(store.updateAlias('alias/app', randomUUID(), later), StoreKeyNotFoundError);
      assert.equal((await store.getAlias('alias/app'))?.targetKeyId, second);
      assert.equal(await store.updateAlias('alias/none', second, later), false);
      assert.equal(await store.deleteAlias('alias/app'), true);
      assert.equal(await store.deleteAlias('alias/app'), false);
    });

    test('settings are insert-if-absent', async () => {
      assert.equal(await store.getSetting('account-id'), undefined);
      assert.equal(await store.putSettingIfAbsent('account-id', '111122223333'), '111122223333');
      assert.equal(await store.putSettingIfAbsent('account-id', '444455556666'), '111122223333');
    });
  });

  describe('several connections (several nodes)', () => {
    test("a key disabled, scheduled for deletion or destroyed through another connection is seen so by this one's next read", async () => {
      const keyId = await createKey(store);
      await store.createAlias({ aliasName: 'alias/app', targetKeyId: keyId, createdAt: T0, updatedAt: T0 });
      const other = await db.openMetadataStore();
      // A real request arrives through I/O, after any process.nextTick (see SQLite's read cache).
      const nextRequest = () => new Promise<void>((resolve) => setImmediate(resolve));
      try {
        assert.equal((await store.getKey(keyId))?.state, 'Enabled'); // read first: a cache now holds it
        assert.equal((await store.getAlias('alias/app'))?.targetKeyId, keyId);
        await nextRequest();
        assert.equal(await other.updateKey(keyId, { state: 'Disabled' }, ['Enabled']), true);
        await nextRequest();
        assert.equal((await store.getKey(keyId))?.state, 'Disabled');
        await nextRequest();
        await other.updateKey(keyId, { state: 'PendingDeletion', deletionDate: T0, pendingWindowInDays: 7 }, ['Disabled']);
        await nextRequest();
        assert.equal((await store.getKey(keyId))?.state, 'PendingDeletion');
        await nextRequest();
        assert.equal(await other.destroyKeyIfDue(keyId, T0), true);
        await nextRequest();
        assert.equal(await store.getKey(keyId), undefined);
        assert.equal(await store.getKeyVersion(keyId, 1), undefined);
        assert.equal(await store.getAlias('alias/app'), undefined);
      } finally {
        await other.close();
      }
    });
  });

  describe('aliases', () => {
    test('a second alias with a taken name is a StoreConflictError and does not move the first', async () => {
      const first = await createKey(store);
      const second = await createKey(store);
      await store.createAlias({ aliasName: 'alias/app', targetKeyId: first, createdAt: T0, updatedAt: T0 });
      await assert.rejects(
        store.createAlias({ aliasName: 'alias/app', targetKeyId: second, createdAt: T0, updatedAt: T0 }),
        StoreConflictError,
      );
      assert.equal((await store.getAlias('alias/app'))?.targetKeyId, first);
    });

    test('an alias for a key that does not exist is refused', async () => {
      await assert.rejects(
        store.createAlias({ aliasName: 'alias/nowhere', targetKeyId: randomUUID(), createdAt: T0, updatedAt: T0 }),
        (error) => !(error instanceof StoreConflictError),
      );
      assert.equal(await store.getAlias('alias/nowhere'), undefined);
    });
  });

  describe('pagination', () => {
    test('listKeys pages through keys in creation order without gaps or repeats', async () => {
      const created: string[] = [];
      for (let index = 0; index < 7; index++) created.push(await createKey(store));
      const seen: string[] = [];
      const pageSizes: number[] = [];
      let after: string | undefined;
      do {
        const page = await store.listKeys(3, after);
        pageSizes.push(page.items.length);
        seen.push(...page.items.map((key) => key.keyId));
        after = page.nextAfter;
      } while (after !== undefined);
      assert.deepEqual(seen, created);
      assert.deepEqual(pageSizes, [3, 3, 1]);
    });

    test('listKeys gives no marker when the last page is exactly full', async () => {
      for (let index = 0; index < 4; index++) await createKey(store);
      const first = await store.listKeys(2);
      assert.ok(first.nextAfter);
      const second = await store.listKeys(2, first.nextAfter);
      assert.equal(second.items.length, 2);
      assert.equal(second.nextAfter, undefined);
    });

    test('listKeys does not skip a key created after a marker was issued', async () => {
      const [a, b, c] = [await createKey(store), await createKey(store), await createKey(store)];
      const first = await store.listKeys(2);
      assert.deepEqual(
        first.items.map((key) => key.keyId),
        [a, b],
      );
      await store.destroyKey(b);
      await store.destroyKey(c);
      const late = await createKey(store);
      const rest = await store.listKeys(2, first.nextAfter);
      assert.deepEqual(
        rest.items.map((key) => key.keyId),
        [late],
        'a new key must sort after every key listed before it (sequence numbers must not be reused)',
      );
    });

    test('listAliases pages in alias-name order, optionally for one key', async () => {
      const first = await createKey(store);
      const second = await createKey(store);
      const names = ['alias/e', 'alias/a', 'alias/d', 'alias/b', 'alias/c'];
      for (const [index, aliasName] of names.entries()) {
        await store.createAlias({ aliasName, targetKeyId: index % 2 === 0 ? first : second, createdAt: T0, updatedAt: T0 });
      }
      const pages: string[][] = [];
      let after: string | undefined;
      do {
        const page = await store.listAliases(2, after);
        pages.push(page.items.map((alias) => alias.aliasName));
        after = page.nextAfter;
      } while (after !== undefined);
      assert.deepEqual(pages, [['alias/a', 'alias/b'], ['alias/c', 'alias/d'], ['alias/e']]);

      const forFirst = await store.listAliases(2, undefined, first);
      assert.deepEqual(
        forFirst.items.map((alias) => alias.aliasName),
        ['alias/c', 'alias/d'],
      );
      const restForFirst = await store.listAliases(2, forFirst.nextAfter, first);
      assert.deepEqual(
        restForFirst.items.map((alias) => alias.aliasName),
        ['alias/e'],
      );
      assert.equal(restForFirst.nextAfter, undefined);
    });
  });

  describe('destroyKey', () => {
    test('removes the key with its versions, aliases and tags, and nothing of other keys', async () => {
      const doomed = await createKey(store, [{ tagKey: 'a', tagValue: '1' }]);
      const kept = await createKey(store, [{ tagKey: 'a', tagValue: '1' }]);
      await store.addKeyVersion(versionRecord(doomed, 2), 1, { countOnDemand: true });
      await store.createAlias({ aliasName: 'alias/doomed', targetKeyId: doomed, createdAt: T0, updatedAt: T0 });
      await store.createAlias({ aliasName: 'alias/kept', targetKeyId: kept, createdAt: T0, updatedAt: T0 });

      await store.destroyKey(doomed);

      assert.equal(await store.getKey(doomed), undefined);
      assert.deepEqual(await store.listKeyVersions(doomed), []);
      assert.equal(await store.getAlias('alias/doomed'), undefined);
      assert.deepEqual(await store.listTags(doomed), []);
      for (const table of ['keys', 'key_versions', 'tags', 'aliases'] as const) {
        assert.equal(await countRows(db, table, doomed), 0, `${table} rows of the destroyed key`);
      }
      assert.equal((await store.listKeyVersions(kept)).length, 1);
      assert.equal((await store.getAlias('alias/kept'))?.targetKeyId, kept);
      assert.deepEqual(await store.listTags(kept), [{ tagKey: 'a', tagValue: '1' }]);
    });
  });

  test('keysDueForDeletion and keysDueForRotation answer only keys whose date has come', async () => {
    const day = (n: number) => new Date(T0.getTime() + n * DAY_MS);
    const deleting = await createKey(store, [], { state: 'PendingDeletion', deletionDate: day(7), pendingWindowInDays: 7 });
    const rotating = await createKey(store, [], { rotationEnabled: true, rotationPeriodInDays: 90, nextRotationAt: day(90) });
    await createKey(store);
    assert.deepEqual(await store.keysDueForDeletion(day(6)), []);
    assert.deepEqual(await store.keysDueForDeletion(day(7)), [deleting]);
    assert.deepEqual(await store.keysDueForRotation(day(89)), []);
    assert.deepEqual(await store.keysDueForRotation(day(90)), [rotating]);
  });
});

describe('SqliteMetadataStore only: the file, its migrations and secure delete', () => {
  let dir: string;
  let path: string;
  let store: SqliteMetadataStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strongroom-sqlite-'));
    path = join(dir, 'strongroom.db');
    store = new SqliteMetadataStore(path);
  });

  afterEach(async () => {
    await store.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  describe('migrations', () => {
    test('applies every migration at first open and records the schema version in user_version', async () => {
      await store.close();
      const db = new Database(path, { readonly: true });
      try {
        assert.equal(db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
        const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as {
          name: string;
        }[]).map((row) => row.name);
        assert.deepEqual(tables, [
          'access_keys',
          'aliases',
          'custom_key_stores',
          'grants',
          'hsm_backups',
          'hsm_clusters',
          'hsm_members',
          'hsm_owed_operations',
          'identity_policies',
          'key_versions',
          'keys',
          'principals',
          'settings',
          'tags',
        ]);
      } finally {
        db.close();
      }
    });

    test('a second open of the same file keeps its data and does not re-run the migrations', async () => {
      const keyId = await createKey(store, [{ tagKey: 'team', tagValue: 'payments' }]);
      await store.putSettingIfAbsent('account-id', '111122223333');
      await store.close();

      // Re-running migration 1 would fail on CREATE TABLE of an existing table.
      store = new SqliteMetadataStore(path);
      assert.equal((await store.getKey(keyId))?.keyId, keyId);
      assert.deepEqual(await store.listTags(keyId), [{ tagKey: 'team', tagValue: 'payments' }]);
      assert.equal(await store.getSetting('account-id'), '111122223333');
      await store.close();
      const db = new Database(path, { readonly: true });
      try {
        assert.equal(db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
      } finally {
        db.close();
      }
    });

    test('refuses a database whose schema is newer than this release understands', async () => {
      await store.close();
      const db = new Database(path);
      db.pragma(`user_version = ${SQLITE_MIGRATIONS.length + 1}`);
      db.close();
      assert.throws(() => new SqliteMetadataStore(path), /newer than this Strongroom understands/);
    });
  });

  describe('destroyKey', () => {
    test('runs with secure_delete on', () => {
      // secure_delete is a per-connection setting, so it is read on the store's own connection.
      const db = (store as unknown as { db: Database.Database }).db;
      assert.equal(db.pragma('secure_delete', { simple: true }), 1);
    });

    test('leaves no trace of destroyed sealed material in the database files', async () => {
      const marker = Buffer.from('SEALED-MATERIAL-MARKER-'.repeat(4));
      const key = keyRecord();
      await store.createKey(key, versionRecord(key.keyId, 1, { sealedMaterial: marker }), []);
      await createKey(store); // a neighbour, so the page holding the row stays in use
      await store.close();
      assert.ok((await readFile(path)).includes(marker), 'precondition: the material reached the file');

      store = new SqliteMetadataStore(path);
      await store.destroyKey(key.keyId);
      await store.close();
      for (const file of [path, `${path}-wal`]) {
        if (existsSync(file)) assert.equal((await readFile(file)).includes(marker), false, `${file} holds the material`);
      }
    });
  });
});
