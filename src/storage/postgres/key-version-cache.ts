import type { KeyVersionRecord } from '../types.ts';

/** About 10k versions: a few MB of sealed material and handles at most. */
const DEFAULT_MAX_ENTRIES = 10_000;

/**
 * Key version rows by (key id, version), least recently used evicted first: on PostgreSQL every
 * Encrypt and Decrypt would otherwise spend a round trip on a row that never changes.
 *
 * Why a cached row is never stale in a way that matters:
 *
 * - A version row is immutable. It is inserted once (createKey, addKeyVersion: the version
 *   number is the key's compare-and-set current version plus one, so a number is never reused for
 *   other material) and never UPDATEd; it is deleted only with its key (destroyKey /
 *   destroyKeyIfDue: `ON DELETE CASCADE`). Strongroom has no ImportKeyMaterial /
 *   DeleteImportedKeyMaterial (Origin EXTERNAL), the one AWS operation that could put other
 *   material under an existing version; adding it must bypass or invalidate this cache.
 * - Only rows that exist are cached, read by autocommit statements (committed data only): a
 *   version that does not exist yet (a rotation on another node not yet read here) is a miss
 *   and read through, never a cached "absent".
 * - The one thing that ends a row's life is the key's destruction, and the key row is guarded
 *   and read through on every request before any version is asked for: every path to
 *   getKeyVersion (key-versions.ts versionForDecrypt / currentVersion, key-metadata.ts,
 *   rotation.ts) resolves the key first (getKey, a round trip every time) and refuses a key that
 *   is gone (NotFoundException / InvalidCiphertextException) or pending deletion or disabled
 *   (KMSInvalidStateException / DisabledException) before it reads a version. So a version
 *   cached here for a key another node destroyed is never reached: the request stops at the
 *   key row. Key ids are random UUIDs, never reused, so no later key can reach it either. The
 *   software key store caches the *unsealed* material per version on the same argument.
 * - This node's own destructions drop the key's entries at once (memory, and belt and braces).
 *
 * Records are frozen and shared between callers, as the SQLite read cache's are.
 */
export class KeyVersionCache {
  readonly #entries = new Map<string, KeyVersionRecord>();

  constructor(private readonly maxEntries = DEFAULT_MAX_ENTRIES) {}

  get size(): number {
    return this.#entries.size;
  }

  get(keyId: string, version: number): KeyVersionRecord | undefined {
    const cacheKey = entryKey(keyId, version);
    const record = this.#entries.get(cacheKey);
    if (record !== undefined) {
      // Map keeps insertion order: re-inserting makes this the most recently used.
      this.#entries.delete(cacheKey);
      this.#entries.set(cacheKey, record);
    }
    return record;
  }

  /** Caches a row just read from the database; returns it frozen. */
  put(record: KeyVersionRecord): KeyVersionRecord {
    const frozen = Object.freeze(record);
    const cacheKey = entryKey(record.keyId, record.version);
    this.#entries.delete(cacheKey);
    if (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(cacheKey, frozen);
    return frozen;
  }

  /** Drops every version of a key (after this node destroyed it). */
  forgetKey(keyId: string): void {
    const prefix = `${keyId}\u0000`;
    for (const cacheKey of this.#entries.keys()) {
      if (cacheKey.startsWith(prefix)) this.#entries.delete(cacheKey);
    }
  }
}

const entryKey = (keyId: string, version: number): string => `${keyId}\u0000${version}`;
