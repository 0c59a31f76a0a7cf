/** CreateRole, GetRole, ListRoles, DeleteRole, UpdateAssumeRolePolicy: IAM's operations and shapes. */
import { StoreConflictError } from '../../storage/types.ts';
import type { Caller, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { newPrincipalId } from '../principals.ts';
import {
  alreadyExists,
  authorizeAdmin,
  decodeMarker,
  DEFAULT_MAX_SESSION_SECONDS,
  encodeMarker,
  nameTakenIgnoringCase,
  NEW_NAME,
  noSuchEntity,
  POLICY_DOCUMENT,
  principalArn,
  readPaging,
  requirePrincipal,
  roleShape,
} from './identities.ts';
import { AdminInput } from './input.ts';
import { checkTrustPolicy } from './policy-checks.ts';
import { readTags, sortTags } from './tags.ts';

/** IAM's MaxSessionDuration range, in seconds. */
const MAX_SESSION = { min: 3600, max: 43_200 };

export async function createRole(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const name = input.string('RoleName', NEW_NAME);
  const trustPolicy = input.string('AssumeRolePolicyDocument', POLICY_DOCUMENT);
  const maxSession = input.integer('MaxSessionDuration', MAX_SESSION) ?? DEFAULT_MAX_SESSION_SECONDS;
  const tags = readTags(input);
  const arn = principalArn(context, 'role', name);
  await authorizeAdmin(context, caller, 'CreateRole', arn);
  // IAM: tagging at creation needs iam:TagRole as well.
  if (tags?.length) await authorizeAdmin(context, caller, 'TagRole', arn);
  checkTrustPolicy(trustPolicy);
  if (await nameTakenIgnoringCase(context, 'role', name)) throw alreadyExists('role', name);
  const role = {
    arn,
    kind: 'role' as const,
    name,
    principalId: newPrincipalId('role'),
    createdAt: context.now(),
    trustPolicy,
    maxSessionDurationSeconds: maxSession,
    tags: sortTags(tags ?? []),
  };
  try {
    await context.store.createPrincipal(role);
  } catch (error) {
    if (error instanceof StoreConflictError) throw alreadyExists('role', name);
    throw error;
  }
  return { Role: roleShape(role, true) };
}

export async function getRole(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const name = input.string('RoleName', NEW_NAME);
  input.check();
  await authorizeAdmin(context, caller, 'GetRole', principalArn(context, 'role', name));
  return { Role: roleShape(await requirePrincipal(context, 'role', name), true) };
}

export async function listRoles(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const paging = readPaging(input);
  input.check();
  await authorizeAdmin(context, caller, 'ListRoles', '*');
  const page = await context.store.listPrincipals('role', paging.maxItems, decodeMarker(paging.marker));
  return {
    Roles: page.items.map((role) => roleShape(role, false)),
    IsTruncated: page.nextAfter !== undefined,
    ...(page.nextAfter !== undefined ? { Marker: encodeMarker(page.nextAfter) } : {}),
  };
}

/** IAM refuses to delete a role that still has inline policies; its sessions end with it. */
export async function deleteRole(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const name = input.string('RoleName', NEW_NAME);
  input.check();
  const arn = principalArn(context, 'role', name);
  await authorizeAdmin(context, caller, 'DeleteRole', arn);
  await requirePrincipal(context, 'role', name);
  if ((await context.store.listIdentityPolicies(arn)).length > 0) {
    throw new KmsError('DeleteConflictException', 'Cannot delete entity, must delete policies first.');
  }
  if (!(await context.store.deletePrincipal(arn))) throw noSuchEntity('role', name);
  return {};
}

export async function updateAssumeRolePolicy(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const name = input.string('RoleName', NEW_NAME);
  const trustPolicy = input.string('PolicyDocument', POLICY_DOCUMENT);
  input.check();
  const arn = principalArn(context, 'role', name);
  await authorizeAdmin(context, caller, 'UpdateAssumeRolePolicy', arn);
  await requirePrincipal(context, 'role', name);
  checkTrustPolicy(trustPolicy);
  if (!(await context.store.updatePrincipal(arn, { trustPolicy }))) throw noSuchEntity('role', name);
  return {};
}
