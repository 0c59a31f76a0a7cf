/**
 * What a member that was out of service still owes: objects created or destroyed while it was
 * down. The cluster records an entry before the create or destroy returns and settles it when the
 * member's re-synchronisation has applied it. MemoryJournal serves a single process; the data
 * directory's database holds a persistent one (src/storage/sqlite/hsm-tables.ts), so a destroy
 * owed by a member is not forgotten across restarts.
 */
import type { OwedDestruction } from '../../types.ts';

export type OwedOperation = 'create' | 'destroy';

export interface OwedEntry {
  readonly objectId: Buffer;
  readonly operation: OwedOperation;
}

export interface ClusterJournal {
  owed(member: string): Promise<OwedEntry[]>;
  /** A later entry for the same object replaces an earlier one (a destroy cancels an owed create). */
  owe(member: string, objectId: Buffer, operation: OwedOperation): Promise<void>;
  settle(member: string, objectId: Buffer): Promise<void>;
}

export class MemoryJournal implements ClusterJournal {
  readonly #entries = new Map<string, Map<string, OwedOperation>>();

  async owed(member: string): Promise<OwedEntry[]> {
    return [...(this.#entries.get(member) ?? new Map<string, OwedOperation>())].map(([id, operation]) => ({
      objectId: Buffer.from(id, 'hex'),
      operation,
    }));
  }

  async owe(member: string, objectId: Buffer, operation: OwedOperation): Promise<void> {
    let entries = this.#entries.get(member);
    if (!entries) this.#entries.set(member, (entries = new Map()));
    entries.set(objectId.toString('hex'), operation);
  }

  async settle(member: string, objectId: Buffer): Promise<void> {
    this.#entries.get(member)?.delete(objectId.toString('hex'));
  }
}

/** What one member owed for one object before oweDestroys recorded a destroy over it. */
interface Replaced {
  readonly member: string;
  readonly objectId: Buffer;
  readonly before: OwedOperation | undefined;
}

/**
 * Records that every member owes the destroy of every object (a key's deletion, before its row
 * goes: stored.ts), and returns how to take that back. An entry holds one operation per member and
 * object, so the destroy replaces what was owed: a create, for a member that was down when the key
 * was made. Taking the destroys back by settling them would leave that member owing nothing, and it
 * would serve again without the key (KEY_NOT_FOUND for every request routed to it); so what each
 * entry replaced is kept, and put back.
 */
export async function oweDestroys(journal: ClusterJournal, members: readonly string[], objectIds: readonly Buffer[]): Promise<OwedDestruction> {
  const replaced: Replaced[] = [];
  for (const member of members) {
    const owed = await journal.owed(member);
    for (const objectId of objectIds) {
      replaced.push({ member, objectId, before: owed.find((entry) => entry.objectId.equals(objectId))?.operation });
      await journal.owe(member, objectId, 'destroy');
    }
  }
  return { withdraw: () => putBack(journal, replaced) };
}

/**
 * What each member owed before, unless the entry changed since: a create recorded since stands,
 * and a destroy no longer owed was carried out (the member's re-synchronisation, meanwhile), so the
 * member owes the create now, whatever it owed before. A destroy owed *before* is a leftover of an
 * earlier attempt at this same deletion that stopped short of it (these object ids belong to this
 * key's versions alone): the key lives on, so that member owes the create, never the destroy. An
 * owed create of an object the member still holds is settled at its re-synchronisation.
 */
async function putBack(journal: ClusterJournal, replaced: readonly Replaced[]): Promise<void> {
  for (const member of new Set(replaced.map((entry) => entry.member))) {
    const now = new Map((await journal.owed(member)).map((entry) => [entry.objectId.toString('hex'), entry.operation]));
    for (const { objectId, before } of replaced.filter((entry) => entry.member === member)) {
      const current = now.get(objectId.toString('hex'));
      if (current === 'create') continue;
      if (before !== undefined || current === undefined) await journal.owe(member, objectId, 'create');
      else await journal.settle(member, objectId);
    }
  }
}
