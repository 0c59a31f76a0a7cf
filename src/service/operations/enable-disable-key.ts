import type { DisableKeyRequest, EnableKeyRequest } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { resolveKeyFor } from '../authorization.ts';
import { MANAGEABLE_STATES, requireManageable, updateKeyInState } from '../key-resolution.ts';

/** Enabling an enabled key (or disabling a disabled one) succeeds, as in AWS. */
export const enableKey: Operation<EnableKeyRequest, Record<string, never>> = async (context, input, caller) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:EnableKey' });
  requireManageable(context, key);
  await updateKeyInState(context, key, { state: 'Enabled' }, MANAGEABLE_STATES);
  return {};
};

export const disableKey: Operation<DisableKeyRequest, Record<string, never>> = async (context, input, caller) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:DisableKey' });
  requireManageable(context, key);
  await updateKeyInState(context, key, { state: 'Disabled' }, MANAGEABLE_STATES);
  return {};
};
