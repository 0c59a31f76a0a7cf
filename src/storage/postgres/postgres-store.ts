import type pg from 'pg';
import { aliasFromRow, versionFromRow } from '../sqlite/rows.ts';
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
import {
  afterSeq,
  createPool,
  inTransaction,
  parsePostgresUrl,
  storeError,
  toMs,
  withAdvisoryLockIfFree,
  type PostgresLocation,
  type PostgresPoolOptions,
  type Queryable,
  type Row,
} from './connection.ts';
import { PostgresCustomKeyStoreTables } from './custom-key-store-tables.ts';
import { KeyVersionCache } from './key-version-cache.ts';
import { applyMigrations } from './migrations.ts';
import { KEY_PATCH_COLUMNS, keyFromRow, pageOf, patchAssignments } from './rows.ts';
import { POSTGRES_MIGRATIONS } from './schema.ts';

const aliasMarker = (row: Row): string => row.alias_name as string;
const seqMarker = (row: Row): string => String(row.seq);
const tagFromRow = (row: Row): TagRecord => ({ tagKey: row.tag_key as string, tagValue: row.tag_value as string });

/**
 * The PostgreSQL store (docs/storage-postgres.md), for several stateless nodes sharing one
 * database: settings, keys, key versions, aliases and tags here; access control in
 * identity-tables.ts; custom key stores in custom-key-store-tables.ts. Open with
 * PostgresMetadataStore.open, which applies the pending migrations first.
 *
 * Every compare-and-set the interface promises is one UPDATE or DELETE whose WHERE clause holds
 * the expected state: under READ COMMITTED PostgreSQL locks the row and re-evaluates the
 * condition against its newest committed version, so a concurrent writer on another node makes
 * the second one match nothing. Limits are counted in a transaction that first locks the row the
 * limit belongs to (the key, the principal), so two writers cannot both pass the count.
 */
export class PostgresMetadataStore extends PostgresCustomKeyStoreTables implements MetadataStore {
  #closed = false;
  /** Immutable version rows (key-version-cache.ts argues why a cached one is safe). */
  readonly #versions = new KeyVersionCache();

  /** Connects, applies pending migrations (one node at a time), and returns the store. */
  static async open(url: string | PostgresLocation, options: PostgresPoolOptions = {}): Promise<PostgresMetadataStore> {
    const location = typeof url === 'string' ? parsePostgresUrl(url) : url;
    const pool = createPool(location, options);
    try {
      await applyMigrations(pool, location, 'metadata', POSTGRES_MIGRATIONS);
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresMetadataStore(pool, location.schema);
  }

  private constructor(
    pool: pg.Pool,
    private readonly schema: string,
  ) {
    super(pool);
  }

  async getSetting(name: string): Promise<string | undefined> {
    const [row] = await this.rows('SELECT value FROM settings WHERE name = $1', [name]);
    return row?.value as string | undefined;
  }

  async putSettingIfAbsent(name: string, value: string): Promise<string> {
    // Two nodes racing: ON CONFLICT makes the loser's insert a no-op once the winner commits.
    await this.pool.query('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, value]);
    return (await this.getSetting(name)) as string;
  }

  async createKey(key: KeyRecord, firstVersion: KeyVersionRecord, tags: readonly TagRecord[]): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      // Keys commit in seq order (schema.ts): a ListKeys marker never skips a later key.
      await client.query(`SELECT 1 FROM insert_locks WHERE name = 'keys' FOR UPDATE`);
      await client.query(
        `INSERT INTO keys (key_id, created_at, description, key_usage, key_spec, origin, state,
           deletion_date, pending_window_days, policy, rotation_enabled, rotation_period_days,
           next_rotation_at, current_version, on_demand_rotation_count, custom_key_store_id, xks_key_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
        [
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
          key.rotationEnabled,
          key.rotationPeriodInDays ?? null,
          toMs(key.nextRotationAt),
          key.currentVersion,
          key.onDemandRotationCount,
          key.customKeyStoreId ?? null,
          key.xksKeyId ?? null,
        ],
      );
      await insertVersion(client, firstVersion);
      await upsertTags(client, key.keyId, tags);
    });
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    const [row] = await this.rows('SELECT * FROM keys WHERE key_id = $1', [keyId]);
    return row ? keyFromRow(row) : undefined;
  }

  async listKeys(limit: number, after?: string): Promise<Page<KeyRecord>> {
    const rows = await this.rows('SELECT * FROM keys WHERE seq > $1 ORDER BY seq LIMIT $2', [afterSeq(after), limit + 1]);
    return pageOf(rows, limit, keyFromRow, seqMarker);
  }

  async updateKey(
    keyId: string,
    patch: { [K in keyof KeyPatch]: KeyPatch[K] | null },
    expectedStates: readonly KeyState[],
  ): Promise<boolean> {
    const values: unknown[] = [];
    const assignments = patchAssignments(patch, KEY_PATCH_COLUMNS, values);
    if (assignments.length === 0 || expectedStates.length === 0) return false;
    values.push(keyId, [...expectedStates]);
    const sql = `UPDATE keys SET ${assignments.join(', ')} WHERE key_id = $${values.length - 1} AND state = ANY($${values.length}::text[])`;
    return (await this.changed(sql, values)) === 1;
  }

  async addKeyVersion(
    version: KeyVersionRecord,
    expectedCurrent: number,
    patch: { nextRotationAt?: Date | null; countOnDemand: boolean },
  ): Promise<boolean> {
    return inTransaction(this.pool, async (client) => {
      const result = await client.query(
        `UPDATE keys SET current_version = $1,
           next_rotation_at = CASE WHEN $2::boolean THEN $3::bigint ELSE next_rotation_at END,
           on_demand_rotation_count = on_demand_rotation_count + $4::integer
         WHERE key_id = $5 AND current_version = $6 AND state = 'Enabled'`,
        [
          version.version,
          patch.nextRotationAt !== undefined,
          toMs(patch.nextRotationAt),
          patch.countOnDemand ? 1 : 0,
          version.keyId,
          expectedCurrent,
        ],
      );
      if (result.rowCount !== 1) return false;
      await insertVersion(client, version);
      return true;
    });
  }

  /**
   * From the version cache when this node has read the row before. The caller must have read
   * the key (getKey) and checked its state first: a version of a key another node destroyed may
   * still be answered from the cache (key-version-cache.ts).
   */
  async getKeyVersion(keyId: string, version: number): Promise<KeyVersionRecord | undefined> {
    const cached = this.#versions.get(keyId, version);
    if (cached) return cached;
    const [row] = await this.rows('SELECT * FROM key_versions WHERE key_id = $1 AND version = $2', [keyId, version]);
    return row ? this.#versions.put(versionFromRow(row)) : undefined;
  }

  async listKeyVersions(keyId: string): Promise<KeyVersionRecord[]> {
    return (await this.rows('SELECT * FROM key_versions WHERE key_id = $1 ORDER BY version', [keyId])).map(versionFromRow);
  }

  async destroyKey(keyId: string): Promise<void> {
    // ON DELETE CASCADE removes versions (the sealed material), aliases, tags and grants in the
    // same statement. The dead row versions stay in the table's pages until VACUUM reclaims them
    // (docs/storage-postgres.md, "Destroyed material").
    await this.pool.query('DELETE FROM keys WHERE key_id = $1', [keyId]);
    this.#versions.forgetKey(keyId);
  }

  async destroyKeyIfDue(keyId: string, now: Date): Promise<boolean> {
    const sql = `DELETE FROM keys WHERE key_id = $1 AND state = 'PendingDeletion' AND deletion_date <= $2`;
    const destroyed = (await this.changed(sql, [keyId, now.getTime()])) === 1;
    if (destroyed) this.#versions.forgetKey(keyId);
    return destroyed;
  }

  async keysDueForDeletion(now: Date): Promise<string[]> {
    const rows = await this.rows(
      `SELECT key_id FROM keys WHERE state = 'PendingDeletion' AND deletion_date <= $1 ORDER BY deletion_date`,
      [now.getTime()],
    );
    return rows.map((row) => row.key_id as string);
  }

  async keysDueForRotation(now: Date): Promise<string[]> {
    const rows = await this.rows(
      'SELECT key_id FROM keys WHERE rotation_enabled AND next_rotation_at <= $1 ORDER BY next_rotation_at',
      [now.getTime()],
    );
    return rows.map((row) => row.key_id as string);
  }

  withBackgroundLock<T>(work: () => Promise<T>): Promise<T | undefined> {
    // Keyed by schema: installations sharing a database but not a schema do not exclude each other.
    return withAdvisoryLockIfFree(this.pool, `strongroom-background:${this.schema}`, work);
  }

  async createAlias(alias: AliasRecord, maxAliasesPerKey = Infinity): Promise<void> {
    try {
      await inTransaction(this.pool, async (client) => {
        // The target key's row lock serialises alias creation per key: the count is exact.
        // A missing key locks nothing and the insert fails its foreign key.
        await client.query('SELECT 1 FROM keys WHERE key_id = $1 FOR NO KEY UPDATE', [alias.targetKeyId]);
        const count = await client.query('SELECT count(*) AS n FROM aliases WHERE target_key_id = $1', [alias.targetKeyId]);
        if (Number(count.rows[0].n) >= maxAliasesPerKey) throw new StoreLimitError('too many aliases for this key');
        await client.query('INSERT INTO aliases (alias_name, target_key_id, created_at, updated_at) VALUES ($1, $2, $3, $4)', [
          alias.aliasName,
          alias.targetKeyId,
          alias.createdAt.getTime(),
          alias.updatedAt.getTime(),
        ]);
      });
    } catch (error) {
      throw storeError(error);
    }
  }

  async getAlias(aliasName: string): Promise<AliasRecord | undefined> {
    const [row] = await this.rows('SELECT * FROM aliases WHERE alias_name = $1', [aliasName]);
    return row ? aliasFromRow(row) : undefined;
  }

  async updateAlias(aliasName: string, targetKeyId: string, updatedAt: Date): Promise<boolean> {
    // One statement: the alias moves atomically, and the foreign key refuses a destroyed target.
    try {
      const sql = 'UPDATE aliases SET target_key_id = $1, updated_at = $2 WHERE alias_name = $3';
      return (await this.changed(sql, [targetKeyId, updatedAt.getTime(), aliasName])) === 1;
    } catch (error) {
      throw storeError(error);
    }
  }

  async deleteAlias(aliasName: string): Promise<boolean> {
    return (await this.changed('DELETE FROM aliases WHERE alias_name = $1', [aliasName])) === 1;
  }

  async listAliases(limit: number, after?: string, targetKeyId?: string): Promise<Page<AliasRecord>> {
    const rows =
      targetKeyId === undefined
        ? await this.rows('SELECT * FROM aliases WHERE alias_name > $1 ORDER BY alias_name LIMIT $2', [after ?? '', limit + 1])
        : await this.rows(
            'SELECT * FROM aliases WHERE target_key_id = $1 AND alias_name > $2 ORDER BY alias_name LIMIT $3',
            [targetKeyId, after ?? '', limit + 1],
          );
    return pageOf(rows, limit, aliasFromRow, aliasMarker);
  }

  async putTags(keyId: string, tags: readonly TagRecord[], maxTags = Infinity): Promise<void> {
    try {
      await inTransaction(this.pool, async (client) => {
        await client.query('SELECT 1 FROM keys WHERE key_id = $1 FOR NO KEY UPDATE', [keyId]);
        await upsertTags(client, keyId, tags);
        const count = await client.query('SELECT count(*) AS n FROM tags WHERE key_id = $1', [keyId]);
        if (Number(count.rows[0].n) > maxTags) throw new StoreLimitError('too many tags for this key'); // rolls back
      });
    } catch (error) {
      throw storeError(error);
    }
  }

  async removeTags(keyId: string, tagKeys: readonly string[]): Promise<void> {
    await this.pool.query('DELETE FROM tags WHERE key_id = $1 AND tag_key = ANY($2::text[])', [keyId, [...tagKeys]]);
  }

  async listTags(keyId: string): Promise<TagRecord[]> {
    return (await this.rows('SELECT tag_key, tag_value FROM tags WHERE key_id = $1 ORDER BY tag_key', [keyId])).map(tagFromRow);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}

async function insertVersion(client: Queryable, version: KeyVersionRecord): Promise<void> {
  await client.query(
    `INSERT INTO key_versions (key_id, version, key_material_id, sealed_material, created_at, rotation_type)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      version.keyId,
      version.version,
      version.keyMaterialId,
      version.sealedMaterial,
      version.createdAt.getTime(),
      version.rotationType ?? null,
    ],
  );
}

/** One statement for all tags; a key given twice keeps its last value, as one upsert per tag would. */
async function upsertTags(client: Queryable, keyId: string, tags: readonly TagRecord[]): Promise<void> {
  if (tags.length === 0) return;
  const byKey = new Map<string, string>();
  for (const tag of tags) byKey.set(tag.tagKey, tag.tagValue);
  await client.query(
    `INSERT INTO tags (key_id, tag_key, tag_value)
     SELECT $1, tag_key, tag_value FROM unnest($2::text[], $3::text[]) AS t (tag_key, tag_value)
     ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value`,
    [keyId, [...byKey.keys()], [...byKey.values()]],
  );
}
