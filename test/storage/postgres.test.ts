import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import pg from 'pg';
import { digestSealer } from '../../src/service/audit/digests.ts';
import { publicKeyIdOf } from '../../src/service/audit/signing-key.ts';
import { verifyStore } from '../../src/service/audit/verify.ts';
import { databaseBackend, openAuditStore, openMetadataStore } from '../../src/storage/index.ts';
import { PostgresAuditStore } from '../../src/storage/postgres/audit-store.ts';
import { parsePostgresUrl } from '../../src/storage/postgres/connection.ts';
import { POSTGRES_AUDIT_MIGRATIONS } from '../../src/storage/postgres/audit-schema.ts';
import { PostgresMetadataStore } from '../../src/storage/postgres/postgres-store.ts';
import { POSTGRES_MIGRATIONS } from '../../src/storage/postgres/schema.ts';
import { SqliteAuditStore } from '../../src/storage/sqlite/audit-store.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { StoreLimitError, type KeyRecord, type MetadataStore } from '../../src/storage/types.ts';
import { POSTGRES_TEST_URL, postgresQuery, postgresUrl, testSchemaName, testKeyRecord } from './backends.ts';

const T0 = new Date('2025-01-01T00:00:00Z');

async function createKey(store: MetadataStore, overrides: Partial<KeyRecord> = {}): Promise<string> {
  const key: KeyRecord = testKeyRecord(overrides);
  await store.createKey(key, { keyId: key.keyId, version: 1, keyMaterialId: randomBytes(32).toString('hex'), sealedMaterial: randomBytes(60), createdAt: T0 }, []);
  return key.keyId;
}

const version = (keyId: string, n: number) => ({
  keyId,
  version: n,
  keyMaterialId: randomBytes(32).toString('hex'),
  sealedMaterial: randomBytes(60),
  createdAt: T0,
});

describe('database URLs', () => {
  test('a postgres URL keeps its libpq parameters and gives up only the schema parameter', () => {
    const location = parsePostgresUrl('postgres://u:secret@db.example:6543/kms?sslmode=require&schema=tenant_a');
    assert.equal(location.schema, 'tenant_a');
    assert.equal(location.connectionString, 'postgres://u:secret@db.example:6543/kms?sslmode=require');
    assert.equal(parsePostgresUrl('postgresql://db/kms').schema, 'public');
  });

  test("a URL's own server options are kept, and cannot turn off durable commits or move the schema", async () => {
    const schema = testSchemaName();
    const url = new URL(postgresUrl(schema));
    url.searchParams.set('options', '-c synchronous_commit=off -c search_path=public -c statement_timeout=12345');
    const store = await PostgresMetadataStore.open(url.toString());
    try {
      const pool = (store as unknown as { pool: pg.Pool }).pool;
      const settings = await pool.query(
        `SELECT current_setting('synchronous_commit') AS sync, current_schema() AS schema, current_setting('statement_timeout') AS timeout`,
      );
      assert.deepEqual(settings.rows[0], { sync: 'on', schema, timeout: '12345ms' });
    } finally {
      await store.close();
      await postgresQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });

  test('a schema that is not a plain lowercase identifier is refused before anything connects', () => {
    for (const schema of ['Tenant', 'a;drop', 'a-b', '1abc', '"x"', '']) {
      assert.throws(() => parsePostgresUrl(`postgres://db/kms?schema=${encodeURIComponent(schema)}`), /schema parameter/);
    }
  });

  test('an unsupported URL is refused without repeating it (it may hold a password)', async () => {
    for (const url of ['mysql://u:hunter2@db/kms', 'hunter2', 'file:/tmp/x.db']) {
      assert.throws(() => databaseBackend(url), (error: Error) => !error.message.includes('hunter2') && /sqlite:<path> or postgres:\/\//.test(error.message));
    }
    await assert.rejects(openMetadataStore('sqlite:'), /names no file/);
  });

  test('the factory opens SQLite for sqlite: and PostgreSQL for postgres://', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strongroom-factory-'));
    const schema = testSchemaName();
    try {
      const sqliteStore = await openMetadataStore(`sqlite:${join(dir, 'strongroom.db')}`);
      const sqliteAudit = await openAuditStore(`sqlite://${join(dir, 'audit.db')}`);
      assert.ok(sqliteStore instanceof SqliteMetadataStore);
      assert.ok(sqliteAudit instanceof SqliteAuditStore);
      await sqliteStore.close();
      await sqliteAudit.close();
      const postgresStore = await openMetadataStore(postgresUrl(schema));
      const postgresAudit = await openAuditStore(postgresUrl(schema));
      assert.ok(postgresStore instanceof PostgresMetadataStore);
      assert.ok(postgresAudit instanceof PostgresAuditStore);
      await postgresStore.close();
      await postgresAudit.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
      await postgresQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });

  test('a PostgreSQL that is not there fails the open with the connection error, promptly', async () => {
    const started = Date.now();
    await assert.rejects(PostgresMetadataStore.open('postgres://postgres@127.0.0.1:9/test'), /ECONNREFUSED/);
    assert.ok(Date.now() - started < 10_000);
  });
});

describe('PostgreSQL only', () => {
  let schema: string;
  let url: string;
  const stores: { close(): Promise<void> }[] = [];
  const track = <T extends { close(): Promise<void> }>(store: T): T => {
    stores.push(store);
    return store;
  };

  beforeEach(() => {
    schema = testSchemaName();
    url = postgresUrl(schema);
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close().catch(() => {});
    await postgresQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  describe('migrations', () => {
    test('applies every migration at first open, creating the schema, and records each version', async () => {
      track(await PostgresMetadataStore.open(url));
      track(await PostgresAuditStore.open(url));
      const applied = await postgresQuery('SELECT component, version FROM schema_migrations ORDER BY component, version', [], schema);
      assert.deepEqual(applied.rows, [
        ...POSTGRES_AUDIT_MIGRATIONS.map((_, index) => ({ component: 'audit', version: index + 1 })),
        ...POSTGRES_MIGRATIONS.map((_, index) => ({ component: 'metadata', version: index + 1 })),
      ]);
      const tables = await postgresQuery(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
        [schema],
      );
      assert.deepEqual(
        tables.rows.map((row) => row.table_name),
        [
          'access_keys', 'aliases', 'audit_chain_lock', 'audit_digests', 'audit_event_keys', 'audit_events', 'audit_meta',
          'audit_probe', 'custom_key_stores', 'grants', 'hsm_backups', 'hsm_clusters', 'hsm_members', 'hsm_owed_operations',
          'identity_policies', 'insert_locks', 'key_versions', 'keys', 'principals', 'schema_migrations', 'settings', 'tags',
        ],
      );
    });

    test('a second open keeps the data and does not re-run the migrations', async () => {
      const first = await PostgresMetadataStore.open(url);
      const keyId = await createKey(first);
      await first.putSettingIfAbsent('account-id', '111122223333');
      await first.close();
      const second = track(await PostgresMetadataStore.open(url));
      assert.equal((await second.getKey(keyId))?.keyId, keyId);
      assert.equal(await second.getSetting('account-id'), '111122223333');
      const count = await postgresQuery(`SELECT count(*) AS n FROM schema_migrations WHERE component = 'metadata'`, [], schema);
      assert.equal(Number(count.rows[0].n), POSTGRES_MIGRATIONS.length);
    });

    test('refuses a schema whose version is newer than this release understands', async () => {
      await (await PostgresMetadataStore.open(url)).close();
      await postgresQuery(`INSERT INTO schema_migrations (component, version) VALUES ('metadata', $1)`, [POSTGRES_MIGRATIONS.length + 1], schema);
      await assert.rejects(PostgresMetadataStore.open(url), /newer than this Strongroom understands/);
    });

    test('several nodes starting at once against an empty database migrate it once', async () => {
      const opened = await Promise.all([1, 2, 3, 4].map(() => PostgresMetadataStore.open(url)));
      opened.forEach(track);
      const count = await postgresQuery('SELECT count(*) AS n FROM schema_migrations', [], schema);
      assert.equal(Number(count.rows[0].n), POSTGRES_MIGRATIONS.length);
    });

    test('every connection commits durably (synchronous_commit on) in the store schema', async () => {
      const store = track(await PostgresMetadataStore.open(url));
      const pool = (store as unknown as { pool: pg.Pool }).pool;
      const settings = await pool.query(`SELECT current_setting('synchronous_commit') AS sync, current_schema() AS schema`);
      assert.deepEqual(settings.rows[0], { sync: 'on', schema });
    });
  });

  describe('two nodes racing (two pools)', () => {
    test('compare-and-set: of two rotations from the same current version exactly one wins, every round', async () => {
      const a = track(await PostgresMetadataStore.open(url));
      const b = track(await PostgresMetadataStore.open(url));
      const keyId = await createKey(a);
      for (let current = 1; current <= 20; current++) {
        const results = await Promise.all([
          a.addKeyVersion(version(keyId, current + 1), current, { countOnDemand: true }),
          b.addKeyVersion(version(keyId, current + 1), current, { countOnDemand: true }),
        ]);
        assert.equal(results.filter(Boolean).length, 1, `round ${current}: ${results}`);
      }
      const key = await b.getKey(keyId);
      assert.equal(key?.currentVersion, 21);
      assert.equal(key?.onDemandRotationCount, 20);
      assert.deepEqual((await a.listKeyVersions(keyId)).map((v) => v.version), Array.from({ length: 21 }, (_, i) => i + 1));
    });

    test('compare-and-set: a disable and a schedule-deletion racing on an enabled key, one wins', async () => {
      const a = track(await PostgresMetadataStore.open(url));
      const b = track(await PostgresMetadataStore.open(url));
      for (let round = 0; round < 10; round++) {
        const keyId = await createKey(a);
        const [disabled, scheduled] = await Promise.all([
          a.updateKey(keyId, { state: 'Disabled' }, ['Enabled']),
          b.updateKey(keyId, { state: 'PendingDeletion', deletionDate: T0, pendingWindowInDays: 7 }, ['Enabled']),
        ]);
        assert.equal(Number(disabled) + Number(scheduled), 1);
        const key = await a.getKey(keyId);
        assert.equal(key?.state, disabled ? 'Disabled' : 'PendingDeletion');
        assert.equal(key?.deletionDate === undefined, disabled);
        // A rotation racing a disable never adds a version to a key that ends up disabled.
        const other = await createKey(a);
        const [rotated, off] = await Promise.all([
          a.addKeyVersion(version(other, 2), 1, { countOnDemand: true }),
          b.updateKey(other, { state: 'Disabled' }, ['Enabled']),
        ]);
        assert.equal(off, true);
        assert.equal((await a.listKeyVersions(other)).length, rotated ? 2 : 1);
      }
    });

    test('per-key limits hold when two nodes create grants and aliases at once', async () => {
      const a = track(await PostgresMetadataStore.open(url));
      const b = track(await PostgresMetadataStore.open(url));
      const keyId = await createKey(a);
      const grant = () => ({
        grantId: randomBytes(32).toString('hex'),
        keyId,
        granteePrincipal: 'arn:aws:iam::111122223333:role/app',
        operations: ['Decrypt'],
        issuingAccount: '111122223333',
        createdAt: T0,
      });
      const attempts = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).createGrant(grant(), 5)));
      assert.equal(attempts.filter((r) => r.status === 'fulfilled').length, 5);
      for (const r of attempts) if (r.status === 'rejected') assert.ok(r.reason instanceof StoreLimitError, String(r.reason));
      assert.equal((await a.grantsForKey(keyId)).length, 5);

      const aliases = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          (i % 2 ? a : b).createAlias({ aliasName: `alias/race-${i}`, targetKeyId: keyId, createdAt: T0, updatedAt: T0 }, 3),
        ),
      );
      assert.equal(aliases.filter((r) => r.status === 'fulfilled').length, 3);
      assert.equal((await b.listAliases(10, undefined, keyId)).items.length, 3);
    });

    test('keys created concurrently by two nodes page without gaps or repeats', async () => {
      const a = track(await PostgresMetadataStore.open(url));
      const b = track(await PostgresMetadataStore.open(url));
      const created = await Promise.all(Array.from({ length: 30 }, (_, i) => createKey(i % 2 ? a : b)));
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await a.listKeys(7, after);
        seen.push(...page.items.map((key) => key.keyId));
        after = page.nextAfter;
      } while (after !== undefined);
      assert.deepEqual([...seen].sort(), [...created].sort());
    });
  });

  describe('audit trail', () => {
    const realKey = () => {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      return { privateKey, publicKey, publicKeyId: publicKeyIdOf(publicKey) };
    };

    test('three nodes (pools) appending concurrently make one gap-free chain that verifies', async () => {
      const key = realKey();
      const seal = digestSealer(key);
      const nodes = await Promise.all([0, 1, 2].map(() => PostgresAuditStore.open(url, { digestEveryEvents: 5 })));
      nodes.forEach(track);
      const perNode = 40;
      await Promise.all(
        nodes.map(async (node, nodeIndex) => {
          // Each node keeps several appends in flight, as a busy server's writer does.
          const inFlight = Array.from({ length: 4 }, async (_, lane) => {
            for (let batch = 0; batch < perNode / 4; batch++) {
              const entries = Array.from({ length: 1 + (batch % 3) }, (_, i) => ({
                text: JSON.stringify({ node: nodeIndex, lane, batch, i }),
                time: new Date(),
                eventName: 'Encrypt',
                keyIds: ['key-a'],
                cryptoSuccess: true,
              }));
              await node.append(entries, seal);
            }
          });
          await Promise.all(inFlight);
        }),
      );
      const perLane = Array.from({ length: perNode / 4 }, (_, batch) => 1 + (batch % 3)).reduce((a, b) => a + b, 0);
      const result = await verifyStore(nodes[0], key.publicKey, { digestEveryEvents: 5 });
      assert.equal(result.ok, true, JSON.stringify(result));
      const events = await nodes[1].readEvents(1, 10_000);
      assert.equal(result.events, events.length);
      assert.equal(events.length, 3 * 4 * perLane, 'every acknowledged event, once');
      assert.deepEqual(events.map((e) => e.seq), Array.from({ length: events.length }, (_, i) => i + 1));
      const order = events.map((e) => (JSON.parse(e.text) as { node: number }).node);
      assert.ok(order.filter((n, i) => i > 0 && n !== order[i - 1]).length > 2, 'the nodes took turns');
      assert.equal(new Set(order).size, 3);
    });

    test('an append that cannot get the chain lock in time fails and writes nothing; the next one chains on', async () => {
      const store = track(await PostgresAuditStore.open(url, { busyTimeoutMs: 200 }));
      const seal = () => ({ text: '{}', signature: Buffer.alloc(64) });
      const entry = (n: number) => ({ text: `{"n":${n}}`, time: T0, eventName: 'Encrypt', keyIds: [], cryptoSuccess: true });
      await store.append([entry(1)], seal);
      const holder = new pg.Client({ connectionString: POSTGRES_TEST_URL, options: `-c search_path=${schema}` });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT id FROM audit_chain_lock WHERE id = 1 FOR UPDATE');
        await assert.rejects(store.append([entry(2)], seal), { code: '55P03' }); // lock_not_available
        await holder.query('ROLLBACK');
      } finally {
        await holder.end();
      }
      assert.equal((await store.tail()).lastSeq, 1);
      assert.equal((await store.append([entry(3)], seal)).firstSeq, 2);
    });

    test('probe is a committed write; a NUL in an indexed field does not fail the batch', async () => {
      const store = track(await PostgresAuditStore.open(url));
      await store.probe();
      await store.append([], () => ({ text: '{}', signature: Buffer.alloc(64) }), { probe: true });
      const probes = await postgresQuery('SELECT writes FROM audit_probe', [], schema);
      assert.equal(Number(probes.rows[0].writes), 2);
      const text = JSON.stringify({ keyId: 'bad\u0000id' });
      const result = await store.append(
        [{ text, time: T0, eventName: 'Encrypt', keyIds: ['bad\u0000id'], cryptoSuccess: false, errorCode: 'NotFoundException' }],
        () => ({ text: '{}', signature: Buffer.alloc(64) }),
      );
      assert.equal(result.lastSeq, 1);
      assert.equal((await store.readEvents(1, 1))[0].text, text, 'the event text is kept verbatim');
      assert.equal((await store.query({ limit: 10, keyId: 'bad\uFFFDid' })).length, 1);
    });
  });
});
