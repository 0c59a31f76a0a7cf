import type { DisableKeyRequest, EnableKeyRequest } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { MANAGEABLE_STATES, requireManageable, resolveKey, updateKeyInState } from '../key-resolution.ts';

/** Enabling an enabled key (or disabling a disabled one) succeeds, as in AWS. */
export const enableKey: Operation<EnableKeyRequest, Record<string, never>> = async (context, input) => {
  const key = await resolveKey(context, input.KeyId as string, { allowAlias: false });
  requireManageable(context, key);
  await updateKeyInState(context, key, { state: 'Enabled' }, MANAGEABLE_STATES);
  return {};
};

export const disableKey: Operation<DisableKeyRequest, Record<string, never>> = async (context, input) => {
  const key = await resolveKey(context, input.KeyId as string, { allowAlias: false });
  requireManageable(context, key);
  await updateKeyInState(context, key, { state: 'Disabled' }, MANAGEABLE_STATES);
  return {};
};
