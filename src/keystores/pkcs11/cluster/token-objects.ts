/**
 * The key version objects in a member's token (LocalHsmMember): listing them, and copying one in
 * (C_UnwrapKey: re-synchronisation, joins, replication, backup restores) so that one object with
 * its CKA_ID remains, whoever else copies it at the same moment.
 *
 * A token has no create-if-absent. Processes that share no lock (two nodes, the hsm command beside
 * a server, two nodes through one hsm-agent) each look first, find nothing, and unwrap: the member
 * then holds two objects under one CKA_ID, which LocalHsmMember will not choose between
 * (KEY_AMBIGUOUS), so it answered that for the key for good. Hence each copier looks again after
 * its unwrap. Alone: done. Not alone: it destroys its own object, never another's, and looks once
 * more: another's there stands; none there (every copier withdrew at once) means try again after
 * a random pause. The copies are clones the token cannot tell apart (same value, template and
 * label) and object handles differ between processes, so there is nothing every copier could agree
 * to keep; withdrawing only one's own object means no copier ever destroys the copy that stays.
 */
import { randomInt } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import pkcs11js from 'pkcs11js';
import { call } from '../errors.ts';
import type { Handle } from '../module.ts';
import { findObjects, findSecretKeys } from '../objects.ts';
import { OBJECT_ID_LENGTH } from '../reference.ts';
import type { KeyObjectInfo } from './member.ts';

/**
 * One attempt's outcome. kept: ours is the only one. exists: another object with the id was there
 * before we copied. yielded: ours was withdrawn for another that stands. gone: ours was destroyed
 * by someone else and nothing is left (the key's deletion, as if it had come just after the copy).
 * withdrawn: ours was withdrawn and no other was left: try again.
 */
export type CopyOutcome = 'kept' | 'exists' | 'yielded' | 'gone' | 'withdrawn';

/** Attempts before giving up on copiers that keep colliding; each pause is random, up to 20 ms × attempt. */
const COPY_ATTEMPTS = 8;

/**
 * Runs attempt until it is neither withdrawn nor yielded; the last outcome, or 'withdrawn' or
 * 'yielded' after COPY_ATTEMPTS. Yielded is looked at again after the pause: the copy ours gave
 * way to may itself have been withdrawn in the same moment (its copier saw ours before we
 * destroyed it), and if that copier then died or gave up, answering "exists" at once would leave
 * the member holding nothing while the caller records the copy as done.
 */
export async function copyConverging(attempt: () => Promise<CopyOutcome>): Promise<CopyOutcome> {
  for (let tries = 1; ; tries++) {
    const outcome = await attempt();
    if ((outcome !== 'withdrawn' && outcome !== 'yielded') || tries === COPY_ATTEMPTS) return outcome;
    await delay(randomInt(1, 20 * tries + 1));
  }
}

/** After this process's C_UnwrapKey made `object`: keeps it if it is the only object with the id, else withdraws it. */
export function keepOnlyCopy(api: pkcs11js.PKCS11, session: Handle, objectId: Buffer, object: Handle): CopyOutcome {
  const copies = findSecretKeys(api, session, objectId, 16);
  const ours = copies.some((copy) => copy.equals(object));
  if (ours && copies.length === 1) return 'kept';
  if (ours) call('C_DestroyObject', () => api.C_DestroyObject(session, object));
  else if (copies.length === 0) return 'gone';
  return findSecretKeys(api, session, objectId, 1).length > 0 ? 'yielded' : 'withdrawn';
}

/** The token's Strongroom key version objects: secret keys with a 28-byte CKA_ID and a strongroom: label. */
export function listKeyObjects(api: pkcs11js.PKCS11, session: Handle): KeyObjectInfo[] {
  const objects = findObjects(
    api,
    session,
    [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
    ],
    1_000_000,
  );
  const listed: KeyObjectInfo[] = [];
  for (const object of objects) {
    const [id, label] = call('C_GetAttributeValue', () => api.C_GetAttributeValue(session, object, [{ type: pkcs11js.CKA_ID }, { type: pkcs11js.CKA_LABEL }]));
    const text = label?.value?.toString('utf8') ?? '';
    if (id?.value?.length === OBJECT_ID_LENGTH && text.startsWith('strongroom:')) listed.push({ objectId: Buffer.from(id.value), label: text });
  }
  return listed;
}
