/**
 * HSM clusters from their stored configuration (the data directory's hsm_* tables), and the
 * custom key store backend (CustomKeyStoreType AWS_CLOUDHSM) the service connects through.
 */
import { readFileSync } from 'node:fs';
import { CryptoError } from '../../../crypto/errors.ts';
import type { SecretBytes } from '../../../crypto/secret-bytes.ts';
import type { HsmClusterRecord, HsmMemberRecord, HsmOwedOperationRecord } from '../../../storage/types.ts';
import { Pkcs11Error } from '../errors.ts';
import {
  CustomKeyStoreConnectError,
  KeyStoreUnavailableError,
  type ConnectedKeyStore,
  type CustomKeyStoreBackend,
  type CustomKeyStoreConnectRequest,
  type CustomKeyStoreTarget,
  type KeyStoreRequestInfo,
  type KeyVersionHandle,
  type OwedDestruction,
} from '../../types.ts';
import type { KeyStoreHealth } from '../../types.ts';
import { decodeReference } from '../reference.ts';
import { removeFromBackupFile } from './backup.ts';
import { HsmCluster, HsmClusterError, type CatalogMember, type HsmAuditEvent } from './cluster.ts';
import { HsmClusterKeyStore } from './cluster-key-store.ts';
import { oweDestroys, type ClusterJournal, type OwedEntry, type OwedOperation } from './journal.ts';
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

/**
 * A member from its record; `pin` is required for an in-process token (agents log in with their
 * own). `agentPin`: the PIN an agent must prove, at every connect, that it logged in with.
 */
export function memberFromRecord(record: HsmMemberRecord, pin: SecretBytes | undefined, agentPin?: SecretBytes): HsmMember {
  const config = record.config;
  if (config.kind === 'agent') {
    return new RemoteHsmMember({
      name: record.name,
      ...(agentPin ? { expectedPin: agentPin } : {}),
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
  /** Agents must prove they logged in with their member's pinOf PIN (a custom key store's KeyStorePassword). */
  readonly verifyAgentPins?: boolean;
  /** A new key must reach min(2, members) members at least, whatever the stored minReplicas (kmsMinReplicas). */
  readonly kmsKeyCreation?: boolean;
}

/**
 * How many members must hold a KMS key version before CreateKey succeeds: the cluster's stored
 * minReplicas, but at least two where there are two members. AWS requires two active HSMs (in
 * different zones) for CreateKey in a CloudHSM key store, so that a key outlives one HSM; a
 * one-member cluster still serves (tests, small installs with one HSM: its backups are the second
 * copy), as the operator chose when making it.
 */
export function kmsMinReplicas(storedMinReplicas: number, members: number): number {
  return Math.max(storedMinReplicas, Math.min(2, members));
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
      open: () => {
        const pin = pinOf(record);
        return memberFromRecord(record, pin, options.verifyAgentPins ? pin : undefined);
      },
    }));
  try {
    for (const record of records) {
      const pin = pinOf(record);
      members.push(memberFromRecord(record, pin, options.verifyAgentPins ? pin : undefined));
    }
  } catch (error) {
    await Promise.allSettled(members.map((member) => member.close()));
    throw error;
  }
  return HsmCluster.connect({
    clusterId,
    members,
    journal: new CatalogJournal(catalog, clusterId),
    minReplicas: options.kmsKeyCreation ? (members: number) => kmsMinReplicas(cluster.minReplicas, members) : cluster.minReplicas,
    requestTimeoutMs: cluster.requestTimeoutMs,
    backupFiles: () => catalog.listBackups(clusterId),
    membership,
    ...(options.probeIntervalMs !== undefined ? { probeIntervalMs: options.probeIntervalMs } : {}),
    ...(options.audit ? { audit: options.audit } : {}),
  });
}

/**
 * A connected cluster as a custom key store's key store. What the KMS sees of an HSM failure is
 * AWS's: a decryption failure stays one (InvalidCiphertextException); anything else means the
 * cluster could not serve, KeyStoreUnavailableError (KMSInvalidStateException for the key, the
 * cause in the operator's log); too few HSMs to create a key is INSUFFICIENT_CLOUDHSM_HSMS
 * (CreateKey: CloudHsmClusterInvalidConfigurationException).
 */
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

  override async createVersionMaterial(keyId: string, version: number, keySpec: string): Promise<Buffer> {
    try {
      return await super.createVersionMaterial(keyId, version, keySpec);
    } catch (error) {
      if (error instanceof HsmClusterError && error.code === 'INSUFFICIENT_CLOUDHSM_HSMS') {
        throw new CustomKeyStoreConnectError('INSUFFICIENT_CLOUDHSM_HSMS', error.message);
      }
      throw this.#unavailable(error);
    }
  }

  override async encrypt(
    handle: KeyVersionHandle,
    plaintext: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
    request?: KeyStoreRequestInfo,
  ): Promise<Buffer> {
    try {
      return await super.encrypt(handle, plaintext, encryptionContext, request);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  override async decrypt(
    handle: KeyVersionHandle,
    ciphertextBlob: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
    request?: KeyStoreRequestInfo,
  ): Promise<Buffer> {
    try {
      return await super.decrypt(handle, ciphertextBlob, encryptionContext, request);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  async generateRandom(length: number, request?: HsmRequestInfo): Promise<Buffer> {
    try {
      return await this.cluster.generateRandom(length, request);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  /** Anything but the caller's own fault (a failed decryption, an out-of-range argument) as KeyStoreUnavailableError. */
  #unavailable(error: unknown): unknown {
    if (error instanceof CryptoError || error instanceof RangeError || error instanceof KeyStoreUnavailableError) return error;
    // Our errors' messages carry codes and member names only, never request values or PINs.
    const known = error instanceof Pkcs11Error || error instanceof HsmClusterError;
    const cause = known ? `${error.code}: ${error.message}` : `${error instanceof Error ? error.name : 'error'}`;
    return new KeyStoreUnavailableError(`HSM cluster ${this.cluster.clusterId} could not serve the request (${cause})`, { cause: error });
  }

  async destroyMaterial(handles: readonly KeyVersionHandle[]): Promise<void> {
    for (const handle of handles) await this.destroyVersionMaterial(handle);
  }

  /** Serving while one member is ACTIVE; each member up when it is ACTIVE (not DOWN, SYNCING or FAILED). */
  async checkHealth(): Promise<KeyStoreHealth> {
    const status = await this.cluster.checkHealth();
    return {
      serving: status.connectionState === 'CONNECTED',
      members: status.members.map((member) => ({ name: member.name, up: member.state === 'ACTIVE' })),
    };
  }
}

/**
 * CustomKeyStoreType AWS_CLOUDHSM: CloudHsmClusterId names a stored cluster, KeyStorePassword is
 * the crypto user's PIN, used for every in-process member. Agents log in with their own PIN and
 * are asked, at every connect, whether it is the KeyStorePassword (AWS: a wrong kmsuser password
 * leaves the store FAILED with INVALID_CREDENTIALS); an agent that says no is never used.
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

  /** Every member of the cluster owes the destroy of each version's object (journal, hsm_owed_operations); withdrawn, it owes what it did before. */
  async oweDestruction(target: CustomKeyStoreTarget, handles: readonly KeyVersionHandle[]): Promise<OwedDestruction> {
    const clusterId = target.cloudHsmClusterId;
    if (!clusterId) return { withdraw: async () => {} };
    const members = (await this.catalog.listMembers(clusterId)).map((member) => member.name);
    return oweDestroys(new CatalogJournal(this.catalog, clusterId), members, handles.map(objectIdOf));
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
      const cluster = await connectStoredCluster(this.catalog, clusterId, () => pin, {
        ...this.options,
        ...(audit ? { audit } : {}),
        verifyAgentPins: true,
        kmsKeyCreation: true,
      });
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
