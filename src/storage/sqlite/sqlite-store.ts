import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import type {
  AccessKeyRecord,
  AliasRecord,
  GrantRecord,
  IdentityPolicyRecord,
  KeyPatch,
  KeyRecord,
  KeyState,
  KeyVersionRecord,
  MetadataStore,
  Page,
  PrincipalKind,
  PrincipalRecord,
  TagRecord,
} from '../types.ts';
import { StoreLimitError } from '../types.ts';
import {
  PATCH_COLUMNS,
  accessKeyFromRow,
  aliasFromRow,
  encodeConstraints,
  encodeTags,
  grantFromRow,
  identityPolicyFromRow,
  keyFromRow,
  principalFromRow,
  storeError,
  toMs,
  versionFromRow,
  type Row,
} from './rows.ts';
import { ReadCache } from './read-cache.ts';
import { SQLITE_MIGRATIONS } from './schema.ts';

/**
 * The embedded default store. better-sqlite3 is synchronous; each call here is one short
 * indexed statement, so wrapping it in a resolved promise keeps the interface async (for the
 * PostgreSQL backend) without handing work to a thread pool.
 *
 * secure_delete overwrites freed pages with zeros, so destroyed key material does not linger
 * in the database file; WAL lets several server processes read while one writes.
 */
export class SqliteMetadataStore implements MetadataStore {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly reads: ReadCache;

  constructor(path: string) {
    // Created 0600 here rather than left to the umask; SQLite gives -wal and -shm the same mode.
    closeSync(openSync(path, 'a', 0o600));
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('secure_delete = ON');
    this.migrate();
    this.reads = new ReadCache(this.db);
  }

  private migrate(): void {
    const apply = this.db.transaction(() => {
      const current = this.db.pragma('user_version', { simple: true }) as number;
      if (current > SQLITE_MIGRATIONS.length) {
        throw new Error(
          `database schema version ${current} is newer than this Strongroom understands (${SQLITE_MIGRATIONS.length})`,
        );
      }
      for (let version = current; version < SQLITE_MIGRATIONS.length; version++) {
        this.db.exec(SQLITE_MIGRATIONS[version]);
        this.db.pragma(`user_version = ${version + 1}`);
      }
    });
    apply.immediate();
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  async getSetting(name: string): Promise<string | undefined> {
    const row = this.statement('SELECT value FROM settings WHERE name = ?').get(name) as Row | undefined;
    return row?.value as string | undefined;
  }

  async putSettingIfAbsent(name: string, value: string): Promise<string> {
    this.reads.invalidate();
    this.statement('INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)').run(name, value);
    return (await this.getSetting(name)) as string;
  }

  async createKey(key: KeyRecord, firstVersion: KeyVersionRecord, tags: readonly TagRecord[]): Promise<void> {
    this.reads.invalidate();
    const insert = this.db.transaction(() => {
      this.statement(
        `INSERT INTO keys (key_id, created_at, description, key_usage, key_spec, origin, state,
           deletion_date, pending_window_days, policy, rotation_enabled, rotation_period_days,
           next_rotation_at, current_version, on_demand_rotation_count)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        key.keyId,
        key.createdAt.getTime(),
        key.description,
        key.keyUsage,
        key.keySpec,
        key.origin,
        key.state,
        toMs(key.deletionDate),
        key.pendingWindowInDays ?? null,
        key.policy,
        key.rotationEnabled ? 1 : 0,
        key.rotationPeriodInDays ?? null,
        toMs(key.nextRotationAt),
        key.currentVersion,
        key.onDemandRotationCount,
      );
      this.insertVersion(firstVersion);
      this.upsertTags(key.keyId, tags);
    });
    insert.immediate();
  }

  private insertVersion(version: KeyVersionRecord): void {
    this.statement(
      `INSERT INTO key_versions (key_id, version, key_material_id, sealed_material, created_at, rotation_type)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(
      version.keyId,
      version.version,
      version.keyMaterialId,
      version.sealedMaterial,
      version.createdAt.getTime(),
      version.rotationType ?? null,
    );
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    return this.reads.lookup(`key:${keyId}`, () => {
      const row = this.statement('SELECT * FROM keys WHERE key_id = ?').get(keyId) as Row | undefined;
      return row ? keyFromRow(row) : undefined;
    });
  }

  async listKeys(limit: number, after?: string): Promise<Page<KeyRecord>> {
    const afterSeq = after === undefined ? 0 : Number(after);
    const rows = this.statement('SELECT * FROM keys WHERE seq > ? ORDER BY seq LIMIT ?').all(
      Number.isSafeInteger(afterSeq) ? afterSeq : 0,
      limit + 1,
    ) as Row[];
    const more = rows.length > limit;
    const pageRows = more ? rows.slice(0, limit) : rows;
    return {
      items: pageRows.map(keyFromRow),
      nextAfter: more ? String(pageRows[pageRows.length - 1].seq) : undefined,
    };
  }

  async updateKey(
    keyId: string,
    patch: { [K in keyof KeyPatch]: KeyPatch[K] | null },
    expectedStates: readonly KeyState[],
  ): Promise<boolean> {
    this.reads.invalidate();
    const columns: string[] = [];
    const values: unknown[] = [];
    for (const [field, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      const [column, encode] = PATCH_COLUMNS[field as keyof KeyPatch];
      columns.push(`${column} = ?`);
      values.push(value === null ? null : encode(value));
    }
    if (columns.length === 0 || expectedStates.length === 0) return false;
    const states = expectedStates.map(() => '?').join(', ');
    const result = this.statement(
      `UPDATE keys SET ${columns.join(', ')} WHERE key_id = ? AND state IN (${states})`,
    ).run(...values, keyId, ...expectedStates);
    return result.changes === 1;
  }

  async addKeyVersion(
    version: KeyVersionRecord,
    expectedCurrent: number,
    patch: { nextRotationAt?: Date | null; countOnDemand: boolean },
  ): Promise<boolean> {
    this.reads.invalidate();
    const add = this.db.transaction((): boolean => {
      const result = this.statement(
        `UPDATE keys SET current_version = ?,
           next_rotation_at = CASE WHEN ? THEN ? ELSE next_rotation_at END,
           on_demand_rotation_count = on_demand_rotation_count + ?
         WHERE key_id = ? AND current_version = ? AND state = 'Enabled'`,
      ).run(
        version.version,
        patch.nextRotationAt === undefined ? 0 : 1,
        toMs(patch.nextRotationAt),
        patch.countOnDemand ? 1 : 0,
        version.keyId,
        expectedCurrent,
      );
      if (result.changes !== 1) return false;
      this.insertVersion(version);
      return true;
    });
    return add.immediate();
  }

  async getKeyVersion(keyId: string, version: number): Promise<KeyVersionRecord | undefined> {
    return this.reads.lookup(`version:${keyId}:${version}`, () => {
      const row = this.statement('SELECT * FROM key_versions WHERE key_id = ? AND version = ?').get(keyId, version) as
        | Row
        | undefined;
      return row ? versionFromRow(row) : undefined;
    });
  }

  async listKeyVersions(keyId: string): Promise<KeyVersionRecord[]> {
    const rows = this.statement('SELECT * FROM key_versions WHERE key_id = ? ORDER BY version').all(keyId) as Row[];
    return rows.map(versionFromRow);
  }

  async destroyKey(keyId: string): Promise<void> {
    this.reads.invalidate();
    // ON DELETE CASCADE removes versions (the sealed material), aliases, tags and grants in the
    // same transaction; secure_delete zeroes the freed pages.
    this.statement('DELETE FROM keys WHERE key_id = ?').run(keyId);
  }

  async destroyKeyIfDue(keyId: string, now: Date): Promise<boolean> {
    this.reads.invalidate();
    const result = this.statement(
      `DELETE FROM keys WHERE key_id = ? AND state = 'PendingDeletion' AND deletion_date <= ?`,
    ).run(keyId, now.getTime());
    if (result.changes !== 1) return false;
    // secure_delete zeroes the database's own pages, but older copies of them live on as frames
    // in the WAL until it is checkpointed: move everything into the database and truncate the
    // WAL now, so the sealed material is gone from both files.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    return true;
  }

  async keysDueForDeletion(now: Date): Promise<string[]> {
    const rows = this.statement(
      `SELECT key_id FROM keys WHERE state = 'PendingDeletion' AND deletion_date <= ? ORDER BY deletion_date`,
    ).all(now.getTime()) as Row[];
    return rows.map((row) => row.key_id as string);
  }

  async keysDueForRotation(now: Date): Promise<string[]> {
    const rows = this.statement(
      `SELECT key_id FROM keys WHERE rotation_enabled = 1 AND next_rotation_at <= ? ORDER BY next_rotation_at`,
    ).all(now.getTime()) as Row[];
    return rows.map((row) => row.key_id as string);
  }

  async createAlias(alias: AliasRecord, maxAliasesPerKey = Infinity): Promise<void> {
    this.reads.invalidate();
    const create = this.db.transaction(() => {
      const count = this.statement('SELECT COUNT(*) AS n FROM aliases WHERE target_key_id = ?').get(alias.targetKeyId) as Row;
      if (Number(count.n) >= maxAliasesPerKey) throw new StoreLimitError('too many aliases for this key');
      this.statement(
        'INSERT INTO aliases (alias_name, target_key_id, created_at, updated_at) VALUES (?, ?, ?, ?)',
      ).run(alias.aliasName, alias.targetKeyId, alias.createdAt.getTime(), alias.updatedAt.getTime());
    });
    try {
      create.immediate();
    } catch (error) {
      throw storeError(error);
    }
  }

  async getAlias(aliasName: string): Promise<AliasRecord | undefined> {
    return this.reads.lookup(`alias:${aliasName}`, () => {
      const row = this.statement('SELECT * FROM aliases WHERE alias_name = ?').get(aliasName) as Row | undefined;
      return row ? aliasFromRow(row) : undefined;
    });
  }

  async updateAlias(aliasName: string, targetKeyId: string, updatedAt: Date): Promise<boolean> {
    this.reads.invalidate();
    try {
      const result = this.statement('UPDATE aliases SET target_key_id = ?, updated_at = ? WHERE alias_name = ?').run(
        targetKeyId,
        updatedAt.getTime(),
        aliasName,
      );
      return result.changes === 1;
    } catch (error) {
      throw storeError(error);
    }
  }

  async deleteAlias(aliasName: string): Promise<boolean> {
    this.reads.invalidate();
    return this.statement('DELETE FROM aliases WHERE alias_name = ?').run(aliasName).changes === 1;
  }

  async listAliases(limit: number, after?: string, targetKeyId?: string): Promise<Page<AliasRecord>> {
    const rows = (
      targetKeyId === undefined
        ? this.statement('SELECT * FROM aliases WHERE alias_name > ? ORDER BY alias_name LIMIT ?').all(
            after ?? '',
            limit + 1,
          )
        : this.statement(
            'SELECT * FROM aliases WHERE target_key_id = ? AND alias_name > ? ORDER BY alias_name LIMIT ?',
          ).all(targetKeyId, after ?? '', limit + 1)
    ) as Row[];
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map(aliasFromRow);
    return { items, nextAfter: more ? items[items.length - 1].aliasName : undefined };
  }

  private upsertTags(keyId: string, tags: readonly TagRecord[]): void {
    const upsert = this.statement(
      `INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)
       ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value`,
    );
    for (const tag of tags) upsert.run(keyId, tag.tagKey, tag.tagValue);
  }

  async putTags(keyId: string, tags: readonly TagRecord[], maxTags = Infinity): Promise<void> {
    this.reads.invalidate();
    const put = this.db.transaction(() => {
      this.upsertTags(keyId, tags);
      const count = this.statement('SELECT COUNT(*) AS n FROM tags WHERE key_id = ?').get(keyId) as Row;
      if (Number(count.n) > maxTags) throw new StoreLimitError('too many tags for this key'); // rolls back
    });
    try {
      put.immediate();
    } catch (error) {
      throw storeError(error);
    }
  }

  async removeTags(keyId: string, tagKeys: readonly string[]): Promise<void> {
    this.reads.invalidate();
    const remove = this.statement('DELETE FROM tags WHERE key_id = ? AND tag_key = ?');
    this.db.transaction(() => {
      for (const tagKey of tagKeys) remove.run(keyId, tagKey);
    }).immediate();
  }

  async listTags(keyId: string): Promise<TagRecord[]> {
    // Cached: policies that test aws:ResourceTag read a key's tags on every request.
    return this.reads.lookup(`tags:${keyId}`, () => {
      const rows = this.statement('SELECT tag_key, tag_value FROM tags WHERE key_id = ? ORDER BY tag_key').all(
        keyId,
      ) as Row[];
      return rows.map((row) => ({ tagKey: row.tag_key as string, tagValue: row.tag_value as string }));
    }) ?? [];
  }

  async putAccessKey(accessKey: AccessKeyRecord): Promise<void> {
    this.reads.invalidate();
    this.statement(
      `INSERT INTO access_keys (access_key_id, principal_arn, sealed_secret, status, created_at,
         last_used_at, session_token_hash, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      accessKey.accessKeyId,
      accessKey.principalArn,
      accessKey.sealedSecret,
      accessKey.status,
      accessKey.createdAt.getTime(),
      toMs(accessKey.lastUsedAt),
      accessKey.sessionTokenHash ?? null,
      toMs(accessKey.expiresAt),
    );
  }

  async getAccessKey(accessKeyId: string): Promise<AccessKeyRecord | undefined> {
    return this.reads.lookup(`access-key:${accessKeyId}`, () => {
      const row = this.statement('SELECT * FROM access_keys WHERE access_key_id = ?').get(accessKeyId) as
        | Row
        | undefined;
      return row ? accessKeyFromRow(row) : undefined;
    });
  }

  async listAccessKeys(principalArn?: string): Promise<AccessKeyRecord[]> {
    const rows = (
      principalArn === undefined
        ? this.statement('SELECT * FROM access_keys ORDER BY created_at, rowid').all()
        : this.statement('SELECT * FROM access_keys WHERE principal_arn = ? ORDER BY created_at, rowid').all(
            principalArn,
          )
    ) as Row[];
    return rows.map(accessKeyFromRow);
  }

  async updateAccessKeyStatus(accessKeyId: string, status: AccessKeyRecord['status']): Promise<boolean> {
    this.reads.invalidate();
    return (
      this.statement('UPDATE access_keys SET status = ? WHERE access_key_id = ?').run(status, accessKeyId).changes === 1
    );
  }

  async deleteAccessKey(accessKeyId: string): Promise<boolean> {
    this.reads.invalidate();
    return this.statement('DELETE FROM access_keys WHERE access_key_id = ?').run(accessKeyId).changes === 1;
  }

  async touchAccessKey(accessKeyId: string, usedAt: Date, staleBefore: Date): Promise<void> {
    // Called on every signed request: the cache is cleared only when a row changed, so a use
    // that writes nothing does not cost every cached lookup.
    const result = this.statement(
      `UPDATE access_keys SET last_used_at = ?
       WHERE access_key_id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
    ).run(usedAt.getTime(), accessKeyId, staleBefore.getTime());
    if (result.changes > 0) this.reads.invalidate();
  }

  async deleteExpiredSessions(now: Date): Promise<number> {
    this.reads.invalidate();
    return this.statement('DELETE FROM access_keys WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now.getTime())
      .changes;
  }

  async createPrincipal(principal: PrincipalRecord): Promise<void> {
    this.reads.invalidate();
    try {
      this.statement(
        `INSERT INTO principals (arn, kind, name, principal_id, created_at, trust_policy, max_session_seconds, tags)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        principal.arn,
        principal.kind,
        principal.name,
        principal.principalId,
        principal.createdAt.getTime(),
        principal.trustPolicy ?? null,
        principal.maxSessionDurationSeconds ?? null,
        encodeTags(principal.tags),
      );
    } catch (error) {
      throw storeError(error);
    }
  }

  async getPrincipal(arn: string): Promise<PrincipalRecord | undefined> {
    return this.reads.lookup(`principal:${arn}`, () => {
      const row = this.statement('SELECT * FROM principals WHERE arn = ?').get(arn) as Row | undefined;
      return row ? principalFromRow(row) : undefined;
    });
  }

  async listPrincipals(kind: PrincipalKind, limit: number, after?: string): Promise<Page<PrincipalRecord>> {
    const rows = this.statement('SELECT * FROM principals WHERE kind = ? AND name > ? ORDER BY name LIMIT ?').all(
      kind,
      after ?? '',
      limit + 1,
    ) as Row[];
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map(principalFromRow);
    return { items, nextAfter: more ? items[items.length - 1].name : undefined };
  }

  async updatePrincipal(
    arn: string,
    patch: Partial<Pick<PrincipalRecord, 'trustPolicy' | 'tags' | 'maxSessionDurationSeconds'>>,
  ): Promise<boolean> {
    this.reads.invalidate();
    const set: [column: string, value: unknown][] = [];
    if (patch.trustPolicy !== undefined) set.push(['trust_policy', patch.trustPolicy]);
    if (patch.tags !== undefined) set.push(['tags', encodeTags(patch.tags)]);
    if (patch.maxSessionDurationSeconds !== undefined) set.push(['max_session_seconds', patch.maxSessionDurationSeconds]);
    if (set.length === 0) return this.statement('SELECT 1 FROM principals WHERE arn = ?').get(arn) !== undefined;
    const columns = set.map(([column]) => `${column} = ?`).join(', ');
    const values = set.map(([, value]) => value);
    return this.statement(`UPDATE principals SET ${columns} WHERE arn = ?`).run(...values, arn).changes === 1;
  }

  async deletePrincipal(arn: string): Promise<boolean> {
    this.reads.invalidate();
    // A role's sessions sign as arn:<partition>:sts::<acct>:assumed-role/<role name>/<session>;
    // the role name is the ARN's last segment (a role's path is not part of it).
    const role = /^arn:([^:]+):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn);
    const remove = this.db.transaction((): boolean => {
      // ON DELETE CASCADE removes the identity policies.
      const existed = this.statement('DELETE FROM principals WHERE arn = ?').run(arn).changes === 1;
      if (role) {
        // Every ARN that starts with `<prefix>/` sorts in [`<prefix>/`, `<prefix>0`): '0' follows
        // '/'. A range, unlike LIKE, has no wildcards to escape and uses the principal_arn index.
        const prefix = `arn:${role[1]}:sts::${role[2]}:assumed-role/${role[3]}`;
        this.statement('DELETE FROM access_keys WHERE principal_arn >= ? AND principal_arn < ?').run(
          `${prefix}/`,
          `${prefix}0`,
        );
      }
      return existed;
    });
    return remove.immediate();
  }

  async putIdentityPolicy(policy: IdentityPolicyRecord, maxPerPrincipal = Infinity): Promise<void> {
    this.reads.invalidate();
    const put = this.db.transaction(() => {
      this.statement(
        `INSERT INTO identity_policies (principal_arn, policy_name, document) VALUES (?, ?, ?)
         ON CONFLICT (principal_arn, policy_name) DO UPDATE SET document = excluded.document`,
      ).run(policy.principalArn, policy.policyName, policy.document);
      const count = this.statement('SELECT COUNT(*) AS n FROM identity_policies WHERE principal_arn = ?').get(
        policy.principalArn,
      ) as Row;
      if (Number(count.n) > maxPerPrincipal) throw new StoreLimitError('too many policies for this principal'); // rolls back
    });
    // Not storeError: a missing principal fails the foreign key, which is not a missing key.
    put.immediate();
  }

  async getIdentityPolicy(principalArn: string, policyName: string): Promise<IdentityPolicyRecord | undefined> {
    const row = this.statement('SELECT * FROM identity_policies WHERE principal_arn = ? AND policy_name = ?').get(
      principalArn,
      policyName,
    ) as Row | undefined;
    return row ? identityPolicyFromRow(row) : undefined;
  }

  async listIdentityPolicies(principalArn: string): Promise<IdentityPolicyRecord[]> {
    const policies = this.reads.lookup(`identity-policies:${principalArn}`, () => {
      const rows = this.statement('SELECT * FROM identity_policies WHERE principal_arn = ? ORDER BY policy_name').all(
        principalArn,
      ) as Row[];
      return rows.map(identityPolicyFromRow);
    });
    return policies ?? [];
  }

  async deleteIdentityPolicy(principalArn: string, policyName: string): Promise<boolean> {
    this.reads.invalidate();
    return (
      this.statement('DELETE FROM identity_policies WHERE principal_arn = ? AND policy_name = ?').run(
        principalArn,
        policyName,
      ).changes === 1
    );
  }

  async createGrant(grant: GrantRecord, maxPerKey = Infinity): Promise<void> {
    this.reads.invalidate();
    const create = this.db.transaction(() => {
      const count = this.statement('SELECT COUNT(*) AS n FROM grants WHERE key_id = ?').get(grant.keyId) as Row;
      if (Number(count.n) >= maxPerKey) throw new StoreLimitError('too many grants for this key');
      this.statement(
        `INSERT INTO grants (grant_id, key_id, name, grantee_principal, retiring_principal, operations,
           constraints, issuing_account, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        grant.grantId,
        grant.keyId,
        grant.name ?? null,
        grant.granteePrincipal,
        grant.retiringPrincipal ?? null,
        JSON.stringify(grant.operations),
        encodeConstraints(grant.constraints),
        grant.issuingAccount,
        grant.createdAt.getTime(),
      );
    });
    try {
      create.immediate();
    } catch (error) {
      throw storeError(error);
    }
  }

  async getGrant(grantId: string): Promise<GrantRecord | undefined> {
    const row = this.statement('SELECT * FROM grants WHERE grant_id = ?').get(grantId) as Row | undefined;
    return row ? grantFromRow(row) : undefined;
  }

  async grantsForKey(keyId: string): Promise<GrantRecord[]> {
    const grants = this.reads.lookup(`grants:${keyId}`, () => {
      const rows = this.statement('SELECT * FROM grants WHERE key_id = ? ORDER BY seq').all(keyId) as Row[];
      return rows.map(grantFromRow);
    });
    return grants ?? [];
  }

  async listGrants(
    keyId: string,
    limit: number,
    after?: string,
    filter: { grantId?: string; granteePrincipal?: string } = {},
  ): Promise<Page<GrantRecord>> {
    const conditions = ['key_id = ?', 'seq > ?'];
    const values: unknown[] = [keyId, afterSeq(after)];
    if (filter.grantId !== undefined) {
      conditions.push('grant_id = ?');
      values.push(filter.grantId);
    }
    if (filter.granteePrincipal !== undefined) {
      conditions.push('grantee_principal = ?');
      values.push(filter.granteePrincipal);
    }
    const rows = this.statement(`SELECT * FROM grants WHERE ${conditions.join(' AND ')} ORDER BY seq LIMIT ?`).all(
      ...values,
      limit + 1,
    ) as Row[];
    return grantPage(rows, limit);
  }

  async listRetirableGrants(retiringPrincipal: string, limit: number, after?: string): Promise<Page<GrantRecord>> {
    const rows = this.statement(
      'SELECT * FROM grants WHERE retiring_principal = ? AND seq > ? ORDER BY seq LIMIT ?',
    ).all(retiringPrincipal, afterSeq(after), limit + 1) as Row[];
    return grantPage(rows, limit);
  }

  async deleteGrant(grantId: string): Promise<boolean> {
    this.reads.invalidate();
    return this.statement('DELETE FROM grants WHERE grant_id = ?').run(grantId).changes === 1;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/** A seq marker as a number; anything else starts from the beginning, as listKeys does. */
function afterSeq(after: string | undefined): number {
  const seq = after === undefined ? 0 : Number(after);
  return Number.isSafeInteger(seq) ? seq : 0;
}

/** `rows` were read with LIMIT limit + 1: one more row means another page follows. */
function grantPage(rows: Row[], limit: number): Page<GrantRecord> {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  return {
    items: pageRows.map(grantFromRow),
    nextAfter: more ? String(pageRows[pageRows.length - 1].seq) : undefined,
  };
}
