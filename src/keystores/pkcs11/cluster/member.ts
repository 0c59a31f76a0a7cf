/**
 * One HSM of a cluster, as the cluster sees it: an in-process PKCS#11 token (local-member.ts) or
 * an hsm-agent reached over mutual TLS (remote-member.ts). Objects are named by their CKA_ID
 * (reference.ts: 28 bytes); nothing here ever carries key bytes in the clear: wrap returns the
 * object under the cluster wrapping key, which only members hold.
 */
import { createHash } from 'node:crypto';
import type { SecretBytes } from '../../../crypto/secret-bytes.ts';
import { Pkcs11Error } from '../errors.ts';

export interface KeyObjectInfo {
  /** CKA_ID (28 bytes, reference.ts). */
  readonly objectId: Buffer;
  readonly label: string;
}

export interface MemberHealth {
  readonly ok: boolean;
  /** Pkcs11Error code (or CONNECTION_FAILED for a remote member) when not ok. */
  readonly code?: string;
  /** The cluster whose wrapping key the token holds, if any. */
  readonly clusterId?: string;
  /**
   * False when that wrapping key lacks the wrap/unwrap templates (made before they existed,
   * ceremony-steps.ts clusterKeyProtected): a crypto-user PIN holder can then read KMS keys.
   * Undefined when unknown (no cluster key, or an agent that does not report it).
   */
  readonly clusterKeyProtected?: boolean;
}

/** The joining member's transport public key (RSA), as modulus and public exponent. */
export interface TransportPublicKey {
  readonly modulus: Buffer;
  readonly exponent: Buffer;
}

/**
 * SHA-256 over modulus || exponent (leading zeros stripped), hex: what the operators of the joining
 * and the source member compare, each in their own agent's log, to know that nothing between them
 * substituted the transport key (docs/hsm-cluster.md, "Trusting the relay").
 */
export function transportKeyFingerprint(transport: TransportPublicKey): string {
  const strip = (bytes: Buffer): Buffer => {
    let start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) start++;
    return bytes.subarray(start);
  };
  return createHash('sha256').update(strip(transport.modulus)).update(strip(transport.exponent)).digest('hex');
}

/**
 * How a member tells the cluster where a crypto call is (deadlines.ts): waiting for capacity (a
 * free session, or a free place among an agent's requests in flight) is load, not a member
 * failure; running too long is. A member that never calls either is bounded from the call.
 */
export interface CallProgress {
  /** The call waits for capacity: its failure deadline is suspended (the cluster's overall bound remains). */
  queued(): void;
  /** The call starts on the HSM now: its failure deadline starts. False: the caller gave up; do not run it. */
  started(): boolean;
}

/** What a member's synchronous crypto call (encryptNow, decryptNow) answers when it cannot run now. */
export const NOT_NOW: unique symbol = Symbol('not now');

export interface HsmMember {
  readonly name: string;
  /** Calls the member runs at once (its session pool), when it knows; an hsm-agent tells its clients at connect. */
  readonly sessions?: number;
  /** Logs in (user PIN) and opens the session pool. Throws Pkcs11Error (PIN_INCORRECT, …). */
  connect(): Promise<void>;
  health(): Promise<MemberHealth>;

  /** AES-256 KMS key object, sensitive, exportable only to trusted wrapping keys. */
  generateAesKey(objectId: Buffer, label: string): Promise<void>;
  /** The object wrapped under the cluster wrapping key (CKM_AES_KEY_WRAP, RFC 3394). */
  wrap(objectId: Buffer): Promise<Buffer>;
  /** Unwraps a wrap() result into a new object with this CKA_ID; refuses if one already exists. */
  unwrap(objectId: Buffer, label: string, wrapped: Buffer): Promise<void>;
  /** AES-256-GCM in the token; returns ciphertext || 16-byte tag. */
  encrypt(objectId: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer, progress?: CallProgress): Promise<Buffer>;
  /** Throws CryptoError('decryption failed') for any authentication failure. */
  decrypt(objectId: Buffer, iv: Buffer, aad: Buffer, sealed: Buffer, progress?: CallProgress): Promise<Buffer>;
  /**
   * encrypt/decrypt run to completion on the event loop, when the member can run them now (it
   * calls its token inline and has a session free); NOT_NOW, having done nothing, otherwise. The
   * cluster tries these first: a call that is over when it returns needs no deadline.
   */
  encryptNow?(objectId: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): Buffer | typeof NOT_NOW;
  decryptNow?(objectId: Buffer, iv: Buffer, aad: Buffer, sealed: Buffer): Buffer | typeof NOT_NOW;
  /** Destroys every object with this CKA_ID; false if there was none. */
  destroy(objectId: Buffer): Promise<boolean>;
  /** The KMS key objects on the token. */
  listObjects(): Promise<KeyObjectInfo[]>;
  /**
   * Destroys the cluster wrapping key (`hsm cluster remove-member`); false if there was none.
   * In-process members only: the agent protocol has no such call.
   */
  destroyClusterKey?(): Promise<boolean>;
  /** Bytes from the token's own generator (C_GenerateRandom), 1..1024 of them. */
  generateRandom(length: number, progress?: CallProgress): Promise<Buffer>;
  /**
   * Whether `pin` is the crypto user's PIN this member logs in with, compared in constant time
   * (a custom key store's KeyStorePassword against an hsm-agent, which holds its own PIN).
   */
  verifyPin?(pin: SecretBytes): Promise<boolean>;

  // The key ceremony (ceremony.ts). Each call needs the member's Security Officer PIN, used for
  // that call only and never kept: CKA_TRUSTED can only be set by the SO (PKCS#11 v2.40 §4.10).
  /** Generates the cluster wrapping key in this (the first) member. */
  createClusterKey(soPin: SecretBytes, clusterId: string): Promise<void>;
  /** A fresh transport key pair in this joining member; returns its public half. */
  beginJoin(soPin: SecretBytes): Promise<TransportPublicKey>;
  /** Imports the joiner's public key as trusted and wraps the cluster key with it (RSA-OAEP). */
  wrapClusterKeyFor(soPin: SecretBytes, transport: TransportPublicKey): Promise<Buffer>;
  /** Unwraps the cluster key with the transport private key, then destroys the transport pair. */
  completeJoin(soPin: SecretBytes, clusterId: string, wrappedClusterKey: Buffer): Promise<void>;

  close(): Promise<void>;
}

/** GenerateRandom's bounds (NumberOfBytes 1..1024 in the KMS API). */
export function checkRandomLength(length: number): void {
  if (!Number.isInteger(length) || length < 1 || length > 1024) throw new RangeError('random length must be 1..1024 bytes');
}

/** The call has its session: its deadline starts; if the cluster gave up while it waited, it is not run. */
export function startOrGiveUp(progress: CallProgress | undefined, member: string): void {
  if (progress && !progress.started()) throw new Pkcs11Error('POOL_TIMEOUT', `HSM member ${member}: the request was given up while it waited for a session`);
}
