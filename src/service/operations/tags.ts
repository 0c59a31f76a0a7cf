import type {
  ListResourceTagsRequest,
  ListResourceTagsResponse,
  TagResourceRequest,
  UntagResourceRequest,
} from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { KmsError } from '../errors.ts';
import { requestTagConditions, resolveKeyFor } from '../authorization.ts';
import { keyNotFound, requireManageable } from '../key-resolution.ts';
import { StoreKeyNotFoundError, StoreLimitError } from '../../storage/types.ts';
import { decodeMarker, encodeMarker, pageLimit } from '../pagination.ts';
import { MAX_TAGS_PER_KEY, checkRequestTags } from '../tags.ts';

export const tagResource: Operation<TagResourceRequest, Record<string, never>> = async (context, input, caller) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, {
    allowAlias: false,
    action: 'kms:TagResource',
    conditions: requestTagConditions(input.Tags),
  });
  requireManageable(context, key);
  const tags = checkRequestTags(input.Tags);
  try {
    await context.store.putTags(key.keyId, tags, MAX_TAGS_PER_KEY);
  } catch (error) {
    if (error instanceof StoreLimitError) throw new KmsError('TagException', 'Too many tags');
    if (error instanceof StoreKeyNotFoundError) throw keyNotFound(context, key.keyId);
    throw error;
  }
  return {};
};

export const untagResource: Operation<UntagResourceRequest, Record<string, never>> = async (context, input, caller) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, {
    allowAlias: false,
    action: 'kms:UntagResource',
    conditions: { 'aws:TagKeys': input.TagKeys },
  });
  requireManageable(context, key);
  await context.store.removeTags(key.keyId, input.TagKeys as string[]);
  return {};
};

export const listResourceTags: Operation<ListResourceTagsRequest, ListResourceTagsResponse> = async (context, input, caller) => {
  const limit = pageLimit(input.Limit, { defaultLimit: 50, max: 50 });
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:ListResourceTags' });
  const after = decodeMarker(input.Marker);
  const all = await context.store.listTags(key.keyId);
  // The store orders tag keys by their UTF-8 bytes; the marker comparison must use that order
  // too (JS's < compares UTF-16 code units, which disagrees above U+FFFF).
  const afterBytes = after === undefined ? undefined : Buffer.from(after, 'utf8');
  const start =
    afterBytes === undefined ? 0 : all.findIndex((tag) => Buffer.compare(Buffer.from(tag.tagKey, 'utf8'), afterBytes) > 0);
  const rest = start < 0 ? [] : all.slice(start);
  const items = rest.slice(0, limit);
  const truncated = rest.length > limit;
  return {
    Tags: items.map((tag) => ({ TagKey: tag.tagKey, TagValue: tag.tagValue })),
    Truncated: truncated,
    NextMarker: truncated ? encodeMarker(items[items.length - 1].tagKey) : undefined,
  };
};
