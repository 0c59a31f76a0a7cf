/**
 * The audit trail's tables in PostgreSQL (component `audit` of schema_migrations), mirroring
 * src/storage/sqlite/audit-schema.ts. Prefixed `audit_` so the trail can share a schema with the
 * metadata tables or live in a schema (or database) of its own.
 *
 * audit_chain_lock holds one row that every append locks FOR UPDATE before it reads the tail
 * (audit-store.ts): the lock that makes all writers, on any node, one ordered chain.
 */
export const POSTGRES_AUDIT_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE audit_meta (
    name  text PRIMARY KEY,
    value text NOT NULL
  );
  -- One row, rewritten by every probe: a durable write that proves the trail can commit.
  CREATE TABLE audit_probe (
    id     integer PRIMARY KEY CHECK (id = 1),
    writes bigint NOT NULL
  );
  INSERT INTO audit_probe (id, writes) VALUES (1, 0);
  CREATE TABLE audit_chain_lock (
    id integer PRIMARY KEY CHECK (id = 1)
  );
  INSERT INTO audit_chain_lock (id) VALUES (1);
  CREATE TABLE audit_events (
    seq            bigint PRIMARY KEY,
    time           bigint NOT NULL, -- event time, ms since the epoch
    text           text NOT NULL,
    hash           bytea NOT NULL,
    event_name     text NOT NULL,
    principal_arn  text,
    error_code     text,
    crypto_success boolean NOT NULL
  );
  -- As SQLite's: only time, errors (partial) and keys are indexed; every index costs every event.
  CREATE INDEX audit_events_time ON audit_events (time);
  CREATE INDEX audit_events_error ON audit_events (error_code, seq) WHERE error_code IS NOT NULL;
  CREATE TABLE audit_event_keys (
    key_id         text NOT NULL,
    crypto_success boolean NOT NULL,
    seq            bigint NOT NULL,
    PRIMARY KEY (key_id, crypto_success, seq)
  );
  CREATE TABLE audit_digests (
    seq       bigint PRIMARY KEY,
    last_seq  bigint NOT NULL UNIQUE,
    time      bigint NOT NULL,
    text      text NOT NULL,
    signature bytea NOT NULL
  );
  `,
];
