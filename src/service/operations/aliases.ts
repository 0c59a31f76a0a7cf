import type {
  CreateAliasRequest,
  DeleteAliasRequest,
  ListAliasesRequest,
  ListAliasesResponse,
  UpdateAliasRequest,
} from '@aws-sdk/client-kms';
import { StoreConflictError, StoreKeyNotFoundError, StoreLimitError } from '../../storage/types.ts';
import { authorize, resolveKeyFor } from '../authorization.ts';
import type { Caller, Operation, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { aliasArn, keyNotFound, requireAlias, requireManageable, resolveKey } from '../key-resolution.ts';
import { decodeMarker, encodeMarker, pageLimit } from '../pagination.ts';

/** AWS KMS quota: aliases per KMS key. */
const MAX_ALIASES_PER_KEY = 50;

function checkAliasName(aliasName: string): void {
  if (!aliasName.startsWith('alias/')) {
    throw new KmsError(
      'ValidationException',
      'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    );
  }
  if (aliasName.startsWith('alias/aws/')) {
    throw new KmsError('InvalidAliasNameException', 'Alias names beginning with alias/aws/ are reserved for AWS managed keys.');
  }
  if (aliasName === 'alias/') throw new KmsError('InvalidAliasNameException', 'Alias name must not be empty after "alias/".');
}

/**
 * Alias operations need permission on the alias (identity policies: the alias has no policy of
 * its own) and on each key involved (key policy), as AWS ("Controlling access to aliases").
 */
async function authorizeAlias(context: ServiceContext, caller: Caller, action: string, aliasName: string): Promise<void> {
  await authorize(context, caller, { action, resource: aliasArn(context, aliasName) });
}

async function targetFor(context: ServiceContext, caller: Caller, action: string, targetKeyId: string) {
  // TargetKeyId takes a key id or key ARN, never an alias.
  const key = await resolveKeyFor(context, caller, targetKeyId, { allowAlias: false, action });
  requireManageable(context, key);
  return key;
}

export const createAlias: Operation<CreateAliasRequest, Record<string, never>> = async (context, input, caller) => {
  const aliasName = input.AliasName as string;
  checkAliasName(aliasName);
  await authorizeAlias(context, caller, 'kms:CreateAlias', aliasName);
  const key = await targetFor(context, caller, 'kms:CreateAlias', input.TargetKeyId as string);
  const now = context.now();
  try {
    await context.store.createAlias({ aliasName, targetKeyId: key.keyId, createdAt: now, updatedAt: now }, MAX_ALIASES_PER_KEY);
  } catch (error) {
    if (error instanceof StoreConflictError) {
      throw new KmsError('AlreadyExistsException', `An alias with the name ${aliasArn(context, aliasName)} already exists`);
    }
    if (error instanceof StoreLimitError) {
      throw new KmsError('LimitExceededException', `A KMS key can have at most ${MAX_ALIASES_PER_KEY} aliases.`);
    }
    if (error instanceof StoreKeyNotFoundError) throw keyNotFound(context, key.keyId);
    throw error;
  }
  return {};
};

export const updateAlias: Operation<UpdateAliasRequest, Record<string, never>> = async (context, input, caller) => {
  const aliasName = input.AliasName as string;
  checkAliasName(aliasName);
  await authorizeAlias(context, caller, 'kms:UpdateAlias', aliasName);
  const alias = await requireAlias(context, aliasName);
  // Both keys: the one the alias leaves and the one it moves to.
  const current = await context.store.getKey(alias.targetKeyId);
  if (current) await authorize(context, caller, { action: 'kms:UpdateAlias', key: current });
  const key = await targetFor(context, caller, 'kms:UpdateAlias', input.TargetKeyId as string);
  if (current && (current.keyUsage !== key.keyUsage || current.keySpec !== key.keySpec)) {
    throw new KmsError(
      'ValidationException',
      'The new target key must have the same key spec and key usage as the key the alias points to now.',
    );
  }
  try {
    if (!(await context.store.updateAlias(aliasName, key.keyId, context.now()))) await requireAlias(context, aliasName);
  } catch (error) {
    if (error instanceof StoreKeyNotFoundError) throw keyNotFound(context, key.keyId);
    throw error;
  }
  return {};
};

export const deleteAlias: Operation<DeleteAliasRequest, Record<string, never>> = async (context, input, caller) => {
  const aliasName = input.AliasName as string;
  checkAliasName(aliasName);
  await authorizeAlias(context, caller, 'kms:DeleteAlias', aliasName);
  const alias = await requireAlias(context, aliasName);
  const key = await context.store.getKey(alias.targetKeyId);
  if (key) await authorize(context, caller, { action: 'kms:DeleteAlias', key });
  if (!(await context.store.deleteAlias(aliasName))) await requireAlias(context, aliasName);
  return {};
};

export const listAliases: Operation<ListAliasesRequest, ListAliasesResponse> = async (context, input, caller) => {
  await authorize(context, caller, { action: 'kms:ListAliases', resource: '*' });
  const limit = pageLimit(input.Limit, { defaultLimit: 50, max: 100 });
  const keyId =
    input.KeyId === undefined ? undefined : (await resolveKey(context, input.KeyId, { allowAlias: false })).keyId;
  const page = await context.store.listAliases(limit, decodeMarker(input.Marker), keyId);
  return {
    Aliases: page.items.map((alias) => ({
      AliasName: alias.aliasName,
      AliasArn: aliasArn(context, alias.aliasName),
      TargetKeyId: alias.targetKeyId,
      CreationDate: alias.createdAt,
      LastUpdatedDate: alias.updatedAt,
    })),
    Truncated: page.nextAfter !== undefined,
    NextMarker: page.nextAfter === undefined ? undefined : encodeMarker(page.nextAfter),
  };
};
