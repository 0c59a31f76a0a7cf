/**
 * Request dispatch with failover (cluster.ts's encrypt, decrypt and generateRandom): one active
 * member after another until one answers. A member that fails or runs past the request timeout is
 * taken out; one that is only busy (POOL_TIMEOUT: no session free, or its agent's requests in
 * flight all taken) stays in, and the request goes to the next member, or, when every member was
 * busy, round again after a pause, within an overall bound so a caller never hangs.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { CryptoError } from '../../../crypto/errors.ts';
import { Pkcs11Error } from '../errors.ts';
import type { HsmRequestInfo } from './cluster-types.ts';
import type { Deadlines } from './deadlines.ts';
import { NOT_NOW, type CallProgress, type HsmMember } from './member.ts';
import type { Slot } from './slot.ts';

/** Between rounds over members that were all busy. */
const BUSY_PAUSE_MS = 20;

/** What dispatch needs from its cluster. */
export interface DispatchContext {
  readonly deadlines: Deadlines;
  /** How long a request may wait for a member with capacity, overall, ms. */
  readonly queueTimeoutMs: number;
  /** The next active member in the rotation that is not in `tried`. */
  pick(tried: readonly Slot[] | undefined): Slot | undefined;
  /** Takes the member out after this failure (and logs it). */
  fail(slot: Slot, error: unknown, operation: string, objectId: Buffer | undefined, request: HsmRequestInfo | undefined): void;
  audit(slot: Slot, operation: string, objectId: Buffer | undefined, outcome: 'ok' | 'error', errorCode: string | undefined, request: HsmRequestInfo | undefined): void;
  /** After KEY_NOT_FOUND: checks, in the background, whether the member still holds the cluster's objects. */
  checkHolding(slot: Slot): void;
  insufficient(): Error;
}

export type MemberCall<T> = (member: HsmMember, progress: CallProgress) => Promise<T>;
/** The same call made synchronously if the member can run it now (HsmMember.encryptNow), else NOT_NOW. */
export type MemberCallNow<T> = (member: HsmMember) => T | typeof NOT_NOW;

/** A member that could not take the call yet: load, not a failure. */
export function isBusy(error: unknown): boolean {
  return error instanceof Pkcs11Error && error.code === 'POOL_TIMEOUT';
}

export async function dispatch<T>(
  context: DispatchContext,
  operation: string,
  objectId: Buffer | undefined,
  request: HsmRequestInfo | undefined,
  call: MemberCall<T>,
  now?: MemberCallNow<T>,
): Promise<T> {
  const giveUpAt = Date.now() + context.queueTimeoutMs;
  let tried: Slot[] | undefined;
  let notFound: unknown;
  let busy: unknown;
  for (;;) {
    const slot = context.pick(tried);
    if (!slot) {
      // Every active member tried. Only busy ones (no failure, no missing key): wait and go round again.
      if (busy === undefined || notFound !== undefined || Date.now() + BUSY_PAUSE_MS >= giveUpAt) break;
      await delay(BUSY_PAUSE_MS);
      tried = undefined;
      busy = undefined;
      continue;
    }
    try {
      // A call the member can finish now needs no deadline; its errors are handled as the others'.
      const done = now ? now(slot.member) : NOT_NOW;
      if (done !== NOT_NOW) {
        context.audit(slot, operation, objectId, 'ok', undefined, request);
        return done;
      }
      const result = await context.deadlines.track((progress) => call(slot.member, progress), slot.member.name, giveUpAt);
      context.audit(slot, operation, objectId, 'ok', undefined, request);
      return result;
    } catch (error) {
      if (error instanceof RangeError) throw error; // the caller's arguments
      if (error instanceof CryptoError) {
        // The caller's ciphertext or context, not the member: never retried.
        context.audit(slot, operation, objectId, 'error', 'INVALID_CIPHERTEXT', request);
        throw error;
      }
      if (error instanceof Pkcs11Error && error.code === 'KEY_NOT_FOUND') {
        notFound = error;
        context.audit(slot, operation, objectId, 'error', 'KEY_NOT_FOUND', request);
        // A destroyed key, or a member that lost its objects (a removed token): the check tells them apart.
        context.checkHolding(slot);
      } else if (isBusy(error)) {
        busy = error;
        context.audit(slot, operation, objectId, 'error', 'POOL_TIMEOUT', request);
      } else context.fail(slot, error, operation, objectId, request);
      (tried ??= []).push(slot);
    }
  }
  if (notFound !== undefined) throw notFound;
  if (busy !== undefined) throw busy;
  throw context.insufficient();
}
