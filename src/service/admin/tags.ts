/**
 * Principal tags with IAM's rules: keys 1..128 and values 0..256 characters of
 * `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, at most 50 per user or role, keys unique ignoring case
 * (IAM: "Tag keys are case insensitive"), `aws:` reserved. Tag values are never echoed.
 */
import type { PrincipalKind, PrincipalRecord, TagRecord } from '../../storage/types.ts';
import type { Caller, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { authorizeAdmin, EXISTING_USER_NAME, NEW_NAME, noSuchEntity, principalArn, requirePrincipal } from './identities.ts';
import { AdminInput, type StringRules } from './input.ts';

/** IAM's quota: tags per user, tags per role. */
export const MAX_TAGS_PER_PRINCIPAL = 50;

const TAG_CHARS_TEXT = '[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]';
const TAG_KEY: StringRules & { required: true } = { required: true, min: 1, max: 128, pattern: /^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$/u, patternText: `${TAG_CHARS_TEXT}+` };
const TAG_VALUE: StringRules & { required: true } = { required: true, min: 0, max: 256, pattern: /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u, patternText: `${TAG_CHARS_TEXT}*`, secret: true };

/** Reads a Tags list (Key, Value), checking IAM's rules; undefined when absent. */
export function readTags(input: AdminInput, required = false): TagRecord[] | undefined {
  const tags = input.structureList('Tags', { required, min: required ? 1 : 0, max: MAX_TAGS_PER_PRINCIPAL }, (element) => ({
    tagKey: element.string('Key', TAG_KEY),
    tagValue: element.string('Value', TAG_VALUE),
  }));
  input.check();
  if (!tags) return undefined;
  const seen = new Set<string>();
  for (const tag of tags) {
    const folded = tag.tagKey.toLowerCase();
    if (folded.startsWith('aws:')) throw new KmsError('ValidationException', 'Tag keys beginning with aws: are reserved.');
    if (seen.has(folded)) {
      throw new KmsError('ValidationException', 'Duplicate tag keys found. Please note that Tag keys are case insensitive.');
    }
    seen.add(folded);
  }
  return tags;
}

export const sortTags = (tags: TagRecord[]): TagRecord[] =>
  tags.sort((a, b) => (a.tagKey < b.tagKey ? -1 : a.tagKey > b.tagKey ? 1 : 0));

/** Tags added over existing ones: a key already there (ignoring case) takes the new key and value. */
function merged(existing: readonly TagRecord[], added: readonly TagRecord[]): TagRecord[] {
  const byKey = new Map(existing.map((tag) => [tag.tagKey.toLowerCase(), tag]));
  for (const tag of added) byKey.set(tag.tagKey.toLowerCase(), tag);
  return sortTags([...byKey.values()]);
}

const quotaName = (kind: PrincipalKind) => (kind === 'user' ? 'TagsPerUser' : 'TagsPerRole');

const nameMember = (kind: PrincipalKind) => (kind === 'user' ? 'UserName' : 'RoleName');

/** TagUser / TagRole. */
export function tagPrincipal(kind: PrincipalKind) {
  return async (context: ServiceContext, body: unknown, caller: Caller): Promise<object> => {
    const input = AdminInput.of(body);
    const name = input.string(nameMember(kind), kind === 'user' ? EXISTING_USER_NAME : NEW_NAME);
    const tags = readTags(input, true) as TagRecord[];
    await authorizeAdmin(context, caller, kind === 'user' ? 'TagUser' : 'TagRole', principalArn(context, kind, name));
    const principal = await requirePrincipal(context, kind, name);
    const next = merged(principal.tags, tags);
    if (next.length > MAX_TAGS_PER_PRINCIPAL) {
      throw new KmsError('LimitExceededException', `Cannot exceed quota for ${quotaName(kind)}: ${MAX_TAGS_PER_PRINCIPAL}`);
    }
    await updateTags(context, principal, next);
    return {};
  };
}

/** UntagUser / UntagRole: keys that are not there are ignored, as in IAM. */
export function untagPrincipal(kind: PrincipalKind) {
  return async (context: ServiceContext, body: unknown, caller: Caller): Promise<object> => {
    const input = AdminInput.of(body);
    const name = input.string(nameMember(kind), kind === 'user' ? EXISTING_USER_NAME : NEW_NAME);
    const keys = input.stringList('TagKeys', { required: true, min: 0, max: MAX_TAGS_PER_PRINCIPAL, member: TAG_KEY });
    input.check();
    await authorizeAdmin(context, caller, kind === 'user' ? 'UntagUser' : 'UntagRole', principalArn(context, kind, name));
    const principal = await requirePrincipal(context, kind, name);
    const removed = new Set((keys ?? []).map((key) => key.toLowerCase()));
    await updateTags(context, principal, principal.tags.filter((tag) => !removed.has(tag.tagKey.toLowerCase())));
    return {};
  };
}

async function updateTags(context: ServiceContext, principal: PrincipalRecord, tags: TagRecord[]): Promise<void> {
  if (!(await context.store.updatePrincipal(principal.arn, { tags }))) {
    throw noSuchEntity(principal.kind, principal.name);
  }
}
