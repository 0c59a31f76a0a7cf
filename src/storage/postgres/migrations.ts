import type pg from 'pg';
import { checkReachable, inTransaction, type PostgresLocation } from './connection.ts';

/**
 * Versioned schema migrations for the PostgreSQL stores. Each component (the metadata store, the
 * audit trail, the shared quota buckets) has its own ordered list; `schema_migrations` records every version applied, and
 * a migration commits in the same transaction as its row there (PostgreSQL's DDL is
 * transactional), so a crash never leaves a half-applied version.
 *
 * Several nodes may start at once against one database: the whole run holds a transaction-level
 * advisory lock keyed by the schema name, so one node applies the pending versions and the others,
 * once it commits, find nothing left to do.
 */
export async function applyMigrations(
  pool: pg.Pool,
  location: PostgresLocation,
  component: 'metadata' | 'audit' | 'quotas',
  migrations: readonly string[],
): Promise<void> {
  // The first use of a new store's pool: an unreachable server is reported as such (the CLI names the setting).
  await checkReachable(pool, location);
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`strongroom-migrations:${location.schema}`]);
    // Created only when missing: CREATE SCHEMA IF NOT EXISTS checks the CREATE privilege on the
    // database first, which a least-privilege role on an existing schema need not have. The name
    // was checked to be a plain lowercase identifier (parsePostgresUrl).
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [location.schema]);
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${location.schema}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         component  text NOT NULL,
         version    integer NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (component, version)
       )`,
    );
    const result = await client.query('SELECT coalesce(max(version), 0) AS version FROM schema_migrations WHERE component = $1', [
      component,
    ]);
    const current = Number(result.rows[0].version);
    if (current > migrations.length) {
      throw new Error(
        `${component} schema version ${current} is newer than this Strongroom understands (${migrations.length})`,
      );
    }
    for (let version = current; version < migrations.length; version++) {
      await client.query(migrations[version]);
      await client.query('INSERT INTO schema_migrations (component, version) VALUES ($1, $2)', [component, version + 1]);
    }
  });
}
