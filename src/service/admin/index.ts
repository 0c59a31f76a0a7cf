/**
 * The identity administration API: IAM's operations, names and shapes (PascalCase JSON), served
 * on the KMS port as `X-Amz-Target: StrongroomAdmin.<Operation>` (transports/kms-json/handler.ts).
 * Every operation validates its input, then asks for `iam:<Operation>` on the principal it acts
 * on (`*` for ListUsers and ListRoles) before it reads or changes anything else.
 */
import type { Caller, ServiceContext } from '../context.ts';
import { isReadOnlyOperation } from '../audit-events.ts';
import { KmsError } from '../errors.ts';
import { createAccessKey, deleteAccessKey, getAccessKeyLastUsed, listAccessKeys, updateAccessKey } from './access-keys.ts';
import { getCallerIdentity } from './caller-identity.ts';
import { explainRequest } from './explain-request.ts';
import { deletePolicy, getPolicy, listPolicies, putPolicy } from './inline-policies.ts';
import { createRole, deleteRole, getRole, listRoles, updateAssumeRolePolicy } from './roles.ts';
import { tagPrincipal, untagPrincipal } from './tags.ts';
import { createUser, deleteUser, getUser, listUsers } from './users.ts';

/** Inputs arrive as parsed JSON; each operation checks its own (admin/input.ts). */
export type AdminOperation = (context: ServiceContext, input: unknown, caller: Caller) => Promise<object>;

export const ADMIN_OPERATIONS: ReadonlyMap<string, AdminOperation> = new Map<string, AdminOperation>([
  ['CreateUser', createUser],
  ['GetUser', getUser],
  ['ListUsers', listUsers],
  ['DeleteUser', deleteUser],
  ['TagUser', tagPrincipal('user')],
  ['UntagUser', untagPrincipal('user')],
  ['CreateRole', createRole],
  ['GetRole', getRole],
  ['ListRoles', listRoles],
  ['DeleteRole', deleteRole],
  ['UpdateAssumeRolePolicy', updateAssumeRolePolicy],
  ['TagRole', tagPrincipal('role')],
  ['UntagRole', untagPrincipal('role')],
  ['PutUserPolicy', putPolicy('user')],
  ['GetUserPolicy', getPolicy('user')],
  ['ListUserPolicies', listPolicies('user')],
  ['DeleteUserPolicy', deletePolicy('user')],
  ['PutRolePolicy', putPolicy('role')],
  ['GetRolePolicy', getPolicy('role')],
  ['ListRolePolicies', listPolicies('role')],
  ['DeleteRolePolicy', deletePolicy('role')],
  ['CreateAccessKey', createAccessKey],
  ['ListAccessKeys', listAccessKeys],
  ['UpdateAccessKey', updateAccessKey],
  ['DeleteAccessKey', deleteAccessKey],
  ['GetAccessKeyLastUsed', getAccessKeyLastUsed],
  ['GetCallerIdentity', getCallerIdentity],
  ['ExplainRequest', explainRequest],
]);

/**
 * Runs an admin operation for a caller. As invokeOperation: an operation that returns without
 * having asked for a policy decision is a bug, and its answer is withheld as an internal error.
 */
export async function invokeAdminOperation(
  name: string,
  context: ServiceContext,
  input: unknown,
  caller: Caller,
): Promise<object> {
  const operation = ADMIN_OPERATIONS.get(name);
  if (!operation) throw new KmsError('UnknownOperationException', '');
  // Fail closed: nothing changes unless the audit trail can record it (docs/audit.md).
  if (!isReadOnlyOperation(name)) await context.audit.probe();
  const output = await operation(context, input, caller);
  if (caller.decisions.length === 0) {
    throw new Error(`admin operation ${name} returned without a policy decision`);
  }
  return output;
}
