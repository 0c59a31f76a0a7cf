import type { Sealer } from '../crypto/seal.ts';
import type { AuditEntry } from './audit-events.ts';
import type { KeyStore } from '../keystores/types.ts';
import type { MetadataStore, PrincipalRecord } from '../storage/types.ts';
import type { CustomKeyStoreConnections } from './custom-key-stores/connections.ts';
import type { RequestQuotas } from './quotas.ts';

/** What every operation runs against. Transport-agnostic: no HTTP here. */
export interface ServiceContext {
  readonly store: MetadataStore;
  /** The software key store: keys of Origin AWS_KMS (and EXTERNAL's own half). */
  readonly keyStore: KeyStore;
  /** This process's connections to custom key stores (HSM clusters, XKS proxies). */
  readonly customKeyStores: CustomKeyStoreConnections;
  /** Seals credentials (access-key secrets) under the root key. */
  readonly sealer: Sealer;
  readonly accountId: string;
  readonly region: string;
  readonly partition: string;
  /**
   * The audit trail (docs/audit.md). The transports record each request's event; the service
   * probes it before any change of state (fail closed) and reads key usage from it.
   */
  readonly audit: AuditTrail;
  /** The clock; tests move it to make rotations and deletions fall due. */
  readonly now: () => Date;
  /** Request-rate quotas (quotas.ts); absent: none. */
  readonly quotas?: RequestQuotas;
}

/** What the service needs of the audit trail. */
export interface AuditTrail {
  /** Proves the trail can make an event durable now; rejects otherwise. */
  probe(): Promise<void>;
  /** Appends an event; resolves once it is durable (group commit), rejects if it cannot be. */
  record(entry: AuditEntry): Promise<void>;
  /** The latest successful cryptographic operation with the key, from the trail. */
  lastCryptoUse(keyId: string): Promise<{ eventName: string; time: Date; eventId: string } | undefined>;
  /** When the trail began. */
  trackingStart(): Promise<Date>;
}

/** One policy decision made for a request (authorization.ts). */
export interface AccessDecision {
  readonly action: string;
  readonly resource: string;
  readonly allowed: boolean;
}

/** Who is calling, as the transport authenticated them. One Caller per request. */
export interface Caller {
  /** A user ARN, or an assumed-role session ARN for temporary credentials. */
  readonly principalArn: string;
  readonly accessKeyId: string;
  readonly sourceIp?: string;
  /** Whether the request came over TLS (aws:SecureTransport). */
  readonly secureTransport?: boolean;
  /**
   * Every policy decision made for this request, in order. The dispatcher refuses to answer an
   * operation that made none: no operation runs unchecked.
   */
  readonly decisions: AccessDecision[];
  /** The transport's request id (x-amzn-RequestId), passed on to key stores that log it. */
  readonly requestId?: string;
  /** Set once the request has been counted against its quota (at its first allowed decision). */
  quotaCharged?: boolean;
  /**
   * The caller's principal (the user, or the role of a session) as this request's authorization
   * read it, `null` when there was none; undefined until an authorization ran. The audit event's
   * userIdentity reuses it rather than read the same row again for the same request.
   */
  principal?: PrincipalRecord | null;
}

export type Operation<Input, Output> = (context: ServiceContext, input: Input, caller: Caller) => Promise<Output>;
