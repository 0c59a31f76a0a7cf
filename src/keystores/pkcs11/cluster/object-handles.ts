import type { Handle } from '../module.ts';

/** Bounded: the oldest entry goes first past this many objects. */
const MAX_ENTRIES = 10_000;

/**
 * A member's object handles by object id, so a crypto call skips C_FindObjects. A handle is valid
 * only in the token session epoch it was found in (Pkcs11Token.handleEpoch: a re-login or a token
 * reopened makes new handles), so each entry carries its epoch and an entry of another epoch is a
 * miss. Handles are not secrets: without a logged-in session of the member they open nothing.
 */
export class ObjectHandles {
  readonly #entries = new Map<string, { readonly object: Handle; readonly epoch: number }>();

  get(objectId: Buffer, epoch: number): Handle | undefined {
    const key = objectId.toString('hex');
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.epoch === epoch) return entry.object;
    this.#entries.delete(key);
    return undefined;
  }

  remember(objectId: Buffer, object: Handle, epoch: number): void {
    if (this.#entries.size >= MAX_ENTRIES) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(objectId.toString('hex'), { object, epoch });
  }

  forget(objectId: Buffer): void {
    this.#entries.delete(objectId.toString('hex'));
  }

  clear(): void {
    this.#entries.clear();
  }
}
