/**
 * Evaluates a KMS request against a key policy and the caller's identity policies, following
 * "Determining access to an AWS KMS key" (KMS Developer Guide) and "Policy evaluation logic"
 * (IAM User Guide):
 *
 *   1. An applicable Deny statement in any policy decides: explicit deny.
 *   2. Otherwise the key policy must let the request in, either by allowing the principal itself,
 *      or by allowing the caller's account ("arn:aws:iam::<acct>:root" or the bare account id),
 *      which delegates the decision to that account's identity policies — one of which must allow.
 *   3. Anything else is an implicit deny. With no key policy nothing is allowed.
 *
 * Reasons name policies, statement positions, Sids, operators and condition key names; they never
 * carry request values (an encryption-context value can be secret), so they are safe to log.
 * Policy variables (${aws:username}) are not substituted; they match only literally.
 */
import { arnParts, clauseHolds, wildcardMatch, type ContextValue } from './matching.ts';
import type { ConditionClause, PolicyDocument, PolicyStatement, PrincipalSpec } from './policy-document.ts';

export type { ContextValue };

export interface KmsRequest {
  /** e.g. "kms:Encrypt"; matched case-insensitively. */
  action: string;
  /** The key ARN. */
  resource: string;
  principalArn: string;
  /** The caller's account: the account whose root a key policy names to delegate to IAM. */
  accountId: string;
  /**
   * Condition keys (names case-insensitive), filled in by the caller; a Map must already have
   * lower-cased names.
   */
  context: Record<string, ContextValue> | ReadonlyMap<string, ContextValue>;
}

export interface NamedPolicy {
  name: string;
  document: PolicyDocument;
}

export interface RequestPolicies {
  keyPolicy?: NamedPolicy;
  identityPolicies: NamedPolicy[];
}

export type Decision = 'allow' | 'explicit-deny' | 'implicit-deny';

export interface MatchedStatement {
  policy: string;
  sid?: string;
  index: number;
  effect: 'Allow' | 'Deny';
}

export interface EvaluationResult {
  decision: Decision;
  matched: MatchedStatement[];
  reasons: string[];
  /**
   * Which kind of policy decided a denial, for AWS's AccessDeniedException wording: an explicit
   * deny "in a resource-based policy" or "in an identity-based policy"; an implicit deny because
   * "no resource-based policy allows" (the key policy let nothing in) or "no identity-based
   * policy allows" (the key policy delegated to the account, or no key policy was needed).
   */
  deniedBy?: 'resource' | 'identity';
}

export interface EvaluationOptions {
  /**
   * For requests on no key (CreateKey, ListKeys, the admin API): only identity policies apply,
   * as IAM evaluates a request on a resource without a resource-based policy.
   */
  identityOnly?: boolean;
  /**
   * Whether to write reasons (default true). The request path only needs the decision and
   * `deniedBy`; explanations (policy explain) need the reasons.
   */
  reasons?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Statements

interface AppliesResult {
  applies: boolean;
  /** Set when everything but a condition matched: which clause failed. */
  failedCondition?: ConditionClause;
}

/**
 * A statement's Action and Resource patterns prepared once per parsed statement (parsed policies
 * are cached and immutable): actions lower-cased, ARN patterns split into their six parts.
 */
interface CompiledStatement {
  actions?: string[];
  notActions?: string[];
  resources?: (string[] | '*')[];
  notResources?: (string[] | '*')[];
}

const compiledStatements = new WeakMap<PolicyStatement, CompiledStatement>();

function compileArnPattern(pattern: string): string[] | '*' {
  return pattern === '*' ? '*' : (arnParts(pattern) ?? ['\u0000unmatchable']);
}

function compiled(statement: PolicyStatement): CompiledStatement {
  let entry = compiledStatements.get(statement);
  if (!entry) {
    const lower = (list?: string[]) => list?.map((pattern) => pattern.toLowerCase());
    const arns = (list?: string[]) => list?.map(compileArnPattern);
    entry = {
      actions: lower(statement.action),
      notActions: lower(statement.notAction),
      resources: arns(statement.resource),
      notResources: arns(statement.notResource),
    };
    compiledStatements.set(statement, entry);
  }
  return entry;
}

function anyActionPattern(patterns: string[], action: string): boolean {
  for (let i = 0; i < patterns.length; i++) {
    const pattern = patterns[i];
    if (pattern === '*' || pattern === action || wildcardMatch(pattern, action)) return true;
  }
  return false;
}

/** `action` is already lower-cased. */
function actionMatches(statement: PolicyStatement, action: string): boolean {
  const { actions, notActions } = compiled(statement);
  return actions ? anyActionPattern(actions, action) : !anyActionPattern(notActions ?? [], action);
}

function anyArnPattern(patterns: (string[] | '*')[], resourceParts: string[] | undefined): boolean {
  for (let i = 0; i < patterns.length; i++) {
    const pattern = patterns[i];
    if (pattern === '*') return true;
    if (resourceParts === undefined) continue;
    let all = true;
    for (let p = 0; p < pattern.length && all; p++) {
      all = pattern[p] === resourceParts[p] || wildcardMatch(pattern[p], resourceParts[p]);
    }
    if (all) return true;
  }
  return false;
}

/** `resourceParts` is the request resource split once (undefined when it is not an ARN). */
function resourceMatches(statement: PolicyStatement, resourceParts: string[] | undefined): boolean {
  const { resources, notResources } = compiled(statement);
  return resources ? anyArnPattern(resources, resourceParts) : !anyArnPattern(notResources ?? [], resourceParts);
}

function accountRoots(accountId: string): string[] {
  return [accountId, `arn:aws:iam::${accountId}:root`];
}

/**
 * The identities a request principal answers to in a Principal element: its own ARN and, for an
 * assumed-role session, the role it came from (IAM: "Role session principals").
 */
export function principalNames(principalArn: string): string[] {
  const session = /^arn:([^:]+):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(principalArn);
  return session ? [principalArn, `arn:${session[1]}:iam::${session[2]}:role/${session[3]}`] : [principalArn];
}

function principalListed(spec: PrincipalSpec, names: string[]): boolean {
  if (spec.kind === 'anyone') return true;
  return spec.aws.some((entry) => names.includes(entry));
}

type PrincipalMatch = 'direct' | 'account' | 'none';

/** How a key-policy statement's Principal/NotPrincipal relates to the request. */
function principalMatch(statement: PolicyStatement, request: KmsRequest, names: string[]): PrincipalMatch {
  if (statement.notPrincipal) {
    // NotPrincipal applies to every principal not listed (exact names; IAM: "NotPrincipal").
    return principalListed(statement.notPrincipal, names) ? 'none' : 'direct';
  }
  if (!statement.principal) return 'none';
  if (principalListed(statement.principal, names)) return 'direct';
  if (statement.principal.kind === 'listed' && statement.principal.aws.some((e) => accountRoots(request.accountId).includes(e))) {
    return 'account';
  }
  return 'none';
}

interface PreparedRequest {
  /** Lower-cased. */
  action: string;
  /** The resource ARN's six parts; undefined for "*". */
  resourceParts: string[] | undefined;
}

const NOT_APPLICABLE: AppliesResult = { applies: false };
const APPLIES: AppliesResult = { applies: true };

function statementApplies(statement: PolicyStatement, request: PreparedRequest, context: ReadonlyMap<string, ContextValue>): AppliesResult {
  if (!actionMatches(statement, request.action) || !resourceMatches(statement, request.resourceParts)) {
    return NOT_APPLICABLE;
  }
  // Multiple operators and keys are ANDed.
  const conditions = statement.conditions;
  for (let i = 0; i < conditions.length; i++) {
    if (!clauseHolds(conditions[i], context)) return { applies: false, failedCondition: conditions[i] };
  }
  return APPLIES;
}

function describe(policy: string, statement: PolicyStatement): string {
  const sid = statement.sid ? ` (Sid "${statement.sid}")` : '';
  return `${policy} statement ${statement.index}${sid}`;
}

function matchedOf(policy: string, statement: PolicyStatement): MatchedStatement {
  return { policy, ...(statement.sid ? { sid: statement.sid } : {}), index: statement.index, effect: statement.effect };
}

/** The condition keys a policy's statements test, lower-cased: what a caller must look up. */
export function conditionKeysOf(document: PolicyDocument): Set<string> {
  const keys = new Set<string>();
  for (const statement of document.statements) {
    for (const clause of statement.conditions) keys.add(clause.key.toLowerCase());
  }
  return keys;
}

// ---------------------------------------------------------------------------------------------

interface Visit {
  request: KmsRequest;
  prepared: PreparedRequest;
  names: string[];
  context: ReadonlyMap<string, ContextValue>;
  explain: boolean;
  reasons: string[];
  denies: MatchedStatement[];
  directAllows: MatchedStatement[];
  accountAllows: MatchedStatement[];
  identityAllows: MatchedStatement[];
}

// Plain loops and module-level functions on this path: it runs for every request, and closures
// made per call cost more than the matching itself.
function visitPolicy(visit: Visit, policy: NamedPolicy, isKeyPolicy: boolean): void {
  const statements = policy.document.statements;
  for (let i = 0; i < statements.length; i++) {
    const statement = statements[i];
    let principal: PrincipalMatch = 'direct';
    if (isKeyPolicy) {
      principal = principalMatch(statement, visit.request, visit.names);
      // A Deny naming the account root covers every principal of that account.
      if (principal === 'account' && statement.effect === 'Deny') principal = 'direct';
      if (principal === 'none') continue;
    }
    const result = statementApplies(statement, visit.prepared, visit.context);
    if (visit.explain && result.failedCondition) {
      const clause = result.failedCondition;
      visit.reasons.push(
        `${describe(policy.name, statement)} (${statement.effect}) did not apply: condition ${clause.operator} on ${clause.key} was not met.`,
      );
    }
    if (!result.applies) continue;
    const matched = matchedOf(policy.name, statement);
    if (statement.effect === 'Deny') visit.denies.push(matched);
    else if (!isKeyPolicy) visit.identityAllows.push(matched);
    else if (principal === 'direct') visit.directAllows.push(matched);
    else visit.accountAllows.push(matched);
  }
}

function nameOf(m: MatchedStatement): string {
  return `${m.policy} statement ${m.index}${m.sid ? ` (Sid "${m.sid}")` : ''}`;
}

function explainEach(reasons: string[], prefix: string, matched: MatchedStatement[]): void {
  for (let i = 0; i < matched.length; i++) reasons.push(`${prefix} ${nameOf(matched[i])}.`);
}

/** The request's condition keys, lower-cased (a Map given is taken as already lower-cased). */
function contextMap(context: KmsRequest['context']): ReadonlyMap<string, ContextValue> {
  if (context instanceof Map) return context;
  const map = new Map<string, ContextValue>();
  for (const [key, value] of Object.entries(context)) map.set(key.toLowerCase(), value);
  return map;
}

export function evaluate(request: KmsRequest, policies: RequestPolicies, options: EvaluationOptions = {}): EvaluationResult {
  const explain = options.reasons !== false;
  const visit: Visit = {
    request,
    prepared: {
      action: request.action.toLowerCase(),
      resourceParts: request.resource === '*' ? undefined : arnParts(request.resource),
    },
    names: principalNames(request.principalArn),
    context: contextMap(request.context),
    explain,
    reasons: [],
    denies: [],
    directAllows: [],
    accountAllows: [],
    identityAllows: [],
  };
  const { reasons, denies, directAllows, accountAllows, identityAllows } = visit;
  const keyPolicy = options.identityOnly ? undefined : policies.keyPolicy;
  if (keyPolicy) visitPolicy(visit, keyPolicy, true);
  for (let i = 0; i < policies.identityPolicies.length; i++) visitPolicy(visit, policies.identityPolicies[i], false);

  if (denies.length > 0) {
    if (explain) explainEach(reasons, 'Explicitly denied by', denies);
    // A deny in the key policy is named first: it is the one AWS reports.
    let deniedBy: 'resource' | 'identity' = 'identity';
    for (let i = 0; i < denies.length; i++) if (keyPolicy && denies[i].policy === keyPolicy.name) deniedBy = 'resource';
    return { decision: 'explicit-deny', matched: denies, reasons, deniedBy };
  }
  if (options.identityOnly) {
    if (identityAllows.length > 0) {
      if (explain) explainEach(reasons, 'Allowed by', identityAllows);
      return { decision: 'allow', matched: identityAllows, reasons };
    }
    if (explain) reasons.push('No identity policy allows the request.');
    return { decision: 'implicit-deny', matched: [], reasons, deniedBy: 'identity' };
  }
  if (!policies.keyPolicy) {
    if (explain) reasons.push('The key has no key policy, so nothing is allowed.');
    return { decision: 'implicit-deny', matched: [], reasons, deniedBy: 'resource' };
  }
  if (directAllows.length > 0) {
    if (explain) explainEach(reasons, 'Allowed to the principal by', directAllows);
    return { decision: 'allow', matched: directAllows, reasons };
  }
  if (accountAllows.length > 0 && identityAllows.length > 0) {
    if (explain) {
      explainEach(reasons, "The key policy delegates to the caller's account in", accountAllows);
      explainEach(reasons, 'Allowed by', identityAllows);
    }
    return { decision: 'allow', matched: [...accountAllows, ...identityAllows], reasons };
  }
  if (accountAllows.length > 0) {
    if (explain) reasons.push("The key policy delegates to the caller's account, but no identity policy allows the request.");
    return { decision: 'implicit-deny', matched: [], reasons, deniedBy: 'identity' };
  }
  if (explain) {
    reasons.push('No key policy statement allows the principal or delegates to its account.');
    if (identityAllows.length > 0) reasons.push('An identity policy allows the request, but the key policy does not delegate to the account.');
  }
  return { decision: 'implicit-deny', matched: [], reasons, deniedBy: 'resource' };
}
