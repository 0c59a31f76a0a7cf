import type {
  GetKeyPolicyRequest,
  GetKeyPolicyResponse,
  ListKeyPoliciesRequest,
  ListKeyPoliciesResponse,
  PutKeyPolicyRequest,
} from '@aws-sdk/client-kms';
import { DEFAULT_POLICY_NAME, checkKeyPolicyDocument } from '../../policy/key-policy.ts';
import type { Operation } from '../context.ts';
import { KmsError } from '../errors.ts';
import { MANAGEABLE_STATES, requireManageable, resolveKey, updateKeyInState } from '../key-resolution.ts';
import { pageLimit } from '../pagination.ts';
import { policyError } from './policy-errors.ts';

/** A key has exactly one policy, named "default", as in AWS. */
function checkPolicyName(policyName: string | undefined): void {
  if (policyName !== undefined && policyName !== DEFAULT_POLICY_NAME) {
    throw new KmsError('NotFoundException', `No such policy exists: ${policyName}`);
  }
}

export const getKeyPolicy: Operation<GetKeyPolicyRequest, GetKeyPolicyResponse> = async (context, input) => {
  checkPolicyName(input.PolicyName);
  const key = await resolveKey(context, input.KeyId as string, { allowAlias: false });
  return { Policy: key.policy, PolicyName: DEFAULT_POLICY_NAME };
};

export const putKeyPolicy: Operation<PutKeyPolicyRequest, Record<string, never>> = async (context, input) => {
  checkPolicyName(input.PolicyName);
  const key = await resolveKey(context, input.KeyId as string, { allowAlias: false });
  requireManageable(context, key);
  const problem = checkKeyPolicyDocument(input.Policy as string);
  if (problem) throw policyError(problem);
  // BypassPolicyLockoutSafetyCheck is accepted; the lockout check itself needs policy
  // evaluation, which enforces policies in a later release.
  await updateKeyInState(context, key, { policy: input.Policy as string }, MANAGEABLE_STATES);
  return {};
};

export const listKeyPolicies: Operation<ListKeyPoliciesRequest, ListKeyPoliciesResponse> = async (context, input) => {
  pageLimit(input.Limit, { defaultLimit: 100, max: 1000 });
  await resolveKey(context, input.KeyId as string, { allowAlias: false });
  return { PolicyNames: [DEFAULT_POLICY_NAME], Truncated: false };
};
