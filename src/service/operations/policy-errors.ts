import { MAX_KEY_POLICY_BYTES, type PolicyProblem } from '../../policy/key-policy.ts';
import { KmsError } from '../errors.ts';

export function policyError(problem: PolicyProblem): KmsError {
  if (problem.kind === 'too-large') {
    return new KmsError('LimitExceededException', `Policy document exceeds the ${MAX_KEY_POLICY_BYTES}-byte limit for key policies.`);
  }
  return new KmsError('MalformedPolicyDocumentException', problem.reason);
}
