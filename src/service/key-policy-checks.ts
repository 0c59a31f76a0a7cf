import { checkKeyPolicyDocument } from '../policy/key-policy.ts';
import { parsePolicyDocument } from '../policy/policy-document.ts';
import type { KeyRecord } from '../storage/types.ts';
import { candidatePolicyAllowsCaller } from './authorization.ts';
import type { Caller, ServiceContext } from './context.ts';
import { KmsError } from './errors.ts';
import { policyError } from './operations/policy-errors.ts';

const OWN_PRINCIPAL = /^arn:[^:]+:iam::(\d{12}):(user|role)\/(.+)$/;

/**
 * The checks CreateKey and PutKeyPolicy run on a new key policy, in AWS's order: size and
 * grammar; every user and role of this account it names must exist (AWS: "Policy contains a
 * statement with one or more invalid principals."); and, unless the caller bypasses it, the
 * lockout safety check — the caller must still be allowed kms:PutKeyPolicy under the new policy.
 */
export async function checkNewKeyPolicy(
  context: ServiceContext,
  caller: Caller,
  key: KeyRecord,
  document: string,
  bypassLockoutSafetyCheck: boolean | undefined,
): Promise<void> {
  const problem = checkKeyPolicyDocument(document);
  if (problem) throw policyError(problem);
  const parsed = parsePolicyDocument(document, 'key');
  if (!parsed.ok) throw new KmsError('MalformedPolicyDocumentException', parsed.problems[0]);
  for (const statement of parsed.policy.statements) {
    const spec = statement.principal ?? statement.notPrincipal;
    if (spec?.kind !== 'listed') continue;
    for (const arn of spec.aws) {
      const own = OWN_PRINCIPAL.exec(arn);
      if (own && own[1] === context.accountId && !arn.includes('*') && !(await context.store.getPrincipal(arn))) {
        throw new KmsError('MalformedPolicyDocumentException', 'Policy contains a statement with one or more invalid principals.');
      }
    }
  }
  if (!bypassLockoutSafetyCheck && !(await candidatePolicyAllowsCaller(context, caller, key, document))) {
    throw new KmsError(
      'MalformedPolicyDocumentException',
      'The new key policy will not allow you to update the key policy in the future.',
    );
  }
}
