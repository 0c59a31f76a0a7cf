/** A member as the cluster tracks it (cluster.ts), and the status derived from all of them. */
import { bytesToUuid } from '../../../crypto/random.ts';
import { Pkcs11Error } from '../errors.ts';
import { keyVersionLabel } from '../templates.ts';
import type { ClusterConnectionError, ClusterStatus, HsmAuditEvent, HsmRequestInfo, MemberState } from './cluster-types.ts';
import type { ClusterJournal } from './journal.ts';
import type { HsmMember } from './member.ts';

export interface Slot {
  readonly member: HsmMember;
  state: MemberState;
  errorCode: string | undefined;
  /** A connect/health/resync round is running (resync.ts). */
  probing: boolean;
  /** A health check after a KEY_NOT_FOUND is running (cluster.ts, #checkHolding). */
  checking: boolean;
  /**
   * Followed from the catalog while connected (membership.ts): before it first serves, it is
   * compared object by object with an active member, if there is one, not only given what the
   * journal says it owes (resync.ts, oweMissingObjects).
   */
  reconcile?: boolean;
}

/** What the cluster's helpers (resync.ts, replicated-key.ts) need from their cluster. */
export interface ClusterContext {
  readonly clusterId: string;
  readonly journal: ClusterJournal;
  /** The operation, failing with MEMBER_TIMEOUT past the cluster's request timeout. */
  bounded<T>(operation: Promise<T>, slot: Slot): Promise<T>;
  /** An active member other than `except` to copy objects from, if any. */
  source(except: Slot): Slot | undefined;
  /** A lifecycle event that went well, for the HSM audit log. */
  audit(slot: Slot, operation: string, objectId: Buffer | undefined): void;
  /** Takes the member out after this failure (and logs it). */
  fail(slot: Slot, error: unknown, operation: string, objectId?: Buffer): void;
  insufficient(): Error;
  /** Members the catalog lists that the cluster has no slot for yet (they owe every change meanwhile). */
  unfollowed(): Promise<string[]>;
}

export function newSlot(member: HsmMember, state: MemberState, errorCode: string | undefined): Slot {
  return { member, state, errorCode, probing: false, checking: false };
}

/** Errors that are the member's credentials, not its health: probing again could lock the PIN. */
const CREDENTIAL_CODES = new Set(['PIN_INCORRECT', 'PIN_LOCKED', 'PIN_INVALID', 'PIN_EXPIRED', 'ALREADY_LOGGED_IN']);

export function errorCodeOf(error: unknown): string {
  return error instanceof Pkcs11Error ? error.code : 'FAILED';
}

/** The state a member goes to after failing with this code: FAILED (never probed) or DOWN. */
export function stateAfter(code: string): MemberState {
  return CREDENTIAL_CODES.has(code) ? 'FAILED' : 'DOWN';
}

export function clusterStatus(clusterId: string, slots: readonly Slot[], activeCount: number): ClusterStatus {
  const members = slots.map(({ member, state, errorCode }) => ({ name: member.name, state, ...(state === 'ACTIVE' ? {} : { errorCode }) }));
  if (activeCount > 0) return { clusterId, connectionState: 'CONNECTED', members };
  const codes = slots.map((slot) => slot.errorCode);
  const all = (...wanted: string[]): boolean => codes.length > 0 && codes.every((code) => code !== undefined && wanted.includes(code));
  let error: ClusterConnectionError = 'INSUFFICIENT_CLOUDHSM_HSMS';
  if (all('PIN_INCORRECT', 'PIN_INVALID')) error = 'INVALID_CREDENTIALS';
  else if (all('PIN_LOCKED')) error = 'USER_LOCKED_OUT';
  else if (all('ALREADY_LOGGED_IN')) error = 'USER_LOGGED_IN';
  else if (all('CONNECTION_FAILED')) error = 'NETWORK_ERRORS';
  return { clusterId, connectionState: 'FAILED', connectionErrorCode: error, members };
}

/** The CKA_LABEL of an object, from its CKA_ID (key id and version, reference.ts). */
export function labelOf(objectId: Buffer): string {
  return keyVersionLabel(bytesToUuid(objectId.subarray(0, 16)), objectId.readUInt32BE(16));
}

const GCM = 'CKM_AES_GCM';
/** Hex CKA_IDs by buffer: the crypto path passes the same object id buffer for a key version each time (reference.ts's ReferenceDecoder). */
const hexIds = new WeakMap<Buffer, string>();

/** One line for the HSM audit log: which member, operation, mechanism and CKA_ID, for which KMS request. */
export function auditEvent(
  member: string,
  operation: string,
  objectId: Buffer | undefined,
  outcome: 'ok' | 'error',
  errorCode: string | undefined,
  request: HsmRequestInfo | undefined,
): HsmAuditEvent {
  const event: { -readonly [K in keyof HsmAuditEvent]: HsmAuditEvent[K] } = { member, operation, outcome };
  if (operation === 'encrypt' || operation === 'decrypt') event.mechanism = GCM;
  if (objectId) {
    let hex = hexIds.get(objectId);
    if (hex === undefined) hexIds.set(objectId, (hex = objectId.toString('hex')));
    event.objectId = hex;
  }
  if (errorCode) event.errorCode = errorCode;
  if (request) {
    event.requestId = request.requestId;
    if (request.operation) event.kmsOperation = request.operation;
  }
  return event;
}
