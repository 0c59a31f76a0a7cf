/**
 * Long-term access keys of users: CreateAccessKey (the only answer that ever carries a secret),
 * ListAccessKeys, UpdateAccessKey, DeleteAccessKey, GetAccessKeyLastUsed. Temporary (session)
 * credentials are never listed or managed here. As in IAM, a caller may deactivate or delete the
 * key it is signing with.
 */
import type { AccessKeyRecord } from '../../storage/types.ts';
import { newAccessKey, storeAccessKey } from '../access-keys.ts';
import type { Caller, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import {
  authorizeAdmin,
  EXISTING_USER_NAME,
  pageOf,
  principalArn,
  readPaging,
  requirePrincipal,
  targetUserName,
} from './identities.ts';
import { AdminInput, type StringRules } from './input.ts';

/** IAM's quota: access keys per user. */
export const MAX_ACCESS_KEYS_PER_USER = 2;

/** IAM's accessKeyIdType. */
const ACCESS_KEY_ID: StringRules & { required: true } = { required: true, min: 16, max: 128, pattern: /^[\w]+$/, patternText: '[\\w]+' };
const STATUS: StringRules & { required: true } = { required: true, enumValues: ['Active', 'Inactive'] };
const OPTIONAL_USER_NAME: StringRules = { ...EXISTING_USER_NAME, required: false };

const isLongTerm = (record: AccessKeyRecord): boolean => record.sessionTokenHash === undefined && record.expiresAt === undefined;

const userNameOf = (arn: string): string => arn.slice(arn.lastIndexOf('/') + 1);

const noSuchAccessKey = (accessKeyId: string) =>
  new KmsError('NoSuchEntityException', `The Access Key with id ${accessKeyId} cannot be found.`);

async function longTermKeys(context: ServiceContext, userArn: string): Promise<AccessKeyRecord[]> {
  return (await context.store.listAccessKeys(userArn)).filter(isLongTerm);
}

/** The user's own long-term key by id, or NoSuchEntityException. */
async function requireUsersKey(context: ServiceContext, userArn: string, accessKeyId: string): Promise<AccessKeyRecord> {
  const record = await context.store.getAccessKey(accessKeyId);
  if (!record || record.principalArn !== userArn || !isLongTerm(record)) throw noSuchAccessKey(accessKeyId);
  return record;
}

export async function createAccessKey(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const named = input.string('UserName', OPTIONAL_USER_NAME);
  input.check();
  const name = targetUserName(context, caller, named);
  const arn = principalArn(context, 'user', name);
  await authorizeAdmin(context, caller, 'CreateAccessKey', arn);
  await requirePrincipal(context, 'user', name);
  if ((await longTermKeys(context, arn)).length >= MAX_ACCESS_KEYS_PER_USER) {
    throw new KmsError('LimitExceededException', `Cannot exceed quota for AccessKeysPerUser: ${MAX_ACCESS_KEYS_PER_USER}`);
  }
  const accessKey = newAccessKey();
  try {
    const createDate = context.now();
    await storeAccessKey(context.store, context.sealer, accessKey, arn, createDate);
    return {
      AccessKey: {
        UserName: name,
        AccessKeyId: accessKey.accessKeyId,
        Status: 'Active',
        // Shown this once; stored only sealed.
        SecretAccessKey: accessKey.secretAccessKey.exposeSecretBytes().toString('utf8'),
        CreateDate: createDate,
      },
    };
  } finally {
    accessKey.secretAccessKey.zero();
  }
}

export async function listAccessKeys(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const named = input.string('UserName', OPTIONAL_USER_NAME);
  const paging = readPaging(input);
  input.check();
  const name = targetUserName(context, caller, named);
  const arn = principalArn(context, 'user', name);
  await authorizeAdmin(context, caller, 'ListAccessKeys', arn);
  await requirePrincipal(context, 'user', name);
  // Oldest first; the position sorts as the store orders them.
  const position = (record: AccessKeyRecord) => `${String(record.createdAt.getTime()).padStart(16, '0')}:${record.accessKeyId}`;
  const { items, ...page } = pageOf(await longTermKeys(context, arn), position, paging);
  return {
    AccessKeyMetadata: items.map((record) => ({
      UserName: name,
      AccessKeyId: record.accessKeyId,
      Status: record.status,
      CreateDate: record.createdAt,
    })),
    ...page,
  };
}

export async function updateAccessKey(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const accessKeyId = input.string('AccessKeyId', ACCESS_KEY_ID);
  const status = input.string('Status', STATUS) as AccessKeyRecord['status'];
  const named = input.string('UserName', OPTIONAL_USER_NAME);
  input.check();
  const name = targetUserName(context, caller, named);
  const arn = principalArn(context, 'user', name);
  await authorizeAdmin(context, caller, 'UpdateAccessKey', arn);
  await requireUsersKey(context, arn, accessKeyId);
  if (!(await context.store.updateAccessKeyStatus(accessKeyId, status))) throw noSuchAccessKey(accessKeyId);
  return {};
}

export async function deleteAccessKey(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const accessKeyId = input.string('AccessKeyId', ACCESS_KEY_ID);
  const named = input.string('UserName', OPTIONAL_USER_NAME);
  input.check();
  const name = targetUserName(context, caller, named);
  const arn = principalArn(context, 'user', name);
  await authorizeAdmin(context, caller, 'DeleteAccessKey', arn);
  await requireUsersKey(context, arn, accessKeyId);
  if (!(await context.store.deleteAccessKey(accessKeyId))) throw noSuchAccessKey(accessKeyId);
  return {};
}

/**
 * The key's owner is only known from the key, so the record is read (nothing else) before the
 * decision; a key that does not exist is decided on "*", so only a caller allowed on every user
 * learns that it does not exist.
 */
export async function getAccessKeyLastUsed(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const accessKeyId = input.string('AccessKeyId', ACCESS_KEY_ID);
  input.check();
  const record = await context.store.getAccessKey(accessKeyId);
  const owned = record && isLongTerm(record) ? record : undefined;
  await authorizeAdmin(context, caller, 'GetAccessKeyLastUsed', owned?.principalArn ?? '*');
  if (!owned) throw noSuchAccessKey(accessKeyId);
  return {
    UserName: userNameOf(owned.principalArn),
    // IAM answers N/A for a key never used. Every use here is of KMS, in this region.
    AccessKeyLastUsed: owned.lastUsedAt
      ? { LastUsedDate: owned.lastUsedAt, ServiceName: 'kms', Region: context.region }
      : { ServiceName: 'N/A', Region: 'N/A' },
  };
}

