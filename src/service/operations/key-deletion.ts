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
import type { KeyRecord, KeyVersionRecord } from '../../storage/types.ts';
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

/** Carried out by the scheduler: destroys the key's material, aliases and tags for good. */
export async function destroyDueKeys(
  context: ServiceContext,
  onFailure: (keyId: string, error: unknown) => void,
): Promise<string[]> {
  const now = context.now();
  const destroyed: string[] = [];
  for (const keyId of await context.store.keysDueForDeletion(now)) {
    try {
      const key = await context.store.getKey(keyId);
      const versions = key?.customKeyStoreId !== undefined ? await context.store.listKeyVersions(keyId) : [];
      if (!(await context.store.destroyKeyIfDue(keyId, now))) continue; // cancelled meanwhile
      context.keyStore.forget(keyId);
      destroyed.push(keyId);
      if (key?.customKeyStoreId !== undefined) await destroyCustomKeyStoreMaterial(context, key, versions);
    } catch (error) {
      onFailure(keyId, error);
    }
  }
  return destroyed;
}

/**
 * A key in a custom key store: its material is destroyed where it lives (every HSM of the cluster;
 * members that are down owe the destruction and carry it out when they return). If the store is
 * not connected, the key is gone from Strongroom but its material stays in the cluster, as in AWS;
 * the failure is reported so the operator can remove it (`strongroom hsm`).
 */
async function destroyCustomKeyStoreMaterial(
  context: ServiceContext,
  key: KeyRecord,
  versions: readonly KeyVersionRecord[],
): Promise<void> {
  const store = (await keyStoreFor(context, key)) as ConnectedKeyStore;
  await store.destroyMaterial?.(versions);
}
