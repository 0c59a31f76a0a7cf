/**
 * HSM clusters from their stored configuration (the data directory's hsm_* tables), and the
 * custom key store backend (CustomKeyStoreType AWS_CLOUDHSM) the service connects through.
 */
import { readFileSync } from 'node:fs';
import type { SecretBytes } from '../../../crypto/secret-bytes.ts';
import type { HsmClusterRecord, HsmMemberRecord, HsmOwedOperationRecord } from '../../../storage/types.ts';
import {
  CustomKeyStoreConnectError,
  type ConnectedKeyStore,
  type CustomKeyStoreBackend,
  type CustomKeyStoreConnectRequest,
  type CustomKeyStoreTarget,
  type KeyVersionHandle,
} from '../../types.ts';
import { decodeReference } from '../reference.ts';
import { removeFromBackupFile } from './backup.ts';
import { HsmCluster, HsmClusterError, type CatalogMember, type HsmAuditEvent } from './cluster.ts';
import { HsmClusterKeyStore } from './cluster-key-store.ts';
import type { ClusterJournal, OwedEntry, OwedOperation } from './journal.ts';
import type { HsmRequestInfo } from './cluster-types.ts';
import { LocalHsmMember } from './local-member.ts';
import type { HsmMember } from './member.ts';
import { RemoteHsmMember } from './remote-member.ts';

/** What the cluster needs from storage (src/storage/sqlite/hsm-tables.ts's SqliteHsmStore fits). */
export interface HsmClusterCatalog {
  getCluster(clusterId: string): Promise<HsmClusterRecord | undefined>;
  listMembers(clusterId: string): Promise<HsmMemberRecord[]>;
  owedOperations(clusterId: string, memberName: string): Promise<HsmOwedOperationRecord[]>;
  oweOperation(clusterId: string, memberName: string, objectId: Buffer, operation: OwedOperation, at: Date): Promise<void>;
  settleOperation(clusterId: string, memberName: string, objectId: Buffer): Promise<void>;
  listBackups(clusterId: string): Promise<string[]>;
}

/** The journal of one cluster, kept in the catalog. */
export class CatalogJournal implements ClusterJournal {
  constructor(
    private readonly catalog: HsmClusterCatalog,
    private readonly clusterId: string,
  ) {}

  owed(member: string): Promise<OwedEntry[]> {
    return this.catalog.owedOperations(this.clusterId, member);
  }

  async owe(member: string, objectId: Buffer, operation: OwedOperation): Promise<void> {
    try {
      await this.catalog.oweOperation(this.clusterId, member, objectId, operation, new Date());
    } catch (error) {
      // A member removed from the catalog meanwhile (its row's foreign key refuses the entry) owes
      // nothing: a connected cluster drops it at its next probe tick, and its token was cleaned.
      if ((await this.catalog.listMembers(this.clusterId)).some((record) => record.name === member)) throw error;
    }
  }

  settle(member: string, objectId: Buffer): Promise<void> {
    return this.catalog.settleOperation(this.clusterId, member, objectId);
  }
}

/** A member from its record; `pin` is required for an in-process token (agents hold their own). */
export function memberFromRecord(record: HsmMemberRecord, pin: SecretBytes | undefined): HsmMember {
  const config = record.config;
  if (config.kind === 'agent') {
    return new RemoteHsmMember({
      name: record.name,
      host: config.host,
      port: config.port,
      ...(config.servername !== undefined ? { servername: config.servername } : {}),
      ca: readFileSync(config.caFile),
      cert: readFileSync(config.certFile),
      key: readFileSync(config.keyFile),
    });
  }
  if (!pin) throw new HsmClusterError('INVALID_CREDENTIALS', `no PIN for HSM member ${record.name}`);
  return new LocalHsmMember({
    name: record.name,
    modulePath: config.modulePath,
    ...(config.tokenLabel !== undefined ? { tokenLabel: config.tokenLabel } : { slotId: config.slotId ?? 0 }),
    pin,
    ...(config.sessions !== undefined ? { sessions: config.sessions } : {}),
    ...(config.inlineCalls ? { inlineCalls: true } : {}),
  });
}

export interface StoredClusterOptions {
  readonly probeIntervalMs?: number;
  readonly audit?: (event: HsmAuditEvent) => void;
  /** The HSM audit log of each cluster (a backend serves several); takes precedence over audit. */
  readonly auditFor?: (clusterId: string) => (event: HsmAuditEvent) => void;
}

/**
 * Connects a stored cluster. pinOf gives each in-process member's PIN (the unsealed stored PIN,
 * or the custom key store's KeyStorePassword). CLUSTER_NOT_FOUND for an unknown id.
 */
export async function connectStoredCluster(
  catalog: HsmClusterCatalog,
  clusterId: string,
  pinOf: (member: HsmMemberRecord) => SecretBytes | undefined,
  options: StoredClusterOptions = {},
): Promise<HsmCluster> {
  const cluster = await catalog.getCluster(clusterId);
  if (!cluster) throw new HsmClusterError('CLUSTER_NOT_FOUND', `no HSM cluster ${clusterId}`);
  const records = await catalog.listMembers(clusterId);
  if (records.length === 0) throw new HsmClusterError('INSUFFICIENT_CLOUDHSM_HSMS', `HSM cluster ${clusterId} has no members`);
  const members: HsmMember[] = [];
  // The member rows are read again on every probe tick: the cluster follows additions and removals
  // made while it is connected (the hsm command, another node).
  const membership = async (): Promise<CatalogMember[]> =>
    (await catalog.listMembers(clusterId)).map((record) => ({
      name: record.name,
      config: JSON.stringify(record.config),
      open: () => memberFromRecord(record, pinOf(record)),
    }));
  try {
    for (const record of records) members.push(memberFromRecord(record, pinOf(record)));
  } catch (error) {
    await Promise.allSettled(members.map((member) => member.close()));
    throw error;
  }
  return HsmCluster.connect({
    clusterId,
    members,
    journal: new CatalogJournal(catalog, clusterId),
    minReplicas: cluster.minReplicas,
    requestTimeoutMs: cluster.requestTimeoutMs,
    backupFiles: () => catalog.listBackups(clusterId),
    membership,
    ...(options.probeIntervalMs !== undefined ? { probeIntervalMs: options.probeIntervalMs } : {}),
    ...(options.audit ? { audit: options.audit } : {}),
  });
}

/** A connected cluster as a custom key store's key store. */
export class ConnectedHsmClusterKeyStore extends HsmClusterKeyStore implements ConnectedKeyStore {
  /** The key store password, kept (zeroed at close) to open members that join while connected. */
  #pin: SecretBytes | undefined;

  constructor(cluster: HsmCluster, pin?: SecretBytes) {
    super(cluster);
    this.#pin = pin;
  }

  async close(): Promise<void> {
    await this.cluster.close();
    this.#pin?.zero();
    this.#pin = undefined;
  }

  async generateRandom(length: number, request?: HsmRequestInfo): Promise<Buffer> {
    return this.cluster.generateRandom(length, request);
  }

  async destroyMaterial(handles: readonly KeyVersionHandle[]): Promise<void> {
    for (const handle of handles) await this.destroyVersionMaterial(handle);
  }
}

/**
 * CustomKeyStoreType AWS_CLOUDHSM: CloudHsmClusterId names a stored cluster, KeyStorePassword is
 * the crypto user's PIN, used for every in-process member (agents log in with their own).
 */
export class HsmClusterKeyStoreBackend implements CustomKeyStoreBackend {
  constructor(
    private readonly catalog: HsmClusterCatalog,
    private readonly makePin: (secret: string) => SecretBytes,
    private readonly options: StoredClusterOptions = {},
  ) {}

  async check(request: CustomKeyStoreConnectRequest): Promise<void> {
    const clusterId = request.cloudHsmClusterId;
    if (!clusterId || !(await this.catalog.getCluster(clusterId))) throw new CustomKeyStoreConnectError('CLUSTER_NOT_FOUND', `no HSM cluster ${clusterId ?? ''}`);
    if ((await this.catalog.listMembers(clusterId)).length === 0) {
      throw new CustomKeyStoreConnectError('INSUFFICIENT_CLOUDHSM_HSMS', `HSM cluster ${clusterId} has no members`);
    }
  }

  /** Every member of the cluster owes the destroy of each version's object (journal, hsm_owed_operations). */
  async oweDestruction(target: CustomKeyStoreTarget, handles: readonly KeyVersionHandle[]): Promise<void> {
    const clusterId = target.cloudHsmClusterId;
    if (!clusterId) return;
    const journal = new CatalogJournal(this.catalog, clusterId);
    for (const member of await this.catalog.listMembers(clusterId)) {
      for (const handle of handles) await journal.owe(member.name, objectIdOf(handle), 'destroy');
    }
  }

  async withdrawDestruction(target: CustomKeyStoreTarget, handles: readonly KeyVersionHandle[]): Promise<void> {
    const clusterId = target.cloudHsmClusterId;
    if (!clusterId) return;
    const journal = new CatalogJournal(this.catalog, clusterId);
    for (const member of await this.catalog.listMembers(clusterId)) {
      for (const handle of handles) await journal.settle(member.name, objectIdOf(handle));
    }
  }

  async cleanBackups(target: CustomKeyStoreTarget, handles: readonly KeyVersionHandle[]): Promise<{ missing: string[] }> {
    const clusterId = target.cloudHsmClusterId;
    if (!clusterId) return { missing: [] };
    const missing: string[] = [];
    for (const file of await this.catalog.listBackups(clusterId)) {
      for (const handle of handles) {
        if ((await removeFromBackupFile(file, objectIdOf(handle))) === 'missing' && !missing.includes(file)) missing.push(file);
      }
    }
    return { missing };
  }

  async connect(request: CustomKeyStoreConnectRequest): Promise<ConnectedKeyStore> {
    const clusterId = request.cloudHsmClusterId;
    if (!clusterId) throw new CustomKeyStoreConnectError('CLUSTER_NOT_FOUND', 'no HSM cluster named');
    const pin = this.makePin(request.secret);
    let connected = false;
    try {
      const audit = this.options.auditFor?.(clusterId) ?? this.options.audit;
      const cluster = await connectStoredCluster(this.catalog, clusterId, () => pin, { ...this.options, ...(audit ? { audit } : {}) });
      // KeyStorePassword is one PIN for the cluster: a member that refused it means it is wrong,
      // even if other members (agents, which log in with their own PIN) are usable.
      const refused = cluster.status().members.find((member) => member.errorCode === 'PIN_INCORRECT' || member.errorCode === 'PIN_LOCKED');
      if (refused) {
        await cluster.close();
        const code = refused.errorCode === 'PIN_LOCKED' ? 'USER_LOCKED_OUT' : 'INVALID_CREDENTIALS';
        throw new CustomKeyStoreConnectError(code, `HSM member ${refused.name} refused the key store password`);
      }
      connected = true;
      return new ConnectedHsmClusterKeyStore(cluster, pin);
    } catch (error) {
      if (error instanceof CustomKeyStoreConnectError) throw error;
      if (error instanceof HsmClusterError) throw new CustomKeyStoreConnectError(error.code, error.message);
      throw new CustomKeyStoreConnectError('INTERNAL_ERROR', 'the HSM cluster could not be connected');
    } finally {
      if (!connected) pin.zero();
    }
  }
}

/** A key version's object id (CKA_ID), from its stored 34-byte reference. */
function objectIdOf(handle: KeyVersionHandle): Buffer {
  return decodeReference(handle.sealedMaterial, handle.keyId, handle.version);
}
