import type { AuditStore } from './audit-types.ts';
import { PostgresAuditStore } from './postgres/audit-store.ts';
import { PostgresHsmStore } from './postgres/hsm-tables.ts';
import { PostgresMetadataStore } from './postgres/postgres-store.ts';
import { PostgresQuotaBuckets } from './postgres/quota-buckets.ts';
import { SqliteAuditStore } from './sqlite/audit-store.ts';
import { SqliteHsmStore } from './sqlite/hsm-tables.ts';
import { SqliteMetadataStore } from './sqlite/sqlite-store.ts';
import type { MetadataStore } from './types.ts';

export { DatabaseUnreachableError } from './postgres/connection.ts';

/**
 * Picks the storage backend from a database URL:
 *
 *   sqlite:PATH                    the embedded default (PATH as given; sqlite:///abs/path also works)
 *   postgres://user@host:port/db   PostgreSQL (postgresql:// too); libpq parameters as node-postgres
 *                                  reads them, plus `schema=<name>` for the schema to use (default public)
 *
 * Errors never repeat the URL: it may carry a password.
 */

export type DatabaseBackend = 'sqlite' | 'postgres';

export function databaseBackend(url: string): DatabaseBackend {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return 'postgres';
  throw new Error('unsupported database URL: use sqlite:<path> or postgres://user@host:port/database');
}

function sqlitePath(url: string): string {
  const rest = url.slice('sqlite:'.length);
  const path = rest.startsWith('//') ? rest.slice(2) : rest;
  if (path === '') throw new Error('the sqlite: database URL names no file');
  return path;
}

export async function openMetadataStore(url: string): Promise<MetadataStore> {
  return databaseBackend(url) === 'sqlite' ? new SqliteMetadataStore(sqlitePath(url)) : PostgresMetadataStore.open(url);
}

export interface AuditStoreOptions {
  digestEveryEvents?: number;
  digestIntervalMs?: number;
  now?: () => Date;
  /** How long an append waits for the chain's write lock. */
  busyTimeoutMs?: number;
}

export async function openAuditStore(url: string, options: AuditStoreOptions = {}): Promise<AuditStore> {
  return databaseBackend(url) === 'sqlite'
    ? new SqliteAuditStore(sqlitePath(url), options)
    : PostgresAuditStore.open(url, options);
}

/** HSM cluster configuration (both classes fit keystores' HsmClusterCatalog and the CLI's needs). */
export type HsmStore = SqliteHsmStore | PostgresHsmStore;

export async function openHsmStore(url: string): Promise<HsmStore> {
  return databaseBackend(url) === 'sqlite' ? new SqliteHsmStore(sqlitePath(url)) : PostgresHsmStore.open(url);
}

/**
 * Request-rate quota buckets shared by the nodes of a PostgreSQL installation; undefined for
 * SQLite, whose one server keeps each process's share in memory (service/quotas.ts).
 */
export async function openQuotaBuckets(url: string): Promise<PostgresQuotaBuckets | undefined> {
  return databaseBackend(url) === 'sqlite' ? undefined : PostgresQuotaBuckets.open(url);
}
