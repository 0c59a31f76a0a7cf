import type Database from 'better-sqlite3';
import { type BatchRow, MAX_EVENTS_PER_BATCH, batchKeys, encodeBatch } from './audit-batches.ts';

/**
 * Migrations for `<data-dir>/audit.db`, versioned by `user_version` as schema.ts does: SQL, or a
 * function for a step SQL cannot express. Each runs inside the migration's transaction.
 *
 * Version 1 kept one `events` row per event (and its keys in `event_keys`: an event can name
 * several, as ReEncrypt names its source and destination). Version 2 keeps one `batches` row per
 * append transaction (audit-batches.ts) and one `batch_keys` row per key and crypto outcome in it;
 * upgrading regroups version 1's events into batches of MAX_EVENTS_PER_BATCH, texts and hashes
 * unchanged, so the chain and every digest verify as before.
 */
export type AuditMigration = string | ((db: Database.Database) => void);

export const AUDIT_MIGRATIONS: readonly AuditMigration[] = [
  `
  CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  -- One row, rewritten by every probe: a durable write that proves the trail can commit.
  CREATE TABLE probe (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    writes INTEGER NOT NULL
  );
  INSERT INTO probe (id, writes) VALUES (1, 0);
  CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,
    time           INTEGER NOT NULL, -- event time, ms since the epoch
    text           TEXT NOT NULL,
    hash           BLOB NOT NULL,
    event_name     TEXT NOT NULL,
    principal_arn  TEXT,
    error_code     TEXT,
    crypto_success INTEGER NOT NULL
  );
  -- Every index is written by every request's event: only time (query ranges), errors (partial:
  -- only failed requests pay) and keys (GetKeyLastUsage) are indexed. Principal and event-name
  -- filters scan within the time range; they serve operators, not the request path.
  CREATE INDEX events_time ON events (time);
  CREATE INDEX events_error ON events (error_code, seq) WHERE error_code IS NOT NULL;
  CREATE TABLE event_keys (
    key_id         TEXT NOT NULL,
    crypto_success INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    PRIMARY KEY (key_id, crypto_success, seq)
  ) WITHOUT ROWID;
  CREATE TABLE digests (
    seq       INTEGER PRIMARY KEY,
    last_seq  INTEGER NOT NULL UNIQUE,
    time      INTEGER NOT NULL,
    text      TEXT NOT NULL,
    signature BLOB NOT NULL
  );
  `,
  upgradeToBatches,
];

/** Version 2: `batches` and `batch_keys` replace `events` and `event_keys`. */
function upgradeToBatches(db: Database.Database): void {
  db.exec(`
  CREATE TABLE batches (
    first_seq INTEGER PRIMARY KEY,
    last_seq  INTEGER NOT NULL,
    min_time  INTEGER NOT NULL,
    max_time  INTEGER NOT NULL,
    errors    INTEGER NOT NULL,
    hashes    BLOB NOT NULL,
    meta      TEXT NOT NULL,
    texts     TEXT NOT NULL -- last: a row's small columns are read without its overflow pages
  );
  -- As in version 1, only time, errors (partial: only batches with a failed request pay) and keys
  -- are indexed, now once per batch instead of once per event.
  CREATE INDEX batches_time ON batches (max_time);
  CREATE INDEX batches_errors ON batches (first_seq) WHERE errors > 0;
  CREATE TABLE batch_keys (
    key_id         TEXT NOT NULL,
    crypto_success INTEGER NOT NULL,
    first_seq      INTEGER NOT NULL,
    PRIMARY KEY (key_id, crypto_success, first_seq)
  ) WITHOUT ROWID;
  CREATE INDEX event_keys_by_seq ON event_keys (seq);
  `);
  regroupVersion1Events(db);
  db.exec('DROP TABLE event_keys; DROP TABLE events;');
}

/** Moves version 1's `events` (and `event_keys`) into `batches`, in seq order. */
function regroupVersion1Events(db: Database.Database): void {
  const read = db.prepare('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?');
  const keysOf = db.prepare('SELECT key_id FROM event_keys WHERE seq = ? ORDER BY key_id');
  const insert = db.prepare(
    `INSERT INTO batches (first_seq, last_seq, min_time, max_time, errors, hashes, meta, texts)
     VALUES (@first_seq, @last_seq, @min_time, @max_time, @errors, @hashes, @meta, @texts)`,
  );
  const insertKey = db.prepare('INSERT OR IGNORE INTO batch_keys (key_id, crypto_success, first_seq) VALUES (?, ?, ?)');
  let after = 0;
  for (;;) {
    const rows = read.all(after, MAX_EVENTS_PER_BATCH) as Record<string, unknown>[];
    if (rows.length === 0) return;
    const firstSeq = Number(rows[0].seq);
    // Version 1's seqs have no gaps; a trail edited to have one is moved as it is (a batch ends
    // at the gap), so `audit verify` still names the missing event.
    let contiguous = 1;
    while (contiguous < rows.length && Number(rows[contiguous].seq) === firstSeq + contiguous) contiguous++;
    rows.length = contiguous;
    const entries = rows.map((row) => ({
      text: row.text as string,
      time: new Date(Number(row.time)),
      eventName: row.event_name as string,
      principalArn: (row.principal_arn as string | null) ?? undefined,
      errorCode: (row.error_code as string | null) ?? undefined,
      cryptoSuccess: row.crypto_success === 1,
      keyIds: (keysOf.all(row.seq) as { key_id: string }[]).map((key) => key.key_id),
    }));
    const batch: BatchRow = encodeBatch(firstSeq, entries, rows.map((row) => row.hash as Buffer));
    insert.run(batch);
    for (const [keyId, success] of batchKeys(entries)) insertKey.run(keyId, success, firstSeq);
    after = Number(rows[rows.length - 1].seq);
  }
}
