import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { AuditStore } from '../../src/storage/audit-types.ts';
import type { HsmStore } from '../../src/storage/index.ts';
import { PostgresAuditStore, type PostgresAuditStoreOptions } from '../../src/storage/postgres/audit-store.ts';
import { PostgresHsmStore } from '../../src/storage/postgres/hsm-tables.ts';
import { PostgresMetadataStore } from '../../src/storage/postgres/postgres-store.ts';
import { SqliteAuditStore, type SqliteAuditStoreOptions } from '../../src/storage/sqlite/audit-store.ts';
import { SqliteHsmStore } from '../../src/storage/sqlite/hsm-tables.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite/sqlite-store.ts';
import type { KeyRecord, MetadataStore } from '../../src/storage/types.ts';

/**
 * The storage backends every contract test runs against. PostgreSQL is the machine's
 * (127.0.0.1:5432, trust auth, database `test`; .ci/run starts it); each test gets a schema of its
 * own, dropped afterwards, so parallel test files never meet. If PostgreSQL is down the tests
 * fail, saying so: they never skip.
 */
export const POSTGRES_TEST_URL = process.env.STRONGROOM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type AuditOptions = Omit<SqliteAuditStoreOptions & PostgresAuditStoreOptions, 'readonly'>;

/** One empty database for one test. */
export interface TestDatabase {
  /** The URL openMetadataStore/openAuditStore (src/storage/index.ts) take. */
  readonly url: string;
  /** Opens another store on the same database: another connection (SQLite) or pool (PostgreSQL). */
  openMetadataStore(): Promise<MetadataStore>;
  openAuditStore(options?: AuditOptions): Promise<AuditStore>;
  openHsmStore(): Promise<HsmStore>;
  /** Counts rows straight from the database, past any store: `where` uses ? placeholders. */
  countRows(table: string, where: string, ...values: unknown[]): Promise<number>;
  drop(): Promise<void>;
}

export interface StorageBackend {
  readonly name: 'sqlite' | 'postgres';
  create(): Promise<TestDatabase>;
}

const sqlite: StorageBackend = {
  name: 'sqlite',
  async create() {
    const dir = await mkdtemp(join(tmpdir(), 'strongroom-storage-'));
    const path = join(dir, 'strongroom.db');
    return {
      url: `sqlite:${path}`,
      openMetadataStore: async () => new SqliteMetadataStore(path),
      openAuditStore: async (options = {}) => new SqliteAuditStore(join(dir, 'audit.db'), options),
      openHsmStore: async () => new SqliteHsmStore(path),
      async countRows(table, where, ...values) {
        const db = new Database(path, { readonly: true });
        try {
          return (db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`).get(...values) as { n: number }).n;
        } finally {
          db.close();
        }
      },
      drop: () => rm(dir, { recursive: true, force: true }),
    };
  },
};

/** Runs `sql` on a connection of its own (to the schema when given). */
export async function postgresQuery(sql: string, values: unknown[] = [], schema?: string): Promise<pg.QueryResult> {
  const client = new pg.Client({
    connectionString: POSTGRES_TEST_URL,
    connectionTimeoutMillis: 5_000,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${POSTGRES_TEST_URL} (${(error as Error).message}). ` +
        'The storage tests run against SQLite and PostgreSQL and do not skip: start PostgreSQL ' +
        '(.ci/run does: pg_ctlcluster <version> main start) or set STRONGROOM_TEST_POSTGRES_URL.',
    );
  }
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

/** A fresh schema name: strongroom_test_<random>. */
export const testSchemaName = (): string => `strongroom_test_${randomBytes(8).toString('hex')}`;

export function postgresUrl(schema: string): string {
  const url = new URL(POSTGRES_TEST_URL);
  url.searchParams.set('schema', schema);
  return url.toString();
}

const postgres: StorageBackend = {
  name: 'postgres',
  async create() {
    const schema = testSchemaName();
    await postgresQuery(`CREATE SCHEMA ${schema}`);
    const url = postgresUrl(schema);
    return {
      url,
      openMetadataStore: () => PostgresMetadataStore.open(url),
      openAuditStore: (options = {}) => PostgresAuditStore.open(url, options),
      openHsmStore: () => PostgresHsmStore.open(url),
      async countRows(table, where, ...values) {
        let n = 0;
        const numbered = where.replace(/\?/g, () => `$${++n}`);
        const result = await postgresQuery(`SELECT count(*) AS n FROM ${table} WHERE ${numbered}`, values, schema);
        return Number(result.rows[0].n);
      },
      drop: async () => {
        await postgresQuery(`DROP SCHEMA ${schema} CASCADE`);
      },
    };
  },
};

export const BACKENDS: readonly StorageBackend[] = [sqlite, postgres];

/** Declares the suite once per backend, as `<title> [sqlite]` and `<title> [postgres]`. */
export function forEachBackend(title: string, suite: (backend: StorageBackend) => void): void {
  for (const backend of BACKENDS) describe(`${title} [${backend.name}]`, () => suite(backend));
}

/** An enabled symmetric key's record, created at 2025-01-01, for tests that need one in a store. */
export function testKeyRecord(overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    keyId: randomUUID(),
    createdAt: new Date('2025-01-01T00:00:00Z'),
    description: '',
    keyUsage: 'ENCRYPT_DECRYPT',
    keySpec: 'SYMMETRIC_DEFAULT',
    origin: 'AWS_KMS',
    state: 'Enabled',
    policy: '{}',
    rotationEnabled: false,
    currentVersion: 1,
    onDemandRotationCount: 0,
    ...overrides,
  };
}
