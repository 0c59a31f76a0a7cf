/**
 * The storage layer's narrow interface: metadata, sealed key material and credentials.
 * Backends (SQLite now, PostgreSQL later) implement MetadataStore; nothing above this layer
 * knows which one it talks to. Records are plain camelCase domain types; sealed material is
 * opaque bytes that only a key store can open.
 */

export type KeyState =
  | 'Creating'
  | 'Enabled'
  | 'Disabled'
  | 'PendingDeletion'
  | 'PendingImport'
  | 'PendingReplicaDeletion'
  | 'Unavailable'
  | 'Updating';

export interface KeyRecord {
  keyId: string;
  createdAt: Date;
  description: string;
  keyUsage: string;
  keySpec: string;
  origin: string;
  state: KeyState;
  /** When a key pending deletion is destroyed. */
  deletionDate?: Date;
  pendingWindowInDays?: number;
  policy: string;
  rotationEnabled: boolean;
  rotationPeriodInDays?: number;
  nextRotationAt?: Date;
  /** The version new ciphertexts are made with; versions start at 1. */
  currentVersion: number;
  onDemandRotationCount: number;
}

export type RotationType = 'AUTOMATIC' | 'ON_DEMAND';

export interface KeyVersionRecord {
  keyId: string;
  version: number;
  /** 64 lowercase hex characters, AWS's KeyMaterialId. */
  keyMaterialId: string;
  /** Opaque to storage: only the key store that made it can open it. */
  sealedMaterial: Buffer;
  createdAt: Date;
  /** How this version came to be; undefined for the version made at CreateKey. */
  rotationType?: RotationType;
}

export interface AliasRecord {
  aliasName: string;
  targetKeyId: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface TagRecord {
  tagKey: string;
  tagValue: string;
}

export interface AccessKeyRecord {
  accessKeyId: string;
  principalArn: string;
  /** The secret access key sealed under the root key, bound to the access key id. */
  sealedSecret: Buffer;
  status: 'Active' | 'Inactive';
  createdAt: Date;
}

export interface Page<T> {
  items: T[];
  /** Present when more items follow; the caller turns it into an opaque marker. */
  nextAfter?: string;
}

export type KeyPatch = Partial<
  Pick<
    KeyRecord,
    | 'description'
    | 'state'
    | 'deletionDate'
    | 'pendingWindowInDays'
    | 'policy'
    | 'rotationEnabled'
    | 'rotationPeriodInDays'
    | 'nextRotationAt'
  >
>;

/** Thrown by a store when a unique name is taken (alias names). */
export class StoreConflictError extends Error {}

/** Thrown when a write would pass a per-key limit, checked inside the write's transaction. */
export class StoreLimitError extends Error {}

/** Thrown when a write refers to a key that no longer exists (destroyed meanwhile). */
export class StoreKeyNotFoundError extends Error {}

export interface MetadataStore {
  getSetting(name: string): Promise<string | undefined>;
  /** Sets the value only when none exists; returns the value in force. */
  putSettingIfAbsent(name: string, value: string): Promise<string>;

  createKey(key: KeyRecord, firstVersion: KeyVersionRecord, tags: readonly TagRecord[]): Promise<void>;
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  listKeys(limit: number, after?: string): Promise<Page<KeyRecord>>;
  /**
   * Applies the patch (`null` clears a field) if the key exists and is in one of
   * `expectedStates`, checked in the same statement: a state check made earlier by the caller
   * cannot be overtaken by another process. Returns whether the key was updated.
   */
  updateKey(
    keyId: string,
    patch: { [K in keyof KeyPatch]: KeyPatch[K] | null },
    expectedStates: readonly KeyState[],
  ): Promise<boolean>;
  /**
   * Adds a version and makes it current, atomically. Fails (false) if `expectedCurrent` is stale
   * or the key is no longer Enabled: only enabled keys rotate, and the check is part of the write.
   */
  addKeyVersion(
    version: KeyVersionRecord,
    expectedCurrent: number,
    patch: { nextRotationAt?: Date | null; countOnDemand: boolean },
  ): Promise<boolean>;
  getKeyVersion(keyId: string, version: number): Promise<KeyVersionRecord | undefined>;
  listKeyVersions(keyId: string): Promise<KeyVersionRecord[]>;
  /** Removes the key, every version's sealed material, its aliases and tags. */
  destroyKey(keyId: string): Promise<void>;
  /**
   * destroyKey, but only if the key is still pending deletion with a deletion date at or before
   * `now`, checked in the same statement: a CancelKeyDeletion that lands after the scheduler
   * listed the key wins. Returns whether the key was destroyed.
   */
  destroyKeyIfDue(keyId: string, now: Date): Promise<boolean>;
  keysDueForDeletion(now: Date): Promise<string[]>;
  keysDueForRotation(now: Date): Promise<string[]>;

  /** At most `maxAliasesPerKey` aliases may point at one key (StoreLimitError beyond). */
  createAlias(alias: AliasRecord, maxAliasesPerKey?: number): Promise<void>;
  getAlias(aliasName: string): Promise<AliasRecord | undefined>;
  updateAlias(aliasName: string, targetKeyId: string, updatedAt: Date): Promise<boolean>;
  deleteAlias(aliasName: string): Promise<boolean>;
  listAliases(limit: number, after?: string, targetKeyId?: string): Promise<Page<AliasRecord>>;

  /** Upserts tags; the key may end with at most `maxTags` (StoreLimitError beyond). */
  putTags(keyId: string, tags: readonly TagRecord[], maxTags?: number): Promise<void>;
  removeTags(keyId: string, tagKeys: readonly string[]): Promise<void>;
  listTags(keyId: string): Promise<TagRecord[]>;

  putAccessKey(accessKey: AccessKeyRecord): Promise<void>;
  getAccessKey(accessKeyId: string): Promise<AccessKeyRecord | undefined>;
  listAccessKeys(): Promise<AccessKeyRecord[]>;

  close(): Promise<void>;
}
