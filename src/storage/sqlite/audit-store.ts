import { closeSync, fdatasyncSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
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
import { MAX_EVENTS_PER_BATCH, batchKeys, encodeBatch } from './audit-batches.ts';
import { BatchReader } from './audit-reads.ts';
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
 * The audit trail in SQLite. Every append is one BEGIN IMMEDIATE transaction that reads the tail
 * first, so appends from several connections and processes serialise into one chain. Nothing
 * here caches the tail.
 *
 * Durability (docs/audit.md "Fail closed, nothing lost"): WAL with synchronous=NORMAL, so the
 * commit itself does not fsync; append() then fdatasyncs the WAL file and resolves only after
 * that, so what it acknowledges is on disk. The write lock is released before that fsync, so
 * another process commits during it instead of waiting for it (with synchronous=FULL the fsync ran
 * inside the commit, holding the lock). An fsync covers every commit written to the WAL before it,
 * whoever wrote it; NORMAL's own fsyncs (before and after each checkpoint) keep the checkpointed
 * database as safe as FULL does.
 */
export class SqliteAuditStore implements AuditStore {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly reader = new BatchReader((sql) => this.statement(sql));
  private readonly digestEveryEvents: number;
  private readonly digestIntervalMs: number;
  private readonly now: () => Date;
  private readonly startedAt: number;
  private readonly busyTimeoutMs: number;
  private readonly walPath: string;
  private walFd: number | undefined;
  /** Set by a failed fsync: nothing is acknowledged on this store after it. */
  private syncFailure: Error | undefined;
  private readonly appendTransaction: (
    entries: readonly AuditEntryInput[],
    seal: DigestSealer,
    probe: boolean,
  ) => AppendResult;

  constructor(path: string, options: SqliteAuditStoreOptions = {}) {
    this.digestEveryEvents = positiveInteger(options.digestEveryEvents ?? DEFAULT_DIGEST_EVERY_EVENTS, 'digestEveryEvents');
    this.digestIntervalMs = positiveInteger(options.digestIntervalMs ?? DEFAULT_DIGEST_INTERVAL_MS, 'digestIntervalMs');
    this.now = options.now ?? (() => new Date());
    this.walPath = `${resolve(path)}-wal`;
    if (options.readonly) {
      this.db = new Database(path, { readonly: true, fileMustExist: true });
    } else {
      // Created 0600 here rather than left to the umask; SQLite gives -wal and -shm the same mode.
      closeSync(openSync(path, 'a', 0o600));
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL'); // the commit does not fsync: append() does, after it
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
          const migration = AUDIT_MIGRATIONS[version];
          if (typeof migration === 'string') this.db.exec(migration);
          else migration(this.db);
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
    // The last batch's last hash: the final 32 bytes of its hashes.
    const event = this.statement(
      'SELECT last_seq AS seq, substr(hashes, -32) AS hash FROM batches ORDER BY first_seq DESC LIMIT 1',
    ).get() as Row | undefined;
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
    const insertBatch = this.statement(
      `INSERT INTO batches (first_seq, last_seq, min_time, max_time, errors, hashes, meta, texts)
       VALUES (@first_seq, @last_seq, @min_time, @max_time, @errors, @hashes, @meta, @texts)`,
    );
    const insertKey = this.statement('INSERT OR IGNORE INTO batch_keys (key_id, crypto_success, first_seq) VALUES (?, ?, ?)');
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

    // One row per MAX_EVENTS_PER_BATCH events (audit-batches.ts); digests fall where the count
    // bound says, within a row as well as between rows.
    for (let start = 0; start < entries.length; start += MAX_EVENTS_PER_BATCH) {
      const batch = entries.slice(start, start + MAX_EVENTS_PER_BATCH);
      const batchFirstSeq = tail.seq + 1;
      const hashes: Buffer[] = [];
      for (const entry of batch) {
        tail.seq++;
        tail.hash = chainHash(tail.hash, entry.text);
        hashes.push(tail.hash);
        if (tail.seq - tail.sealedUpTo >= this.digestEveryEvents) writeDigest();
      }
      insertBatch.run(encodeBatch(batchFirstSeq, batch, hashes));
      for (const [keyId, success] of batchKeys(batch)) insertKey.run(keyId, success, batchFirstSeq);
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
    this.throwIfSyncFailed();
    const result = await this.withWriteLock(() => this.appendTransaction(entries, seal, probe));
    this.syncWal();
    return result;
  }

  async probe(): Promise<void> {
    this.throwIfSyncFailed();
    await this.withWriteLock(() =>
      this.db.transaction(() => this.statement('UPDATE probe SET writes = writes + 1 WHERE id = 1').run()).immediate(),
    );
    this.syncWal();
  }

  private throwIfSyncFailed(): void {
    if (this.syncFailure) throw this.syncFailure;
  }

  /**
   * Makes every commit written to the WAL so far durable, this connection's and any other's:
   * fdatasync of the WAL file (Linux syncs the file whichever descriptor wrote it). SQLite keeps
   * the WAL file while any connection is open, so the descriptor, opened after this connection's
   * first commit, stays valid until close(). It runs on this thread, after the write lock is
   * released: handing it to libuv's thread pool was measured to cost more CPU (a wake-up per
   * commit) than the event loop gains.
   */
  private syncWal(): void {
    this.throwIfSyncFailed();
    try {
      this.walFd ??= openSync(this.walPath, 'r');
      fdatasyncSync(this.walFd);
    } catch (error) {
      // After a failed fsync the kernel may drop the pages it could not write and report the
      // next fsync clean, so no later commit may be acknowledged on this store (PostgreSQL's
      // rule since 2018): it fails closed until the process restarts.
      this.syncFailure ??= new Error(`the audit trail could not be synced to disk: ${(error as Error).message}`, {
        cause: error,
      });
      throw this.syncFailure;
    }
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

  async readEvents(fromSeq: number, limit: number, toSeq?: number): Promise<AuditEventRow[]> {
    return this.reader.readEvents(fromSeq, limit, toSeq);
  }

  async query(query: AuditQuery): Promise<AuditEventRow[]> {
    return this.reader.query(query);
  }

  async lastCryptoUse(keyId: string): Promise<AuditEventRow | undefined> {
    return this.reader.lastCryptoUse(keyId);
  }

  async firstEventTime(): Promise<Date | undefined> {
    return this.reader.firstEventTime();
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
      `SELECT (SELECT last_seq FROM batches ORDER BY first_seq DESC LIMIT 1) AS last_seq,
              (SELECT max(seq) FROM digests) AS last_digest_seq`,
    ).get() as Row;
    return { lastSeq: Number(row.last_seq ?? 0), lastDigestSeq: Number(row.last_digest_seq ?? 0) };
  }

  async startTime(): Promise<Date> {
    return new Date(this.startedAt);
  }

  async getMeta(name: string): Promise<string | undefined> {
    const row = this.statement('SELECT value FROM meta WHERE name = ?').get(name) as Row | undefined;
    return row?.value as string | undefined;
  }

  async putMetaIfAbsent(name: string, value: string): Promise<string> {
    const inserted = this.statement('INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)').run(name, value);
    if (inserted.changes > 0) this.syncWal();
    return (await this.getMeta(name)) as string;
  }

  async close(): Promise<void> {
    if (this.walFd !== undefined) closeSync(this.walFd);
    this.walFd = undefined;
    this.db.close();
  }
}

function checkEntry(entry: AuditEntryInput): void {
  if (!isAuditEntry(entry)) throw new TypeError('invalid audit entry');
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
  return value;
}
