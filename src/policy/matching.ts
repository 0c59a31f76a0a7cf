/**
 * Matching for policy evaluation: IAM's wildcards, ARN matching part by part, and every condition
 * operator with IfExists and the ForAnyValue / ForAllValues qualifiers. Pure functions of a
 * parsed clause and the request's condition keys (lower-cased).
 */
import { BlockList, isIP } from 'node:net';
import type { ConditionClause } from './policy-document.ts';

export type ContextValue = string | string[] | boolean | number | undefined;

// ---------------------------------------------------------------------------------------------
// Wildcards

/** Glob with * (any run, possibly empty) and ? (one character). Iterative, no regex building. */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  let pi = 0;
  let vi = 0;
  let starP = -1;
  let starV = 0;
  while (vi < v.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === v[vi])) {
      pi++;
      vi++;
    } else if (pi < p.length && p[pi] === '*') {
      starP = pi++;
      starV = vi;
    } else if (starP >= 0) {
      pi = starP + 1;
      vi = ++starV;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/** Splits an ARN into its six parts; the resource part keeps any further colons. */
export function arnParts(arn: string): string[] | undefined {
  const parts = arn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn') return undefined;
  return [...parts.slice(0, 5), parts.slice(5).join(':')];
}

/**
 * ARN matching as IAM does it for Resource and ArnLike/ArnEquals: part by part, wildcards
 * within a part ("IAM JSON policy elements: Condition operators", ARN condition operators:
 * "Each of the six colon-delimited components of the ARN is checked separately").
 */
function arnMatch(pattern: string, arn: string): boolean {
  if (pattern === '*') return true;
  const patternParts = arnParts(pattern);
  const arnValueParts = arnParts(arn);
  if (!patternParts || !arnValueParts) return false;
  return patternParts.every((part, i) => wildcardMatch(part, arnValueParts[i]));
}

// ---------------------------------------------------------------------------------------------
// Conditions

const NEGATED = new Set([
  'StringNotEquals', 'StringNotEqualsIgnoreCase', 'StringNotLike', 'NumericNotEquals', 'DateNotEquals',
  'NotIpAddress', 'ArnNotEquals', 'ArnNotLike',
]);

/** The positive operator a negated one inverts. */
const POSITIVE_OF: Record<string, string> = {
  StringNotEquals: 'StringEquals', StringNotEqualsIgnoreCase: 'StringEqualsIgnoreCase', StringNotLike: 'StringLike',
  NumericNotEquals: 'NumericEquals', DateNotEquals: 'DateEquals', NotIpAddress: 'IpAddress',
  ArnNotEquals: 'ArnEquals', ArnNotLike: 'ArnLike',
};

function parseNumber(text: string): number | undefined {
  if (!/^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(text)) return undefined;
  return Number(text);
}

/** Dates are ISO 8601 or epoch seconds (IAM: "Date condition operators"). */
function parseDate(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

function ipMatch(cidr: string, address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const [network, prefixText] = cidr.split('/');
  const networkFamily = isIP(network);
  if (networkFamily === 0) return false;
  const maxPrefix = networkFamily === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > maxPrefix) return false;
  const list = new BlockList();
  list.addSubnet(network, prefix, networkFamily === 4 ? 'ipv4' : 'ipv6');
  return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

function compare(a: number | undefined, b: number | undefined, relation: string): boolean {
  if (a === undefined || b === undefined) return false;
  switch (relation) {
    case 'Equals': return a === b;
    case 'LessThan': return a < b;
    case 'LessThanEquals': return a <= b;
    case 'GreaterThan': return a > b;
    case 'GreaterThanEquals': return a >= b;
    default: return false;
  }
}

/** Does one request value match one policy value under a positive (non-negated) operator? */
function positiveMatch(operator: string, policyValue: string, requestValue: string): boolean {
  switch (operator) {
    case 'StringEquals': return policyValue === requestValue;
    case 'StringEqualsIgnoreCase': return policyValue.toLowerCase() === requestValue.toLowerCase();
    case 'StringLike': return wildcardMatch(policyValue, requestValue);
    case 'Bool': return policyValue.toLowerCase() === requestValue.toLowerCase();
    case 'IpAddress': return ipMatch(policyValue, requestValue);
    // ArnEquals and ArnLike behave the same: both accept wildcards in each ARN part.
    case 'ArnEquals':
    case 'ArnLike': return arnMatch(policyValue, requestValue);
  }
  if (operator.startsWith('Numeric')) {
    return compare(parseNumber(requestValue), parseNumber(policyValue), operator.slice('Numeric'.length));
  }
  if (operator.startsWith('Date')) {
    return compare(parseDate(requestValue), parseDate(policyValue), operator.slice('Date'.length));
  }
  return false;
}

/**
 * One request value against the clause's policy values. Multiple policy values are ORed; for a
 * negated operator the request value must match none of them (IAM: "Creating a condition with
 * multiple keys or values" — negated operators are evaluated as a logical NOR).
 */
function valueMatches(clause: ConditionClause, requestValue: string): boolean {
  const negated = NEGATED.has(clause.base);
  const positive = negated ? POSITIVE_OF[clause.base] : clause.base;
  let any = false;
  for (let i = 0; i < clause.values.length && !any; i++) any = positiveMatch(positive, clause.values[i], requestValue);
  return negated ? !any : any;
}

function contextValues(value: ContextValue): string[] | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value;
  return [String(value)];
}

/** True when the clause holds for the request context (keys already lower-cased). */
export function clauseHolds(clause: ConditionClause, context: ReadonlyMap<string, ContextValue>): boolean {
  const values = contextValues(context.get(lowerKeyOf(clause)));
  if (clause.base === 'Null') {
    // Null: "true" means the key must be absent, "false" that it must be present.
    const wantAbsent = clause.values.some((v) => v.toLowerCase() === 'true');
    const wantPresent = clause.values.some((v) => v.toLowerCase() === 'false');
    return values === undefined ? wantAbsent : wantPresent;
  }
  if (values === undefined) {
    // Missing key. IAM "Condition operators": "...IfExists ... If the key is not present, evaluate
    // the condition element as true." "ForAllValues ... returns true if there are no context keys
    // in the request"; ForAnyValue returns false. Without a qualifier, a missing key makes the
    // condition false, except negated operators, which match when the key is absent ("If the key
    // that you specify ... is not present ... the values do not match" — a non-match is what a
    // negated operator asks for).
    if (clause.ifExists) return true;
    if (clause.qualifier === 'ForAllValues') return true;
    if (clause.qualifier === 'ForAnyValue') return false;
    return NEGATED.has(clause.base);
  }
  // ForAllValues, and an unqualified negated operator on a multi-valued key (no request value
  // may match): every value. ForAnyValue, and (leniently) a multi-valued key under a
  // single-valued operator: any value.
  const every = clause.qualifier === 'ForAllValues' || (clause.qualifier !== 'ForAnyValue' && NEGATED.has(clause.base));
  for (let i = 0; i < values.length; i++) {
    const matches = valueMatches(clause, values[i]);
    if (every && !matches) return false;
    if (!every && matches) return true;
  }
  return every;
}

const lowerKeys = new WeakMap<ConditionClause, string>();

/** A clause's condition key, lower-cased once. */
function lowerKeyOf(clause: ConditionClause): string {
  let key = lowerKeys.get(clause);
  if (key === undefined) lowerKeys.set(clause, (key = clause.key.toLowerCase()));
  return key;
}
