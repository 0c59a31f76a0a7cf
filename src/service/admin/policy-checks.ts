/**
 * Checks on policy documents before they are stored: the grammar (parsePolicyDocument) and IAM's
 * size quotas. Messages name elements and statement positions only, never policy text.
 */
import { parsePolicyDocument, type PolicyKind } from '../../policy/policy-document.ts';
import { KmsError } from '../errors.ts';

/**
 * A policy's size as IAM counts it against its quotas: "IAM does not count white space when
 * calculating the size of a policy" — the length of the minified JSON.
 */
export function policySize(document: string): number {
  try {
    return JSON.stringify(JSON.parse(document)).length;
  } catch {
    return document.length;
  }
}

function parseOrRaise(document: string, kind: PolicyKind): void {
  const result = parsePolicyDocument(document, kind);
  if (!result.ok) throw new KmsError('MalformedPolicyDocumentException', result.problems.join(' '));
}

/** An inline identity policy (PutUserPolicy, PutRolePolicy): no Principal, Action and Resource required. */
export function checkIdentityPolicy(document: string): void {
  parseOrRaise(document, 'identity');
}

/** IAM's quota: a role trust policy is at most 2,048 characters (whitespace not counted). */
export const MAX_TRUST_POLICY_SIZE = 2048;

/**
 * A role trust policy: every statement names a Principal (or NotPrincipal), and, as in IAM, none
 * has a Resource ("Has prohibited field Resource": the role itself is the resource).
 */
export function checkTrustPolicy(document: string): void {
  parseOrRaise(document, 'trust');
  const statements = (JSON.parse(document) as { Statement?: unknown }).Statement;
  for (const statement of Array.isArray(statements) ? statements : [statements]) {
    if ('Resource' in (statement as object) || 'NotResource' in (statement as object)) {
      throw new KmsError('MalformedPolicyDocumentException', 'Has prohibited field Resource.');
    }
  }
  if (policySize(document) > MAX_TRUST_POLICY_SIZE) {
    throw new KmsError('LimitExceededException', `Cannot exceed quota for ACLSizePerRole: ${MAX_TRUST_POLICY_SIZE}`);
  }
}
