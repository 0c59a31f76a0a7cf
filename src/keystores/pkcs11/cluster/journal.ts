/**
 * What a member that was out of service still owes: objects created or destroyed while it was
 * down. The cluster records an entry before the create or destroy returns and settles it when the
 * member's re-synchronisation has applied it. MemoryJournal serves a single process; the data
 * directory's database holds a persistent one (src/storage/sqlite/hsm-tables.ts), so a destroy
 * owed by a member is not forgotten across restarts.
 */
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
