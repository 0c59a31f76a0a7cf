import type {
  AliasRecord,
  KeyPatch,
  KeyRecord,
  KeyState,
  KeyVersionRecord,
  MetadataStore,
  Page,
  TagRecord,
} from '../types.ts';
import { StoreLimitError } from '../types.ts';
import { PATCH_COLUMNS, aliasFromRow, keyFromRow, storeError, toMs, versionFromRow, type Row } from './rows.ts';
import { SqliteCustomKeyStoreTables } from './custom-key-store-tables.ts';

/**
 * The embedded default store: settings, keys, key versions, aliases and tags. The connection,
 * migrations and read cache are connection.ts's; the access-control tables identity-tables.ts's;
 * custom key stores custom-key-store-tables.ts's.
 */
export class SqliteMetadataStore extends SqliteCustomKeyStoreTables implements MetadataStore {
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
           next_rotation_at, current_version, on_demand_rotation_count, custom_key_store_id, xks_key_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
        key.customKeyStoreId ?? null,
        key.xksKeyId ?? null,
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

  /** One server owns a SQLite data dir (the data-dir lock) and only its primary schedules: always runs. */
  withBackgroundLock<T>(work: () => Promise<T>): Promise<T | undefined> {
    return work();
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
}
