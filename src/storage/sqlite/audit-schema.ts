/**
 * Migrations for `<data-dir>/audit.db`, versioned by `user_version` as schema.ts does.
 *
 * Keys live in `event_keys` rather than a column of `events` because an event can name several
 * (ReEncrypt's source and destination, both of which GetKeyLastUsage reports).
 */
export const AUDIT_MIGRATIONS: readonly string[] = [
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
];
