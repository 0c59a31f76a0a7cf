import type pg from 'pg';
import { createPool, parsePostgresUrl, type PostgresLocation } from './connection.ts';
import { applyMigrations } from './migrations.ts';

/**
 * Request-rate quota buckets shared by every node (src/service/quota-lease.ts): component `quotas`
 * of schema_migrations, so it versions apart from the metadata and audit tables. One row per
 * bucket (a quota class, or `control:<Operation>`): the tokens it held at `refilled_at`, by the
 * database's clock, so the nodes' own clocks never matter.
 */
export const POSTGRES_QUOTA_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE quota_buckets (
    bucket      text PRIMARY KEY,
    tokens      double precision NOT NULL,
    refilled_at timestamptz NOT NULL
  );
  `,
];

/**
 * One statement: lock the row (a concurrent claim on any node waits, then reads the tokens it
 * left), refill by the time elapsed on the database's clock up to the capacity, take
 * min(wanted, available) whole tokens when at least one is there, write the rest back. Under READ
 * COMMITTED a waiter re-reads the row's newest version once the lock is its, so two claims never
 * spend the same tokens. clock_timestamp() may be read before the lock wait ends: the elapsed time
 * is then clamped at zero and refilled_at never moves back, so a late reader refills nothing.
 */
const CLAIM = `
  WITH current AS (
    SELECT bucket, refilled_at, clock_timestamp() AS at,
           least($3::float8, tokens + greatest(0, extract(epoch FROM clock_timestamp() - refilled_at)) * $2::float8) AS available
    FROM quota_buckets WHERE bucket = $1 FOR UPDATE
  ), taken AS (
    SELECT bucket, refilled_at, at, available,
           CASE WHEN available >= 1 THEN floor(least($4::float8, available)) ELSE 0 END AS granted
    FROM current
  )
  UPDATE quota_buckets AS b
  SET tokens = t.available - t.granted, refilled_at = greatest(t.refilled_at, t.at)
  FROM taken AS t WHERE b.bucket = t.bucket
  RETURNING t.granted`;

/** A bucket seen for the first time starts full. */
const CREATE = `INSERT INTO quota_buckets (bucket, tokens, refilled_at) VALUES ($1, $2, clock_timestamp()) ON CONFLICT (bucket) DO NOTHING`;

/** The shared buckets; fits the service's QuotaClaims. */
export class PostgresQuotaBuckets {
  static async open(url: string | PostgresLocation): Promise<PostgresQuotaBuckets> {
    const location = typeof url === 'string' ? parsePostgresUrl(url) : url;
    // One claim in flight per bucket and process (quota-lease.ts): a few connections suffice.
    const pool = createPool(location, { max: 4 });
    // A claim need not survive a database crash (it would hand back at most one batch per process
    // and bucket): its commit does not wait for the WAL flush, so claims do not queue behind fsyncs.
    pool.on('connect', (client) => {
      client.query('SET synchronous_commit TO off').catch(() => {});
    });
    try {
      await applyMigrations(pool, location, 'quotas', POSTGRES_QUOTA_MIGRATIONS);
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresQuotaBuckets(pool);
  }

  private constructor(private readonly pool: pg.Pool) {}

  async claim(bucket: string, rate: number, capacity: number, wanted: number): Promise<number> {
    const values = [bucket, rate, capacity, wanted];
    let result = await this.pool.query(CLAIM, values);
    if (result.rowCount === 0) {
      await this.pool.query(CREATE, [bucket, capacity]);
      result = await this.pool.query(CLAIM, values);
    }
    return Number(result.rows[0]?.granted ?? 0);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
