/**
 * Every request's policy decision: the key policy, the caller's identity policies and the key's
 * grants, evaluated as AWS KMS does ("Determining access to an AWS KMS key"):
 *
 *   explicit deny in any policy → denied;
 *   else the key policy allows (directly, or by delegating to the account's identity policies,
 *   one of which allows) → allowed;
 *   else a grant on the key covers the operation and its constraints → allowed;
 *   else denied.
 *
 * Requests on no key (CreateKey, ListKeys, the admin API) are decided by identity policies alone.
 * Denials raise AccessDeniedException in AWS's words. Nothing here logs or echoes request values:
 * explanations name policies, statements, operators and condition keys only.
 */
import { parsePolicyDocument, type PolicyDocument, type PolicyKind } from '../policy/policy-document.ts';
import {
  conditionKeysOf,
  evaluate,
  type ContextValue,
  type EvaluationResult,
  type NamedPolicy,
} from '../policy/evaluate.ts';
import type { GrantRecord, IdentityPolicyRecord, KeyRecord, PrincipalRecord } from '../storage/types.ts';
import type { Caller, ServiceContext } from './context.ts';
import { KmsError } from './errors.ts';
import { requestContext } from './condition-keys.ts';
import { grantCovers } from './grant-matching.ts';
import { keyArn, resolveKey } from './key-resolution.ts';
import { quotaClassOf } from './quotas.ts';
import { identityArnOf } from './principals.ts';

export const KEY_POLICY_NAME = 'key policy';

export interface AccessRequest {
  /** The action, e.g. "kms:Encrypt" or "iam:CreateUser". */
  action: string;
  /** The key the request is on; without one, identity policies alone decide. */
  key?: KeyRecord;
  /** The resource ARN when there is no key ("*" for account-wide operations). */
  resource?: string;
  /**
   * A resource-based policy other than a key policy (a role's trust policy for sts:AssumeRole),
   * evaluated as a key policy is: it must allow the caller, directly or by delegating to the
   * account.
   */
  resourcePolicy?: string;
  /** The alias the caller named the key by (kms:RequestAlias). */
  requestAlias?: string;
  /** The request's encryption context: kms:EncryptionContext:*, kms:EncryptionContextKeys, grant constraints. */
  encryptionContext?: Record<string, string>;
  /** Operation-specific condition keys (kms:SigningAlgorithm, kms:GrantOperations, …). */
  conditions?: Record<string, ContextValue>;
}

/** What decided, for `strongroom policy explain` and the audit trail. */
export interface AccessExplanation {
  action: string;
  resource: string;
  principalArn: string;
  decision: 'allow' | 'explicit-deny' | 'implicit-deny';
  /** Set when a grant, not a policy, allowed the request. */
  grantId?: string;
  matched: EvaluationResult['matched'];
  reasons: string[];
}

// ---------------------------------------------------------------------------------------------
// Parsed-policy cache: policies are parsed once per distinct text, not once per request.

interface ParsedPolicy {
  document: PolicyDocument;
  conditionKeys: Set<string>;
}

const MAX_PARSED = 10_000;
const parsedPolicies = new Map<string, ParsedPolicy | null>();

function parsed(text: string, kind: PolicyKind): ParsedPolicy | undefined {
  const cacheKey = `${kind}\u0000${text}`;
  let entry = parsedPolicies.get(cacheKey);
  if (entry === undefined) {
    const result = parsePolicyDocument(text, kind);
    entry = result.ok ? { document: result.policy, conditionKeys: conditionKeysOf(result.policy) } : null;
    if (parsedPolicies.size >= MAX_PARSED) parsedPolicies.clear();
    parsedPolicies.set(cacheKey, entry);
  }
  return entry ?? undefined;
}

// ---------------------------------------------------------------------------------------------
// Principals

interface Identity {
  principal?: PrincipalRecord;
  policies: NamedPolicy[];
  conditionKeys: Set<string>;
}

const NO_IDENTITY: Identity = { policies: [], conditionKeys: new Set() };

/**
 * Parsed identity policies by the store's cached record list: the read cache hands back the same
 * frozen array until something changes, so a steady caller's policies are prepared once.
 */
const preparedIdentities = new WeakMap<readonly IdentityPolicyRecord[], Identity>();

async function identityOf(context: ServiceContext, caller: Caller): Promise<Identity> {
  const identityArn = identityArnOf(caller.principalArn);
  // Read on every decision (guarded: a detached policy or deleted user is refused at once).
  const principal = await context.store.getPrincipal(identityArn);
  caller.principal = principal ?? null;
  if (!principal) return NO_IDENTITY;
  const records = await context.store.listIdentityPolicies(identityArn);
  const prepared = preparedIdentities.get(records);
  if (prepared && prepared.principal === principal) return prepared;
  const policies: NamedPolicy[] = [];
  const conditionKeys = new Set<string>();
  for (const record of records) {
    const policy = parsed(record.document, 'identity');
    // Stored documents were checked when put; one that no longer parses grants nothing.
    if (!policy) continue;
    policies.push({ name: `identity policy "${record.policyName}" of ${principal.name}`, document: policy.document });
    for (const key of policy.conditionKeys) conditionKeys.add(key);
  }
  const identity = { principal, policies, conditionKeys };
  if (Object.isFrozen(records)) preparedIdentities.set(records, identity);
  return identity;
}

// ---------------------------------------------------------------------------------------------

const resourceOf = (context: ServiceContext, request: AccessRequest): string =>
  request.key ? keyArn(context, request.key.keyId) : (request.resource ?? '*');

/** Parsed key policies by key record (the read cache keeps a key's record until it changes). */
const preparedKeyPolicies = new WeakMap<KeyRecord, ParsedPolicy | null>();

/** The resource-based policy in play: a candidate key policy, the key's, or a role's trust policy. */
function resourcePolicyOf(request: AccessRequest, keyPolicyOverride: string | undefined): ParsedPolicy | undefined {
  if (keyPolicyOverride !== undefined) return parsed(keyPolicyOverride, 'key');
  const key = request.key;
  if (key) {
    let entry = preparedKeyPolicies.get(key);
    if (entry === undefined) {
      entry = parsed(key.policy, 'key') ?? null;
      if (Object.isFrozen(key)) preparedKeyPolicies.set(key, entry);
    }
    return entry ?? undefined;
  }
  return request.resourcePolicy === undefined ? undefined : parsed(request.resourcePolicy, 'trust');
}

/** The union of condition keys two policy sets test, remembered per pair. */
const referencedPairs = new WeakMap<Set<string>, WeakMap<Set<string>, Set<string>>>();

function referencedKeys(identity: Identity, policy: ParsedPolicy): Set<string> {
  if (identity.conditionKeys.size === 0) return policy.conditionKeys;
  if (policy.conditionKeys.size === 0) return identity.conditionKeys;
  let byPolicy = referencedPairs.get(identity.conditionKeys);
  if (!byPolicy) referencedPairs.set(identity.conditionKeys, (byPolicy = new WeakMap()));
  let union = byPolicy.get(policy.conditionKeys);
  if (!union) byPolicy.set(policy.conditionKeys, (union = new Set([...identity.conditionKeys, ...policy.conditionKeys])));
  return union;
}

interface Decision {
  resource: string;
  result: EvaluationResult;
  /** The grant that allowed a request no policy allowed. */
  grant?: GrantRecord;
}

/**
 * The one evaluation path. `keyPolicyOverride` evaluates a candidate key policy instead of the
 * stored one (PutKeyPolicy's lockout check); grants are not consulted then.
 */
async function decide(
  context: ServiceContext,
  caller: Caller,
  request: AccessRequest,
  explain: boolean,
  keyPolicyOverride?: string,
): Promise<Decision> {
  const resource = resourceOf(context, request);
  const identity = await identityOf(context, caller);
  const keyPolicy = resourcePolicyOf(request, keyPolicyOverride);
  const referenced = keyPolicy ? referencedKeys(identity, keyPolicy) : identity.conditionKeys;
  const result = evaluate(
    {
      action: request.action,
      resource,
      principalArn: caller.principalArn,
      accountId: context.accountId,
      context: await requestContext(context, caller, request, identity, referenced),
    },
    {
      // A stored policy that does not parse (none should) lets nothing in.
      keyPolicy: keyPolicy ? { name: KEY_POLICY_NAME, document: keyPolicy.document } : undefined,
      identityPolicies: identity.policies,
    },
    { identityOnly: !request.key && request.resourcePolicy === undefined, reasons: explain },
  );
  if (result.decision !== 'implicit-deny' || !request.key || keyPolicyOverride !== undefined) return { resource, result };
  const grants = await context.store.grantsForKey(request.key.keyId);
  return { resource, result, grant: grants.find((grant) => grantCovers(grant, caller, request)) };
}

const allowedBy = (decision: Decision): boolean => decision.result.decision === 'allow' || decision.grant !== undefined;

function denialClause(decision: EvaluationResult): string {
  const kind = decision.deniedBy === 'identity' ? 'identity-based' : 'resource-based';
  return decision.decision === 'explicit-deny'
    ? `with an explicit deny in ${kind === 'identity-based' ? 'an' : 'a'} ${kind} policy`
    : `because no ${kind} policy allows the {action} action`;
}

/** AWS's AccessDeniedException for a denied request. */
function accessDenied(principalArn: string, action: string, decision: Decision): KmsError {
  const clause = denialClause(decision.result).replace('{action}', action);
  return new KmsError(
    'AccessDeniedException',
    `User: ${principalArn} is not authorized to perform: ${action} on resource: ${decision.resource} ${clause}`,
  );
}

/** Evaluates without raising: the decision and everything that led to it. */
export async function explainAccess(
  context: ServiceContext,
  caller: Caller,
  request: AccessRequest,
): Promise<AccessExplanation> {
  const decision = await decide(context, caller, request, true);
  const { result, grant } = decision;
  const reasons = [...result.reasons];
  if (grant) reasons.push(`Allowed by grant ${grant.grantId}.`);
  else if (result.decision !== 'allow') reasons.push(`AWS would answer: ${accessDenied(caller.principalArn, request.action, decision).message}`);
  return {
    action: request.action,
    resource: decision.resource,
    principalArn: caller.principalArn,
    decision: grant ? 'allow' : result.decision,
    ...(grant ? { grantId: grant.grantId } : {}),
    matched: result.matched,
    reasons,
  };
}

/**
 * Decides the request, records the decision on the caller, and raises AccessDeniedException when
 * it is not allowed. Every operation calls this before it acts.
 */
export async function authorize(context: ServiceContext, caller: Caller, request: AccessRequest): Promise<void> {
  const decision = await decide(context, caller, request, false);
  const allowed = allowedBy(decision);
  caller.decisions.push({ action: request.action, resource: decision.resource, allowed });
  if (!allowed) throw accessDenied(caller.principalArn, request.action, decision);
  // A request counts once against its quota, at its first allowed decision (the key is known there).
  if (context.quotas && !caller.quotaCharged) {
    caller.quotaCharged = true;
    const claim = context.quotas.charge(quotaClassOf(request.action, request.key), request.action);
    if (claim) await claim; // only when this process's lease of the shared bucket is empty
  }
}

/**
 * PutKeyPolicy's and CreateKey's lockout safety check (AWS: "The new key policy will not allow
 * you to update the key policy in the future."): the caller must still be allowed to
 * PutKeyPolicy under the candidate policy.
 */
export async function candidatePolicyAllowsCaller(
  context: ServiceContext,
  caller: Caller,
  key: KeyRecord,
  candidatePolicy: string,
): Promise<boolean> {
  const decision = await decide(context, caller, { action: 'kms:PutKeyPolicy', key }, false, candidatePolicy);
  return decision.result.decision === 'allow';
}

export interface KeyAccess extends Omit<AccessRequest, 'key' | 'resource' | 'requestAlias'> {
  /** Whether the parameter accepts alias names and alias ARNs. */
  allowAlias: boolean;
}

/**
 * Resolves a KeyId parameter and decides the caller's access to that key, in AWS's order: a key
 * that does not exist is NotFoundException; one that exists but is not the caller's to use is
 * AccessDeniedException, before anything about its state or usage is revealed.
 */
export async function resolveKeyFor(
  context: ServiceContext,
  caller: Caller,
  keyIdParameter: string,
  access: KeyAccess,
): Promise<KeyRecord> {
  const key = await resolveKey(context, keyIdParameter, { allowAlias: access.allowAlias });
  const { allowAlias: _allowAlias, ...request } = access;
  await authorize(context, caller, { ...request, key, requestAlias: requestAliasOf(keyIdParameter) });
  return key;
}

/** The alias name a KeyId parameter used, for kms:RequestAlias. */
export function requestAliasOf(keyIdParameter: string | undefined): string | undefined {
  if (keyIdParameter === undefined) return undefined;
  if (keyIdParameter.startsWith('alias/')) return keyIdParameter;
  const arnAlias = /^arn:[^:]+:kms:[^:]*:[^:]*:(alias\/.+)$/.exec(keyIdParameter);
  return arnAlias?.[1];
}

/** aws:RequestTag/<key> and aws:TagKeys for requests that carry tags (CreateKey, TagResource). */
export function requestTagConditions(
  tags: readonly { TagKey?: string; TagValue?: string }[] | undefined,
): Record<string, ContextValue> {
  if (!tags || tags.length === 0) return {};
  const conditions: Record<string, ContextValue> = { 'aws:TagKeys': tags.map((tag) => tag.TagKey ?? '') };
  for (const tag of tags) conditions[`aws:RequestTag/${tag.TagKey}`] = tag.TagValue;
  return conditions;
}
