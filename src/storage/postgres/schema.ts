/**
 * The PostgreSQL metadata schema: the SQLite schema's tables (src/storage/sqlite/schema.ts,
 * migrations 1-3 as version 1 here, migration 4 as version 2) in PostgreSQL's types. There is no
 * version-1 PostgreSQL installation to upgrade, so SQLite's migration 2 back-fill (principals for
 * pre-IAM access keys) has no counterpart; `strongroom migrate` copies rows, not history.
 *
 * Types: times are bigint milliseconds since the epoch, exactly the records' Date values (no
 * time-zone or precision conversion); sealed material and secrets bytea; JSON values text, stored
 * verbatim. Columns compared by range or sorted for pagination (alias names, principal names and
 * ARNs, tag keys, policy names) are COLLATE "C": byte order, as SQLite's, whatever the database's
 * default collation, so a marker means the same on both backends and the ARN-prefix range in
 * deletePrincipal has no locale surprises.
 *
 * `seq` columns are identity columns (a sequence): never reused, as SQLite's AUTOINCREMENT. A
 * sequence hands out numbers in call order, not commit order, so writers that list by seq
 * (keys, grants) first lock their row in `insert_locks`: inserts then commit in seq order and a
 * reader's snapshot always holds a prefix of the seqs, which a pagination marker needs.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE settings (
    name  text PRIMARY KEY,
    value text NOT NULL
  );
  CREATE TABLE insert_locks (
    name text PRIMARY KEY
  );
  INSERT INTO insert_locks (name) VALUES ('keys'), ('grants');
  CREATE TABLE custom_key_stores (
    seq                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    custom_key_store_id   text NOT NULL UNIQUE,
    name                  text NOT NULL UNIQUE,
    type                  text NOT NULL,
    created_at            bigint NOT NULL,
    connection_state      text NOT NULL,
    connection_error_code text,
    cloud_hsm_cluster_id  text,
    trust_anchor          text,
    sealed_secret         bytea NOT NULL,
    xks_proxy             text -- JSON XksProxyConfiguration
  );
  CREATE TABLE keys (
    seq                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id                   text NOT NULL UNIQUE,
    created_at               bigint NOT NULL,
    description              text NOT NULL,
    key_usage                text NOT NULL,
    key_spec                 text NOT NULL,
    origin                   text NOT NULL,
    state                    text NOT NULL,
    deletion_date            bigint,
    pending_window_days      integer,
    policy                   text NOT NULL,
    rotation_enabled         boolean NOT NULL,
    rotation_period_days     integer,
    next_rotation_at         bigint,
    current_version          integer NOT NULL,
    on_demand_rotation_count integer NOT NULL DEFAULT 0,
    custom_key_store_id      text REFERENCES custom_key_stores (custom_key_store_id),
    xks_key_id               text
  );
  CREATE INDEX keys_deletion ON keys (deletion_date) WHERE deletion_date IS NOT NULL;
  CREATE INDEX keys_rotation ON keys (next_rotation_at) WHERE next_rotation_at IS NOT NULL;
  CREATE INDEX keys_custom_key_store ON keys (custom_key_store_id) WHERE custom_key_store_id IS NOT NULL;
  CREATE TABLE key_versions (
    key_id          text NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    version         integer NOT NULL,
    key_material_id text NOT NULL,
    sealed_material bytea NOT NULL,
    created_at      bigint NOT NULL,
    rotation_type   text,
    PRIMARY KEY (key_id, version)
  );
  CREATE TABLE aliases (
    alias_name    text COLLATE "C" PRIMARY KEY,
    target_key_id text NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL
  );
  CREATE INDEX aliases_target ON aliases (target_key_id, alias_name);
  CREATE TABLE tags (
    key_id    text NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    tag_key   text COLLATE "C" NOT NULL,
    tag_value text NOT NULL,
    PRIMARY KEY (key_id, tag_key)
  );
  CREATE TABLE access_keys (
    seq                bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    access_key_id      text PRIMARY KEY,
    principal_arn      text COLLATE "C" NOT NULL,
    sealed_secret      bytea NOT NULL,
    status             text NOT NULL,
    created_at         bigint NOT NULL,
    last_used_at       bigint,
    session_token_hash bytea,
    expires_at         bigint
  );
  CREATE INDEX access_keys_principal ON access_keys (principal_arn);
  CREATE INDEX access_keys_expiry ON access_keys (expires_at) WHERE expires_at IS NOT NULL;
  CREATE TABLE principals (
    arn                 text COLLATE "C" PRIMARY KEY,
    kind                text NOT NULL,
    name                text COLLATE "C" NOT NULL,
    principal_id        text NOT NULL UNIQUE,
    created_at          bigint NOT NULL,
    trust_policy        text,
    max_session_seconds integer,
    tags                text NOT NULL -- JSON array of {"tagKey", "tagValue"} in tag-key order
  );
  CREATE INDEX principals_kind_name ON principals (kind, name);
  CREATE TABLE identity_policies (
    principal_arn text COLLATE "C" NOT NULL REFERENCES principals (arn) ON DELETE CASCADE,
    policy_name   text COLLATE "C" NOT NULL,
    document      text NOT NULL,
    PRIMARY KEY (principal_arn, policy_name)
  );
  CREATE TABLE grants (
    seq                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grant_id           text NOT NULL UNIQUE,
    key_id             text NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    name               text,
    grantee_principal  text NOT NULL,
    retiring_principal text,
    operations         text NOT NULL, -- JSON array of operation names
    constraints        text,          -- JSON GrantConstraints
    issuing_account    text NOT NULL,
    created_at         bigint NOT NULL
  );
  CREATE INDEX grants_key ON grants (key_id, seq);
  CREATE INDEX grants_retiring ON grants (retiring_principal, seq) WHERE retiring_principal IS NOT NULL;
  `,
  // 2: HSM clusters, their members (PINs sealed), what members that were out still owe, managed
  // backups: SQLite's migration 4 (hsm-tables.ts).
  `
  CREATE TABLE hsm_clusters (
    cluster_id         text PRIMARY KEY,
    created_at         bigint NOT NULL,
    min_replicas       integer NOT NULL,
    request_timeout_ms integer NOT NULL
  );
  CREATE TABLE hsm_members (
    cluster_id text NOT NULL REFERENCES hsm_clusters (cluster_id) ON DELETE CASCADE,
    name       text NOT NULL,
    config     text NOT NULL, -- JSON HsmPkcs11MemberConfig | HsmAgentMemberConfig
    sealed_pin bytea,
    added_at   bigint NOT NULL,
    PRIMARY KEY (cluster_id, name)
  );
  CREATE TABLE hsm_owed_operations (
    cluster_id  text NOT NULL,
    member_name text NOT NULL,
    object_id   bytea NOT NULL,
    operation   text NOT NULL,
    recorded_at bigint NOT NULL,
    PRIMARY KEY (cluster_id, member_name, object_id),
    FOREIGN KEY (cluster_id, member_name) REFERENCES hsm_members (cluster_id, name) ON DELETE CASCADE
  );
  CREATE TABLE hsm_backups (
    cluster_id text NOT NULL REFERENCES hsm_clusters (cluster_id) ON DELETE CASCADE,
    path       text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (cluster_id, path)
  );
  `,
];
