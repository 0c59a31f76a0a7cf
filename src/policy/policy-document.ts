/**
 * Parses an IAM policy document (key policy or identity policy) into a typed, normalised form:
 * every list-or-scalar element becomes a list, condition values become strings, and condition
 * operators are split into qualifier / base operator / IfExists. Parsing never throws; a document
 * that does not follow the grammar yields the reasons a MalformedPolicyDocumentException carries.
 * Reasons name elements and statement positions, never echo policy text (a policy may quote
 * encryption-context values).
 *
 * Grammar: "IAM JSON policy element reference" and "Grammar of the IAM JSON policy language"
 * (docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html).
 */

export type Effect = 'Allow' | 'Deny';

/** Principal "*" (anyone) or the typed map. Service/Federated/CanonicalUser are kept as data. */
export type PrincipalSpec =
  | { kind: 'anyone' }
  | { kind: 'listed'; aws: string[]; service: string[]; federated: string[]; canonicalUser: string[] };

export const BASE_OPERATORS = [
  'StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike',
  'NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals',
  'DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan', 'DateGreaterThanEquals',
  'Bool', 'Null', 'IpAddress', 'NotIpAddress', 'ArnEquals', 'ArnNotEquals', 'ArnLike', 'ArnNotLike',
] as const;
export type BaseOperator = (typeof BASE_OPERATORS)[number];
export type SetQualifier = 'ForAnyValue' | 'ForAllValues';

export interface ConditionClause {
  /** The operator as written, for reasons: e.g. "ForAnyValue:StringLikeIfExists". */
  operator: string;
  base: BaseOperator;
  qualifier?: SetQualifier;
  ifExists: boolean;
  /** The condition key as written; matching is case-insensitive. */
  key: string;
  /** Policy values, ORed (NORed for negated operators). Numbers and booleans become strings. */
  values: string[];
}

export interface PolicyStatement {
  /** Position in the Statement array (0 for a single Statement object). */
  index: number;
  sid?: string;
  effect: Effect;
  principal?: PrincipalSpec;
  notPrincipal?: PrincipalSpec;
  action?: string[];
  notAction?: string[];
  resource?: string[];
  notResource?: string[];
  conditions: ConditionClause[];
}

export interface PolicyDocument {
  version?: string;
  id?: string;
  statements: PolicyStatement[];
}

/**
 * key: a key policy (Principal required); identity: attached to a user or role (no Principal);
 * trust: a role's trust policy (Principal required, Resource optional: the role is the resource).
 */
export type PolicyKind = 'key' | 'identity' | 'trust';
export type ParseResult = { ok: true; policy: PolicyDocument } | { ok: false; problems: string[] };

const TOP_LEVEL = new Set(['Version', 'Id', 'Statement']);
const STATEMENT_ELEMENTS = new Set([
  'Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition',
]);
const PRINCIPAL_TYPES: Record<string, 'aws' | 'service' | 'federated' | 'canonicalUser'> = {
  AWS: 'aws', Service: 'service', Federated: 'federated', CanonicalUser: 'canonicalUser',
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A string or a non-empty array of strings, normalised to an array; undefined when ill-formed. */
function stringList(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((entry) => typeof entry === 'string')) return [...value];
  return undefined;
}

function parsePrincipal(value: unknown, where: string, problems: string[]): PrincipalSpec | undefined {
  if (value === '*') return { kind: 'anyone' };
  if (!isObject(value) || Object.keys(value).length === 0) {
    problems.push(`${where} must be "*" or an object of principal types.`);
    return undefined;
  }
  const spec = { kind: 'listed' as const, aws: [] as string[], service: [] as string[], federated: [] as string[], canonicalUser: [] as string[] };
  for (const [type, ids] of Object.entries(value)) {
    const field = PRINCIPAL_TYPES[type];
    const list = stringList(ids);
    if (!field) problems.push(`${where} has an unsupported principal type.`);
    else if (!list) problems.push(`${where} ${type} must be a string or a non-empty array of strings.`);
    else spec[field].push(...list);
  }
  // {"AWS": "*"} is the same as "*" (IAM JSON policy elements: Principal, "All principals").
  if (spec.aws.includes('*')) return { kind: 'anyone' };
  return spec;
}

function parseOperator(
  operator: string,
): Pick<ConditionClause, 'base' | 'qualifier' | 'ifExists'> | undefined {
  let rest = operator;
  let qualifier: SetQualifier | undefined;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    const prefix = rest.slice(0, colon);
    if (prefix !== 'ForAnyValue' && prefix !== 'ForAllValues') return undefined;
    qualifier = prefix;
    rest = rest.slice(colon + 1);
  }
  const ifExists = rest.endsWith('IfExists');
  if (ifExists) rest = rest.slice(0, -'IfExists'.length);
  if (!(BASE_OPERATORS as readonly string[]).includes(rest)) return undefined;
  // Null tests presence itself, so "NullIfExists" and a set-qualified Null are meaningless.
  if (rest === 'Null' && (ifExists || qualifier)) return undefined;
  return { base: rest as BaseOperator, qualifier, ifExists };
}

function conditionValues(value: unknown): string[] | undefined {
  const scalar = (entry: unknown) => typeof entry === 'string' || typeof entry === 'number' || typeof entry === 'boolean';
  if (scalar(value)) return [String(value)];
  if (Array.isArray(value) && value.length > 0 && value.every(scalar)) return value.map(String);
  return undefined;
}

function parseCondition(value: unknown, where: string, problems: string[]): ConditionClause[] {
  if (!isObject(value)) {
    problems.push(`${where} Condition must be an object of operators.`);
    return [];
  }
  const clauses: ConditionClause[] = [];
  for (const [operator, block] of Object.entries(value)) {
    const parsed = parseOperator(operator);
    if (!parsed) {
      problems.push(`${where} Condition uses an unsupported operator.`);
      continue;
    }
    if (!isObject(block) || Object.keys(block).length === 0) {
      problems.push(`${where} Condition ${operator} must map condition keys to values.`);
      continue;
    }
    for (const [key, raw] of Object.entries(block)) {
      const values = conditionValues(raw);
      if (!values) {
        problems.push(`${where} Condition ${operator} needs a string, number, boolean or non-empty array for each key.`);
        continue;
      }
      clauses.push({ operator, ...parsed, key, values });
    }
  }
  return clauses;
}

function parseStatement(
  entry: unknown,
  index: number,
  kind: PolicyKind,
  problems: string[],
): PolicyStatement | undefined {
  const where = `Statement ${index}`;
  if (!isObject(entry)) {
    problems.push(`${where} must be an object.`);
    return undefined;
  }
  for (const element of Object.keys(entry)) {
    if (!STATEMENT_ELEMENTS.has(element)) problems.push(`${where} has an unknown element.`);
  }
  const before = problems.length;
  if (entry.Sid !== undefined && typeof entry.Sid !== 'string') problems.push(`${where} Sid must be a string.`);
  if (entry.Effect !== 'Allow' && entry.Effect !== 'Deny') problems.push(`${where} Effect must be Allow or Deny.`);

  const pairs: [string, string, boolean][] = [
    ['Action', 'NotAction', true],
    ['Resource', 'NotResource', kind !== 'trust'],
    ['Principal', 'NotPrincipal', kind !== 'identity'],
  ];
  for (const [positive, negative, required] of pairs) {
    if (entry[positive] !== undefined && entry[negative] !== undefined) {
      problems.push(`${where} cannot have both ${positive} and ${negative}.`);
    } else if (required && entry[positive] === undefined && entry[negative] === undefined) {
      problems.push(`${where} must have a ${positive} or ${negative}.`);
    }
  }
  if (kind === 'identity' && (entry.Principal !== undefined || entry.NotPrincipal !== undefined)) {
    problems.push(`${where} is in an identity policy and cannot name a Principal or NotPrincipal.`);
  }

  const lists: Partial<Record<'action' | 'notAction' | 'resource' | 'notResource', string[]>> = {};
  for (const [element, field] of [
    ['Action', 'action'], ['NotAction', 'notAction'], ['Resource', 'resource'], ['NotResource', 'notResource'],
  ] as const) {
    if (entry[element] === undefined) continue;
    const list = stringList(entry[element]);
    if (!list) {
      problems.push(`${where} ${element} must be a string or a non-empty array of strings.`);
      continue;
    }
    if (field === 'action' || field === 'notAction') {
      // An action is "service:name" (wildcards allowed) or "*" alone.
      if (!list.every((action) => action === '*' || /^[a-z0-9-]+:[A-Za-z0-9*?]+$/i.test(action))) {
        problems.push(`${where} ${element} entries must look like "service:Action" or "*".`);
        continue;
      }
    } else if (!list.every((resource) => resource === '*' || resource.startsWith('arn:'))) {
      problems.push(`${where} ${element} entries must be "*" or an ARN.`);
      continue;
    }
    lists[field] = list;
  }
  const principal = entry.Principal === undefined ? undefined : parsePrincipal(entry.Principal, `${where} Principal`, problems);
  const notPrincipal =
    entry.NotPrincipal === undefined ? undefined : parsePrincipal(entry.NotPrincipal, `${where} NotPrincipal`, problems);
  const conditions = entry.Condition === undefined ? [] : parseCondition(entry.Condition, where, problems);
  if (problems.length > before) return undefined;
  return {
    index,
    sid: entry.Sid as string | undefined,
    effect: entry.Effect as Effect,
    principal,
    notPrincipal,
    ...lists,
    conditions,
  };
}

/**
 * Parses a policy document. Key policies must name a Principal or NotPrincipal in every
 * statement; identity policies must not. Returns every problem found, not just the first.
 */
export function parsePolicyDocument(document: string, kind: PolicyKind): ParseResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    return { ok: false, problems: ['The policy is not valid JSON.'] };
  }
  if (!isObject(parsed)) return { ok: false, problems: ['The policy must be a JSON object.'] };
  const problems: string[] = [];
  for (const element of Object.keys(parsed)) {
    if (!TOP_LEVEL.has(element)) problems.push('The policy has an unknown top-level element.');
  }
  const { Version: version, Id: id, Statement: statementElement } = parsed;
  if (version !== undefined && version !== '2012-10-17' && version !== '2008-10-17') {
    problems.push('The policy Version is not supported.');
  }
  if (id !== undefined && typeof id !== 'string') problems.push('The policy Id must be a string.');
  const entries = Array.isArray(statementElement) ? statementElement : statementElement === undefined ? [] : [statementElement];
  if (entries.length === 0) problems.push('The policy has no Statement.');
  const statements: PolicyStatement[] = [];
  const sids = new Set<string>();
  entries.forEach((entry, index) => {
    const statement = parseStatement(entry, index, kind, problems);
    if (!statement) return;
    // IAM requires Sids to be unique within a policy (IAM JSON policy elements: Sid).
    if (statement.sid !== undefined) {
      if (sids.has(statement.sid)) problems.push(`Statement ${index} repeats the Sid of an earlier statement.`);
      sids.add(statement.sid);
    }
    statements.push(statement);
  });
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, policy: { version: version as string | undefined, id: id as string | undefined, statements } };
}
