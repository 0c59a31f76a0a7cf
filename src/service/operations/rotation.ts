import type {
  DisableKeyRotationRequest,
  EnableKeyRotationRequest,
  GetKeyRotationStatusRequest,
  GetKeyRotationStatusResponse,
  ListKeyRotationsRequest,
  ListKeyRotationsResponse,
  RotateKeyOnDemandRequest,
  RotateKeyOnDemandResponse,
} from '@aws-sdk/client-kms';
import type { KeyRecord } from '../../storage/types.ts';
import type { Operation, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { resolveKeyFor } from '../authorization.ts';
import {
  keyArn,
  keyStateError,
  requireEnabled,
  requireManageable,
  updateKeyInState,
} from '../key-resolution.ts';
import { rotate } from '../key-versions.ts';
import { decodeNumericMarker, encodeMarker, pageLimit } from '../pagination.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_ROTATION_PERIOD_DAYS = 365;
/** AWS KMS quota: on-demand rotations per key over its lifetime. */
const MAX_ON_DEMAND_ROTATIONS = 25;

/** Only symmetric keys whose material KMS generated rotate, as in AWS. */
function requireRotatable(context: ServiceContext, key: KeyRecord): void {
  if (key.keySpec !== 'SYMMETRIC_DEFAULT') throw new KmsError('UnsupportedOperationException', '');
  if (key.origin !== 'AWS_KMS') {
    throw new KmsError(
      'UnsupportedOperationException',
      `${keyArn(context, key.keyId)} origin is ${key.origin} which is not valid for this operation.`,
    );
  }
}

export const enableKeyRotation: Operation<EnableKeyRotationRequest, Record<string, never>> = async (context, input, caller) => {
  const periodDays = input.RotationPeriodInDays ?? DEFAULT_ROTATION_PERIOD_DAYS;
  const key = await resolveKeyFor(context, caller, input.KeyId as string, {
    allowAlias: false,
    action: 'kms:EnableKeyRotation',
    conditions: { 'kms:RotationPeriodInDays': periodDays },
  });
  requireEnabled(context, key);
  requireRotatable(context, key);
  const now = context.now().getTime();
  let nextRotationAt: Date;
  if (!key.rotationEnabled || !key.nextRotationAt) {
    nextRotationAt = new Date(now + periodDays * DAY_MS);
  } else if (key.rotationPeriodInDays === periodDays) {
    // Re-applying the same setting (as configuration tools do) keeps the schedule: otherwise a
    // key whose rotation is re-enabled daily would never rotate.
    nextRotationAt = key.nextRotationAt;
  } else {
    // A new period counts from the current material's creation (the last rotation), not today.
    const current = await context.store.getKeyVersion(key.keyId, key.currentVersion);
    const lastRotation = current ? current.createdAt.getTime() : now;
    nextRotationAt = new Date(Math.max(now, lastRotation + periodDays * DAY_MS));
  }
  await updateKeyInState(
    context,
    key,
    { rotationEnabled: true, rotationPeriodInDays: periodDays, nextRotationAt },
    ['Enabled'],
  );
  return {};
};

export const disableKeyRotation: Operation<DisableKeyRotationRequest, Record<string, never>> = async (context, input, caller) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:DisableKeyRotation' });
  requireEnabled(context, key);
  requireRotatable(context, key);
  await updateKeyInState(context, key, { rotationEnabled: false, nextRotationAt: null }, ['Enabled']);
  return {};
};

export const getKeyRotationStatus: Operation<GetKeyRotationStatusRequest, GetKeyRotationStatusResponse> = async (
  context,
  input,
  caller,
) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:GetKeyRotationStatus' });
  // While a key is pending deletion its rotation status reads false; cancelling the deletion
  // brings the stored status back (AWS's documented behaviour).
  if (key.state === 'PendingDeletion') return { KeyRotationEnabled: false, KeyId: keyArn(context, key.keyId) };
  requireManageable(context, key);
  return {
    KeyRotationEnabled: key.rotationEnabled,
    KeyId: keyArn(context, key.keyId),
    RotationPeriodInDays: key.rotationEnabled ? key.rotationPeriodInDays : undefined,
    NextRotationDate: key.rotationEnabled ? key.nextRotationAt : undefined,
  };
};

/** Rotates now, without touching the automatic schedule (as AWS). */
export const rotateKeyOnDemand: Operation<RotateKeyOnDemandRequest, RotateKeyOnDemandResponse> = async (
  context,
  input,
  caller,
) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:RotateKeyOnDemand' });
  requireEnabled(context, key);
  requireRotatable(context, key);
  if (key.onDemandRotationCount >= MAX_ON_DEMAND_ROTATIONS) {
    throw new KmsError(
      'LimitExceededException',
      `The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: ${keyArn(context, key.keyId)}`,
    );
  }
  await rotate(context, key, 'ON_DEMAND');
  return { KeyId: keyArn(context, key.keyId) };
};

export const listKeyRotations: Operation<ListKeyRotationsRequest, ListKeyRotationsResponse> = async (context, input, caller) => {
  const limit = pageLimit(input.Limit, { defaultLimit: 100, max: 1000 });
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:ListKeyRotations' });
  if (key.state === 'PendingDeletion') throw keyStateError(context, key);
  requireRotatable(context, key);
  const includeAll = input.IncludeKeyMaterial === 'ALL_KEY_MATERIAL';
  const after = decodeNumericMarker(input.Marker) ?? 0;
  const versions = (await context.store.listKeyVersions(key.keyId)).filter(
    (version) => version.version > after && (includeAll || version.rotationType !== undefined),
  );
  const page = versions.slice(0, limit);
  const truncated = versions.length > limit;
  return {
    Rotations: page.map((version) => ({
      KeyId: keyArn(context, key.keyId),
      KeyMaterialId: version.keyMaterialId,
      KeyMaterialState: version.version === key.currentVersion ? 'CURRENT' : 'NON_CURRENT',
      RotationDate: version.rotationType === undefined ? undefined : version.createdAt,
      RotationType: version.rotationType,
    })),
    Truncated: truncated,
    NextMarker: truncated ? encodeMarker(String(page[page.length - 1].version)) : undefined,
  };
};

/** Carried out by the scheduler: every key whose automatic rotation is due gets a new version. */
export async function rotateDueKeys(
  context: ServiceContext,
  onFailure: (keyId: string, error: unknown) => void,
): Promise<string[]> {
  const rotated: string[] = [];
  for (const keyId of await context.store.keysDueForRotation(context.now())) {
    try {
      const key = await context.store.getKey(keyId);
      if (!key || !key.rotationEnabled || !key.nextRotationAt || key.state !== 'Enabled') continue;
      const periodMs = (key.rotationPeriodInDays ?? DEFAULT_ROTATION_PERIOD_DAYS) * DAY_MS;
      // The next rotation counts from when this one was due, so the schedule does not drift.
      let next = key.nextRotationAt.getTime() + periodMs;
      while (next <= context.now().getTime()) next += periodMs;
      await rotate(context, key, 'AUTOMATIC', new Date(next));
      rotated.push(keyId);
    } catch (error) {
      // Another process rotated, disabled or deleted the key first: nothing to do.
      if (error instanceof KmsError && error.errorName === 'ConflictException') continue;
      onFailure(keyId, error);
    }
  }
  return rotated;
}
