/**
 * Versioned schema migrations for the SQLite store, applied in order at open. The schema
 * version lives in SQLite's own `user_version`, so a migration and its version bump commit
 * together.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  // 1: keys, versions, aliases, tags, credentials, settings.
  `
  CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  CREATE TABLE keys (
    -- AUTOINCREMENT: sequence numbers are never reused, so a ListKeys marker cannot skip a key
    -- created after it was issued.
    seq                      INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id                   TEXT NOT NULL UNIQUE,
    created_at               INTEGER NOT NULL,
    description              TEXT NOT NULL,
    key_usage                TEXT NOT NULL,
    key_spec                 TEXT NOT NULL,
    origin                   TEXT NOT NULL,
    state                    TEXT NOT NULL,
    deletion_date            INTEGER,
    pending_window_days      INTEGER,
    policy                   TEXT NOT NULL,
    rotation_enabled         INTEGER NOT NULL,
    rotation_period_days     INTEGER,
    next_rotation_at         INTEGER,
    current_version          INTEGER NOT NULL,
    on_demand_rotation_count INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX keys_deletion ON keys (deletion_date) WHERE deletion_date IS NOT NULL;
  CREATE INDEX keys_rotation ON keys (next_rotation_at) WHERE next_rotation_at IS NOT NULL;
  CREATE TABLE key_versions (
    key_id          TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    version         INTEGER NOT NULL,
    key_material_id TEXT NOT NULL,
    sealed_material BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    rotation_type   TEXT,
    PRIMARY KEY (key_id, version)
  );
  CREATE TABLE aliases (
    alias_name    TEXT PRIMARY KEY,
    target_key_id TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
  );
  CREATE INDEX aliases_target ON aliases (target_key_id);
  CREATE TABLE tags (
    key_id    TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
  );
  CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    principal_arn TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    status        TEXT NOT NULL,
    created_at    INTEGER NOT NULL
  );
  `,
];
