/**
 * The storage layer's narrow interface: metadata, sealed key material and credentials.
 * Backends (SQLite now, PostgreSQL later) implement MetadataStore; nothing above this layer
 * knows which one it talks to. Records are plain camelCase domain types; sealed material is
 * opaque bytes that only a key store can open.
 */

export * from './hsm-types.ts';

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
  /** Keys in a custom key store (Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE): the store's id. */
  customKeyStoreId?: string;
  /** Origin EXTERNAL_KEY_STORE: the key's id in the external key manager, as the proxy knows it. */
  xksKeyId?: string;
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
  /**
   * The principal the key signs as: a user or role ARN for long-term keys, an assumed-role
   * session ARN (arn:aws:sts::<acct>:assumed-role/<role>/<session>) for temporary ones.
   */
  principalArn: string;
  /** The secret access key sealed under the root key, bound to the access key id. */
  sealedSecret: Buffer;
  status: 'Active' | 'Inactive';
  createdAt: Date;
  /** Approximate (refreshed at most hourly, as AWS's is): see touchAccessKey. */
  lastUsedAt?: Date;
  /** Temporary credentials only: SHA-256 of the session token, and when the credentials expire. */
  sessionTokenHash?: Buffer;
  expiresAt?: Date;
}

export type PrincipalKind = 'user' | 'role';

/** An IAM-style identity of the account: a user or a role. */
export interface PrincipalRecord {
  /** arn:aws:iam::<acct>:user/<name> or arn:aws:iam::<acct>:role/<name>. */
  arn: string;
  kind: PrincipalKind;
  name: string;
  /** AWS's unique id form: AIDA… for users, AROA… for roles. */
  principalId: string;
  createdAt: Date;
  /** Roles only: the trust policy saying who may assume the role. */
  trustPolicy?: string;
  /** Roles only: the longest session AssumeRole may grant, in seconds. */
  maxSessionDurationSeconds?: number;
  /** Principal tags (aws:PrincipalTag/<key>), in key order. */
  tags: TagRecord[];
}

/** An inline identity policy attached to a principal. */
export interface IdentityPolicyRecord {
  principalArn: string;
  policyName: string;
  document: string;
}

export interface GrantConstraints {
  encryptionContextEquals?: Record<string, string>;
  encryptionContextSubset?: Record<string, string>;
}

export interface GrantRecord {
  /** 64 lowercase hex characters, as AWS's grant ids. */
  grantId: string;
  keyId: string;
  name?: string;
  granteePrincipal: string;
  retiringPrincipal?: string;
  /** KMS operation names without the "kms:" prefix, e.g. "Decrypt". */
  operations: string[];
  constraints?: GrantConstraints;
  /** The account of the principal that created the grant. */
  issuingAccount: string;
  createdAt: Date;
}

export type CustomKeyStoreType = 'AWS_CLOUDHSM' | 'EXTERNAL_KEY_STORE';

/** AWS's ConnectionStateType. */
export type CustomKeyStoreConnectionState = 'CONNECTED' | 'CONNECTING' | 'FAILED' | 'DISCONNECTED' | 'DISCONNECTING';

/** The proxy an EXTERNAL_KEY_STORE reaches (AWS's XksProxyConfigurationType, minus the secret). */
export interface XksProxyConfiguration {
  connectivity: 'PUBLIC_ENDPOINT' | 'VPC_ENDPOINT_SERVICE';
  /** https://host[:port]; several, comma-separated in Strongroom, for redundant links. */
  uriEndpoint: string;
  uriPath: string;
  accessKeyId: string;
  vpcEndpointServiceName?: string;
  vpcEndpointServiceOwner?: string;
}

/** A custom key store: keys whose material lives in an HSM cluster or behind an XKS proxy. */
export interface CustomKeyStoreRecord {
  /** cks- and 17 hex characters, as AWS's. */
  customKeyStoreId: string;
  name: string;
  type: CustomKeyStoreType;
  createdAt: Date;
  connectionState: CustomKeyStoreConnectionState;
  /** AWS's ConnectionErrorCodeType, set while the state is FAILED. */
  connectionErrorCode?: string;
  /** AWS_CLOUDHSM: the Strongroom HSM cluster the store uses. */
  cloudHsmClusterId?: string;
  trustAnchorCertificate?: string;
  /**
   * Sealed under the root key, bound to the store id: the crypto user's PIN (AWS_CLOUDHSM's
   * KeyStorePassword) or the proxy's SigV4 secret (EXTERNAL_KEY_STORE's RawSecretAccessKey).
   */
  sealedSecret: Buffer;
  xksProxy?: XksProxyConfiguration;
}

export type CustomKeyStorePatch = Partial<
  Pick<
    CustomKeyStoreRecord,
    'name' | 'connectionState' | 'connectionErrorCode' | 'cloudHsmClusterId' | 'sealedSecret' | 'xksProxy'
  >
>;

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

  /** StoreConflictError when the name is taken. */
  createCustomKeyStore(record: CustomKeyStoreRecord): Promise<void>;
  getCustomKeyStore(customKeyStoreId: string): Promise<CustomKeyStoreRecord | undefined>;
  /** Every custom key store, oldest first (AWS allows 10 per account and Region). */
  listCustomKeyStores(): Promise<CustomKeyStoreRecord[]>;
  /**
   * Applies the patch (`null` clears a field) if the store exists and, when given, is in one of
   * `expectedStates`, checked in the same statement. StoreConflictError when a new name is taken.
   */
  updateCustomKeyStore(
    customKeyStoreId: string,
    patch: { [K in keyof CustomKeyStorePatch]: CustomKeyStorePatch[K] | null },
    expectedStates?: readonly CustomKeyStoreConnectionState[],
  ): Promise<boolean>;
  /** Deletes a store that holds no keys (checked in the same transaction). */
  deleteCustomKeyStore(
    customKeyStoreId: string,
    expectedStates: readonly CustomKeyStoreConnectionState[],
  ): Promise<'deleted' | 'not-found' | 'has-keys' | 'wrong-state'>;
  /** How many keys (in any state) live in the store. */
  countKeysInCustomKeyStore(customKeyStoreId: string): Promise<number>;
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
  /**
   * Read the key (getKey) and check its state first: PostgreSQL caches version rows (immutable),
   * and may still answer for a key another node has destroyed (key-version-cache.ts).
   */
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
  /**
   * Runs the scheduler's pass (`work`) unless another node sharing this database is running
   * its own right now; then returns undefined at once, without waiting. PostgreSQL: a
   * session-level pg_try_advisory_lock, released when the pass ends or its node dies. SQLite:
   * always runs (one server owns a data dir: the data-dir lock).
   */
  withBackgroundLock<T>(work: () => Promise<T>): Promise<T | undefined>;

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
  /** Read through the read cache: the SigV4 hot path. */
  getAccessKey(accessKeyId: string): Promise<AccessKeyRecord | undefined>;
  /** Every access key, or only those of one principal (exact ARN), oldest first. */
  listAccessKeys(principalArn?: string): Promise<AccessKeyRecord[]>;
  updateAccessKeyStatus(accessKeyId: string, status: AccessKeyRecord['status']): Promise<boolean>;
  deleteAccessKey(accessKeyId: string): Promise<boolean>;
  /**
   * Records a use of the key: sets lastUsedAt to `usedAt` only when it is unset or before
   * `staleBefore`, so a busy key costs one write an hour, not one per request.
   */
  touchAccessKey(accessKeyId: string, usedAt: Date, staleBefore: Date): Promise<void>;
  /** Deletes temporary credentials that expired at or before `now`; returns how many. */
  deleteExpiredSessions(now: Date): Promise<number>;

  /** StoreConflictError when the ARN is taken. */
  createPrincipal(principal: PrincipalRecord): Promise<void>;
  /** Read through the read cache: every authorization reads it. */
  getPrincipal(arn: string): Promise<PrincipalRecord | undefined>;
  /** Principals of one kind in name order; `after` is the last name of the previous page. */
  listPrincipals(kind: PrincipalKind, limit: number, after?: string): Promise<Page<PrincipalRecord>>;
  /** Replaces the given fields; false when the principal does not exist. */
  updatePrincipal(
    arn: string,
    patch: Partial<Pick<PrincipalRecord, 'trustPolicy' | 'tags' | 'maxSessionDurationSeconds'>>,
  ): Promise<boolean>;
  /**
   * Deletes the principal with its identity policies and any temporary credentials issued for
   * it (sessions of a role); long-term access keys must have been deleted first (the service
   * checks). Returns whether it existed.
   */
  deletePrincipal(arn: string): Promise<boolean>;

  /** Creates or replaces; at most `maxPerPrincipal` policies per principal (StoreLimitError). */
  putIdentityPolicy(policy: IdentityPolicyRecord, maxPerPrincipal?: number): Promise<void>;
  getIdentityPolicy(principalArn: string, policyName: string): Promise<IdentityPolicyRecord | undefined>;
  /** Read through the read cache (every authorization reads it), in policy-name order. */
  listIdentityPolicies(principalArn: string): Promise<IdentityPolicyRecord[]>;
  deleteIdentityPolicy(principalArn: string, policyName: string): Promise<boolean>;

  /**
   * Adds a grant. StoreLimitError when the key already has `maxPerKey` grants;
   * StoreKeyNotFoundError when the key is gone. Both checked inside the write's transaction.
   */
  createGrant(grant: GrantRecord, maxPerKey?: number): Promise<void>;
  getGrant(grantId: string): Promise<GrantRecord | undefined>;
  /** Read through the read cache: every authorization of a key reads its grants. Oldest first. */
  grantsForKey(keyId: string): Promise<GrantRecord[]>;
  /** A key's grants oldest first, optionally filtered; `after` is the previous page's nextAfter. */
  listGrants(
    keyId: string,
    limit: number,
    after?: string,
    filter?: { grantId?: string; granteePrincipal?: string },
  ): Promise<Page<GrantRecord>>;
  /** Grants naming this retiring principal across all keys, oldest first. */
  listRetirableGrants(retiringPrincipal: string, limit: number, after?: string): Promise<Page<GrantRecord>>;
  deleteGrant(grantId: string): Promise<boolean>;

  close(): Promise<void>;
}

/** The identity policy that lets its principal do everything, given to the first administrator. */
export const ADMINISTRATOR_ACCESS_POLICY_NAME = 'AdministratorAccess';
export const ADMINISTRATOR_ACCESS_POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}';
