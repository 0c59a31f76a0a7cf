/**
 * Differential test: our evaluate() against @cloud-copilot/iam-simulate, an independent IAM
 * simulator with KMS key-policy trust rules. Two corpora:
 *   (a) every case in test/policy/cases/*.json — run through both; each disagreement is listed
 *       below by name with the AWS documentation our side follows, and the count is asserted;
 *   (b) a seeded, generated corpus of key policies, identity policies, conditions and requests,
 *       drawn only from features both implement the same way by documentation (no
 *       kms:EncryptionContext:<key> keys, no epoch-second date values, no IfExists combined with
 *       a set qualifier, no root-user or NotPrincipal requests — the JSON disagreements below).
 * The simulator filters context keys it does not recognise for the action; the harness asserts
 * that list is empty for corpus (b), so a filtered key cannot hide as an agreement.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { evaluate, type Decision, type KmsRequest } from '../../src/policy/evaluate.ts';
import { ACCOUNT_ID, ALICE, KEY_ARN, baseRequest, loadCases, parsePolicies, type RawPolicies } from './policy-cases.ts';

const SIMULATOR_DECISION: Record<string, Decision> = {
  Allowed: 'allow',
  ExplicitlyDenied: 'explicit-deny',
  ImplicitlyDenied: 'implicit-deny',
};

interface SimulatorOutcome {
  decision: Decision | 'error';
  ignoredContextKeys: string[];
}

async function simulate(request: KmsRequest, raw: RawPolicies): Promise<SimulatorOutcome> {
  // The simulator takes string or string[] context values only.
  const contextVariables: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(request.context)) {
    if (value !== undefined) contextVariables[key] = Array.isArray(value) ? value : String(value);
  }
  const simulation: Simulation = {
    request: {
      principal: request.principalArn,
      action: request.action,
      resource: { resource: request.resource, accountId: request.resource.split(':')[4] },
      contextVariables,
    },
    identityPolicies: raw.identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: raw.keyPolicy,
  };
  const result = await runSimulation(simulation, {});
  if (result.resultType === 'error') return { decision: 'error', ignoredContextKeys: [] };
  const ignoredContextKeys = result.resultType === 'single' ? (result.result.ignoredContextKeys ?? []) : [];
  return { decision: SIMULATOR_DECISION[result.overallResult], ignoredContextKeys };
}

/**
 * Every known disagreement on the JSON cases, keyed "file: case name", with the simulator's
 * answer. Our answer is the case's expected decision (asserted in evaluate.test.ts).
 */
const KNOWN_CASE_DISAGREEMENTS: Record<string, Decision> = {
  // KMS Developer Guide, "kms:EncryptionContext:context-key": a valid condition key for
  // Encrypt/Decrypt/GenerateDataKey*. The simulator (0.1.173) does not match the
  // "kms:EncryptionContext:${EncryptionContextKey}" pattern, drops the key as not applicable
  // (ignoredContextKeys), and so the StringEquals sees a missing key.
  'operators.json: StringEquals matches exact value': 'implicit-deny',
  'structure.json: key policy condition on an encryption context value allows when met': 'implicit-deny',
  // IAM "Condition operators" → Date condition operators: values may be "W3C ISO 8601 ... or in
  // epoch (UNIX) time" — epoch time is seconds. The simulator compares the integer as-is against
  // Date.parse() milliseconds, so 1717243200 reads as 1970-01-20.
  'operators.json: DateLessThan compares ISO 8601 with epoch seconds': 'implicit-deny',
  // IAM "Condition operators" → "...IfExists condition operators": "If the key is not present,
  // evaluate the condition element as true" — documented for any operator except Null. The
  // simulator lets ForAnyValue's missing-key-is-false rule take precedence.
  'operators.json: ForAnyValue:StringEqualsIfExists on a missing key is true': 'implicit-deny',
  // KMS Developer Guide, "Default key policy" → "Allows access to the AWS account and enables IAM
  // policies": the statement naming arn:aws:iam::<acct>:root gives the account — and its root
  // user, who has no identity policies — access. The simulator requires an identity policy for
  // the root user too.
  'structure.json: the account root itself is allowed directly by root delegation': 'implicit-deny',
  // IAM "AWS JSON policy elements: NotPrincipal": with Deny, listing
  // ["...:user/Bob", "...:root"] denies every principal except Bob (the account ARN is listed so
  // Bob's account-level evaluation is not denied). The simulator treats the listed account root
  // as excluding every principal of the account, so Alice escapes the deny.
  'structure.json: NotPrincipal deny applies to an unlisted principal': 'allow',
};

describe('differential: JSON cases against iam-simulate', () => {
  const cases = loadCases();
  it('agrees on every case except the documented disagreements', async () => {
    const disagreements: Record<string, Decision | 'error'> = {};
    let agreed = 0;
    for (const policyCase of cases) {
      const ours = evaluate(policyCase.request, parsePolicies(policyCase.raw)).decision;
      const theirs = await simulate(policyCase.request, policyCase.raw);
      if (theirs.decision === ours) agreed++;
      else disagreements[`${policyCase.file}: ${policyCase.name}`] = theirs.decision;
    }
    assert.deepEqual(disagreements, KNOWN_CASE_DISAGREEMENTS);
    assert.equal(Object.keys(disagreements).length, 6);
    assert.equal(agreed, cases.length - 6);
  });
});

// ---------------------------------------------------------------------------------------------
// Generated corpus

/** mulberry32: a small, seeded PRNG so the corpus is the same on every run. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BOB = `arn:aws:iam::${ACCOUNT_ID}:user/bob`;
const ROOT = `arn:aws:iam::${ACCOUNT_ID}:root`;

/** Condition keys with the operators that fit their type, policy values and request values. */
const KEY_FAMILIES: { key: string; operators: string[]; policyValues: string[]; requestValues: string[]; multi?: boolean }[] = [
  { key: 'kms:CallerAccount', operators: ['StringEquals', 'StringNotEquals'], policyValues: [ACCOUNT_ID, '444455556666'], requestValues: [ACCOUNT_ID, '444455556666'] },
  { key: 'kms:ViaService', operators: ['StringEquals', 'StringNotEquals', 'StringLike', 'StringNotLike', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase'], policyValues: ['s3.us-east-1.amazonaws.com', 'S3.US-EAST-1.amazonaws.com', 's3.*', '*.amazonaws.com', 'ec2.??-east-1.*'], requestValues: ['s3.us-east-1.amazonaws.com', 'ec2.us-east-1.amazonaws.com', 'rds.eu-west-1.amazonaws.com'] },
  { key: 'aws:PrincipalTag/team', operators: ['StringEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike'], policyValues: ['payments', 'Payments', 'bill*'], requestValues: ['payments', 'PAYMENTS', 'billing'] },
  { key: 'aws:MultiFactorAuthAge', operators: ['NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals'], policyValues: ['0', '60', '3600'], requestValues: ['0', '60', '300', '3600', '7200'] },
  { key: 'aws:CurrentTime', operators: ['DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan', 'DateGreaterThanEquals'], policyValues: ['2024-06-01T12:00:00Z', '2025-01-01T00:00:00Z'], requestValues: ['2024-06-01T12:00:00Z', '2024-12-31T23:59:59Z', '2025-06-01T00:00:00Z'] },
  { key: 'aws:SecureTransport', operators: ['Bool'], policyValues: ['true', 'false'], requestValues: ['true', 'false'] },
  { key: 'aws:SourceIp', operators: ['IpAddress', 'NotIpAddress'], policyValues: ['203.0.113.0/24', '198.51.100.0/25', '2001:db8::/32', '10.0.0.0/8'], requestValues: ['203.0.113.7', '198.51.100.200', '2001:db8::5', '2001:db9::1'] },
  { key: 'aws:PrincipalArn', operators: ['ArnEquals', 'ArnNotEquals', 'ArnLike', 'ArnNotLike'], policyValues: [ALICE, 'arn:aws:iam::*:user/a*', 'arn:aws:iam::*:role/*', BOB], requestValues: [ALICE, BOB, `arn:aws:iam::${ACCOUNT_ID}:role/app`] },
  { key: 'kms:EncryptionContextKeys', operators: ['StringEquals', 'StringNotEquals', 'StringLike'], policyValues: ['purpose', 'team', 'env*'], requestValues: ['purpose', 'team', 'environment', 'other'], multi: true },
];
const ACTIONS = ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom'];
const ACTION_PATTERNS = ['kms:*', 'kms:Encrypt', 'kms:Decrypt', 'kms:Gen*', 'kms:*Crypt*', 'KMS:ENCRYPT', 'kms:GenerateDataKey?ithoutPlaintext', '*', 's3:GetObject', 'kms:ReEncrypt*'];
const RESOURCE_PATTERNS = ['*', KEY_ARN, `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/*`, `arn:aws:kms:*:${ACCOUNT_ID}:key/*`, `arn:aws:kms:eu-west-1:${ACCOUNT_ID}:key/*`, `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/other`];
const KEY_PRINCIPALS: unknown[] = [{ AWS: ALICE }, { AWS: BOB }, { AWS: ROOT }, { AWS: ACCOUNT_ID }, '*', { AWS: [BOB, ALICE] }];

interface GeneratedCase {
  seed: number;
  request: KmsRequest;
  raw: RawPolicies;
}

function generateCase(seed: number): GeneratedCase {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const some = <T>(items: readonly T[], max: number): T[] => {
    const count = 1 + Math.floor(random() * max);
    return [...new Set(Array.from({ length: count }, () => pick(items)))];
  };
  const oneOrMany = <T>(items: T[]): T | T[] => (items.length === 1 && random() < 0.5 ? items[0] : items);

  const condition = (): Record<string, Record<string, unknown>> | undefined => {
    if (random() < 0.4) return undefined;
    const block: Record<string, Record<string, unknown>> = {};
    for (let i = 0, n = 1 + Math.floor(random() * 2); i < n; i++) {
      const family = pick(KEY_FAMILIES);
      let operator: string;
      if (random() < 0.12) {
        operator = 'Null';
        block[operator] = { ...block[operator], [family.key]: pick(['true', 'false']) };
        continue;
      }
      operator = pick(family.operators);
      // Multi-valued keys always take a set qualifier; IfExists only without one (see header).
      if (family.multi) operator = `${pick(['ForAnyValue', 'ForAllValues'])}:${operator}`;
      else if (random() < 0.25) operator = `${operator}IfExists`;
      block[operator] = { ...block[operator], [family.key]: oneOrMany(some(family.policyValues, 2)) };
    }
    return block;
  };
  const statementBody = () => {
    const body: Record<string, unknown> = {};
    body[random() < 0.15 ? 'NotAction' : 'Action'] = oneOrMany(some(ACTION_PATTERNS, 2));
    body[random() < 0.1 ? 'NotResource' : 'Resource'] = oneOrMany(some(RESOURCE_PATTERNS, 2));
    const conditionBlock = condition();
    if (conditionBlock) body.Condition = conditionBlock;
    return body;
  };
  const effect = () => (random() < 0.25 ? 'Deny' : 'Allow');

  const keyStatements: object[] = [];
  if (random() < 0.6) keyStatements.push({ Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' });
  for (let i = 0, n = Math.floor(random() * 3); i < n; i++) {
    keyStatements.push({ Effect: effect(), Principal: pick(KEY_PRINCIPALS), ...statementBody() });
  }
  const identityPolicies = Array.from({ length: Math.floor(random() * 3) }, (_, p) => ({
    name: `identity-${p}`,
    policy: { Version: '2012-10-17', Statement: Array.from({ length: 1 + Math.floor(random() * 2) }, () => ({ Effect: effect(), ...statementBody() })) },
  }));

  const context: Record<string, string | string[]> = {};
  for (const family of KEY_FAMILIES) {
    if (random() < 0.6) context[family.key] = family.multi ? some(family.requestValues, 3) : pick(family.requestValues);
  }
  return {
    seed,
    request: baseRequest({ action: pick(ACTIONS), principalArn: random() < 0.8 ? ALICE : BOB, context }),
    raw: {
      keyPolicy: keyStatements.length > 0 ? { Version: '2012-10-17', Statement: keyStatements } : undefined,
      identityPolicies,
    },
  };
}

const CORPUS_SIZE = 400;

describe('differential: generated corpus against iam-simulate', () => {
  it(`agrees on all ${CORPUS_SIZE} generated requests and covers all three decisions`, async () => {
    const tally: Record<string, number> = { allow: 0, 'explicit-deny': 0, 'implicit-deny': 0 };
    const disagreements: string[] = [];
    for (let seed = 1; seed <= CORPUS_SIZE; seed++) {
      const generated = generateCase(seed);
      const ours = evaluate(generated.request, parsePolicies(generated.raw)).decision;
      const theirs = await simulate(generated.request, generated.raw);
      assert.deepEqual(theirs.ignoredContextKeys, [], `seed ${seed}: simulator ignored context keys`);
      tally[ours]++;
      if (theirs.decision !== ours) disagreements.push(`seed ${seed}: ours ${ours}, simulator ${theirs.decision}`);
    }
    assert.deepEqual(disagreements, []);
    // The corpus is only useful if it exercises every outcome in quantity.
    for (const decision of Object.keys(tally)) assert.ok(tally[decision] >= 40, `${decision}: ${tally[decision]} of ${CORPUS_SIZE}`);
  });
});
