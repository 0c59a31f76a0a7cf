import pg from 'pg';
import { StoreConflictError, StoreKeyNotFoundError } from '../types.ts';

/**
 * Where a PostgreSQL store lives: a postgres:// (or postgresql://) URL as libpq and node-postgres
 * read it, plus one Strongroom parameter, `schema`, naming the schema its tables live in (default
 * `public`). Several installations, or parallel test runs, can share one database this way.
 */
export interface PostgresLocation {
  connectionString: string;
  schema: string;
  /** The URL's own `options` (server settings, `-c name=value`), kept ahead of the store's. */
  serverOptions?: string;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Splits Strongroom's `schema` parameter off a URL; the rest goes to node-postgres unchanged. */
export function parsePostgresUrl(url: string): PostgresLocation {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('the database URL is not a valid postgres:// URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error('the database URL must start with postgres:// or postgresql://');
  }
  const schema = parsed.searchParams.get('schema') ?? 'public';
  // The name goes into search_path and CREATE SCHEMA, which take no parameters: only plain
  // lowercase identifiers are accepted, so it never needs quoting.
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error('the database URL schema parameter must be a lowercase SQL identifier ([a-z_][a-z0-9_]*)');
  }
  parsed.searchParams.delete('schema');
  // node-postgres lets a URL's `options` replace the pool's: take it out and put it first, so the
  // store's own settings (search_path, synchronous_commit), given after it, always win.
  const serverOptions = parsed.searchParams.get('options') ?? undefined;
  parsed.searchParams.delete('options');
  return { connectionString: parsed.toString(), schema, ...(serverOptions ? { serverOptions } : {}) };
}

/**
 * A database server that could not be connected to at open: down, a wrong host or port, an
 * unknown role or database, a refused password. The operator's setting to fix, so the CLI names
 * it. `reason` is the driver's message (host and port, role or database name), never the URL's
 * password.
 */
export class DatabaseUnreachableError extends Error {
  override readonly name = 'DatabaseUnreachableError';
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot reach the database: ${reason}`, options);
  }
}

export interface PostgresPoolOptions {
  /** Connections in the pool (default 10). */
  max?: number;
}

/**
 * A pool whose every connection has the store's schema first on its search_path and commits
 * durably: synchronous_commit is set to `on` at connect, whatever the server's default, so a
 * COMMIT returns only once its WAL record is flushed (and, with synchronous standbys configured,
 * replicated).
 */
export function createPool(location: PostgresLocation, options: PostgresPoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: location.connectionString,
    max: options.max ?? 10,
    options: `${location.serverOptions ?? ''} -c search_path=${location.schema} -c synchronous_commit=on`.trimStart(),
    connectionTimeoutMillis: 10_000,
    application_name: 'strongroom',
  });
  // An idle connection that the server drops (restart, failover) emits 'error' on the pool; the
  // pool discards it and opens another on the next query. Without a listener Node would crash.
  pool.on('error', () => {});
  // A connection dropped while checked out (a transaction, the scheduler's advisory-lock session)
  // emits 'error' on its client, which the pool no longer listens to then: without a listener of
  // its own that too would crash the process. Its next query fails instead, and release(error)
  // or pg's own check of a dead client keeps it out of the pool.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/**
 * Takes one connection from the pool and gives it back: a server that cannot be reached or
 * refuses the login fails here as DatabaseUnreachableError, before anything else is tried.
 */
export async function checkReachable(pool: pg.Pool, location: PostgresLocation): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw new DatabaseUnreachableError(withoutPassword(error instanceof Error ? error.message : String(error), location), { cause: error });
  }
  client.release();
}

/** node-postgres does not put the password in its messages; this makes sure of it. */
function withoutPassword(message: string, location: PostgresLocation): string {
  let password = '';
  try {
    password = decodeURIComponent(new URL(location.connectionString).password);
  } catch {
    // parsePostgresUrl accepted it: unreachable.
  }
  return password === '' ? message : message.replaceAll(password, '***');
}

export type Queryable = pg.Pool | pg.PoolClient;
export type Row = Record<string, unknown>;

/**
 * Runs `work` in one transaction on one pooled connection: COMMIT if it resolves, ROLLBACK if
 * it throws. READ COMMITTED (PostgreSQL's default): each statement sees what was committed
 * before it began, and the store takes the row locks its checks need explicitly (FOR UPDATE),
 * so a check and the write it guards cannot be separated by another transaction.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError as Error; // the connection is unusable: the pool must not reuse it
    }
    throw error;
  } finally {
    client.release(broken);
  }
}

/**
 * Runs `work` while holding the session-level advisory lock named `name` on one pooled
 * connection, or returns undefined at once if another session holds it (pg_try_advisory_lock:
 * never waits). The lock lives as long as that connection: a node that dies mid-work releases it
 * with its session, so no lease or expiry is needed. A connection whose unlock failed is
 * discarded, which ends its session and so the lock.
 */
export async function withAdvisoryLockIfFree<T>(pool: pg.Pool, name: string, work: () => Promise<T>): Promise<T | undefined> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onBroken = (error: Error) => {
    broken = error;
    throw error;
  };
  try {
    const taken = await client.query('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [name]).catch(onBroken);
    if (taken.rows[0].locked !== true) return undefined;
    try {
      return await work();
    } finally {
      // An unlock that failed leaves the lock with the session: discarding the connection ends it.
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [name]).catch((error: Error) => {
        broken = error;
      });
    }
  } finally {
    client.release(broken);
  }
}

/** PostgreSQL constraint failures (SQLSTATE) as the store's own errors; anything else unchanged. */
export function storeError(error: unknown): unknown {
  const code = (error as { code?: string }).code;
  if (code === '23505') return new StoreConflictError('name exists'); // unique_violation
  if (code === '23503') return new StoreKeyNotFoundError('key does not exist'); // foreign_key_violation
  return error;
}

export const toMs = (date: Date | undefined | null): number | null => (date == null ? null : date.getTime());
export const toDate = (ms: unknown): Date | undefined => (ms == null ? undefined : new Date(Number(ms)));

/** A seq marker as a number; anything else starts from the beginning. */
export function afterSeq(after: string | undefined): number {
  const seq = after === undefined ? 0 : Number(after);
  return Number.isSafeInteger(seq) && seq > 0 ? seq : 0;
}
