import type { HsmClusterRecord, HsmMemberRecord, HsmOwedOperationRecord } from '../types.ts';
import { SqliteConnection } from './connection.ts';
import { storeError, type Row } from './rows.ts';

/**
 * HSM cluster configuration in the data directory's database (migration 4): clusters, members
 * (PINs sealed by the caller, src/cli/hsm.ts), the journal of what members that were out owe
 * (HsmCluster's ClusterJournal), and the backup files destroyKey must clean. Its own connection
 * to strongroom.db (WAL: beside the server's). Not cached: every read goes to the database, so a
 * destroy recorded by one process is seen by the next.
 */
export class SqliteHsmStore extends SqliteConnection {
  async createCluster(cluster: HsmClusterRecord, firstMember: HsmMemberRecord): Promise<void> {
    try {
      this.db.transaction(() => {
        this.statement('INSERT INTO hsm_clusters (cluster_id, created_at, min_replicas, request_timeout_ms) VALUES (?, ?, ?, ?)').run(
          cluster.clusterId,
          cluster.createdAt.getTime(),
          cluster.minReplicas,
          cluster.requestTimeoutMs,
        );
        this.#insertMember(firstMember);
      })();
    } catch (error) {
      throw storeError(error);
    }
  }

  async getCluster(clusterId: string): Promise<HsmClusterRecord | undefined> {
    const row = this.statement('SELECT * FROM hsm_clusters WHERE cluster_id = ?').get(clusterId) as Row | undefined;
    return row ? clusterFromRow(row) : undefined;
  }

  async listClusters(): Promise<HsmClusterRecord[]> {
    return (this.statement('SELECT * FROM hsm_clusters ORDER BY created_at, cluster_id').all() as Row[]).map(clusterFromRow);
  }

  async deleteCluster(clusterId: string): Promise<boolean> {
    return this.statement('DELETE FROM hsm_clusters WHERE cluster_id = ?').run(clusterId).changes > 0;
  }

  async addMember(member: HsmMemberRecord): Promise<void> {
    try {
      this.#insertMember(member);
    } catch (error) {
      throw storeError(error);
    }
  }

  async listMembers(clusterId: string): Promise<HsmMemberRecord[]> {
    return (this.statement('SELECT * FROM hsm_members WHERE cluster_id = ? ORDER BY added_at, name').all(clusterId) as Row[]).map(memberFromRow);
  }

  async removeMember(clusterId: string, name: string): Promise<boolean> {
    return this.statement('DELETE FROM hsm_members WHERE cluster_id = ? AND name = ?').run(clusterId, name).changes > 0;
  }

  async owedOperations(clusterId: string, memberName: string): Promise<HsmOwedOperationRecord[]> {
    const rows = this.statement(
      'SELECT object_id, operation FROM hsm_owed_operations WHERE cluster_id = ? AND member_name = ? ORDER BY recorded_at',
    ).all(clusterId, memberName) as Row[];
    return rows.map((row) => ({ objectId: Buffer.from(row.object_id as Buffer), operation: row.operation as HsmOwedOperationRecord['operation'] }));
  }

  /** A later operation for the same object replaces the earlier (a destroy cancels an owed create). */
  async oweOperation(clusterId: string, memberName: string, objectId: Buffer, operation: HsmOwedOperationRecord['operation'], at: Date): Promise<void> {
    this.statement(
      `INSERT INTO hsm_owed_operations (cluster_id, member_name, object_id, operation, recorded_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (cluster_id, member_name, object_id) DO UPDATE SET operation = excluded.operation, recorded_at = excluded.recorded_at`,
    ).run(clusterId, memberName, objectId, operation, at.getTime());
  }

  async settleOperation(clusterId: string, memberName: string, objectId: Buffer): Promise<void> {
    this.statement('DELETE FROM hsm_owed_operations WHERE cluster_id = ? AND member_name = ? AND object_id = ?').run(clusterId, memberName, objectId);
  }

  async addBackup(clusterId: string, path: string, at: Date): Promise<void> {
    this.statement('INSERT INTO hsm_backups (cluster_id, path, created_at) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET created_at = excluded.created_at').run(
      clusterId,
      path,
      at.getTime(),
    );
  }

  async listBackups(clusterId: string): Promise<string[]> {
    return (this.statement('SELECT path FROM hsm_backups WHERE cluster_id = ? ORDER BY created_at').all(clusterId) as Row[]).map((row) => row.path as string);
  }

  #insertMember(member: HsmMemberRecord): void {
    this.statement('INSERT INTO hsm_members (cluster_id, name, config, sealed_pin, added_at) VALUES (?, ?, ?, ?, ?)').run(
      member.clusterId,
      member.name,
      JSON.stringify(member.config),
      member.sealedPin ?? null,
      member.addedAt.getTime(),
    );
  }
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
