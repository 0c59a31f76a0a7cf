import type { ListKeysRequest, ListKeysResponse } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { authorize } from '../authorization.ts';
import { keyArn } from '../key-resolution.ts';
import { decodeNumericMarker, encodeMarker, pageLimit } from '../pagination.ts';

export const listKeys: Operation<ListKeysRequest, ListKeysResponse> = async (context, input, caller) => {
  await authorize(context, caller, { action: 'kms:ListKeys', resource: '*' });
  const limit = pageLimit(input.Limit, { defaultLimit: 100, max: 1000 });
  const page = await context.store.listKeys(limit, decodeNumericMarker(input.Marker)?.toString());
  return {
    Keys: page.items.map((key) => ({ KeyId: key.keyId, KeyArn: keyArn(context, key.keyId) })),
    Truncated: page.nextAfter !== undefined,
    NextMarker: page.nextAfter === undefined ? undefined : encodeMarker(page.nextAfter),
  };
};
