/**
 * Key policy documents: AWS's default key policy, and the structural checks a document must pass
 * to be stored. Evaluation (allow / deny with conditions) arrives with access control; until then
 * policies are stored and returned exactly as given.
 */

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
 * Checks the grammar's outer shape: a JSON object with a Statement (object or non-empty array)
 * whose entries each carry Effect Allow|Deny and an Action or NotAction. Returns the first
 * problem, or undefined. Reasons name the element, never echo policy text.
 */
export function checkKeyPolicyDocument(document: string): PolicyProblem | undefined {
  if (Buffer.byteLength(document, 'utf8') > MAX_KEY_POLICY_BYTES) return { kind: 'too-large' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    return { kind: 'malformed', reason: 'The policy is not valid JSON.' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { kind: 'malformed', reason: 'The policy must be a JSON object.' };
  }
  const policy = parsed as Record<string, unknown>;
  if (policy.Version !== undefined && policy.Version !== '2012-10-17' && policy.Version !== '2008-10-17') {
    return { kind: 'malformed', reason: 'The policy Version is not supported.' };
  }
  const statements = Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement];
  if (policy.Statement === undefined || statements.length === 0) {
    return { kind: 'malformed', reason: 'The policy has no Statement.' };
  }
  for (const statement of statements) {
    if (typeof statement !== 'object' || statement === null || Array.isArray(statement)) {
      return { kind: 'malformed', reason: 'Each policy Statement must be an object.' };
    }
    const entry = statement as Record<string, unknown>;
    if (entry.Effect !== 'Allow' && entry.Effect !== 'Deny') {
      return { kind: 'malformed', reason: 'Each policy Statement must have Effect Allow or Deny.' };
    }
    if (entry.Action === undefined && entry.NotAction === undefined) {
      return { kind: 'malformed', reason: 'Each policy Statement must have an Action or NotAction.' };
    }
    if (entry.Principal === undefined && entry.NotPrincipal === undefined) {
      return { kind: 'malformed', reason: 'Each key policy Statement must have a Principal or NotPrincipal.' };
    }
  }
  return undefined;
}
