/**
 * The audit trail's storage (docs/audit.md): an append-only, hash-chained list of event texts
 * with signed digests, plus indexed columns for queries and GetKeyLastUsage. Appending reads the
 * tail inside the write transaction, so any number of processes append to one gap-free chain.
 */

/** The digest bounds docs/audit.md gives: 1,000 events, or 60 s with new events. */
export const DEFAULT_DIGEST_EVERY_EVENTS = 1000;
export const DEFAULT_DIGEST_INTERVAL_MS = 60_000;

/** One event as the service built it: its compact JSON text and the columns indexed beside it. */
export interface AuditEntryInput {
  /** The CloudTrail record, compact JSON: stored, hashed and exported verbatim. */
  readonly text: string;
  readonly time: Date;
  readonly eventName: string;
  readonly principalArn?: string;
  /** Every key the event names (ReEncrypt names two): indexed for queries and GetKeyLastUsage. */
  readonly keyIds: readonly string[];
  readonly errorCode?: string;
  /** A successful cryptographic operation (what GetKeyLastUsage reports). */
  readonly cryptoSuccess: boolean;
}

/** Whether an entry has the types the store needs (a malformed one is refused, not stored). */
export function isAuditEntry(entry: AuditEntryInput): boolean {
  const optionalString = (value: unknown) => value === undefined || typeof value === 'string';
  return (
    typeof entry === 'object' &&
    entry !== null &&
    typeof entry.text === 'string' &&
    entry.time instanceof Date &&
    Number.isFinite(entry.time.getTime()) &&
    typeof entry.eventName === 'string' &&
    optionalString(entry.principalArn) &&
    optionalString(entry.errorCode) &&
    Array.isArray(entry.keyIds) &&
    entry.keyIds.every((keyId) => typeof keyId === 'string') &&
    typeof entry.cryptoSuccess === 'boolean'
  );
}

/** Stored events that do not decode: the trail was edited outside Strongroom (verify reports it as the break). */
export class AuditTrailCorruptError extends Error {
  override readonly name = 'AuditTrailCorruptError';
}

export interface AuditEventRow {
  seq: number;
  time: Date;
  text: string;
  /** The chain hash, 32 bytes. */
  hash: Buffer;
  eventName: string;
  principalArn?: string;
  errorCode?: string;
  cryptoSuccess: boolean;
}

export interface AuditDigestRow {
  /** Digests count from 1. */
  seq: number;
  /** The last event the digest seals. */
  lastSeq: number;
  time: Date;
  /** The digest's compact JSON, signed verbatim. */
  text: string;
  signature: Buffer;
}

/** What the store knows when a digest is due; the sealer turns it into text and signature. */
export interface DigestRequest {
  seq: number;
  lastSeq: number;
  lastHash: Buffer;
  eventCount: number;
  time: Date;
  /** The previous digest's text, or undefined for the first digest. */
  previousText: string | undefined;
}

export interface SealedDigest {
  text: string;
  signature: Buffer;
}

/** Called inside the append transaction; must not do I/O. Throwing rolls the append back. */
export type DigestSealer = (request: DigestRequest) => SealedDigest;

export interface AppendResult {
  /** The seqs given to this append's entries; firstSeq > lastSeq when there were none. */
  firstSeq: number;
  lastSeq: number;
  /** Digests written in this transaction. */
  digestsWritten: number;
  /** The last sealed event after the append (0: none). */
  sealedUpTo: number;
  /** When the last digest was written (the trail's start if none). */
  lastDigestTime: Date;
}

export interface AuditQuery {
  /** Event time, inclusive. */
  from?: Date;
  /** Event time, exclusive. */
  to?: Date;
  principalArn?: string;
  keyId?: string;
  eventName?: string;
  errorCode?: string;
  /** Only events with an error code. */
  onlyErrors?: boolean;
  /** Oldest first (default) from afterSeq, or newest first before beforeSeq. */
  order?: 'asc' | 'desc';
  afterSeq?: number;
  beforeSeq?: number;
  limit: number;
}

export interface AuditStore {
  /**
   * Appends entries in one write transaction (BEGIN IMMEDIATE): reads the tail, chains each
   * entry, and writes a digest through `seal` wherever the bounds are met. With no entries it
   * writes only a digest, if one is due by time. `probe` also bumps the probe row in the same
   * transaction. Rejects, having written nothing, if the transaction does not commit.
   */
  append(entries: readonly AuditEntryInput[], seal: DigestSealer, options?: { probe?: boolean }): Promise<AppendResult>;
  /** A durable write in its own transaction; rejects if it cannot commit. */
  probe(): Promise<void>;
  /** Up to `limit` events with seq >= fromSeq, in chain order. */
  readEvents(fromSeq: number, limit: number, toSeq?: number): Promise<AuditEventRow[]>;
  /** Up to `limit` digests with seq >= fromSeq, in order. */
  readDigests(fromSeq: number, limit: number): Promise<AuditDigestRow[]>;
  /** The last event's and the last digest's seq (0 when none), read together. */
  tail(): Promise<{ lastSeq: number; lastDigestSeq: number }>;
  query(query: AuditQuery): Promise<AuditEventRow[]>;
  /** The latest successful cryptographic event naming the key. */
  lastCryptoUse(keyId: string): Promise<AuditEventRow | undefined>;
  firstEventTime(): Promise<Date | undefined>;
  /** When this trail was created. */
  startTime(): Promise<Date>;
  getMeta(name: string): Promise<string | undefined>;
  /** Inserts unless present; returns the stored value (the first writer's). */
  putMetaIfAbsent(name: string, value: string): Promise<string>;
  close(): Promise<void>;
}
