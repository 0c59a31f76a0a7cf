/**
 * `strongroom hsm cluster remove-member`: the member leaves the catalog (connected clusters drop it
 * on their next probe tick; its owed operations go with its row, ON DELETE CASCADE), then its token
 * is cleaned: the cluster wrapping key first — after that no node can unwrap a key into it — then
 * every KMS key object, listed twice so a key replicated into it just before is caught too.
 * `--keep-objects` leaves the token as it is. A token that cannot be reached, or whose cluster key
 * this command cannot destroy (an agent member), is reported with what remains and exit code 2.
 */
import { memberFromRecord } from '../keystores/pkcs11/cluster/stored.ts';
import { clusterKeyLabel } from '../keystores/pkcs11/cluster/ceremony-steps.ts';
import { Pkcs11Error } from '../keystores/pkcs11/errors.ts';
import type { HsmMember } from '../keystores/pkcs11/cluster/member.ts';
import type { HsmMemberRecord } from '../storage/types.ts';
import { clusterStatus, type HsmCatalog } from './hsm-cluster.ts';

/** A command that did part of its work: its result is printed, the message goes to stderr, exit code 2. */
export class IncompleteCommandError extends Error {
  override readonly name = 'IncompleteCommandError';
  constructor(
    message: string,
    readonly result: unknown,
  ) {
    super(message);
  }
}

export async function removeMember(catalog: HsmCatalog, clusterId: string, name: string, keepObjects = false): Promise<unknown> {
  const members = await catalog.store.listMembers(clusterId);
  const record = members.find((member) => member.name === name);
  if (!record) throw new Error(`no member ${name} in HSM cluster ${clusterId}`);
  if (members.length === 1) throw new Error(`${name} is the last member of ${clusterId}: a cluster keeps at least one`);
  await catalog.store.removeMember(clusterId, name);
  const token = keepObjects ? { TokenCleaned: false, Reason: '--keep-objects' } : await cleanToken(catalog, record);
  const result = { ...((await clusterStatus(catalog, clusterId)) as object), Removed: { Name: name, ...token } };
  if ('Remains' in token) {
    throw new IncompleteCommandError(`member ${name} was removed from ${clusterId}, but its token still holds ${token.Remains}: ${token.Reason}`, result);
  }
  return result;
}

interface Cleaned {
  TokenCleaned: boolean;
  KeyObjectsDestroyed?: number;
  ClusterWrappingKeyDestroyed?: boolean;
  /** What is left on the token, when it could not be cleaned (entirely). */
  Remains?: string;
  Reason?: string;
}

async function cleanToken(catalog: HsmCatalog, record: HsmMemberRecord): Promise<Cleaned> {
  const clusterId = record.clusterId;
  const clusterKey = `the cluster wrapping key (label ${clusterKeyLabel(clusterId)})`;
  let member: HsmMember | undefined;
  let clusterKeyDestroyed = false;
  let destroyed = 0;
  try {
    member = memberFromRecord(record, catalog.pinOf(record));
    await member.connect();
    const health = await member.health();
    if (!health.ok) throw new Pkcs11Error((health.code as Pkcs11Error['code']) ?? 'FAILED', 'unhealthy');
    // A token that holds no key of this cluster (never joined, or reused since) is not touched.
    if (health.clusterId !== clusterId) return { TokenCleaned: true, KeyObjectsDestroyed: 0, Reason: `its token holds no wrapping key of ${clusterId}` };
    if (member.destroyClusterKey) clusterKeyDestroyed = await member.destroyClusterKey();
    for (let pass = 0; pass < 2; pass++) {
      for (const object of await member.listObjects()) if (await member.destroy(object.objectId)) destroyed++;
    }
    if (!member.destroyClusterKey) {
      return {
        TokenCleaned: false,
        KeyObjectsDestroyed: destroyed,
        Remains: clusterKey,
        Reason: 'the hsm-agent protocol cannot destroy it; destroy it on the HSM host (e.g. pkcs11-tool --delete-object)',
      };
    }
    return { TokenCleaned: true, KeyObjectsDestroyed: destroyed, ClusterWrappingKeyDestroyed: clusterKeyDestroyed };
  } catch (error) {
    const code = error instanceof Pkcs11Error ? error.code : 'FAILED';
    return {
      TokenCleaned: false,
      KeyObjectsDestroyed: destroyed,
      ClusterWrappingKeyDestroyed: clusterKeyDestroyed,
      Remains: clusterKeyDestroyed ? 'some of its KMS key objects' : `${clusterKey} and every KMS key object it held`,
      Reason: `its token could not be reached or cleaned (${code}); destroy them on the HSM`,
    };
  } finally {
    await member?.close().catch(() => {});
  }
}
