import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { createPool, inTransaction, parsePostgresUrl } from './postgres/connection.ts';
import { PostgresAuditStore } from './postgres/audit-store.ts';
import { PostgresHsmStore } from './postgres/hsm-tables.ts';
import { PostgresMetadataStore } from './postgres/postgres-store.ts';
import { type BatchRow, decodeBatch } from './sqlite/audit-batches.ts';

/**
 * `strongroom migrate`: copies a whole embedded installation (a data directory's strongroom.db
 * and audit.db) into PostgreSQL, row for row: every key with all its versions' sealed material,
 * alias, tag, grant, principal, identity policy, access key, custom key store, HSM cluster, and
 * every audit event and signed digest exactly as stored (so the chain and its signatures verify
 * there unchanged). Sealed values stay sealed under the same root key; nothing is decrypted.
 *
 * One transaction: either everything arrives or nothing does. The target must be empty (its
 * schema is created by the stores' own migrations first). Column sets are compared table by
 * table: a source column the target lacks stops the migration rather than drop data.
 */

/** Source table → target table, in an order that satisfies the foreign keys. */
const METADATA_TABLES: readonly [string, string][] = [
  ['settings', 'settings'],
  ['custom_key_stores', 'custom_key_stores'],
  ['keys', 'keys'],
  ['key_versions', 'key_versions'],
  ['aliases', 'aliases'],
  ['tags', 'tags'],
  ['principals', 'principals'],
  ['identity_policies', 'identity_policies'],
  ['access_keys', 'access_keys'],
  ['grants', 'grants'],
  ['hsm_clusters', 'hsm_clusters'],
  ['hsm_members', 'hsm_members'],
  ['hsm_owed_operations', 'hsm_owed_operations'],
  ['hsm_backups', 'hsm_backups'],
];
/** A version 1 audit.db (not yet opened by this Strongroom) has per-event tables, copied raw too. */
const AUDIT_TABLES: readonly [string, string][] = [
  ['meta', 'audit_meta'],
  ['events', 'audit_events'],
  ['event_keys', 'audit_event_keys'],
  ['digests', 'audit_digests'],
];
const EVENT_COLUMNS = ['seq', 'time', 'text', 'hash', 'event_name', 'principal_arn', 'error_code', 'crypto_success'];
const EVENT_KEY_COLUMNS = ['key_id', 'crypto_success', 'seq'];
const BATCH = 500;

export interface MigrationReport {
  /** Rows copied per target table. */
  rows: Record<string, number>;
}

/** The data directory of a `sqlite:` source: `sqlite:DIR`, or `sqlite:DIR/strongroom.db`. */
export function sqliteDataDir(from: string): string {
  if (!from.startsWith('sqlite:')) throw new Error('--from must be sqlite:<data directory>');
  let path = from.slice('sqlite:'.length);
  if (path.startsWith('//')) path = path.slice(2);
  if (path.endsWith('.db')) path = path.slice(0, path.lastIndexOf('/') + 1) || '.';
  if (!existsSync(join(path, 'strongroom.db')) || !statSync(path).isDirectory()) {
    throw new Error(`no Strongroom data directory at ${path} (it has no strongroom.db)`);
  }
  return path;
}

export async function migrateSqliteToPostgres(dataDir: string, to: string): Promise<MigrationReport> {
  if (!to.startsWith('postgres://') && !to.startsWith('postgresql://')) throw new Error('--to must be a postgres:// URL');
  // The stores create (or upgrade) the target schema; then they are closed and rows copied raw.
  for (const open of [PostgresMetadataStore.open, PostgresAuditStore.open, PostgresHsmStore.open]) await (await open(to)).close();
  const metadata = new Database(join(dataDir, 'strongroom.db'), { readonly: true, fileMustExist: true });
  const auditPath = join(dataDir, 'audit.db');
  const audit = existsSync(auditPath) ? new Database(auditPath, { readonly: true, fileMustExist: true }) : undefined;
  const pool = createPool(parsePostgresUrl(to), { max: 1 });
  try {
    return await inTransaction(pool, async (client) => {
      const rows: Record<string, number> = {};
      for (const [source, target] of METADATA_TABLES) rows[target] = await copyTable(metadata, client, source, target);
      if (audit) {
        for (const [source, target] of AUDIT_TABLES) rows[target] = await copyTable(audit, client, source, target);
        if (hasTable(audit, 'batches')) Object.assign(rows, await copyAuditBatches(audit, client));
      }
      await resetIdentities(client);
      return { rows };
    });
  } finally {
    metadata.close();
    audit?.close();
    await pool.end();
  }
}

interface TargetColumn {
  type: string;
  identity: boolean;
}

async function targetColumns(client: pg.PoolClient, table: string): Promise<Map<string, TargetColumn>> {
  const result = await client.query<{ column_name: string; data_type: string; is_identity: string }>(
    `SELECT column_name, data_type, is_identity FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = $1`,
    [table],
  );
  return new Map(result.rows.map((row) => [row.column_name, { type: row.data_type, identity: row.is_identity === 'YES' }]));
}

function hasTable(source: Database.Database, table: string): boolean {
  return source.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

/**
 * SQLite keeps events in batch rows (sqlite/audit-batches.ts); PostgreSQL keeps a row per event.
 * Each batch is decoded into the per-event rows (texts and hashes as stored) and their keys.
 */
async function copyAuditBatches(source: Database.Database, client: pg.PoolClient): Promise<Record<string, number>> {
  for (const table of ['audit_events', 'audit_event_keys']) {
    const present = await client.query(`SELECT 1 FROM ${table} LIMIT 1`);
    if (present.rowCount) throw new Error(`the target's ${table} is not empty: migrate into an empty database`);
  }
  let events: unknown[][] = [];
  let keys: unknown[][] = [];
  const copied = { audit_events: 0, audit_event_keys: 0 };
  const flush = async () => {
    copied.audit_events += await insertRows(client, 'audit_events', EVENT_COLUMNS, events);
    copied.audit_event_keys += await insertRows(client, 'audit_event_keys', EVENT_KEY_COLUMNS, keys);
    events = [];
    keys = [];
  };
  for (const row of source.prepare('SELECT * FROM batches ORDER BY first_seq').iterate() as Iterable<BatchRow>) {
    for (const event of decodeBatch(row)) {
      const { seq, cryptoSuccess } = event;
      events.push([seq, event.time.getTime(), event.text, event.hash, event.eventName, event.principalArn ?? null, event.errorCode ?? null, cryptoSuccess]);
      for (const keyId of new Set(event.keyIds)) keys.push([keyId, cryptoSuccess, seq]);
    }
    if (events.length >= BATCH || keys.length >= BATCH) await flush();
  }
  await flush();
  return copied;
}

/** One multi-row INSERT; `overriding` writes identity columns as given (OVERRIDING SYSTEM VALUE). */
async function insertRows(
  client: pg.PoolClient,
  table: string,
  columns: readonly string[],
  rows: unknown[][],
  overriding = false,
): Promise<number> {
  if (rows.length === 0) return 0;
  const values: unknown[] = [];
  const tuples = rows.map((row) => `(${row.map((value) => (values.push(value), `$${values.length}`)).join(', ')})`);
  await client.query(
    `INSERT INTO ${table} (${columns.join(', ')}) ${overriding ? 'OVERRIDING SYSTEM VALUE ' : ''}VALUES ${tuples.join(', ')}`,
    values,
  );
  return rows.length;
}

async function copyTable(source: Database.Database, client: pg.PoolClient, from: string, to: string): Promise<number> {
  if (!hasTable(source, from)) return 0;
  const target = await targetColumns(client, to);
  if (target.size === 0) throw new Error(`the target has no table ${to}`);
  const present = await client.query(`SELECT 1 FROM ${to} LIMIT 1`);
  // Seeded rows (the store's migrations insert fixed ones) are replaced; anything else means the target is in use.
  if (present.rowCount && to !== 'settings' && to !== 'audit_meta') throw new Error(`the target's ${to} is not empty: migrate into an empty database`);
  const columns = (source.prepare(`PRAGMA table_info(${from})`).all() as { name: string }[]).map((column) => column.name);
  const missing = columns.filter((column) => !target.has(column));
  if (missing.length > 0) throw new Error(`the target's ${to} lacks column(s) ${missing.join(', ')}: upgrade Strongroom first`);
  if (to === 'settings' || to === 'audit_meta') await client.query(`DELETE FROM ${to}`);
  const identity = columns.some((column) => target.get(column)?.identity);
  const convert = columns.map((column) => (target.get(column)?.type === 'boolean' ? (value: unknown) => (value === null ? null : value === 1) : (value: unknown) => value));
  const statement = source.prepare(`SELECT ${columns.join(', ')} FROM ${from}`).raw(true);
  let batch: unknown[][] = [];
  let copied = 0;
  const flush = async () => {
    copied += await insertRows(client, to, columns, batch.map((row) => row.map((value, index) => convert[index](value))), identity);
    batch = [];
  };
  for (const row of statement.iterate() as Iterable<unknown[]>) {
    batch.push(row);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return copied;
}

/** Identity sequences continue after the copied rows, so new rows never reuse a number. */
async function resetIdentities(client: pg.PoolClient): Promise<void> {
  const identities = await client.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns
     WHERE table_schema = current_schema() AND is_identity = 'YES'`,
  );
  for (const { table_name: table, column_name: column } of identities.rows) {
    await client.query(
      `SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT max(${column}) FROM ${table}), 0) + 1, false)`,
      [table, column],
    );
  }
}
