import type {
  GetKeyPolicyRequest,
  GetKeyPolicyResponse,
  ListKeyPoliciesRequest,
  ListKeyPoliciesResponse,
  PutKeyPolicyRequest,
} from '@aws-sdk/client-kms';
import { DEFAULT_POLICY_NAME } from '../../policy/key-policy.ts';
import type { Operation } from '../context.ts';
import { KmsError } from '../errors.ts';
import { resolveKeyFor } from '../authorization.ts';
import { MANAGEABLE_STATES, requireManageable, updateKeyInState } from '../key-resolution.ts';
import { pageLimit } from '../pagination.ts';
import { checkNewKeyPolicy } from '../key-policy-checks.ts';

/** A key has exactly one policy, named "default", as in AWS. */
function checkPolicyName(policyName: string | undefined): void {
  if (policyName !== undefined && policyName !== DEFAULT_POLICY_NAME) {
    throw new KmsError('NotFoundException', `No such policy exists: ${policyName}`);
  }
}

export const getKeyPolicy: Operation<GetKeyPolicyRequest, GetKeyPolicyResponse> = async (context, input, caller) => {
  checkPolicyName(input.PolicyName);
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:GetKeyPolicy' });
  return { Policy: key.policy, PolicyName: DEFAULT_POLICY_NAME };
};

export const putKeyPolicy: Operation<PutKeyPolicyRequest, Record<string, never>> = async (context, input, caller) => {
  checkPolicyName(input.PolicyName);
  const key = await resolveKeyFor(context, caller, input.KeyId as string, {
    allowAlias: false,
    action: 'kms:PutKeyPolicy',
    conditions: { 'kms:BypassPolicyLockoutSafetyCheck': input.BypassPolicyLockoutSafetyCheck ?? false },
  });
  requireManageable(context, key);
  await checkNewKeyPolicy(context, caller, key, input.Policy as string, input.BypassPolicyLockoutSafetyCheck);
  await updateKeyInState(context, key, { policy: input.Policy as string }, MANAGEABLE_STATES);
  return {};
};

export const listKeyPolicies: Operation<ListKeyPoliciesRequest, ListKeyPoliciesResponse> = async (context, input, caller) => {
  pageLimit(input.Limit, { defaultLimit: 100, max: 1000 });
  await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:ListKeyPolicies' });
  return { PolicyNames: [DEFAULT_POLICY_NAME], Truncated: false };
};
