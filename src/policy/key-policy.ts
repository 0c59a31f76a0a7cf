/**
 * Key policy documents: AWS's default key policy, and the checks a document must pass to be
 * stored. Evaluation is evaluate.ts; the service adds the checks that need the store (principals
 * exist, lockout safety).
 */
import { parsePolicyDocument } from './policy-document.ts';

export const DEFAULT_POLICY_NAME = 'default';

/** AWS KMS limits a key policy document to 32 KB. */
export const MAX_KEY_POLICY_BYTES = 32 * 1024;

/**
 * The default key policy AWS KMS gives a key created without one: the account's root principal
 * may do everything, which delegates access to the account's identity policies.
 */
export function defaultKeyPolicy(accountId: string, partition = 'aws'): string {
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [
        {
          Sid: 'Enable IAM User Permissions',
          Effect: 'Allow',
          Principal: { AWS: `arn:${partition}:iam::${accountId}:root` },
          Action: 'kms:*',
          Resource: '*',
        },
      ],
    },
    null,
    2,
  );
}

export type PolicyProblem = { kind: 'too-large' } | { kind: 'malformed'; reason: string };

/**
 * Checks a key policy document against the policy grammar (policy-document.ts). Returns the first
 * problem, or undefined. Reasons name elements and positions, never echo policy text.
 */
export function checkKeyPolicyDocument(document: string): PolicyProblem | undefined {
  if (Buffer.byteLength(document, 'utf8') > MAX_KEY_POLICY_BYTES) return { kind: 'too-large' };
  const parsed = parsePolicyDocument(document, 'key');
  return parsed.ok ? undefined : { kind: 'malformed', reason: parsed.problems[0] };
}
