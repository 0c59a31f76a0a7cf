/** The HSM cluster's options, status and errors (cluster.ts). */
import type { ClusterJournal } from './journal.ts';
import type { HsmMember } from './member.ts';

/** AWS's ConnectionErrorCodeType values that a cluster can truthfully report. */
export type ClusterConnectionError =
  | 'INVALID_CREDENTIALS'
  | 'USER_LOCKED_OUT'
  | 'USER_LOGGED_IN'
  | 'NETWORK_ERRORS'
  | 'INSUFFICIENT_CLOUDHSM_HSMS'
  | 'CLUSTER_NOT_FOUND'
  | 'INTERNAL_ERROR';

export class HsmClusterError extends Error {
  override readonly name = 'HsmClusterError';
  constructor(
    readonly code: ClusterConnectionError,
    message: string,
  ) {
    super(message);
  }
}

export type MemberState = 'ACTIVE' | 'DOWN' | 'SYNCING' | 'FAILED';

export interface MemberStatus {
  readonly name: string;
  readonly state: MemberState;
  /** Why it is out (a Pkcs11Error code), when it is. */
  readonly errorCode?: string;
}

export interface ClusterStatus {
  readonly clusterId: string;
  readonly connectionState: 'CONNECTED' | 'FAILED';
  readonly connectionErrorCode?: ClusterConnectionError;
  readonly members: MemberStatus[];
}

/**
 * A line for the cluster's own HSM audit log (no key bytes, no plaintext, no PINs): one per member
 * operation (each encrypt/decrypt/random on the member that served or failed it) and per
 * lifecycle event (create, replicate, destroy, resync, join, members taken out).
 */
export interface HsmAuditEvent {
  readonly member: string;
  readonly operation: string;
  /** The PKCS#11 mechanism of a crypto operation, e.g. CKM_AES_GCM. */
  readonly mechanism?: string;
  /** The object's CKA_ID, hex (key id, version and 8 random bytes: reference.ts). */
  readonly objectId?: string;
  readonly outcome: 'ok' | 'error';
  readonly errorCode?: string;
  /** The KMS request the operation served, and its KMS operation (e.g. Encrypt). */
  readonly requestId?: string;
  readonly kmsOperation?: string;
}

/** Where a cluster's audit events go; `flush`, if there is one, is called when the cluster closes. */
export interface HsmAuditLog {
  (event: HsmAuditEvent): void;
  flush?(): void;
}

/** The KMS request a crypto call serves (KeyStoreRequestInfo fits), for the audit log. */
export interface HsmRequestInfo {
  readonly requestId: string;
  readonly operation?: string;
}

export interface HsmClusterOptions {
  readonly clusterId: string;
  readonly members: HsmMember[];
  readonly journal?: ClusterJournal;
  /**
   * Per member call, from when it has its session (default 2,000 ms); past it the member is taken
   * out and the call retried elsewhere. Time spent waiting for a session does not count.
   */
  readonly requestTimeoutMs?: number;
  /**
   * How long a crypto call may wait, overall, for a member with capacity (a free session, a place
   * among an agent's requests in flight) before failing with POOL_TIMEOUT; busy members are not
   * taken out (default: 10 s or 5 × requestTimeoutMs, whichever is more).
   */
  readonly queueTimeoutMs?: number;
  /** How often members that are out are probed (default 1,000 ms). */
  readonly probeIntervalMs?: number;
  /**
   * Members that must hold a new key before createKey succeeds (default 1); a function of the
   * cluster's member count now, when it follows membership changes (stored.ts, kmsMinReplicas).
   */
  readonly minReplicas?: number | ((members: number) => number);
  /** Backup files this cluster manages: destroyKey removes the object from each. */
  readonly backupFiles?: () => Promise<string[]>;
  readonly audit?: HsmAuditLog;
  /**
   * The members the cluster should have, as the catalog lists them now (stored.ts). Read on every
   * probe tick: members added by another process (`strongroom hsm cluster add-member`, another
   * node) join out of service and are re-synchronised before they serve; members removed leave.
   * createKey and destroyKey read it too, so a member listed but not yet followed owes the change.
   */
  readonly membership?: () => Promise<CatalogMember[]>;
  /**
   * A membership read not answered in this long is given up (default 5,000 ms, membership.ts): a
   * probe tick keeps the members it has and releases the change lock; createKey and destroyKey
   * fail (a key made meanwhile is destroyed again) rather than wait.
   */
  readonly catalogTimeoutMs?: number;
}

/** A member as the catalog lists it: its name, its configuration (to notice a replaced one) and how to open it. */
export interface CatalogMember {
  readonly name: string;
  /** The configuration, serialised: a member re-added under the same name with another one is reopened. */
  readonly config: string;
  open(): HsmMember;
}

