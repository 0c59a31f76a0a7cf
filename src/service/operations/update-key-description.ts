import type { UpdateKeyDescriptionRequest } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { resolveKeyFor } from '../authorization.ts';
import { MANAGEABLE_STATES, requireManageable, updateKeyInState } from '../key-resolution.ts';

export const updateKeyDescription: Operation<UpdateKeyDescriptionRequest, Record<string, never>> = async (
  context,
  input,
  caller,
) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:UpdateKeyDescription' });
  requireManageable(context, key);
  await updateKeyInState(context, key, { description: input.Description as string }, MANAGEABLE_STATES);
  return {};
};
