import type { UpdateKeyDescriptionRequest } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { requireManageable, resolveKey } from '../key-resolution.ts';

export const updateKeyDescription: Operation<UpdateKeyDescriptionRequest, Record<string, never>> = async (
  context,
  input,
) => {
  const key = await resolveKey(context, input.KeyId as string, { allowAlias: false });
  requireManageable(context, key);
  await context.store.updateKey(key.keyId, { description: input.Description as string });
  return {};
};
