import type Database from 'better-sqlite3';

/** Beyond this many cached lookups (misses included) the cache starts over. */
const MAX_ENTRIES = 50_000;

/**
 * Caches point lookups (keys, key versions, aliases, access keys, principals, a principal's
 * identity policies, a key's grants) without ever serving state older than the request being
 * served.
 *
 * Freshness: SQLite's `PRAGMA data_version` changes whenever *another* connection — another
 * worker process or node — commits; this connection's own writes clear the cache directly. The
 * version is checked at most once per microtask checkpoint: a check is reused only until a
 * `process.nextTick` callback runs, which Node does before it handles any further I/O. Every
 * request served in that checkpoint was received before the check was made, so the check is
 * never older than the request, and a key disabled or scheduled for deletion anywhere is refused
 * by every process's next request — exactly as if each lookup had read the table.
 *
 * Cached records are frozen, with the arrays and objects inside them (Buffers excepted), and
 * shared; callers must not (and cannot) modify them.
 */
export class ReadCache {
  private readonly entries = new Map<string, unknown>();
  private readonly dataVersion: Database.Statement;
  private seenDataVersion = -1;
  private checkedThisTick = false;
  private readonly endTick = () => {
    this.checkedThisTick = false;
  };

  constructor(db: Database.Database) {
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
  }

  lookup<T extends object>(cacheKey: string, read: () => T | undefined): T | undefined {
    this.ensureFresh();
    if (this.entries.has(cacheKey)) return this.entries.get(cacheKey) as T | undefined;
    const value = read();
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(cacheKey, value === undefined ? undefined : deepFreeze(value));
    return value;
  }

  /** Called after every write through this connection. */
  invalidate(): void {
    this.entries.clear();
  }

  private ensureFresh(): void {
    if (this.checkedThisTick) return;
    this.checkedThisTick = true;
    process.nextTick(this.endTick);
    const version = this.dataVersion.get() as number;
    if (version !== this.seenDataVersion) {
      this.seenDataVersion = version;
      this.entries.clear();
    }
  }
}

function deepFreeze<T>(value: T): T {
  // A Buffer cannot be frozen; a Date's time lives in an internal slot that freezing does not reach.
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}
