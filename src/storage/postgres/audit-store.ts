import type pg from 'pg';
import { ZERO_HASH, chainHash } from '../../crypto/audit-chain.ts';
import type {
  AppendResult,
  AuditDigestRow,
  AuditEntryInput,
  AuditEventRow,
  AuditQuery,
  AuditStore,
  DigestSealer,
} from '../audit-types.ts';
import { DEFAULT_DIGEST_EVERY_EVENTS, DEFAULT_DIGEST_INTERVAL_MS, isAuditEntry } from '../audit-types.ts';
import { POSTGRES_AUDIT_MIGRATIONS } from './audit-schema.ts';
import { createPool, parsePostgresUrl, type PostgresLocation, type Row } from './connection.ts';
import { applyMigrations } from './migrations.ts';
import { appendStatement, type AppendRows } from './audit-append.ts';

export interface PostgresAuditStoreOptions {
  /** Seal after this many events since the last digest (docs: 1,000). */
  digestEveryEvents?: number;
  /** Seal when this long has passed since the last digest and there are new events (docs: 60 s). */
  digestIntervalMs?: number;
  now?: () => Date;
  /** How long an append waits for the chain lock before it fails (lock_timeout; default 10 s). */
  busyTimeoutMs?: number;
  /** Connections in the pool (default 4: appends are serialised by the chain lock anyway). */
  maxConnections?: number;
}

const STARTED_AT = 'started-at';

interface Tail {
  seq: number;
  hash: Buffer;
  digestSeq: number;
  sealedUpTo: number;
  digestTime: number;
  digestText: string | undefined;
}

/** The chain's tail: the last event and the last digest, in one statement (one snapshot). */
const TAIL_SQL = `SELECT e.seq, e.hash, d.seq AS digest_seq, d.last_seq AS sealed_up_to, d.time AS digest_time, d.text AS digest_text
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1) AS e ON true
  LEFT JOIN LATERAL (SELECT seq, last_seq, time, text FROM audit_digests ORDER BY seq DESC LIMIT 1) AS d ON true`;

/**
 * The audit trail in PostgreSQL: one hash chain however many nodes append to it.
 *
 * Every append is one transaction that first locks the single row of audit_chain_lock
 * (SELECT … FOR UPDATE), then reads the tail, then writes its events, their key index rows and
 * any digests due in one statement, and commits. The lock is held to COMMIT, so appends from all
 * connections of all nodes run one after another, each reading the tail its predecessor
 * committed. The tail is read by a statement of its own, after the lock is granted: under READ
 * COMMITTED a statement's snapshot is taken when it starts, so a tail read in the same statement
 * as the lock (or before it) could be the one from before the previous holder committed.
 * seq is also the events' primary key: were the lock ever bypassed, a second writer of the same
 * seq would fail its insert rather than fork the chain.
 *
 * Durability: the pool's connections run with synchronous_commit=on (connection.ts), so append()
 * resolves only once COMMIT has flushed the transaction's WAL.
 */
export class PostgresAuditStore implements AuditStore {
  #closed = false;
  private readonly beginAndReadTail: string;

  /** Connects, applies pending migrations and records the trail's start time at first open. */
  static async open(url: string | PostgresLocation, options: PostgresAuditStoreOptions = {}): Promise<PostgresAuditStore> {
    const location = typeof url === 'string' ? parsePostgresUrl(url) : url;
    const now = options.now ?? (() => new Date());
    const pool = createPool(location, { max: options.maxConnections ?? 4 });
    try {
      await applyMigrations(pool, location, 'audit', POSTGRES_AUDIT_MIGRATIONS);
      await pool.query('INSERT INTO audit_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
        STARTED_AT,
        String(now().getTime()),
      ]);
      const started = await pool.query('SELECT value FROM audit_meta WHERE name = $1', [STARTED_AT]);
      return new PostgresAuditStore(pool, Number(started.rows[0].value), now, options);
    } catch (error) {
      await pool.end();
      throw error;
    }
  }

  private readonly digestEveryEvents: number;
  private readonly digestIntervalMs: number;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly startedAt: number,
    private readonly now: () => Date,
    options: PostgresAuditStoreOptions,
  ) {
    this.digestEveryEvents = positiveInteger(options.digestEveryEvents ?? DEFAULT_DIGEST_EVERY_EVENTS, 'digestEveryEvents');
    this.digestIntervalMs = positiveInteger(options.digestIntervalMs ?? DEFAULT_DIGEST_INTERVAL_MS, 'digestIntervalMs');
    const busyTimeoutMs = positiveInteger(options.busyTimeoutMs ?? 10_000, 'busyTimeoutMs');
    // One round trip: three statements in one simple query, each with its own snapshot. The
    // timeout is a checked integer, so it can be written into the text.
    this.beginAndReadTail = `BEGIN; SET LOCAL lock_timeout = ${busyTimeoutMs};
      SELECT id FROM audit_chain_lock WHERE id = 1 FOR UPDATE; ${TAIL_SQL}`;
  }

  private tailFromRow(row: Row | undefined): Tail {
    return {
      seq: Number(row?.seq ?? 0),
      hash: (row?.hash as Buffer | null | undefined) ?? ZERO_HASH,
      digestSeq: Number(row?.digest_seq ?? 0),
      sealedUpTo: Number(row?.sealed_up_to ?? 0),
      digestTime: row?.digest_time == null ? this.startedAt : Number(row.digest_time),
      digestText: (row?.digest_text as string | null | undefined) ?? undefined,
    };
  }

  private digestDueByTime(tail: Tail, now: number): boolean {
    return tail.seq > tail.sealedUpTo && now - tail.digestTime >= this.digestIntervalMs;
  }

  async append(
    entries: readonly AuditEntryInput[],
    seal: DigestSealer,
    options: { probe?: boolean } = {},
  ): Promise<AppendResult> {
    for (const entry of entries) {
      if (!isAuditEntry(entry)) throw new TypeError('invalid audit entry');
    }
    const probe = options.probe === true;
    if (entries.length === 0 && !probe) {
      // A timer's digest check: look without taking the chain lock, and write only when due.
      const tail = this.tailFromRow((await this.pool.query(TAIL_SQL)).rows[0] as Row);
      if (!this.digestDueByTime(tail, this.now().getTime())) return resultOf(tail, tail.seq + 1, 0);
    }
    if (this.#closed) throw new Error('the audit store is closed');
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      const results = (await client.query(this.beginAndReadTail)) as unknown as pg.QueryResult[];
      const tail = this.tailFromRow(results[results.length - 1].rows[0] as Row);
      const { rows, firstSeq, digestsWritten } = this.chain(tail, entries, seal);
      const statement = appendStatement(rows, probe);
      if (statement) await client.query(statement.sql, statement.values);
      await client.query('COMMIT');
      return resultOf(tail, firstSeq, digestsWritten);
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken = rollbackError;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /** Chains the entries onto `tail` (advancing it) and seals digests where the bounds are met. */
  private chain(tail: Tail, entries: readonly AuditEntryInput[], seal: DigestSealer) {
    const now = this.now().getTime();
    const firstSeq = tail.seq + 1;
    const rows: AppendRows = { events: [], keys: [], digests: [] };
    for (const entry of entries) {
      tail.seq++;
      tail.hash = chainHash(tail.hash, entry.text);
      rows.events.push({ seq: tail.seq, hash: tail.hash, entry });
      for (const keyId of new Set(entry.keyIds)) rows.keys.push({ keyId, cryptoSuccess: entry.cryptoSuccess, seq: tail.seq });
      if (tail.seq - tail.sealedUpTo >= this.digestEveryEvents) sealDigest(tail, rows, now, seal);
    }
    if (this.digestDueByTime(tail, now)) sealDigest(tail, rows, now, seal);
    return { rows, firstSeq, digestsWritten: rows.digests.length };
  }

  async probe(): Promise<void> {
    if (this.#closed) throw new Error('the audit store is closed');
    await this.pool.query('UPDATE audit_probe SET writes = writes + 1 WHERE id = 1');
  }

  async readEvents(fromSeq: number, limit: number, toSeq = Number.MAX_SAFE_INTEGER): Promise<AuditEventRow[]> {
    const result = await this.pool.query('SELECT * FROM audit_events WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3', [
      fromSeq,
      toSeq,
      limit,
    ]);
    return (result.rows as Row[]).map(eventFromRow);
  }

  async readDigests(fromSeq: number, limit: number): Promise<AuditDigestRow[]> {
    const result = await this.pool.query('SELECT * FROM audit_digests WHERE seq >= $1 ORDER BY seq LIMIT $2', [fromSeq, limit]);
    return (result.rows as Row[]).map((row) => ({
      seq: Number(row.seq),
      lastSeq: Number(row.last_seq),
      time: new Date(Number(row.time)),
      text: row.text as string,
      signature: row.signature as Buffer,
    }));
  }

  async tail(): Promise<{ lastSeq: number; lastDigestSeq: number }> {
    // One statement, one snapshot: the two agree.
    const result = await this.pool.query(
      'SELECT (SELECT max(seq) FROM audit_events) AS last_seq, (SELECT max(seq) FROM audit_digests) AS last_digest_seq',
    );
    const row = result.rows[0] as Row;
    return { lastSeq: Number(row.last_seq ?? 0), lastDigestSeq: Number(row.last_digest_seq ?? 0) };
  }

  async query(query: AuditQuery): Promise<AuditEventRow[]> {
    const conditions: string[] = [];
    const values: unknown[] = [];
    const add = (condition: string, value: unknown) => {
      values.push(value);
      conditions.push(condition.replace('?', `$${values.length}`));
    };
    if (query.from !== undefined) add('time >= ?', query.from.getTime());
    if (query.to !== undefined) add('time < ?', query.to.getTime());
    if (query.principalArn !== undefined) add('principal_arn = ?', query.principalArn);
    if (query.eventName !== undefined) add('event_name = ?', query.eventName);
    if (query.errorCode !== undefined) add('error_code = ?', query.errorCode);
    if (query.onlyErrors) conditions.push('error_code IS NOT NULL');
    if (query.keyId !== undefined) add('seq IN (SELECT seq FROM audit_event_keys WHERE key_id = ?)', query.keyId);
    if (query.afterSeq !== undefined) add('seq > ?', query.afterSeq);
    if (query.beforeSeq !== undefined) add('seq < ?', query.beforeSeq);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const order = query.order === 'desc' ? 'DESC' : 'ASC';
    values.push(query.limit);
    const result = await this.pool.query(`SELECT * FROM audit_events ${where} ORDER BY seq ${order} LIMIT $${values.length}`, values);
    return (result.rows as Row[]).map(eventFromRow);
  }

  async lastCryptoUse(keyId: string): Promise<AuditEventRow | undefined> {
    const result = await this.pool.query(
      `SELECT audit_events.* FROM audit_event_keys JOIN audit_events ON audit_events.seq = audit_event_keys.seq
       WHERE audit_event_keys.key_id = $1 AND audit_event_keys.crypto_success
       ORDER BY audit_event_keys.seq DESC LIMIT 1`,
      [keyId],
    );
    const row = result.rows[0] as Row | undefined;
    return row ? eventFromRow(row) : undefined;
  }

  async firstEventTime(): Promise<Date | undefined> {
    const row = (await this.pool.query('SELECT time FROM audit_events ORDER BY seq LIMIT 1')).rows[0] as Row | undefined;
    return row ? new Date(Number(row.time)) : undefined;
  }

  async startTime(): Promise<Date> {
    return new Date(this.startedAt);
  }

  async getMeta(name: string): Promise<string | undefined> {
    const row = (await this.pool.query('SELECT value FROM audit_meta WHERE name = $1', [name])).rows[0] as Row | undefined;
    return row?.value as string | undefined;
  }

  async putMetaIfAbsent(name: string, value: string): Promise<string> {
    await this.pool.query('INSERT INTO audit_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, value]);
    return (await this.getMeta(name)) as string;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}

/** Seals the chain up to the tail: the sealer signs, the digest joins this append's rows. */
function sealDigest(tail: Tail, rows: AppendRows, now: number, seal: DigestSealer): void {
  const seq = tail.digestSeq + 1;
  const sealed = seal({
    seq,
    lastSeq: tail.seq,
    lastHash: tail.hash,
    eventCount: tail.seq - tail.sealedUpTo,
    time: new Date(now),
    previousText: tail.digestText,
  });
  rows.digests.push({ seq, lastSeq: tail.seq, time: now, text: sealed.text, signature: sealed.signature });
  tail.digestSeq = seq;
  tail.sealedUpTo = tail.seq;
  tail.digestTime = now;
  tail.digestText = sealed.text;
}

function resultOf(tail: Tail, firstSeq: number, digestsWritten: number): AppendResult {
  return {
    firstSeq,
    lastSeq: tail.seq,
    digestsWritten,
    sealedUpTo: tail.sealedUpTo,
    lastDigestTime: new Date(tail.digestTime),
  };
}

function eventFromRow(row: Row): AuditEventRow {
  return {
    seq: Number(row.seq),
    time: new Date(Number(row.time)),
    text: row.text as string,
    hash: row.hash as Buffer,
    eventName: row.event_name as string,
    principalArn: (row.principal_arn as string | null) ?? undefined,
    errorCode: (row.error_code as string | null) ?? undefined,
    cryptoSuccess: row.crypto_success === true,
  };
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
  return value;
}
