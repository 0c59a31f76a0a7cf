/**
 * Making a key version in the cluster (cluster.ts, createKey): generated in one member, wrapped
 * under the cluster wrapping key and unwrapped into every other active member before the CKA_ID
 * is handed out; members out of service owe it (journal). Fewer than minReplicas holders: the key
 * is destroyed wherever it was made and the call fails.
 */
import { newObjectId } from '../reference.ts';
import { keyVersionLabel } from '../templates.ts';
import { HsmClusterError } from './cluster-types.ts';
import type { ClusterContext, Slot } from './slot.ts';

/** candidates: the active members, in the order to try generating in. */
export async function createReplicatedKey(
  context: ClusterContext,
  candidates: readonly Slot[],
  allSlots: readonly Slot[],
  keyId: string,
  version: number,
  minReplicas: number,
): Promise<Buffer> {
  const { bounded, journal } = context;
  // Too few members to hold it even if all goes well: refused before anything is made.
  if (candidates.length < minReplicas) {
    throw new HsmClusterError('INSUFFICIENT_CLOUDHSM_HSMS', `HSM cluster ${context.clusterId} has ${candidates.length} active member(s); a new key needs ${minReplicas}`);
  }
  const label = keyVersionLabel(keyId, version);
  let source: Slot | undefined;
  let objectId = newObjectId(keyId, version);
  for (const slot of candidates) {
    try {
      await bounded(slot.member.generateAesKey(objectId, label), slot);
      source = slot;
      break;
    } catch (error) {
      context.fail(slot, error, 'generate', objectId);
      // It may have made the key after all (a timeout): that key must never be taken for the
      // one another member makes next, so it is owed a destroy and the next attempt gets a
      // CKA_ID of its own.
      await journal.owe(slot.member.name, objectId, 'destroy');
      objectId = newObjectId(keyId, version);
    }
  }
  if (!source) throw context.insufficient();
  const holders: Slot[] = [source];
  const failed: Slot[] = [];
  try {
    const wrapped = await bounded(source.member.wrap(objectId), source);
    await Promise.all(
      candidates
        .filter((slot) => slot !== source && slot.state === 'ACTIVE')
        .map(async (slot) => {
          try {
            await bounded(slot.member.unwrap(objectId, label, wrapped), slot);
            holders.push(slot);
          } catch (error) {
            failed.push(slot);
            context.fail(slot, error, 'replicate', objectId);
          }
        }),
    );
    if (holders.length < minReplicas) throw context.insufficient();
    // Read after the key exists in its holders: a member that joins meanwhile either is listed
    // here (and owes the key) or lists the source's objects after this point (and copies it).
    for (const name of await context.unfollowed()) await journal.owe(name, objectId, 'create');
  } catch (error) {
    // Fail cleanly: gone from every member that made it; a member that failed mid-unwrap may
    // have made it too, so it owes a destroy.
    const destroyed = await Promise.all(holders.map((slot) => destroyOn(context, slot, objectId)));
    for (const [index, slot] of holders.entries()) if (!destroyed[index]) failed.push(slot);
    for (const slot of failed) await journal.owe(slot.member.name, objectId, 'destroy');
    throw error;
  }
  for (const slot of allSlots) {
    if (!holders.includes(slot)) await journal.owe(slot.member.name, objectId, 'create');
  }
  for (const slot of holders) context.audit(slot, 'create', objectId);
  return objectId;
}

/** Destroys the object in one member; false (and the member taken out) if that failed. */
export async function destroyOn(context: ClusterContext, slot: Slot, objectId: Buffer): Promise<boolean> {
  try {
    await context.bounded(slot.member.destroy(objectId), slot);
    context.audit(slot, 'destroy', objectId);
    return true;
  } catch (error) {
    context.fail(slot, error, 'destroy', objectId);
    return false;
  }
}
