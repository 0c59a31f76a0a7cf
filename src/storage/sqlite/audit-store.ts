import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
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
import { AUDIT_MIGRATIONS } from './audit-schema.ts';

type Row = Record<string, unknown>;


export interface SqliteAuditStoreOptions {
  /** Seal after this many events since the last digest (docs: 1,000). */
  digestEveryEvents?: number;
  /** Seal when this long has passed since the last digest and there are new events (docs: 60 s). */
  digestIntervalMs?: number;
  now?: () => Date;
  busyTimeoutMs?: number;
  /** Open an existing trail read-only (export, verify): no schema changes, no writes. */
  readonly?: boolean;
}

const STARTED_AT = 'started-at';
/** Write-lock retries (withWriteLock): this many after one turn of the event loop, then every RETRY_SLEEP_MS. */
const IMMEDIATE_RETRIES = 3;
const RETRY_SLEEP_MS = 1;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Tail {
  seq: number;
  hash: Buffer;
  digestSeq: number;
  sealedUpTo: number;
  digestTime: number;
  digestText: string | undefined;
}

/**
 * The audit trail in SQLite (WAL, synchronous=FULL: a commit is on disk when it returns). Every
 * append is one BEGIN IMMEDIATE transaction that reads the tail first, so appends from several
 * connections and processes serialise into one chain. Nothing here caches the tail.
 */
export class SqliteAuditStore implements AuditStore {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly digestEveryEvents: number;
  private readonly digestIntervalMs: number;
  private readonly now: () => Date;
  private readonly startedAt: number;
  private readonly busyTimeoutMs: number;
  private readonly appendTransaction: (
    entries: readonly AuditEntryInput[],
    seal: DigestSealer,
    probe: boolean,
  ) => AppendResult;

  constructor(path: string, options: SqliteAuditStoreOptions = {}) {
    this.digestEveryEvents = positiveInteger(options.digestEveryEvents ?? DEFAULT_DIGEST_EVERY_EVENTS, 'digestEveryEvents');
    this.digestIntervalMs = positiveInteger(options.digestIntervalMs ?? DEFAULT_DIGEST_INTERVAL_MS, 'digestIntervalMs');
    this.now = options.now ?? (() => new Date());
    if (options.readonly) {
      this.db = new Database(path, { readonly: true, fileMustExist: true });
    } else {
      // Created 0600 here rather than left to the umask; SQLite gives -wal and -shm the same mode.
      closeSync(openSync(path, 'a', 0o600));
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
    }
    this.busyTimeoutMs = positiveInteger(options.busyTimeoutMs ?? 10_000, 'busyTimeoutMs');
    this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    if (options.readonly) {
      const version = this.db.pragma('user_version', { simple: true }) as number;
      if (version !== AUDIT_MIGRATIONS.length) {
        this.db.close();
        throw new Error(`audit database schema version ${version} is not ${AUDIT_MIGRATIONS.length}`);
      }
    } else {
      this.migrate();
    }
    const started = this.statement('SELECT value FROM meta WHERE name = ?').get(STARTED_AT) as Row | undefined;
    this.startedAt = Number(started?.value ?? 0);
    // From here on writes wait in withWriteLock (short retries), not in SQLite's busy handler;
    // WAL readers do not wait for the write lock.
    if (!options.readonly) this.db.pragma('busy_timeout = 0');
    this.appendTransaction = this.db.transaction((entries, seal, probe) => this.appendInTransaction(entries, seal, probe))
      .immediate as typeof this.appendTransaction;
  }

  private migrate(): void {
    this.db
      .transaction(() => {
        const current = this.db.pragma('user_version', { simple: true }) as number;
        if (current > AUDIT_MIGRATIONS.length) {
          throw new Error(
            `audit database schema version ${current} is newer than this Strongroom understands (${AUDIT_MIGRATIONS.length})`,
          );
        }
        for (let version = current; version < AUDIT_MIGRATIONS.length; version++) {
          this.db.exec(AUDIT_MIGRATIONS[version]);
          this.db.pragma(`user_version = ${version + 1}`);
        }
        this.statement('INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)').run(
          STARTED_AT,
          String(this.now().getTime()),
        );
      })
      .immediate();
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private readTail(): Tail {
    const event = this.statement('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1').get() as Row | undefined;
    const digest = this.statement('SELECT seq, last_seq, time, text FROM digests ORDER BY seq DESC LIMIT 1').get() as
      | Row
      | undefined;
    return {
      seq: Number(event?.seq ?? 0),
      hash: (event?.hash as Buffer | undefined) ?? ZERO_HASH,
      digestSeq: Number(digest?.seq ?? 0),
      sealedUpTo: Number(digest?.last_seq ?? 0),
      digestTime: digest === undefined ? this.startedAt : Number(digest.time),
      digestText: digest?.text as string | undefined,
    };
  }

  private digestDueByTime(tail: Tail, now: number): boolean {
    return tail.seq > tail.sealedUpTo && now - tail.digestTime >= this.digestIntervalMs;
  }

  private appendInTransaction(entries: readonly AuditEntryInput[], seal: DigestSealer, probe: boolean): AppendResult {
    const tail = this.readTail();
    const now = this.now().getTime();
    const firstSeq = tail.seq + 1;
    let digestsWritten = 0;
    const insertEvent = this.statement(
      `INSERT INTO events (seq, time, text, hash, event_name, principal_arn, error_code, crypto_success)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertKey = this.statement('INSERT OR IGNORE INTO event_keys (key_id, crypto_success, seq) VALUES (?, ?, ?)');
    const insertDigest = this.statement('INSERT INTO digests (seq, last_seq, time, text, signature) VALUES (?, ?, ?, ?, ?)');
    const writeDigest = (): void => {
      const seq = tail.digestSeq + 1;
      const sealed = seal({
        seq,
        lastSeq: tail.seq,
        lastHash: tail.hash,
        eventCount: tail.seq - tail.sealedUpTo,
        time: new Date(now),
        previousText: tail.digestText,
      });
      insertDigest.run(seq, tail.seq, now, sealed.text, sealed.signature);
      tail.digestSeq = seq;
      tail.sealedUpTo = tail.seq;
      tail.digestTime = now;
      tail.digestText = sealed.text;
      digestsWritten++;
    };

    for (const entry of entries) {
      tail.seq++;
      tail.hash = chainHash(tail.hash, entry.text);
      const success = entry.cryptoSuccess ? 1 : 0;
      insertEvent.run(
        tail.seq,
        entry.time.getTime(),
        entry.text,
        tail.hash,
        entry.eventName,
        entry.principalArn ?? null,
        entry.errorCode ?? null,
        success,
      );
      for (const keyId of entry.keyIds) insertKey.run(keyId, success, tail.seq);
      if (tail.seq - tail.sealedUpTo >= this.digestEveryEvents) writeDigest();
    }
    if (this.digestDueByTime(tail, now)) writeDigest();
    if (probe) this.statement('UPDATE probe SET writes = writes + 1 WHERE id = 1').run();
    return {
      firstSeq,
      lastSeq: tail.seq,
      digestsWritten,
      sealedUpTo: tail.sealedUpTo,
      lastDigestTime: new Date(tail.digestTime),
    };
  }

  async append(
    entries: readonly AuditEntryInput[],
    seal: DigestSealer,
    options: { probe?: boolean } = {},
  ): Promise<AppendResult> {
    for (const entry of entries) checkEntry(entry);
    const probe = options.probe === true;
    if (entries.length === 0 && !probe) {
      // A timer's digest check: look without taking the write lock, and write only when due.
      const tail = this.readTail();
      if (!this.digestDueByTime(tail, this.now().getTime())) {
        return {
          firstSeq: tail.seq + 1,
          lastSeq: tail.seq,
          digestsWritten: 0,
          sealedUpTo: tail.sealedUpTo,
          lastDigestTime: new Date(tail.digestTime),
        };
      }
    }
    return this.withWriteLock(() => this.appendTransaction(entries, seal, probe));
  }

  async probe(): Promise<void> {
    await this.withWriteLock(() =>
      this.db.transaction(() => this.statement('UPDATE probe SET writes = writes + 1 WHERE id = 1').run()).immediate(),
    );
  }

  /**
   * Runs a BEGIN IMMEDIATE transaction, retrying while another connection (another server
   * process) holds the write lock, up to the busy timeout. It waits without blocking the thread:
   * the event loop goes on serving requests meanwhile, and their events join the next batch.
   * (It used to sleep in Atomics.wait, as SQLite's busy handler would: a process waiting for the
   * other's commit then answered nothing, and with both processes blocked, one on its fsync and
   * one on the lock, the cores sat idle.) The first retries come as soon as the loop has turned
   * (a commit is a fraction of a millisecond), later ones every millisecond; SQLite's own busy
   * handler sleeps 1, 2, 5 … 100 ms, which let a process committing batch after batch starve the
   * other for hundreds of milliseconds.
   */
  private async withWriteLock<T>(transaction: () => T): Promise<T> {
    // busy_timeout is 0 on this connection: a busy lock throws at once and is retried here.
    let deadline = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return transaction();
      } catch (error) {
        if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
        if (attempt === 0) deadline = performance.now() + this.busyTimeoutMs;
        else if (performance.now() >= deadline) throw error;
      }
      await (attempt < IMMEDIATE_RETRIES ? nextTurn() : sleep(RETRY_SLEEP_MS));
    }
  }

  async readEvents(fromSeq: number, limit: number, toSeq = Number.MAX_SAFE_INTEGER): Promise<AuditEventRow[]> {
    const rows = this.statement('SELECT * FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?').all(
      fromSeq,
      toSeq,
      limit,
    ) as Row[];
    return rows.map(eventFromRow);
  }

  async readDigests(fromSeq: number, limit: number): Promise<AuditDigestRow[]> {
    const rows = this.statement('SELECT * FROM digests WHERE seq >= ? ORDER BY seq LIMIT ?').all(fromSeq, limit) as Row[];
    return rows.map((row) => ({
      seq: Number(row.seq),
      lastSeq: Number(row.last_seq),
      time: new Date(Number(row.time)),
      text: row.text as string,
      signature: row.signature as Buffer,
    }));
  }

  async tail(): Promise<{ lastSeq: number; lastDigestSeq: number }> {
    // One statement, one read transaction: the two agree.
    const row = this.statement(
      'SELECT (SELECT max(seq) FROM events) AS last_seq, (SELECT max(seq) FROM digests) AS last_digest_seq',
    ).get() as Row;
    return { lastSeq: Number(row.last_seq ?? 0), lastDigestSeq: Number(row.last_digest_seq ?? 0) };
  }

  async query(query: AuditQuery): Promise<AuditEventRow[]> {
    const conditions: string[] = [];
    const values: unknown[] = [];
    const add = (condition: string, value: unknown) => {
      conditions.push(condition);
      values.push(value);
    };
    if (query.from !== undefined) add('time >= ?', query.from.getTime());
    if (query.to !== undefined) add('time < ?', query.to.getTime());
    if (query.principalArn !== undefined) add('principal_arn = ?', query.principalArn);
    if (query.eventName !== undefined) add('event_name = ?', query.eventName);
    if (query.errorCode !== undefined) add('error_code = ?', query.errorCode);
    if (query.onlyErrors) conditions.push('error_code IS NOT NULL');
    if (query.keyId !== undefined) add('seq IN (SELECT seq FROM event_keys WHERE key_id = ?)', query.keyId);
    if (query.afterSeq !== undefined) add('seq > ?', query.afterSeq);
    if (query.beforeSeq !== undefined) add('seq < ?', query.beforeSeq);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const order = query.order === 'desc' ? 'DESC' : 'ASC';
    const rows = this.statement(`SELECT * FROM events ${where} ORDER BY seq ${order} LIMIT ?`).all(
      ...values,
      query.limit,
    ) as Row[];
    return rows.map(eventFromRow);
  }

  async lastCryptoUse(keyId: string): Promise<AuditEventRow | undefined> {
    const row = this.statement(
      `SELECT events.* FROM event_keys JOIN events ON events.seq = event_keys.seq
       WHERE event_keys.key_id = ? AND event_keys.crypto_success = 1
       ORDER BY event_keys.seq DESC LIMIT 1`,
    ).get(keyId) as Row | undefined;
    return row ? eventFromRow(row) : undefined;
  }

  async firstEventTime(): Promise<Date | undefined> {
    const row = this.statement('SELECT time FROM events ORDER BY seq LIMIT 1').get() as Row | undefined;
    return row ? new Date(Number(row.time)) : undefined;
  }

  async startTime(): Promise<Date> {
    return new Date(this.startedAt);
  }

  async getMeta(name: string): Promise<string | undefined> {
    const row = this.statement('SELECT value FROM meta WHERE name = ?').get(name) as Row | undefined;
    return row?.value as string | undefined;
  }

  async putMetaIfAbsent(name: string, value: string): Promise<string> {
    this.statement('INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)').run(name, value);
    return (await this.getMeta(name)) as string;
  }

  async close(): Promise<void> {
    this.db.close();
  }
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
    cryptoSuccess: row.crypto_success === 1,
  };
}

function checkEntry(entry: AuditEntryInput): void {
  if (!isAuditEntry(entry)) throw new TypeError('invalid audit entry');
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
  return value;
}
