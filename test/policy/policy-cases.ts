/**
 * Loads the table-driven policy cases in test/policy/cases/*.json into evaluate() inputs.
 * Two shapes: full cases (keyPolicy, identityPolicies, request overrides) and operator cases
 * (one Condition on an identity-policy Allow of kms:Encrypt, under the default root-delegating key
 * policy), which keeps each operator case to one line of data.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defaultKeyPolicy } from '../../src/policy/key-policy.ts';
import { parsePolicyDocument, type PolicyKind } from '../../src/policy/policy-document.ts';
import type { ContextValue, Decision, KmsRequest, NamedPolicy, RequestPolicies } from '../../src/policy/evaluate.ts';

export const ACCOUNT_ID = '111122223333';
export const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
export const ALICE = `arn:aws:iam::${ACCOUNT_ID}:user/alice`;

export interface RawPolicies {
  keyPolicy?: object;
  identityPolicies: { name: string; policy: object }[];
}

export interface PolicyCase {
  file: string;
  name: string;
  raw: RawPolicies;
  request: KmsRequest;
  expected: Decision;
}

interface FullCaseData {
  name: string;
  expected: Decision;
  keyPolicy?: object;
  identityPolicies: { name: string; policy: object }[];
  request?: Partial<KmsRequest>;
}
interface OperatorCaseData {
  name: string;
  expected: Decision;
  condition: object;
  context: Record<string, ContextValue>;
}

const casesDir = join(import.meta.dirname, 'cases');

export function baseRequest(overrides: Partial<KmsRequest> = {}): KmsRequest {
  return { action: 'kms:Encrypt', resource: KEY_ARN, principalArn: ALICE, accountId: ACCOUNT_ID, context: {}, ...overrides };
}

export function loadCases(): PolicyCase[] {
  const cases: PolicyCase[] = [];
  for (const file of readdirSync(casesDir).filter((name) => name.endsWith('.json')).sort()) {
    const entries = JSON.parse(readFileSync(join(casesDir, file), 'utf8')) as (FullCaseData | OperatorCaseData)[];
    for (const entry of entries) {
      if ('condition' in entry) {
        cases.push({
          file,
          name: entry.name,
          expected: entry.expected,
          request: baseRequest({ context: entry.context }),
          raw: {
            keyPolicy: JSON.parse(defaultKeyPolicy(ACCOUNT_ID)),
            identityPolicies: [
              {
                name: 'identity-0',
                policy: {
                  Version: '2012-10-17',
                  Statement: [{ Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*', Condition: entry.condition }],
                },
              },
            ],
          },
        });
      } else {
        cases.push({
          file,
          name: entry.name,
          expected: entry.expected,
          request: baseRequest(entry.request),
          raw: { keyPolicy: entry.keyPolicy, identityPolicies: entry.identityPolicies },
        });
      }
    }
  }
  return cases;
}

function parseOrThrow(policy: object, kind: PolicyKind, name: string): NamedPolicy {
  const result = parsePolicyDocument(JSON.stringify(policy), kind);
  if (!result.ok) throw new Error(`test policy ${name} is malformed: ${result.problems.join(' ')}`);
  return { name, document: result.policy };
}

export function parsePolicies(raw: RawPolicies): RequestPolicies {
  return {
    keyPolicy: raw.keyPolicy ? parseOrThrow(raw.keyPolicy, 'key', 'key-policy') : undefined,
    identityPolicies: raw.identityPolicies.map(({ name, policy }) => parseOrThrow(policy, 'identity', name)),
  };
}
