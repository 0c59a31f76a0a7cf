/** The HSM catalog's records: clusters, their members, and what a member owes (re-exported by types.ts). */

/** An HSM cluster as configured with `strongroom hsm cluster create` (src/storage/sqlite/hsm-tables.ts). */
export interface HsmClusterRecord {
  readonly clusterId: string;
  readonly createdAt: Date;
  /** Members that must hold a new key before its creation succeeds. */
  readonly minReplicas: number;
  /** Per member call, before the member is taken out and the call retried on another. */
  readonly requestTimeoutMs: number;
}

/** An in-process PKCS#11 token member. */
export interface HsmPkcs11MemberConfig {
  readonly kind: 'pkcs11';
  readonly modulePath: string;
  readonly tokenLabel?: string;
  readonly slotId?: number;
  readonly sessions?: number;
  /** Encrypt/decrypt on the calling thread rather than libuv's pool (LocalMemberOptions.inlineCalls). */
  readonly inlineCalls?: boolean;
}

/** A remote member: an hsm-agent over mutual TLS; the PEM files are read at connect. */
export interface HsmAgentMemberConfig {
  readonly kind: 'agent';
  readonly host: string;
  readonly port: number;
  readonly servername?: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface HsmMemberRecord {
  readonly clusterId: string;
  readonly name: string;
  readonly config: HsmPkcs11MemberConfig | HsmAgentMemberConfig;
  /** The crypto user's PIN sealed under the root key (binding hsmMemberPinBinding); agents hold their own. */
  readonly sealedPin?: Buffer;
  readonly addedAt: Date;
}

/** What a member that was out of service owes (src/keystores/pkcs11/cluster/journal.ts). */
export interface HsmOwedOperationRecord {
  readonly objectId: Buffer;
  readonly operation: 'create' | 'destroy';
}

/** The sealing binding of a member's PIN: a sealed PIN moved to another member's row does not open. */
export const hsmMemberPinBinding = (clusterId: string, memberName: string): string => `hsm-member-pin:${clusterId}:${memberName}`;
