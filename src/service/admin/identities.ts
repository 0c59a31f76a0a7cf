/**
 * What the admin operations share: IAM's name rules, looking up users and roles by name with
 * IAM's NoSuchEntityException, their IAM output shapes, and the authorization every operation
 * asks for before it acts.
 */
import type { PrincipalKind, PrincipalRecord } from '../../storage/types.ts';
import { authorize } from '../authorization.ts';
import type { Caller, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { principalArnOf } from '../principals.ts';
import type { AdminInput, StringRules } from './input.ts';

/** IAM's userNameType / roleNameType / policyNameType pattern. */
const NAME_PATTERN = /^[\w+=,.@-]+$/;
const NAME_PATTERN_TEXT = '[\\w+=,.@-]+';

type Required = StringRules & { required: true };

/** New user names and all role names: 1..64 (IAM's userNameType, roleNameType). */
export const NEW_NAME: Required = { required: true, min: 1, max: 64, pattern: NAME_PATTERN, patternText: NAME_PATTERN_TEXT };
/** Names of existing users: 1..128 (IAM's existingUserNameType). */
export const EXISTING_USER_NAME: Required = { ...NEW_NAME, max: 128 };
/** Inline policy names: 1..128 (IAM's policyNameType). */
export const POLICY_NAME: Required = { ...NEW_NAME, max: 128 };
/** IAM's policyDocumentType length; the aggregate quotas are checked separately. */
export const POLICY_DOCUMENT: Required = { required: true, min: 1, max: 131_072, secret: true };

export const principalArn = (context: ServiceContext, kind: PrincipalKind, name: string): string =>
  principalArnOf(context.partition, context.accountId, kind, name);

export const noSuchEntity = (kind: PrincipalKind, name: string): KmsError =>
  new KmsError('NoSuchEntityException', `The ${kind} with name ${name} cannot be found.`);

/** The user or role by name, or IAM's NoSuchEntityException. */
export async function requirePrincipal(
  context: ServiceContext,
  kind: PrincipalKind,
  name: string,
): Promise<PrincipalRecord> {
  const principal = await context.store.getPrincipal(principalArn(context, kind, name));
  if (!principal || principal.kind !== kind) throw noSuchEntity(kind, name);
  return principal;
}

const USER_ARN = /^arn:[^:]+:iam::(\d{12}):user\/(?:.*\/)?([^/]+)$/;

/**
 * The user named in the request, or the calling user when none is (IAM: "If you do not specify a
 * user name, IAM determines the user name implicitly based on the AWS access key ID signing the
 * request"). Role sessions must name one, with IAM's message.
 */
export function targetUserName(context: ServiceContext, caller: Caller, named: string | undefined): string {
  if (named !== undefined) return named;
  const user = USER_ARN.exec(caller.principalArn);
  if (!user || user[1] !== context.accountId) {
    throw new KmsError('ValidationException', 'Must specify userName when calling with non-User credentials');
  }
  return user[2];
}

/** Asks for `iam:<operation>` on the resource; AccessDeniedException in AWS's words when denied. */
export function authorizeAdmin(context: ServiceContext, caller: Caller, operation: string, resource: string): Promise<void> {
  return authorize(context, caller, { action: `iam:${operation}`, resource });
}

export const tagsShape = (principal: PrincipalRecord) =>
  principal.tags.length === 0 ? {} : { Tags: principal.tags.map((tag) => ({ Key: tag.tagKey, Value: tag.tagValue })) };

/** IAM's User; ListUsers leaves the tags out, as IAM does. */
export const userShape = (user: PrincipalRecord, withTags: boolean) => ({
  Path: '/',
  UserName: user.name,
  UserId: user.principalId,
  Arn: user.arn,
  CreateDate: user.createdAt,
  ...(withTags ? tagsShape(user) : {}),
});

/** IAM's Role (the trust policy as plain JSON: this API is JSON, not IAM's URL-encoded query form). */
export const roleShape = (role: PrincipalRecord, withTags: boolean) => ({
  Path: '/',
  RoleName: role.name,
  RoleId: role.principalId,
  Arn: role.arn,
  CreateDate: role.createdAt,
  AssumeRolePolicyDocument: role.trustPolicy,
  MaxSessionDuration: role.maxSessionDurationSeconds ?? DEFAULT_MAX_SESSION_SECONDS,
  ...(withTags ? tagsShape(role) : {}),
});

export const DEFAULT_MAX_SESSION_SECONDS = 3600;

// ---------------------------------------------------------------------------------------------
// Paging: IAM's Marker / MaxItems / IsTruncated.

/** IAM's MaxItems: 1..1000, default 100. */
export function readPaging(input: AdminInput): { marker?: string; maxItems: number } {
  const marker = input.string('Marker', { min: 1, max: 320 });
  const maxItems = input.integer('MaxItems', { min: 1, max: 1000 }) ?? 100;
  return { marker, maxItems };
}

/** Markers are opaque: a versioned base64url wrapper around the position. */
export const encodeMarker = (position: string): string => Buffer.from(`m1:${position}`, 'utf8').toString('base64url');

export function decodeMarker(marker: string | undefined): string | undefined {
  if (marker === undefined) return undefined;
  const decoded = /^[A-Za-z0-9_-]+$/.test(marker) ? Buffer.from(marker, 'base64url').toString('utf8') : '';
  if (!decoded.startsWith('m1:')) throw new KmsError('ValidationException', 'The marker is not valid.');
  return decoded.slice(3);
}

/** One page of an in-memory list ordered by `positionOf`, which is strictly increasing. */
export function pageOf<T>(
  items: readonly T[],
  positionOf: (item: T) => string,
  paging: { marker?: string; maxItems: number },
): { items: T[]; IsTruncated: boolean; Marker?: string } {
  const after = decodeMarker(paging.marker);
  const rest = after === undefined ? items : items.filter((item) => positionOf(item) > after);
  const page = rest.slice(0, paging.maxItems);
  const truncated = rest.length > page.length;
  return {
    items: page,
    IsTruncated: truncated,
    ...(truncated ? { Marker: encodeMarker(positionOf(page[page.length - 1])) } : {}),
  };
}

/**
 * Whether a user (or role) of that name exists, ignoring case: IAM names "are not distinguished
 * by case", so `Bob` cannot be created beside `bob`. A scan: creating identities is rare.
 */
export async function nameTakenIgnoringCase(context: ServiceContext, kind: PrincipalKind, name: string): Promise<boolean> {
  const folded = name.toLowerCase();
  let after: string | undefined;
  do {
    const page = await context.store.listPrincipals(kind, 1000, after);
    if (page.items.some((principal) => principal.name.toLowerCase() === folded)) return true;
    after = page.nextAfter;
  } while (after !== undefined);
  return false;
}

export const alreadyExists = (kind: PrincipalKind, name: string): KmsError =>
  new KmsError('EntityAlreadyExistsException', `${kind === 'user' ? 'User' : 'Role'} with name ${name} already exists.`);
