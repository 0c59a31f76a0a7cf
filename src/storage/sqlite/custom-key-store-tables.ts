import type {
  CustomKeyStoreConnectionState,
  CustomKeyStorePatch,
  CustomKeyStoreRecord,
  XksProxyConfiguration,
} from '../types.ts';
import { SqliteIdentityTables } from './identity-tables.ts';
import { storeError, type Row } from './rows.ts';

function customKeyStoreFromRow(row: Row): CustomKeyStoreRecord {
  return {
    customKeyStoreId: row.custom_key_store_id as string,
    name: row.name as string,
    type: row.type as CustomKeyStoreRecord['type'],
    createdAt: new Date(Number(row.created_at)),
    connectionState: row.connection_state as CustomKeyStoreConnectionState,
    ...(row.connection_error_code != null ? { connectionErrorCode: row.connection_error_code as string } : {}),
    ...(row.cloud_hsm_cluster_id != null ? { cloudHsmClusterId: row.cloud_hsm_cluster_id as string } : {}),
    ...(row.trust_anchor != null ? { trustAnchorCertificate: row.trust_anchor as string } : {}),
    sealedSecret: row.sealed_secret as Buffer,
    ...(row.xks_proxy != null ? { xksProxy: JSON.parse(row.xks_proxy as string) as XksProxyConfiguration } : {}),
  };
}

const PATCH_COLUMNS: Record<keyof CustomKeyStorePatch, [column: string, encode: (value: unknown) => unknown]> = {
  name: ['name', (value) => value],
  connectionState: ['connection_state', (value) => value],
  connectionErrorCode: ['connection_error_code', (value) => value],
  cloudHsmClusterId: ['cloud_hsm_cluster_id', (value) => value],
  sealedSecret: ['sealed_secret', (value) => value],
  xksProxy: ['xks_proxy', (value) => JSON.stringify(value)],
};

/**
 * Custom key stores. A store's connection state guards every use of its keys and a disconnect in
 * one process must stop the others at once: the read cache gives exactly that (read-cache.ts: a
 * commit by any other connection empties it before the next request is served; this
 * connection's own writes empty it directly), and saves a row read on every request of an HSM- or
 * XKS-backed key.
 */
export abstract class SqliteCustomKeyStoreTables extends SqliteIdentityTables {
  async createCustomKeyStore(record: CustomKeyStoreRecord): Promise<void> {
    try {
      this.statement(
        `INSERT INTO custom_key_stores (custom_key_store_id, name, type, created_at, connection_state,
           connection_error_code, cloud_hsm_cluster_id, trust_anchor, sealed_secret, xks_proxy)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        record.customKeyStoreId,
        record.name,
        record.type,
        record.createdAt.getTime(),
        record.connectionState,
        record.connectionErrorCode ?? null,
        record.cloudHsmClusterId ?? null,
        record.trustAnchorCertificate ?? null,
        record.sealedSecret,
        record.xksProxy ? JSON.stringify(record.xksProxy) : null,
      );
      this.reads.invalidate();
    } catch (error) {
      throw storeError(error);
    }
  }

  async getCustomKeyStore(customKeyStoreId: string): Promise<CustomKeyStoreRecord | undefined> {
    return this.reads.lookup(`custom-key-store:${customKeyStoreId}`, () => {
      const row = this.statement('SELECT * FROM custom_key_stores WHERE custom_key_store_id = ?').get(customKeyStoreId) as
        | Row
        | undefined;
      return row ? customKeyStoreFromRow(row) : undefined;
    });
  }

  async listCustomKeyStores(): Promise<CustomKeyStoreRecord[]> {
    const rows = this.statement('SELECT * FROM custom_key_stores ORDER BY seq').all() as Row[];
    return rows.map(customKeyStoreFromRow);
  }

  async updateCustomKeyStore(
    customKeyStoreId: string,
    patch: { [K in keyof CustomKeyStorePatch]: CustomKeyStorePatch[K] | null },
    expectedStates?: readonly CustomKeyStoreConnectionState[],
  ): Promise<boolean> {
    const columns: string[] = [];
    const values: unknown[] = [];
    for (const [field, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      const [column, encode] = PATCH_COLUMNS[field as keyof CustomKeyStorePatch];
      columns.push(`${column} = ?`);
      values.push(value === null ? null : encode(value));
    }
    if (columns.length === 0) return false;
    const states = expectedStates ?? [];
    const stateCheck = states.length > 0 ? ` AND connection_state IN (${states.map(() => '?').join(', ')})` : '';
    try {
      const result = this.statement(
        `UPDATE custom_key_stores SET ${columns.join(', ')} WHERE custom_key_store_id = ?${stateCheck}`,
      ).run(...values, customKeyStoreId, ...states);
      if (result.changes > 0) this.reads.invalidate();
      return result.changes === 1;
    } catch (error) {
      throw storeError(error);
    }
  }

  async deleteCustomKeyStore(
    customKeyStoreId: string,
    expectedStates: readonly CustomKeyStoreConnectionState[],
  ): Promise<'deleted' | 'not-found' | 'has-keys' | 'wrong-state'> {
    const remove = this.db.transaction((): 'deleted' | 'not-found' | 'has-keys' | 'wrong-state' => {
      const row = this.statement('SELECT connection_state FROM custom_key_stores WHERE custom_key_store_id = ?').get(
        customKeyStoreId,
      ) as Row | undefined;
      if (!row) return 'not-found';
      if (!expectedStates.includes(row.connection_state as CustomKeyStoreConnectionState)) return 'wrong-state';
      if (this.countKeys(customKeyStoreId) > 0) return 'has-keys';
      this.statement('DELETE FROM custom_key_stores WHERE custom_key_store_id = ?').run(customKeyStoreId);
      this.reads.invalidate();
      return 'deleted';
    });
    return remove.immediate();
  }

  async countKeysInCustomKeyStore(customKeyStoreId: string): Promise<number> {
    return this.countKeys(customKeyStoreId);
  }

  private countKeys(customKeyStoreId: string): number {
    const row = this.statement('SELECT count(*) AS n FROM keys WHERE custom_key_store_id = ?').get(customKeyStoreId) as Row;
    return Number(row.n);
  }
}
