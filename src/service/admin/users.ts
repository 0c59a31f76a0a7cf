/** CreateUser, GetUser, ListUsers, DeleteUser: IAM's operations and shapes. */
import { StoreConflictError } from '../../storage/types.ts';
import type { Caller, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { newPrincipalId } from '../principals.ts';
import {
  alreadyExists,
  authorizeAdmin,
  encodeMarker,
  decodeMarker,
  EXISTING_USER_NAME,
  nameTakenIgnoringCase,
  NEW_NAME,
  noSuchEntity,
  principalArn,
  readPaging,
  requirePrincipal,
  targetUserName,
  userShape,
} from './identities.ts';
import { AdminInput } from './input.ts';
import { readTags, sortTags } from './tags.ts';

export async function createUser(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const name = input.string('UserName', NEW_NAME);
  const tags = readTags(input);
  const arn = principalArn(context, 'user', name);
  await authorizeAdmin(context, caller, 'CreateUser', arn);
  // IAM: tagging at creation needs iam:TagUser as well.
  if (tags?.length) await authorizeAdmin(context, caller, 'TagUser', arn);
  if (await nameTakenIgnoringCase(context, 'user', name)) throw alreadyExists('user', name);
  const user = {
    arn,
    kind: 'user' as const,
    name,
    principalId: newPrincipalId('user'),
    createdAt: context.now(),
    tags: sortTags(tags ?? []),
  };
  try {
    await context.store.createPrincipal(user);
  } catch (error) {
    if (error instanceof StoreConflictError) throw alreadyExists('user', name);
    throw error;
  }
  return { User: userShape(user, true) };
}

export async function getUser(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const named = input.string('UserName', { ...EXISTING_USER_NAME, required: false });
  input.check();
  const name = targetUserName(context, caller, named);
  await authorizeAdmin(context, caller, 'GetUser', principalArn(context, 'user', name));
  return { User: userShape(await requirePrincipal(context, 'user', name), true) };
}

export async function listUsers(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const paging = readPaging(input);
  input.check();
  await authorizeAdmin(context, caller, 'ListUsers', '*');
  const page = await context.store.listPrincipals('user', paging.maxItems, decodeMarker(paging.marker));
  return {
    Users: page.items.map((user) => userShape(user, false)),
    IsTruncated: page.nextAfter !== undefined,
    ...(page.nextAfter !== undefined ? { Marker: encodeMarker(page.nextAfter) } : {}),
  };
}

/** IAM refuses to delete a user that still has access keys or inline policies. */
export async function deleteUser(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const name = input.string('UserName', EXISTING_USER_NAME);
  input.check();
  const arn = principalArn(context, 'user', name);
  await authorizeAdmin(context, caller, 'DeleteUser', arn);
  await requirePrincipal(context, 'user', name);
  if ((await context.store.listAccessKeys(arn)).length > 0) {
    throw new KmsError('DeleteConflictException', 'Cannot delete entity, must delete access keys first.');
  }
  if ((await context.store.listIdentityPolicies(arn)).length > 0) {
    throw new KmsError('DeleteConflictException', 'Cannot delete entity, must delete policies first.');
  }
  if (!(await context.store.deletePrincipal(arn))) throw noSuchEntity('user', name);
  return {};
}
