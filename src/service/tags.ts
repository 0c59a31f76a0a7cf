import type { Tag } from '@aws-sdk/client-kms';
import type { TagRecord } from '../storage/types.ts';
import { KmsError } from './errors.ts';

/** AWS KMS allows 50 tags per key. */
export const MAX_TAGS_PER_KEY = 50;

/** Checks a request's tag list the way AWS does; lengths were checked against the model already. */
export function checkRequestTags(tags: readonly Tag[] | undefined): TagRecord[] {
  if (!tags) return [];
  const seen = new Set<string>();
  const records: TagRecord[] = [];
  for (const tag of tags) {
    const tagKey = tag.TagKey as string;
    if (tagKey.toLowerCase().startsWith('aws:')) throw new KmsError('TagException', 'Tags beginning with aws: are reserved');
    if (seen.has(tagKey)) throw new KmsError('TagException', 'Duplicate tag keys');
    seen.add(tagKey);
    records.push({ tagKey, tagValue: tag.TagValue as string });
  }
  if (records.length > MAX_TAGS_PER_KEY) throw new KmsError('TagException', 'Too many tags');
  return records;
}
