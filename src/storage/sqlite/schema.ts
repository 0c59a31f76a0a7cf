/** The inline policy migration 2 gives every user that had an access key before version 2. */
export const ADMINISTRATOR_ACCESS_POLICY_NAME = 'AdministratorAccess';
export const ADMINISTRATOR_ACCESS_POLICY =
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}';

const sqlString = (text: string): string => `'${text.replaceAll("'", "''")}'`;

/** A SQL expression for AWS's unique-id form: the prefix and 17 random base32 characters. */
const BASE32_CHARACTER = "substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', (random() & 31) + 1, 1)";
const randomPrincipalId = (prefix: string): string =>
  [sqlString(prefix), ...Array<string>(17).fill(BASE32_CHARACTER)].join(' || ');

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
  // 2: principals with their identity policies, grants, access-key use and temporary credentials.
  `
  CREATE TABLE principals (
    arn                 TEXT PRIMARY KEY,
    kind                TEXT NOT NULL,
    name                TEXT NOT NULL,
    principal_id        TEXT NOT NULL UNIQUE,
    created_at          INTEGER NOT NULL,
    trust_policy        TEXT,
    max_session_seconds INTEGER,
    -- JSON array of {"tagKey", "tagValue"} in tag-key order.
    tags                TEXT NOT NULL
  );
  CREATE INDEX principals_kind_name ON principals (kind, name);
  CREATE TABLE identity_policies (
    principal_arn TEXT NOT NULL REFERENCES principals (arn) ON DELETE CASCADE,
    policy_name   TEXT NOT NULL,
    document      TEXT NOT NULL,
    PRIMARY KEY (principal_arn, policy_name)
  );
  ALTER TABLE access_keys ADD COLUMN last_used_at INTEGER;
  ALTER TABLE access_keys ADD COLUMN session_token_hash BLOB;
  ALTER TABLE access_keys ADD COLUMN expires_at INTEGER;
  CREATE INDEX access_keys_principal ON access_keys (principal_arn);
  CREATE INDEX access_keys_expiry ON access_keys (expires_at) WHERE expires_at IS NOT NULL;
  CREATE TABLE grants (
    -- AUTOINCREMENT, as keys.seq: a ListGrants marker cannot skip a grant created after it.
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id           TEXT NOT NULL UNIQUE,
    key_id             TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    name               TEXT,
    grantee_principal  TEXT NOT NULL,
    retiring_principal TEXT,
    operations         TEXT NOT NULL, -- JSON array of operation names
    constraints        TEXT,          -- JSON GrantConstraints
    issuing_account    TEXT NOT NULL,
    created_at         INTEGER NOT NULL
  );
  CREATE INDEX grants_key ON grants (key_id, seq);
  CREATE INDEX grants_retiring ON grants (retiring_principal, seq) WHERE retiring_principal IS NOT NULL;
  -- Before version 2 every access key could do everything: each IAM user that signs with one
  -- becomes a principal with an inline AdministratorAccess policy, so upgrading changes nothing.
  INSERT INTO principals (arn, kind, name, principal_id, created_at, tags)
    SELECT principal_arn, 'user', substr(principal_arn, instr(principal_arn, ':user/') + 6),
           ${randomPrincipalId('AIDA')}, MIN(created_at), '[]'
    FROM access_keys
    WHERE principal_arn GLOB 'arn:aws:iam::${'[0-9]'.repeat(12)}:user/?*'
    GROUP BY principal_arn;
  INSERT INTO identity_policies (principal_arn, policy_name, document)
    SELECT arn, ${sqlString(ADMINISTRATOR_ACCESS_POLICY_NAME)}, ${sqlString(ADMINISTRATOR_ACCESS_POLICY)} FROM principals;
  `,
  // 3: custom key stores (HSM clusters and external key stores), and the keys that live in them.
  `
  CREATE TABLE custom_key_stores (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    custom_key_store_id   TEXT NOT NULL UNIQUE,
    name                  TEXT NOT NULL UNIQUE,
    type                  TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    connection_state      TEXT NOT NULL,
    connection_error_code TEXT,
    cloud_hsm_cluster_id  TEXT,
    trust_anchor          TEXT,
    sealed_secret         BLOB NOT NULL,
    xks_proxy             TEXT -- JSON XksProxyConfiguration
  );
  ALTER TABLE keys ADD COLUMN custom_key_store_id TEXT REFERENCES custom_key_stores (custom_key_store_id);
  ALTER TABLE keys ADD COLUMN xks_key_id TEXT;
  CREATE INDEX keys_custom_key_store ON keys (custom_key_store_id) WHERE custom_key_store_id IS NOT NULL;
  `,
  // 4: HSM clusters, their members (PINs sealed), what members that were out still owe, managed backups.
  `
  CREATE TABLE hsm_clusters (
    cluster_id         TEXT PRIMARY KEY,
    created_at         INTEGER NOT NULL,
    min_replicas       INTEGER NOT NULL,
    request_timeout_ms INTEGER NOT NULL
  );
  CREATE TABLE hsm_members (
    cluster_id TEXT NOT NULL REFERENCES hsm_clusters (cluster_id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    config     TEXT NOT NULL, -- JSON HsmPkcs11MemberConfig | HsmAgentMemberConfig
    sealed_pin BLOB,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (cluster_id, name)
  );
  CREATE TABLE hsm_owed_operations (
    cluster_id  TEXT NOT NULL,
    member_name TEXT NOT NULL,
    object_id   BLOB NOT NULL,
    operation   TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (cluster_id, member_name, object_id),
    FOREIGN KEY (cluster_id, member_name) REFERENCES hsm_members (cluster_id, name) ON DELETE CASCADE
  );
  CREATE TABLE hsm_backups (
    cluster_id TEXT NOT NULL REFERENCES hsm_clusters (cluster_id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (cluster_id, path)
  );
  `,
];
