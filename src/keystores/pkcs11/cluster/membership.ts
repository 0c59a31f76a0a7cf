/**
 * Following the catalog's membership (cluster.ts): which slots leave and which members join when
 * the catalog's member rows changed under a connected cluster — `strongroom hsm cluster
 * add-member/remove-member` run while a server is connected, or another node sharing PostgreSQL.
 */
import { HsmClusterError, type CatalogMember } from './cluster-types.ts';
import type { HsmMember } from './member.ts';
import { newSlot, type Slot } from './slot.ts';

export interface MembershipChange {
  /** Slots whose member is no longer listed, or is listed with another configuration. */
  readonly leaving: Slot[];
  /** New slots, out of service (DOWN) until the probe has checked, compared and re-synchronised them. */
  readonly joining: Slot[];
}

/**
 * The difference between the slots and the catalog's list. `configs` holds the configuration each
 * slot was opened with (by member name); a slot opened before the first read adopts the listed one.
 * A member that cannot be opened (e.g. no PIN for it) is left out and tried again next time.
 */
export function membershipChange(slots: readonly Slot[], listed: readonly CatalogMember[], configs: Map<string, string>): MembershipChange {
  const wanted = new Map(listed.map((entry) => [entry.name, entry]));
  const leaving: Slot[] = [];
  for (const slot of slots) {
    const entry = wanted.get(slot.member.name);
    const config = configs.get(slot.member.name);
    if (entry && config === undefined) configs.set(entry.name, entry.config);
    else if (!entry || entry.config !== config) leaving.push(slot);
  }
  const staying = new Set(slots.filter((slot) => !leaving.includes(slot)).map((slot) => slot.member.name));
  const joining: Slot[] = [];
  for (const slot of leaving) configs.delete(slot.member.name);
  for (const entry of listed) {
    if (staying.has(entry.name)) continue;
    let member: HsmMember;
    try {
      member = entry.open();
    } catch {
      continue;
    }
    configs.set(entry.name, entry.config);
    joining.push({ ...newSlot(member, 'DOWN', 'NOT_CONNECTED'), reconcile: true });
  }
  return { leaving, joining };
}

/**
 * How long a read of the catalog's member list may take before it is given up (the default of
 * HsmClusterOptions.catalogTimeoutMs). The list is read under the cluster's change lock: a
 * PostgreSQL read that stalls would otherwise hold that lock, and createKey and destroyKey with
 * it, for as long as it stalls. Generous beside a healthy read (milliseconds).
 */
export const CATALOG_READ_TIMEOUT_MS = 5_000;

/**
 * `membership` whose reads fail with INTERNAL_ERROR past `timeoutMs`. The read itself is not
 * cancelled (a query carries on in its connection); its late answer is dropped.
 */
export function boundedMembership(
  membership: () => Promise<CatalogMember[]>,
  timeoutMs: number,
  clusterId: string,
): () => Promise<CatalogMember[]> {
  return () =>
    new Promise<CatalogMember[]>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new HsmClusterError('INTERNAL_ERROR', `HSM cluster ${clusterId}: the catalog did not list its members within ${timeoutMs} ms`)),
        timeoutMs,
      );
      timer.unref(); // a stalled read does not hold a closing process
      const settle = (): void => clearTimeout(timer);
      Promise.resolve()
        .then(membership)
        .then(resolve, reject)
        .finally(settle);
    });
}

/** Members the catalog lists that have no slot yet (none without a catalog). */
export async function unfollowedMembers(membership: (() => Promise<CatalogMember[]>) | undefined, slots: readonly Slot[]): Promise<string[]> {
  if (!membership) return [];
  const followed = new Set(slots.map((slot) => slot.member.name));
  return (await membership()).map((entry) => entry.name).filter((name) => !followed.has(name));
}
