import type { CustomKeyStoreConnectionState, CustomKeyStorePatch, CustomKeyStoreRecord } from '../types.ts';
import { inTransaction, storeError } from './connection.ts';
import { PostgresIdentityTables } from './identity-tables.ts';
import { CUSTOM_KEY_STORE_PATCH_COLUMNS, customKeyStoreFromRow, patchAssignments } from './rows.ts';

/** Custom key stores. Read through, as every row here: a store's connection state guards its keys. */
export abstract class PostgresCustomKeyStoreTables extends PostgresIdentityTables {
  async createCustomKeyStore(record: CustomKeyStoreRecord): Promise<void> {
    try {
      await this.pool.query(
        `INSERT INTO custom_key_stores (custom_key_store_id, name, type, created_at, connection_state,
           connection_error_code, cloud_hsm_cluster_id, trust_anchor, sealed_secret, xks_proxy)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
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
        ],
      );
    } catch (error) {
      throw storeError(error);
    }
  }

  async getCustomKeyStore(customKeyStoreId: string): Promise<CustomKeyStoreRecord | undefined> {
    const [row] = await this.rows('SELECT * FROM custom_key_stores WHERE custom_key_store_id = $1', [customKeyStoreId]);
    return row ? customKeyStoreFromRow(row) : undefined;
  }

  async listCustomKeyStores(): Promise<CustomKeyStoreRecord[]> {
    return (await this.rows('SELECT * FROM custom_key_stores ORDER BY seq')).map(customKeyStoreFromRow);
  }

  async updateCustomKeyStore(
    customKeyStoreId: string,
    patch: { [K in keyof CustomKeyStorePatch]: CustomKeyStorePatch[K] | null },
    expectedStates?: readonly CustomKeyStoreConnectionState[],
  ): Promise<boolean> {
    const values: unknown[] = [];
    const assignments = patchAssignments(patch, CUSTOM_KEY_STORE_PATCH_COLUMNS, values);
    if (assignments.length === 0) return false;
    values.push(customKeyStoreId);
    let where = `custom_key_store_id = $${values.length}`;
    if (expectedStates !== undefined && expectedStates.length > 0) {
      values.push([...expectedStates]);
      // One statement: PostgreSQL re-checks the condition on the row it locks, so a state
      // change committed meanwhile by another node makes this update match nothing.
      where += ` AND connection_state = ANY($${values.length}::text[])`;
    }
    try {
      return (await this.changed(`UPDATE custom_key_stores SET ${assignments.join(', ')} WHERE ${where}`, values)) === 1;
    } catch (error) {
      throw storeError(error);
    }
  }

  async deleteCustomKeyStore(
    customKeyStoreId: string,
    expectedStates: readonly CustomKeyStoreConnectionState[],
  ): Promise<'deleted' | 'not-found' | 'has-keys' | 'wrong-state'> {
    return inTransaction(this.pool, async (client) => {
      // The row lock conflicts with the KEY SHARE lock a createKey's foreign key check takes on
      // this row: no key can join the store between the count and the delete.
      const store = await client.query(
        'SELECT connection_state FROM custom_key_stores WHERE custom_key_store_id = $1 FOR UPDATE',
        [customKeyStoreId],
      );
      if (store.rowCount !== 1) return 'not-found';
      if (!expectedStates.includes(store.rows[0].connection_state as CustomKeyStoreConnectionState)) return 'wrong-state';
      const keys = await client.query('SELECT count(*) AS n FROM keys WHERE custom_key_store_id = $1', [customKeyStoreId]);
      if (Number(keys.rows[0].n) > 0) return 'has-keys';
      await client.query('DELETE FROM custom_key_stores WHERE custom_key_store_id = $1', [customKeyStoreId]);
      return 'deleted';
    });
  }

  async countKeysInCustomKeyStore(customKeyStoreId: string): Promise<number> {
    const [row] = await this.rows('SELECT count(*) AS n FROM keys WHERE custom_key_store_id = $1', [customKeyStoreId]);
    return Number(row.n);
  }
}
