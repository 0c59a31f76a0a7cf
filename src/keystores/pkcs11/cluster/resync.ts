/**
 * Returning a member to service (cluster.ts): the health check that a member must pass, and the
 * re-synchronisation from the journal that it gets before it serves again.
 */
import { Pkcs11Error } from '../errors.ts';
import { isBusy } from './dispatch.ts';
import type { OwedEntry } from './journal.ts';
import type { KeyObjectInfo } from './member.ts';
import { labelOf, type ClusterContext, type Slot } from './slot.ts';

/**
 * Why the member cannot serve this cluster, or undefined if it can: it must answer its health
 * check and hold this cluster's wrapping key. A token that was removed (SoftHSM: its directory
 * gone) fails its health check or has lost the key.
 */
export async function healthProblem(context: ClusterContext, slot: Slot): Promise<Pkcs11Error | undefined> {
  const health = await context.bounded(slot.member.health(), slot);
  if (!health.ok) return new Pkcs11Error((health.code as Pkcs11Error['code']) ?? 'FAILED', `member ${slot.member.name} is unhealthy`);
  if (health.clusterId !== context.clusterId) {
    return new Pkcs11Error('CLUSTER_KEY_MISSING', `member ${slot.member.name} does not hold this cluster's wrapping key`);
  }
  return undefined;
}

/**
 * A health check that only timed out, waiting for a session (isBusy) or for a member serving a
 * queue of requests (MEMBER_TIMEOUT), found the member busy, not broken: load is not failure. A
 * member that really hangs is taken out by the crypto calls that time out once they have a session.
 */
export function foundBusy(error: unknown): boolean {
  return isBusy(error) || (error instanceof Pkcs11Error && error.code === 'MEMBER_TIMEOUT');
}

/** Connects and checks the member; throws what is wrong. */
export async function checkMember(context: ClusterContext, slot: Slot): Promise<void> {
  await context.bounded(slot.member.connect(), slot);
  const problem = await healthProblem(context, slot);
  if (problem) throw problem;
}

/**
 * Records, for `joining`, every object `source` holds that it lacks. Run by the add-member command
 * for the member it joins, and by every connected cluster for a member it starts to follow
 * (resyncMember, when the probe brings it in), because the journal alone can miss a key made while
 * the member joined. The command lists the source after the catalog has the member, and a maker
 * reads the catalog after its key exists, so each such key should be listed or owed; yet a CI run
 * (about 1 in 20 under load, PostgreSQL catalog, SoftHSM) ended with a key that was neither: made
 * by a server that did not yet see the member, and missing from the list the command took a few
 * milliseconds later in its own process. Whatever let that happen, the maker's own view of the
 * token holds every key it made, and its comparison, under its change lock and before the member
 * first serves, copies them.
 */
export async function oweMissingObjects(context: ClusterContext, source: Slot, joining: Slot): Promise<void> {
  const { journal, bounded } = context;
  const present = new Set((await bounded(joining.member.listObjects(), joining)).map((object) => object.objectId.toString('hex')));
  // A key being deleted: every member owes its destroy (journal.ts, oweDestroys), which may not
  // have reached the source yet. Owing a create would replace the joining member's destroy, and
  // it would keep a copy of the deleted key for good.
  const destroying = new Set<string>();
  for (const member of [joining, source]) {
    for (const entry of await journal.owed(member.member.name)) if (entry.operation === 'destroy') destroying.add(entry.objectId.toString('hex'));
  }
  for (const object of await bounded(source.member.listObjects(), source)) {
    const id = object.objectId.toString('hex');
    if (!present.has(id) && !destroying.has(id)) await journal.owe(joining.member.name, object.objectId, 'create');
  }
}

/**
 * Applies what the member owes: destroys first, then the objects it missed, copied from an active
 * member. A member the cluster has just started to follow (slot.reconcile) is first compared with
 * an active member (oweMissingObjects; the caller holds the change lock, so every key this process
 * made before it followed the member is listed). With no other member active there is nothing to
 * compare with, and it comes in on the journal's entries alone rather than the cluster staying empty.
 */
export async function resyncMember(context: ClusterContext, slot: Slot): Promise<void> {
  const source = slot.reconcile ? context.source(slot) : undefined;
  if (source) await oweMissingObjects(context, source, slot);
  await applyOwed(context, slot);
  slot.reconcile = false;
}

async function applyOwed(context: ClusterContext, slot: Slot): Promise<void> {
  const { journal, bounded } = context;
  const owed = await journal.owed(slot.member.name);
  // A member taken out for holding two objects under one CKA_ID is listed even if it owes nothing.
  if (owed.length === 0 && slot.errorCode !== 'KEY_AMBIGUOUS') return;
  const listed = await bounded(slot.member.listObjects(), slot);
  await replaceDuplicates(context, slot, listed, owed);
  const present = new Set(listed.map((object) => object.objectId.toString('hex')));
  const copied: { objectId: Buffer; from: Slot }[] = [];
  for (const entry of owed) {
    if (entry.operation === 'destroy') {
      await bounded(slot.member.destroy(entry.objectId), slot);
      context.audit(slot, 'resync-destroy', entry.objectId);
    } else if (!present.has(entry.objectId.toString('hex'))) {
      const source = context.source(slot);
      if (!source) throw context.insufficient();
      let wrapped: Buffer;
      try {
        wrapped = await bounded(source.member.wrap(entry.objectId), source);
      } catch (error) {
        if (!(error instanceof Pkcs11Error && error.code === 'KEY_NOT_FOUND')) throw error;
        await journal.settle(slot.member.name, entry.objectId); // destroyed since: nothing to copy
        continue;
      }
      try {
        await bounded(slot.member.unwrap(entry.objectId, labelOf(entry.objectId), wrapped), slot);
        context.audit(slot, 'resync-create', entry.objectId);
        copied.push({ objectId: entry.objectId, from: source });
      } catch (error) {
        // Another process (the add-member command, another node) copied it meanwhile.
        if (!(error instanceof Pkcs11Error && error.code === 'OBJECT_EXISTS')) throw error;
      }
    }
    await journal.settle(slot.member.name, entry.objectId);
  }
  await undoCopiesOfDestroyed(context, slot, copied);
}

/**
 * Objects the member holds twice under one CKA_ID, copies that two processes unwrapped at the same
 * moment before LocalHsmMember.unwrap converged (token-objects.ts): the member answers KEY_AMBIGUOUS
 * for their key and is taken out. Each is replaced by one copy wrapped in an active member: owed
 * first, so that a failure midway is made good by the next re-synchronisation; then every copy
 * destroyed and one unwrapped. A key no active member can wrap is left as it is, so the last copies
 * are never destroyed; one the member owes a destroy of is destroyed by resyncMember anyway.
 */
async function replaceDuplicates(context: ClusterContext, slot: Slot, listed: readonly KeyObjectInfo[], owed: readonly OwedEntry[]): Promise<void> {
  const seen = new Set<string>();
  const twice = new Map<string, Buffer>();
  for (const { objectId } of listed) {
    const id = objectId.toString('hex');
    if (seen.has(id)) twice.set(id, objectId);
    else seen.add(id);
  }
  for (const entry of owed) if (entry.operation === 'destroy') twice.delete(entry.objectId.toString('hex'));
  for (const objectId of twice.values()) {
    const source = context.source(slot);
    if (!source) return;
    let wrapped: Buffer;
    try {
      wrapped = await context.bounded(source.member.wrap(objectId), source);
    } catch (error) {
      if (error instanceof Pkcs11Error && (error.code === 'KEY_NOT_FOUND' || error.code === 'KEY_AMBIGUOUS')) continue;
      throw error;
    }
    await context.journal.owe(slot.member.name, objectId, 'create');
    await context.bounded(slot.member.destroy(objectId), slot);
    context.audit(slot, 'resync-destroy', objectId);
    try {
      await context.bounded(slot.member.unwrap(objectId, labelOf(objectId), wrapped), slot);
      context.audit(slot, 'resync-create', objectId);
    } catch (error) {
      // Another process replaced them at the same time, and its copy stands.
      if (!(error instanceof Pkcs11Error && error.code === 'OBJECT_EXISTS')) throw error;
    }
    await context.journal.settle(slot.member.name, objectId);
  }
}

/**
 * A process that does not share this one's change lock (another node, the add-member command
 * beside a server) may have destroyed a key between its wrap in the source and its unwrap here:
 * that destroy did not find it here yet. So each copy's source is listed again afterwards, and a
 * copy whose original is gone is destroyed.
 */
async function undoCopiesOfDestroyed(context: ClusterContext, slot: Slot, copied: readonly { objectId: Buffer; from: Slot }[]): Promise<void> {
  const listed = new Map<Slot, Set<string>>();
  for (const { objectId, from } of copied) {
    let held = listed.get(from);
    if (!held) listed.set(from, (held = new Set((await context.bounded(from.member.listObjects(), from)).map((object) => object.objectId.toString('hex')))));
    if (held.has(objectId.toString('hex'))) continue;
    await context.bounded(slot.member.destroy(objectId), slot);
    context.audit(slot, 'resync-destroy', objectId);
  }
}
