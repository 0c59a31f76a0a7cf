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

/** A line for the cluster's own HSM audit log (no key bytes, no plaintext, no PINs). */
export interface HsmAuditEvent {
  readonly member: string;
  readonly operation: string;
  readonly objectId?: string;
  readonly outcome: 'ok' | 'error';
  readonly errorCode?: string;
}

export interface HsmClusterOptions {
  readonly clusterId: string;
  readonly members: HsmMember[];
  readonly journal?: ClusterJournal;
  /** Per member call (default 2,000 ms); past it the member is taken out and the call retried elsewhere. */
  readonly requestTimeoutMs?: number;
  /** How often members that are out are probed (default 1,000 ms). */
  readonly probeIntervalMs?: number;
  /** Members that must hold a new key before createKey succeeds (default 1). */
  readonly minReplicas?: number;
  /** Backup files this cluster manages: destroyKey removes the object from each. */
  readonly backupFiles?: () => Promise<string[]>;
  readonly audit?: (event: HsmAuditEvent) => void;
}

