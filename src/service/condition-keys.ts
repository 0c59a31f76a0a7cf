/**
 * The condition keys of a request (kms:*, aws:*), lower-cased, for policy evaluation. Only the
 * keys the policies in play test are computed; a key's tags and aliases are read only then.
 */
import type { ContextValue } from '../policy/evaluate.ts';
import type { PrincipalRecord } from '../storage/types.ts';
import type { AccessRequest } from './authorization.ts';
import type { Caller, ServiceContext } from './context.ts';
import { ASSUMED_ROLE, accountOf, identityArnOf } from './principals.ts';

/** What a set of referenced condition keys needs looked up, worked out once per set. */
interface Wanted {
  resourceTags: boolean;
  principalTags: boolean;
  encryptionContext: boolean;
}

const wantedBySet = new WeakMap<Set<string>, Wanted>();

function wantedOf(referenced: Set<string>): Wanted {
  let wanted = wantedBySet.get(referenced);
  if (!wanted) {
    wanted = { resourceTags: false, principalTags: false, encryptionContext: false };
    for (const name of referenced) {
      if (name.startsWith('aws:resourcetag/')) wanted.resourceTags = true;
      if (name.startsWith('aws:principaltag/')) wanted.principalTags = true;
      if (name.startsWith('kms:encryptioncontext')) wanted.encryptionContext = true;
    }
    wantedBySet.set(referenced, wanted);
  }
  return wanted;
}

/**
 * The request's condition keys, lower-cased, limited to those the policies in play test: a
 * policy with no conditions costs no context at all, and a key's tags or aliases are read only
 * when some policy asks.
 */
export async function requestContext(
  context: ServiceContext,
  caller: Caller,
  request: AccessRequest,
  identity: { principal?: PrincipalRecord },
  referenced: Set<string>,
): Promise<Map<string, ContextValue>> {
  const values = new Map<string, ContextValue>();
  if (referenced.size === 0) return values;
  const has = (name: string) => referenced.has(name);
  const principal = identity.principal;
  const session = ASSUMED_ROLE.exec(caller.principalArn);
  if (has('aws:principalarn')) values.set('aws:principalarn', identityArnOf(caller.principalArn));
  if (has('aws:principalaccount')) values.set('aws:principalaccount', accountOf(caller.principalArn));
  if (has('kms:calleraccount')) values.set('kms:calleraccount', accountOf(caller.principalArn));
  if (has('aws:principaltype')) values.set('aws:principaltype', session ? 'AssumedRole' : principal?.kind === 'user' ? 'User' : undefined);
  if (has('aws:userid') && principal) values.set('aws:userid', session ? `${principal.principalId}:${session[4]}` : principal.principalId);
  if (has('aws:username') && principal?.kind === 'user' && !session) values.set('aws:username', principal.name);
  if (has('aws:sourceip')) values.set('aws:sourceip', caller.sourceIp?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, ''));
  if (has('aws:securetransport')) values.set('aws:securetransport', caller.secureTransport ?? false);
  if (has('aws:currenttime')) values.set('aws:currenttime', context.now().toISOString());
  if (has('aws:epochtime')) values.set('aws:epochtime', Math.floor(context.now().getTime() / 1000));
  if (has('aws:requestedregion')) values.set('aws:requestedregion', context.region);
  if (has('kms:requestalias')) values.set('kms:requestalias', request.requestAlias);
  if (request.conditions) {
    for (const name in request.conditions) {
      const lower = name.toLowerCase();
      if (has(lower)) values.set(lower, request.conditions[name]);
    }
  }
  const wanted = wantedOf(referenced);
  if (wanted.principalTags && principal) {
    for (const tag of principal.tags) values.set(`aws:principaltag/${tag.tagKey.toLowerCase()}`, tag.tagValue);
  }
  const key = request.key;
  if (key) {
    if (has('kms:keyspec')) values.set('kms:keyspec', key.keySpec);
    if (has('kms:keyusage')) values.set('kms:keyusage', key.keyUsage);
    if (has('kms:keyorigin')) values.set('kms:keyorigin', key.origin);
    if (has('kms:customermasterkeyspec')) values.set('kms:customermasterkeyspec', key.keySpec);
    if (has('kms:customermasterkeyusage')) values.set('kms:customermasterkeyusage', key.keyUsage);
    if (wanted.resourceTags) {
      for (const tag of await context.store.listTags(key.keyId)) values.set(`aws:resourcetag/${tag.tagKey.toLowerCase()}`, tag.tagValue);
    }
    if (has('kms:resourcealiases')) {
      const aliases = await context.store.listAliases(100, undefined, key.keyId);
      values.set('kms:resourcealiases', aliases.items.map((alias) => alias.aliasName));
    }
  }
  const encryptionContext = request.encryptionContext;
  if (encryptionContext && wanted.encryptionContext) {
    const names = Object.keys(encryptionContext);
    values.set('kms:encryptioncontextkeys', names);
    for (const name of names) values.set(`kms:encryptioncontext:${name.toLowerCase()}`, encryptionContext[name]);
  }
  return values;
}
