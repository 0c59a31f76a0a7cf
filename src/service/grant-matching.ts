/**
 * When a grant lets a request in: the grantee is the caller (or the role of a session), the
 * operation is among the grant's, and its encryption-context constraint holds.
 */
import { principalNames } from '../policy/evaluate.ts';
import type { GrantRecord } from '../storage/types.ts';
import type { AccessRequest } from './authorization.ts';
import type { Caller } from './context.ts';

/** The grant operations AWS accepts (CreateGrant's Operations). */
export const GRANT_OPERATIONS = [
  'Decrypt', 'Encrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'ReEncryptFrom', 'ReEncryptTo',
  'Sign', 'Verify', 'GetPublicKey', 'CreateGrant', 'RetireGrant', 'DescribeKey', 'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext', 'GenerateMac', 'VerifyMac', 'DeriveSharedSecret',
] as const;


/** Does the grant's constraint hold for this request's encryption context? */
function constraintsHold(grant: GrantRecord, encryptionContext: Record<string, string> | undefined): boolean {
  const constraints = grant.constraints;
  if (!constraints) return true;
  const requestContext = encryptionContext ?? {};
  const has = (pairs: Record<string, string>) =>
    Object.entries(pairs).every(([name, value]) => Object.hasOwn(requestContext, name) && requestContext[name] === value);
  if (constraints.encryptionContextEquals) {
    const wanted = constraints.encryptionContextEquals;
    if (Object.keys(wanted).length !== Object.keys(requestContext).length || !has(wanted)) return false;
  }
  if (constraints.encryptionContextSubset && !has(constraints.encryptionContextSubset)) return false;
  return true;
}

/** The grant operation an action is, or undefined when grants cannot allow it. */
function grantOperationOf(action: string): string | undefined {
  if (!action.startsWith('kms:')) return undefined;
  const name = action.slice(4);
  return (GRANT_OPERATIONS as readonly string[]).includes(name) ? name : undefined;
}

/**
 * AWS: a grant's encryption-context constraint applies to the operations that take an encryption
 * context; "Grants with grant constraints can include the DescribeKey and RetireGrant operations,
 * but the constraint doesn't apply to these operations."
 */
const UNCONSTRAINED_OPERATIONS = new Set(['DescribeKey', 'RetireGrant', 'GetPublicKey', 'CreateGrant']);

export function grantCovers(grant: GrantRecord, caller: Caller, request: AccessRequest): boolean {
  const operation = grantOperationOf(request.action);
  return (
    operation !== undefined &&
    grant.operations.includes(operation) &&
    principalNames(caller.principalArn).includes(grant.granteePrincipal) &&
    (UNCONSTRAINED_OPERATIONS.has(operation) || constraintsHold(grant, request.encryptionContext))
  );
}
