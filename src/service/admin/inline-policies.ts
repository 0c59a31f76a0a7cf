/**
 * Inline identity policies of users and roles: Put/Get/List/Delete User/Role Policy, with IAM's
 * aggregate size quotas ("IAM and AWS STS quotas": inline policies of a user 2,048 characters in
 * all, of a role 10,240; whitespace not counted).
 */
import type { PrincipalKind } from '../../storage/types.ts';
import type { Caller, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import {
  authorizeAdmin,
  EXISTING_USER_NAME,
  NEW_NAME,
  pageOf,
  POLICY_DOCUMENT,
  POLICY_NAME,
  principalArn,
  readPaging,
  requirePrincipal,
} from './identities.ts';
import { AdminInput } from './input.ts';
import { checkIdentityPolicy, policySize } from './policy-checks.ts';

export const MAX_INLINE_POLICY_SIZE: Record<PrincipalKind, number> = { user: 2048, role: 10_240 };

const NAME_MEMBER: Record<PrincipalKind, string> = { user: 'UserName', role: 'RoleName' };
const KIND_TITLE: Record<PrincipalKind, string> = { user: 'User', role: 'Role' };

const noSuchPolicy = (kind: PrincipalKind, policyName: string) =>
  new KmsError('NoSuchEntityException', `The ${kind} policy with name ${policyName} cannot be found.`);

function readTarget(input: AdminInput, kind: PrincipalKind): string {
  return input.string(NAME_MEMBER[kind], kind === 'user' ? EXISTING_USER_NAME : NEW_NAME);
}

/** PutUserPolicy / PutRolePolicy: creates or replaces. */
export function putPolicy(kind: PrincipalKind) {
  const operation = `Put${KIND_TITLE[kind]}Policy`;
  return async (context: ServiceContext, body: unknown, caller: Caller): Promise<object> => {
    const input = AdminInput.of(body);
    const name = readTarget(input, kind);
    const policyName = input.string('PolicyName', POLICY_NAME);
    const document = input.string('PolicyDocument', POLICY_DOCUMENT);
    input.check();
    const arn = principalArn(context, kind, name);
    await authorizeAdmin(context, caller, operation, arn);
    await requirePrincipal(context, kind, name);
    checkIdentityPolicy(document);
    const others = (await context.store.listIdentityPolicies(arn)).filter((policy) => policy.policyName !== policyName);
    const total = others.reduce((sum, policy) => sum + policySize(policy.document), policySize(document));
    const limit = MAX_INLINE_POLICY_SIZE[kind];
    if (total > limit) {
      throw new KmsError('LimitExceededException', `Maximum policy size of ${limit} bytes exceeded for ${kind} ${name}`);
    }
    await context.store.putIdentityPolicy({ principalArn: arn, policyName, document });
    return {};
  };
}

/** GetUserPolicy / GetRolePolicy: the document as stored (plain JSON, not URL-encoded). */
export function getPolicy(kind: PrincipalKind) {
  const operation = `Get${KIND_TITLE[kind]}Policy`;
  return async (context: ServiceContext, body: unknown, caller: Caller): Promise<object> => {
    const input = AdminInput.of(body);
    const name = readTarget(input, kind);
    const policyName = input.string('PolicyName', POLICY_NAME);
    input.check();
    const arn = principalArn(context, kind, name);
    await authorizeAdmin(context, caller, operation, arn);
    await requirePrincipal(context, kind, name);
    const policy = await context.store.getIdentityPolicy(arn, policyName);
    if (!policy) throw noSuchPolicy(kind, policyName);
    return { [NAME_MEMBER[kind]]: name, PolicyName: policy.policyName, PolicyDocument: policy.document };
  };
}

/** ListUserPolicies / ListRolePolicies: names only, in name order. */
export function listPolicies(kind: PrincipalKind) {
  const operation = `List${KIND_TITLE[kind]}Policies`;
  return async (context: ServiceContext, body: unknown, caller: Caller): Promise<object> => {
    const input = AdminInput.of(body);
    const name = readTarget(input, kind);
    const paging = readPaging(input);
    input.check();
    const arn = principalArn(context, kind, name);
    await authorizeAdmin(context, caller, operation, arn);
    await requirePrincipal(context, kind, name);
    const names = (await context.store.listIdentityPolicies(arn)).map((policy) => policy.policyName);
    const { items, ...page } = pageOf(names, (policyName) => policyName, paging);
    return { PolicyNames: items, ...page };
  };
}

export function deletePolicy(kind: PrincipalKind) {
  const operation = `Delete${KIND_TITLE[kind]}Policy`;
  return async (context: ServiceContext, body: unknown, caller: Caller): Promise<object> => {
    const input = AdminInput.of(body);
    const name = readTarget(input, kind);
    const policyName = input.string('PolicyName', POLICY_NAME);
    input.check();
    const arn = principalArn(context, kind, name);
    await authorizeAdmin(context, caller, operation, arn);
    await requirePrincipal(context, kind, name);
    if (!(await context.store.deleteIdentityPolicy(arn, policyName))) throw noSuchPolicy(kind, policyName);
    return {};
  };
}
