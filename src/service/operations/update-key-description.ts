import type { UpdateKeyDescriptionRequest } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { MANAGEABLE_STATES, requireManageable, resolveKey, updateKeyInState } from '../key-resolution.ts';

export const updateKeyDescription: Operation<UpdateKeyDescriptionRequest, Record<string, never>> = async (
  context,
  input,
) => {
  const key = await resolveKey(context, input.KeyId as string, { allowAlias: false });
  requireManageable(context, key);
  await updateKeyInState(context, key, { description: input.Description as string }, MANAGEABLE_STATES);
  return {};
};
