import type {
  CancelKeyDeletionRequest,
  CancelKeyDeletionResponse,
  ScheduleKeyDeletionRequest,
  ScheduleKeyDeletionResponse,
} from '@aws-sdk/client-kms';
import type { Operation, ServiceContext } from '../context.ts';
import { KmsError, validationError } from '../errors.ts';
import { resolveKeyFor } from '../authorization.ts';
import { keyStoreFor } from '../key-stores.ts';
import type { ConnectedKeyStore } from '../../keystores/types.ts';
import type { CustomKeyStoreRecord, KeyRecord, KeyVersionRecord } from '../../storage/types.ts';
import { MANAGEABLE_STATES, keyArn, requireManageable, updateKeyInState } from '../key-resolution.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const MIN_WINDOW_DAYS = 7;
const MAX_WINDOW_DAYS = 30;
const DEFAULT_WINDOW_DAYS = 30;

export const scheduleKeyDeletion: Operation<ScheduleKeyDeletionRequest, ScheduleKeyDeletionResponse> = async (
  context,
  input,
  caller,
) => {
  const windowDays = input.PendingWindowInDays ?? DEFAULT_WINDOW_DAYS;
  // The model allows 1..365 (the lower bound exists for multi-Region replicas); AWS enforces
  // 7..30 for a key's own deletion with this message form.
  if (windowDays < MIN_WINDOW_DAYS || windowDays > MAX_WINDOW_DAYS) {
    const bound = windowDays < MIN_WINDOW_DAYS ? `greater than or equal to ${MIN_WINDOW_DAYS}` : `less than or equal to ${MAX_WINDOW_DAYS}`;
    throw validationError([
      `Value '${windowDays}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value ${bound}`,
    ]);
  }
  const key = await resolveKeyFor(context, caller, input.KeyId as string, {
    allowAlias: false,
    action: 'kms:ScheduleKeyDeletion',
    conditions: { 'kms:ScheduleKeyDeletionPendingWindowInDays': windowDays },
  });
  requireManageable(context, key);
  const deletionDate = new Date(context.now().getTime() + windowDays * DAY_MS);
  await updateKeyInState(
    context,
    key,
    { state: 'PendingDeletion', deletionDate, pendingWindowInDays: windowDays },
    MANAGEABLE_STATES,
  );
  return {
    KeyId: keyArn(context, key.keyId),
    DeletionDate: deletionDate,
    KeyState: 'PendingDeletion',
    PendingWindowInDays: windowDays,
  };
};

/** A key whose deletion is cancelled comes back Disabled, as in AWS. */
export const cancelKeyDeletion: Operation<CancelKeyDeletionRequest, CancelKeyDeletionResponse> = async (
  context,
  input,
  caller,
) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:CancelKeyDeletion' });
  if (key.state !== 'PendingDeletion') {
    throw new KmsError('KMSInvalidStateException', `${keyArn(context, key.keyId)} is not pending deletion.`);
  }
  await updateKeyInState(
    context,
    key,
    { state: 'Disabled', deletionDate: null, pendingWindowInDays: null },
    ['PendingDeletion'],
  );
  return { KeyId: keyArn(context, key.keyId) };
};

/** What happened to a custom key store key's material when its key was destroyed (background.ts logs and audits it). */
export interface MaterialDestructionNote {
  readonly keyId: string;
  /**
   * DEFERRED: owed, to be applied when the store is connected or its members re-synchronised;
   * DESTROYED: done, but some managed backup files were missing.
   */
  readonly outcome: 'DEFERRED' | 'DESTROYED';
  /** Why, without secrets: an error code or a fixed phrase. */
  readonly reason: string;
  /** Managed backup files that were missing (nothing removed from them). */
  readonly missingBackups?: string[];
}

/** Carried out by the scheduler: destroys the key's material, aliases and tags for good. */
export async function destroyDueKeys(
  context: ServiceContext,
  onFailure: (keyId: string, error: unknown) => void,
  onMaterial: (note: MaterialDestructionNote) => void = () => {},
): Promise<string[]> {
  const now = context.now();
  const destroyed: string[] = [];
  for (const keyId of await context.store.keysDueForDeletion(now)) {
    try {
      const key = await context.store.getKey(keyId);
      if (key?.customKeyStoreId === undefined) {
        if (!(await context.store.destroyKeyIfDue(keyId, now))) continue; // cancelled meanwhile
        context.keyStore.forget(keyId);
        destroyed.push(keyId);
        continue;
      }
      const versions = await context.store.listKeyVersions(keyId);
      const record = await context.store.getCustomKeyStore(key.customKeyStoreId);
      // Before the row (and with it the HSM object ids) is gone: every member owes the destroy,
      // so a store that is disconnected now, or a destroy that fails, is made good at its next
      // connection or re-synchronisation.
      const owed = record ? await context.customKeyStores.oweDestruction(record, versions) : undefined;
      if (!(await context.store.destroyKeyIfDue(keyId, now))) {
        // Cancelled meanwhile: the members owe again what they owed before. A key that another
        // process destroyed meanwhile is gone, and its destroys stay owed.
        if (await context.store.getKey(keyId)) await owed?.withdraw();
        continue;
      }
      context.keyStore.forget(keyId);
      destroyed.push(keyId);
      // An external key store's material is its key versions' rows (gone now) and the proxy's key, which is the customer's.
      if (record?.type === 'AWS_CLOUDHSM') await destroyCustomKeyStoreMaterial(context, key, record, versions, onMaterial);
    } catch (error) {
      onFailure(keyId, error);
    }
  }
  return destroyed;
}

/**
 * A key in a custom key store: its material is destroyed where it lives (every HSM of the cluster;
 * members that are down carry out the destroy they owe when they return) and in every managed
 * backup. If the store is not connected or the destroy fails, the owed destroys recorded before the
 * key's row was deleted stay, and are applied when the store is next connected.
 */
async function destroyCustomKeyStoreMaterial(
  context: ServiceContext,
  key: KeyRecord,
  record: CustomKeyStoreRecord,
  versions: readonly KeyVersionRecord[],
  onMaterial: (note: MaterialDestructionNote) => void,
): Promise<void> {
  // Backups need no connection: cleaned now, whatever happens to the HSMs.
  const missingBackups = await context.customKeyStores.cleanBackups(record, versions);
  let deferred: string | undefined;
  try {
    const store = (await keyStoreFor(context, key)) as ConnectedKeyStore;
    await store.destroyMaterial?.(versions);
  } catch (error) {
    deferred = error instanceof KmsError ? 'the custom key store is not connected' : `destroy failed (${errorCode(error)})`;
  }
  if (deferred) onMaterial({ keyId: key.keyId, outcome: 'DEFERRED', reason: deferred, ...(missingBackups.length ? { missingBackups } : {}) });
  else if (missingBackups.length) onMaterial({ keyId: key.keyId, outcome: 'DESTROYED', reason: 'managed backup files missing', missingBackups });
}

/** An error's code, never its message (which could carry a value). */
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown';
}
