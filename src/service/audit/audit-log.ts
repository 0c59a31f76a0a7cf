import { join } from 'node:path';
import type { Sealer } from '../../crypto/seal.ts';
import {
  DEFAULT_DIGEST_INTERVAL_MS,
  isAuditEntry,
  type AppendResult,
  type AuditEntryInput,
  type AuditStore,
} from '../../storage/audit-types.ts';
import { SqliteAuditStore } from '../../storage/sqlite/audit-store.ts';
import type { AuditTrail } from '../context.ts';
import { digestSealer } from './digests.ts';
import { loadOrCreateAuditSigningKey, type AuditSigningKey } from './signing-key.ts';
import { databaseBackend, openAuditStore } from '../../storage/index.ts';
import { InlineAuditWriter, WorkerAuditWriter, type AuditWriter } from './writer.ts';

export const auditPaths = (dataDir: string) => ({
  database: join(dataDir, 'audit.db'),
  publicKey: join(dataDir, 'audit-public-key.pem'),
});

/** The trail could not make an event (or a probe) durable. The request must fail: 500, no result. */
export class AuditWriteError extends Error {
  constructor(cause: unknown) {
    super(`audit trail write failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'AuditWriteError';
  }
}

export interface AuditLogOptions {
  /** For reads (queries, GetKeyLastUsage); closed by close(). */
  store: AuditStore;
  writer: AuditWriter;
  /** How often the timer looks for a digest due by time; 0: no timer. */
  digestCheckMs?: number;
  /** Entries per append transaction at most; the rest wait for the next. */
  maxBatch?: number;
  /** Where failures of the timer's digest check go (they lose no event). */
  onBackgroundError?: (error: unknown) => void;
}

/** One append transaction settled: how long it took, how many events it carried, whether it committed. */
export type AuditCommitObserver = (seconds: number, events: number, committed: boolean) => void;

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * The audit trail as the request path sees it. record() and probe() calls made during one turn of
 * the event loop are committed together in one append transaction (group commit), scheduled with
 * setImmediate; each promise settles only when that transaction has committed or failed. While
 * one batch commits (on the worker thread) the next accumulates, and goes as soon as it is done.
 * A failed batch rejects every promise in it; the next batch tries again.
 */
export class AuditLog implements AuditTrail {
  readonly store: AuditStore;
  private readonly writer: AuditWriter;
  private readonly maxBatch: number;
  private readonly onBackgroundError: (error: unknown) => void;
  private entries: AuditEntryInput[] = [];
  private entryWaiters: Waiter[] = [];
  private probeWaiters: Waiter[] = [];
  private checkWaiters: Waiter[] = [];
  private scheduled = false;
  private inFlight: Promise<void> | undefined;
  private closed = false;
  private readonly timer: NodeJS.Timeout | undefined;
  /** Append transactions attempted, events committed, transactions failed. */
  readonly stats = { commits: 0, events: 0, failures: 0 };
  /**
   * Told of every append transaction once it settles (metrics: audit write latency). Unset, the
   * commit path reads no clock.
   */
  commitObserver: AuditCommitObserver | undefined;

  constructor(options: AuditLogOptions) {
    this.store = options.store;
    this.writer = options.writer;
    this.maxBatch = options.maxBatch ?? 10_000;
    this.onBackgroundError = options.onBackgroundError ?? (() => {});
    const checkMs = options.digestCheckMs ?? DEFAULT_DIGEST_INTERVAL_MS / 12;
    if (checkMs > 0) {
      this.timer = setInterval(() => this.appendDigestIfDue().catch(this.onBackgroundError), checkMs);
      this.timer.unref();
    }
  }

  /** Resolves once the entry is committed (durable); rejects with AuditWriteError if it could not be. */
  record(entry: AuditEntryInput): Promise<void> {
    if (this.closed) return Promise.reject(new AuditWriteError(new Error('the audit log is closed')));
    // Refused alone, before it can fail the batch it would have joined.
    if (!isAuditEntry(entry)) return Promise.reject(new AuditWriteError(new TypeError('invalid audit entry')));
    return new Promise<void>((resolve, reject) => {
      this.entries.push(entry);
      this.entryWaiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once a write to the trail has committed after this call; rejects otherwise. */
  probe(): Promise<void> {
    return this.enqueue(this.probeWaiters);
  }

  /** Writes a digest if one is due by time (events after the last one, and the interval passed). */
  appendDigestIfDue(): Promise<void> {
    return this.enqueue(this.checkWaiters);
  }

  private enqueue(waiters: Waiter[]): Promise<void> {
    if (this.closed) return Promise.reject(new AuditWriteError(new Error('the audit log is closed')));
    return new Promise<void>((resolve, reject) => {
      waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private hasPending(): boolean {
    return this.entries.length > 0 || this.probeWaiters.length > 0 || this.checkWaiters.length > 0;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    setImmediate(() => this.run());
  }

  private run(): void {
    this.scheduled = false;
    if (this.inFlight || !this.hasPending()) return;
    const entries = this.entries.splice(0, this.maxBatch);
    // Committing events proves the trail can write as well as the probe row does.
    const probe = entries.length === 0 && this.probeWaiters.length > 0;
    const waiters = [
      ...this.entryWaiters.splice(0, entries.length),
      ...this.probeWaiters.splice(0),
      ...this.checkWaiters.splice(0),
    ];
    this.stats.commits++;
    const observer = this.commitObserver;
    const startedAt = observer ? performance.now() : 0;
    let commit: Promise<AppendResult>;
    try {
      commit = this.writer.commit(entries, probe);
    } catch (error) {
      commit = Promise.reject(error);
    }
    this.inFlight = commit.then(
      () => {
        this.stats.events += entries.length;
        observer?.((performance.now() - startedAt) / 1000, entries.length, true);
        for (const waiter of waiters) waiter.resolve();
      },
      (error: unknown) => {
        this.stats.failures++;
        observer?.((performance.now() - startedAt) / 1000, entries.length, false);
        const failure = new AuditWriteError(error);
        for (const waiter of waiters) waiter.reject(failure);
      },
    ).finally(() => {
      this.inFlight = undefined;
      if (this.hasPending()) this.schedule();
    });
  }

  /** Resolves when everything recorded so far has been committed or has failed. */
  async flush(): Promise<void> {
    while (this.inFlight || this.hasPending()) {
      if (this.inFlight) await this.inFlight;
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Refuses new records, commits what is pending, then closes the writer and the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.flush();
    await this.writer.close();
    await this.store.close();
  }

  async lastCryptoUse(keyId: string): Promise<{ eventName: string; time: Date; eventId: string } | undefined> {
    const row = await this.store.lastCryptoUse(keyId);
    if (!row) return undefined;
    const eventId = (JSON.parse(row.text) as { eventID?: unknown }).eventID;
    return { eventName: row.eventName, time: row.time, eventId: typeof eventId === 'string' ? eventId : '' };
  }

  /** The trail's first event, or its creation while it has none. */
  async trackingStart(): Promise<Date> {
    return (await this.store.firstEventTime()) ?? (await this.store.startTime());
  }
}

export interface OpenAuditLogOptions {
  dataDir: string;
  sealer: Sealer;
  /** A shared PostgreSQL database (postgres://…) holds the trail instead of `<data-dir>/audit.db`. */
  databaseUrl?: string;
  /** 'worker' (default): commits run on a worker thread. 'inline': on the calling thread. */
  mode?: 'worker' | 'inline';
  digestEveryEvents?: number;
  digestIntervalMs?: number;
  digestCheckMs?: number;
  busyTimeoutMs?: number;
  /** The digest clock; inline mode only (a worker cannot share a function). */
  now?: () => Date;
  onBackgroundError?: (error: unknown) => void;
}

export interface OpenedAuditLog {
  log: AuditLog;
  signingKey: AuditSigningKey;
}

/**
 * Opens `<data-dir>/audit.db` (created 0600 on first start), loads or makes the signing key and
 * writes `<data-dir>/audit-public-key.pem`.
 */
export async function openAuditLog(options: OpenAuditLogOptions): Promise<OpenedAuditLog> {
  // PostgreSQL: one chain shared by every node, appended inline (its I/O never blocks the event
  // loop, so a writer thread would add only hops).
  const postgres = options.databaseUrl !== undefined && databaseBackend(options.databaseUrl) === 'postgres';
  const mode = postgres ? 'inline' : (options.mode ?? 'worker');
  if (mode === 'worker' && options.now) throw new Error('a clock can be injected in inline mode only');
  const paths = auditPaths(options.dataDir);
  const storeOptions = {
    digestEveryEvents: options.digestEveryEvents,
    digestIntervalMs: options.digestIntervalMs,
    busyTimeoutMs: options.busyTimeoutMs,
  };
  const store: AuditStore = postgres
    ? await openAuditStore(options.databaseUrl as string, { ...storeOptions, now: options.now })
    : new SqliteAuditStore(paths.database, { ...storeOptions, now: options.now });
  try {
    const signingKey = await loadOrCreateAuditSigningKey(store, options.sealer, paths.publicKey);
    const writer =
      mode === 'inline'
        ? new InlineAuditWriter(store, digestSealer(signingKey))
        : new WorkerAuditWriter({
            path: paths.database,
            storeOptions,
            privateKey: signingKey.privateKey,
            publicKeyId: signingKey.publicKeyId,
          });
    if (writer instanceof WorkerAuditWriter) await writer.start();
    const log = new AuditLog({
      store,
      writer,
      digestCheckMs: options.digestCheckMs,
      onBackgroundError: options.onBackgroundError,
    });
    return { log, signingKey };
  } catch (error) {
    await store.close();
    throw error;
  }
}
