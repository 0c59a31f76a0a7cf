import type pg from 'pg';
import type { HsmClusterRecord, HsmMemberRecord, HsmOwedOperationRecord } from '../types.ts';
import { createPool, inTransaction, parsePostgresUrl, storeError, type PostgresLocation, type Queryable, type Row } from './connection.ts';
import { applyMigrations } from './migrations.ts';
import { POSTGRES_MIGRATIONS } from './schema.ts';

/**
 * HSM cluster configuration in PostgreSQL: src/storage/sqlite/hsm-tables.ts's SqliteHsmStore,
 * method for method (it fits HsmClusterCatalog, src/keystores/pkcs11/cluster/stored.ts). Not
 * cached: the journal of owed operations is written by whichever node saw a member fail, and every
 * node must see it.
 */
export class PostgresHsmStore {
  #closed = false;

  static async open(url: string | PostgresLocation): Promise<PostgresHsmStore> {
    const location = typeof url === 'string' ? parsePostgresUrl(url) : url;
    const pool = createPool(location, { max: 4 });
    try {
      await applyMigrations(pool, location, 'metadata', POSTGRES_MIGRATIONS);
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresHsmStore(pool);
  }

  private constructor(private readonly pool: pg.Pool) {}

  async createCluster(cluster: HsmClusterRecord, firstMember: HsmMemberRecord): Promise<void> {
    try {
      await inTransaction(this.pool, async (client) => {
        await client.query(
          'INSERT INTO hsm_clusters (cluster_id, created_at, min_replicas, request_timeout_ms) VALUES ($1, $2, $3, $4)',
          [cluster.clusterId, cluster.createdAt.getTime(), cluster.minReplicas, cluster.requestTimeoutMs],
        );
        await insertMember(client, firstMember);
      });
    } catch (error) {
      throw storeError(error);
    }
  }

  async getCluster(clusterId: string): Promise<HsmClusterRecord | undefined> {
    const row = (await this.pool.query('SELECT * FROM hsm_clusters WHERE cluster_id = $1', [clusterId])).rows[0] as Row | undefined;
    return row ? clusterFromRow(row) : undefined;
  }

  async listClusters(): Promise<HsmClusterRecord[]> {
    return ((await this.pool.query('SELECT * FROM hsm_clusters ORDER BY created_at, cluster_id')).rows as Row[]).map(clusterFromRow);
  }

  async deleteCluster(clusterId: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM hsm_clusters WHERE cluster_id = $1', [clusterId])).rowCount ?? 0) > 0;
  }

  async addMember(member: HsmMemberRecord): Promise<void> {
    try {
      await insertMember(this.pool, member);
    } catch (error) {
      throw storeError(error);
    }
  }

  async listMembers(clusterId: string): Promise<HsmMemberRecord[]> {
    const result = await this.pool.query('SELECT * FROM hsm_members WHERE cluster_id = $1 ORDER BY added_at, name', [clusterId]);
    return (result.rows as Row[]).map(memberFromRow);
  }

  async removeMember(clusterId: string, name: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM hsm_members WHERE cluster_id = $1 AND name = $2', [clusterId, name])).rowCount ?? 0) > 0;
  }

  async owedOperations(clusterId: string, memberName: string): Promise<HsmOwedOperationRecord[]> {
    const result = await this.pool.query(
      'SELECT object_id, operation FROM hsm_owed_operations WHERE cluster_id = $1 AND member_name = $2 ORDER BY recorded_at, object_id',
      [clusterId, memberName],
    );
    return (result.rows as Row[]).map((row) => ({
      objectId: Buffer.from(row.object_id as Buffer),
      operation: row.operation as HsmOwedOperationRecord['operation'],
    }));
  }

  /** A later operation for the same object replaces the earlier (a destroy cancels an owed create). */
  async oweOperation(
    clusterId: string,
    memberName: string,
    objectId: Buffer,
    operation: HsmOwedOperationRecord['operation'],
    at: Date,
  ): Promise<void> {
    await this.pool.query(
      `INSERT INTO hsm_owed_operations (cluster_id, member_name, object_id, operation, recorded_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (cluster_id, member_name, object_id) DO UPDATE SET operation = excluded.operation, recorded_at = excluded.recorded_at`,
      [clusterId, memberName, objectId, operation, at.getTime()],
    );
  }

  async settleOperation(clusterId: string, memberName: string, objectId: Buffer): Promise<void> {
    await this.pool.query('DELETE FROM hsm_owed_operations WHERE cluster_id = $1 AND member_name = $2 AND object_id = $3', [
      clusterId,
      memberName,
      objectId,
    ]);
  }

  async addBackup(clusterId: string, path: string, at: Date): Promise<void> {
    await this.pool.query(
      `INSERT INTO hsm_backups (cluster_id, path, created_at) VALUES ($1, $2, $3)
       ON CONFLICT (cluster_id, path) DO UPDATE SET created_at = excluded.created_at`,
      [clusterId, path, at.getTime()],
    );
  }

  async listBackups(clusterId: string): Promise<string[]> {
    const result = await this.pool.query('SELECT path FROM hsm_backups WHERE cluster_id = $1 ORDER BY created_at', [clusterId]);
    return (result.rows as Row[]).map((row) => row.path as string);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}

async function insertMember(client: Queryable, member: HsmMemberRecord): Promise<void> {
  await client.query('INSERT INTO hsm_members (cluster_id, name, config, sealed_pin, added_at) VALUES ($1, $2, $3, $4, $5)', [
    member.clusterId,
    member.name,
    JSON.stringify(member.config),
    member.sealedPin ?? null,
    member.addedAt.getTime(),
  ]);
}

function clusterFromRow(row: Row): HsmClusterRecord {
  return {
    clusterId: row.cluster_id as string,
    createdAt: new Date(Number(row.created_at)),
    minReplicas: Number(row.min_replicas),
    requestTimeoutMs: Number(row.request_timeout_ms),
  };
}

function memberFromRow(row: Row): HsmMemberRecord {
  return {
    clusterId: row.cluster_id as string,
    name: row.name as string,
    config: JSON.parse(row.config as string) as HsmMemberRecord['config'],
    ...(row.sealed_pin != null ? { sealedPin: Buffer.from(row.sealed_pin as Buffer) } : {}),
    addedAt: new Date(Number(row.added_at)),
  };
}
