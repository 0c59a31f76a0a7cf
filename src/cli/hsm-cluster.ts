/**
 * The actions of `strongroom hsm …` (registered in hsm.ts): HSM clusters configured in the data
 * directory's database, member PINs sealed under the root key. SO PINs are used for the
 * ceremony and never stored. docs/hsm-cluster.md.
 */
import { randomInt } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Sealer } from '../crypto/seal.ts';
import type { SecretBytes } from '../crypto/secret-bytes.ts';
import { openRootSealer, type RootSealer } from './root-key.ts';
import { hsmAuditFile } from '../keystores/pkcs11/cluster/audit-file.ts';
import { readBackup, restoreBackup, writeBackup } from '../keystores/pkcs11/cluster/backup.ts';
import { createClusterKey } from '../keystores/pkcs11/cluster/ceremony.ts';
import { HsmCluster, HsmClusterError } from '../keystores/pkcs11/cluster/cluster.ts';
import { connectStoredCluster, memberFromRecord } from '../keystores/pkcs11/cluster/stored.ts';
import { openHsmStore, type HsmStore } from '../storage/index.ts';
import { hsmMemberPinBinding, type HsmMemberRecord } from '../storage/types.ts';

export interface DataDirOption {
  dataDir: string;
}

export interface MemberOptions {
  memberName: string;
  module?: string;
  tokenLabel?: string;
  slot?: number;
  sessions?: number;
  inlineCalls?: boolean;
  agent?: { host: string; port: number };
  servername?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/**
 * The HSM tables — in the data directory's SQLite, or in the nodes' shared PostgreSQL when
 * `database` (a `postgres://…` URL, as `serve --database`) is given — and the sealer over the data
 * directory's root key.
 */
export class HsmCatalog {
  private constructor(
    readonly store: HsmStore,
    readonly sealer: Sealer,
    private readonly root: RootSealer,
    readonly dataDir: string,
  ) {}

  static async open(dataDir: string, database?: string): Promise<HsmCatalog> {
    const dir = resolve(dataDir);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // The data directory's root key, wherever it lives (a key file, or an HSM: strongroom init).
    const root = await openRootSealer(dir, { create: true });
    try {
      return new HsmCatalog(await openHsmStore(database ?? `sqlite:${join(dir, 'strongroom.db')}`), root.sealer, root, dir);
    } catch (error) {
      await root.close();
      throw error;
    }
  }

  pinOf(member: HsmMemberRecord): SecretBytes | undefined {
    return member.sealedPin ? this.sealer.unseal(member.sealedPin, hsmMemberPinBinding(member.clusterId, member.name)) : undefined;
  }

  /** The cluster's HSM audit log: `<data-dir>/hsm-audit/<cluster id>.jsonl`. */
  auditLogPath(clusterId: string): string {
    return join(this.dataDir, 'hsm-audit', `${clusterId}.jsonl`);
  }

  async connect(clusterId: string): Promise<HsmCluster> {
    return connectStoredCluster(this.store, clusterId, (member) => this.pinOf(member), {
      audit: hsmAuditFile(this.auditLogPath(clusterId), clusterId),
    });
  }

  async close(): Promise<void> {
    await this.store.close();
    await this.root.close();
  }
}

/** AWS's cluster id form: "cluster-" and 11 characters of [a-z2-7]. */
export function newClusterId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  return `cluster-${Array.from({ length: 11 }, () => alphabet[randomInt(alphabet.length)]).join('')}`;
}

export function memberRecord(clusterId: string, options: MemberOptions, pin: SecretBytes | undefined, sealer: Sealer): HsmMemberRecord {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(options.memberName)) throw new Error('--member-name: 1-64 letters, digits, _ . -');
  if (options.agent) {
    if (!options.tlsCa || !options.tlsCert || !options.tlsKey) throw new Error('an agent member needs --tls-ca, --tls-cert and --tls-key');
    return {
      clusterId,
      name: options.memberName,
      config: {
        kind: 'agent',
        host: options.agent.host,
        port: options.agent.port,
        ...(options.servername ? { servername: options.servername } : {}),
        caFile: resolve(options.tlsCa),
        certFile: resolve(options.tlsCert),
        keyFile: resolve(options.tlsKey),
      },
      addedAt: new Date(),
    };
  }
  if (!options.module) throw new Error('name the member with --module (and --token-label or --slot) or --agent');
  if ((options.tokenLabel === undefined) === (options.slot === undefined)) throw new Error('name the token with exactly one of --token-label and --slot');
  if (!pin) throw new Error('an in-process member needs its user PIN (--pin-file or STRONGROOM_HSM_PIN)');
  return {
    clusterId,
    name: options.memberName,
    config: {
      kind: 'pkcs11',
      modulePath: resolve(options.module),
      ...(options.tokenLabel !== undefined ? { tokenLabel: options.tokenLabel } : { slotId: options.slot! }),
      ...(options.sessions !== undefined ? { sessions: options.sessions } : {}),
      ...(options.inlineCalls ? { inlineCalls: true } : {}),
    },
    sealedPin: sealer.seal(pin, hsmMemberPinBinding(clusterId, options.memberName)),
    addedAt: new Date(),
  };
}

export async function createCluster(
  catalog: HsmCatalog,
  options: MemberOptions & { clusterId?: string; minReplicas: number; requestTimeoutMs: number },
  pin: SecretBytes | undefined,
  soPin: SecretBytes,
): Promise<unknown> {
  const clusterId = options.clusterId ?? newClusterId();
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/.test(clusterId)) throw new Error('--cluster-id: 1-64 letters, digits and hyphens');
  if (await catalog.store.getCluster(clusterId)) throw new Error(`HSM cluster ${clusterId} exists already`);
  const record = memberRecord(clusterId, options, pin, catalog.sealer);
  const member = memberFromRecord(record, pin);
  try {
    await member.connect(); // the user PIN works before the token gets a cluster key
    await createClusterKey(clusterId, member, soPin);
  } finally {
    await member.close();
  }
  await catalog.store.createCluster(
    { clusterId, createdAt: new Date(), minReplicas: options.minReplicas, requestTimeoutMs: options.requestTimeoutMs },
    record,
  );
  return clusterStatus(catalog, clusterId);
}

export async function addMember(
  catalog: HsmCatalog,
  clusterId: string,
  options: MemberOptions & { source?: string },
  pin: SecretBytes | undefined,
  soPin: SecretBytes,
  sourceSoPin: SecretBytes,
): Promise<unknown> {
  const record = memberRecord(clusterId, options, pin, catalog.sealer);
  if ((await catalog.store.listMembers(clusterId)).some((member) => member.name === record.name)) throw new Error(`member ${record.name} is already in ${clusterId}`);
  const cluster = await catalog.connect(clusterId);
  let fingerprint: string;
  let recorded = false;
  try {
    // The row goes in once the member holds the cluster key, before the objects are copied: a
    // server connected meanwhile then owes it every key it makes, and brings it in on its next probe.
    fingerprint = await cluster.addMember(memberFromRecord(record, pin), sourceSoPin, soPin, options.source, async () => {
      await catalog.store.addMember(record);
      recorded = true;
    });
  } catch (error) {
    if (!recorded) throw error;
    // Its copies are owed in the journal: whichever connected cluster re-synchronises it finishes them.
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`member ${record.name} holds the cluster key and is in ${clusterId}, but copying the keys to it failed (${reason}): it is re-synchronised before it serves`);
  } finally {
    await cluster.close();
  }
  // Compare with the agents' logs: the key the joining HSM made is the one the source wrapped for.
  return { ...(await clusterStatus(catalog, clusterId)) as object, TransportKeyFingerprint: fingerprint };
}

/** Connects (re-synchronising members that owe operations) and reports every member. */
export async function clusterStatus(catalog: HsmCatalog, clusterId: string): Promise<unknown> {
  const record = await catalog.store.getCluster(clusterId);
  if (!record) throw new Error(`no HSM cluster ${clusterId}`);
  const members = await catalog.store.listMembers(clusterId);
  const summary = {
    ClusterId: clusterId,
    CreatedAt: record.createdAt.toISOString(),
    MinReplicas: record.minReplicas,
    RequestTimeoutMs: record.requestTimeoutMs,
  };
  let cluster: HsmCluster;
  try {
    cluster = await catalog.connect(clusterId);
  } catch (error) {
    if (!(error instanceof HsmClusterError)) throw error;
    return { ...summary, ConnectionState: 'FAILED', ConnectionErrorCode: error.code, Members: members.map((member) => ({ Name: member.name, Kind: member.config.kind })) };
  }
  try {
    const status = cluster.status();
    const described = [];
    const unprotected: string[] = [];
    for (const [index, member] of status.members.entries()) {
      const active = member.state === 'ACTIVE';
      const objects = active ? (await cluster.members[index]!.listObjects()).length : undefined;
      const keyProtected = active ? (await cluster.members[index]!.health()).clusterKeyProtected : undefined;
      if (keyProtected === false) unprotected.push(member.name);
      described.push({
        Name: member.name,
        Kind: members[index]?.config.kind,
        State: member.state,
        ...(member.errorCode ? { ErrorCode: member.errorCode } : {}),
        ...(objects !== undefined ? { KeyObjects: objects } : {}),
        ...(keyProtected !== undefined ? { ClusterKeyProtected: keyProtected } : {}),
        OwedOperations: (await catalog.store.owedOperations(clusterId, member.name)).length,
      });
    }
    const warnings = unprotected.length > 0 ? [unprotectedClusterKeyWarning(unprotected)] : [];
    return { ...summary, ConnectionState: status.connectionState, Members: described, ...(warnings.length > 0 ? { Warnings: warnings } : {}) };
  } finally {
    await cluster.close();
  }
}

/** docs/hsm-cluster.md, "Threat model": a cluster wrapping key made before its templates existed. */
export function unprotectedClusterKeyWarning(members: readonly string[]): string {
  return (
    `UNPROTECTED CLUSTER KEY on ${members.join(', ')}: its cluster wrapping key was made without CKA_UNWRAP_TEMPLATE/CKA_WRAP_TEMPLATE ` +
    '(before this version). Anyone holding the crypto-user PIN (the custom key store password) can export every KMS key of this ' +
    'cluster in the clear, and on members that joined by the ceremony anyone who can open the token, PIN or not, can turn the ' +
    'cluster key into a decryption key for the backups. The templates cannot be added to an existing key. Remedy: create a new ' +
    'cluster with this version (hsm cluster create), move the data to keys in it (ReEncrypt), then delete the old keys and this ' +
    'cluster; until then guard the PIN, access to the tokens and the backup files as the keys themselves.'
  );
}

export async function listClusters(catalog: HsmCatalog): Promise<unknown> {
  const clusters = [];
  for (const cluster of await catalog.store.listClusters()) {
    const members = await catalog.store.listMembers(cluster.clusterId);
    clusters.push({ ClusterId: cluster.clusterId, CreatedAt: cluster.createdAt.toISOString(), Members: members.map((member) => member.name) });
  }
  return { Clusters: clusters };
}

export async function backupCluster(catalog: HsmCatalog, clusterId: string, out: string): Promise<unknown> {
  const cluster = await catalog.connect(clusterId);
  try {
    const index = cluster.status().members.findIndex((member) => member.state === 'ACTIVE');
    const path = resolve(out);
    const backup = await writeBackup(cluster.members[index]!, clusterId, path);
    await catalog.store.addBackup(clusterId, path, new Date());
    return { ClusterId: clusterId, File: path, Objects: backup.objects.length };
  } finally {
    await cluster.close();
  }
}

/** Unwraps the backup's objects into every active member (or the one named) that lacks them. */
export async function restoreCluster(catalog: HsmCatalog, clusterId: string, file: string, memberName?: string): Promise<unknown> {
  const backup = await readBackup(resolve(file));
  const cluster = await catalog.connect(clusterId);
  try {
    const restored: Record<string, number> = {};
    for (const [index, member] of cluster.status().members.entries()) {
      if (member.state !== 'ACTIVE' || (memberName !== undefined && member.name !== memberName)) continue;
      restored[member.name] = await restoreBackup(cluster.members[index]!, clusterId, resolve(file));
    }
    if (memberName !== undefined && restored[memberName] === undefined) throw new Error(`member ${memberName} is not an active member of ${clusterId}`);
    return { ClusterId: clusterId, ObjectsInBackup: backup.objects.length, Restored: restored };
  } finally {
    await cluster.close();
  }
}
