import type { AliasRecord, KeyPatch, KeyRecord, KeyState } from '../storage/types.ts';

type KeyPatchInput = { [K in keyof KeyPatch]: KeyPatch[K] | null };
import type { ServiceContext } from './context.ts';
import { KmsError } from './errors.ts';

const KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ARN = /^arn:([^:]+):kms:([^:]*):([^:]*):(key|alias)\/(.+)$/;

export const keyArn = (context: ServiceContext, keyId: string): string =>
  `arn:${context.partition}:kms:${context.region}:${context.accountId}:key/${keyId}`;

export const aliasArn = (context: ServiceContext, aliasName: string): string =>
  `arn:${context.partition}:kms:${context.region}:${context.accountId}:${aliasName}`;

export const keyNotFound = (context: ServiceContext, keyId: string) =>
  new KmsError('NotFoundException', `Key '${keyArn(context, keyId)}' does not exist`);

const aliasNotFound = (context: ServiceContext, aliasName: string) =>
  new KmsError('NotFoundException', `Alias ${aliasArn(context, aliasName)} is not found.`);

export const invalidKeyId = (value: string) => new KmsError('NotFoundException', `Invalid keyId '${value}'`);

type Reference = { kind: 'key'; keyId: string } | { kind: 'alias'; aliasName: string };

/**
 * Reads a KeyId parameter in any of AWS's four forms: key id, key ARN, alias name, alias ARN.
 * ARNs must name this partition, region and account.
 */
function parseReference(context: ServiceContext, value: string): Reference {
  if (KEY_ID.test(value)) return { kind: 'key', keyId: value };
  if (value.startsWith('alias/')) return { kind: 'alias', aliasName: value };
  const arn = ARN.exec(value);
  if (!arn) throw invalidKeyId(value);
  const [, partition, region, account, resource, name] = arn;
  if (partition !== context.partition || region !== context.region) {
    throw new KmsError('NotFoundException', `Invalid arn ${region}`);
  }
  if (resource === 'key') {
    if (!KEY_ID.test(name)) throw invalidKeyId(value);
    if (account !== context.accountId) throw new KmsError('NotFoundException', `Key '${value}' does not exist`);
    return { kind: 'key', keyId: name };
  }
  if (account !== context.accountId) throw new KmsError('NotFoundException', `Alias ${value} is not found.`);
  return { kind: 'alias', aliasName: `alias/${name}` };
}

export interface ResolveOptions {
  /** Whether this parameter accepts alias names and alias ARNs (AWS allows them only in some). */
  readonly allowAlias: boolean;
}

/** Resolves a KeyId parameter to the key it names, with AWS's NotFoundException messages. */
export async function resolveKey(
  context: ServiceContext,
  value: string,
  options: ResolveOptions,
): Promise<KeyRecord> {
  const reference = parseReference(context, value);
  let keyId: string;
  if (reference.kind === 'alias') {
    if (!options.allowAlias) throw invalidKeyId(value);
    const alias = await context.store.getAlias(reference.aliasName);
    if (!alias) throw aliasNotFound(context, reference.aliasName);
    keyId = alias.targetKeyId;
  } else {
    keyId = reference.keyId;
  }
  const key = await context.store.getKey(keyId);
  if (!key) throw keyNotFound(context, keyId);
  return key;
}

export async function requireAlias(context: ServiceContext, aliasName: string): Promise<AliasRecord> {
  const alias = await context.store.getAlias(aliasName);
  if (!alias) throw aliasNotFound(context, aliasName);
  return alias;
}

/** The KMSInvalidStateException / DisabledException AWS answers for a key in the wrong state. */
export function keyStateError(context: ServiceContext, key: KeyRecord): KmsError {
  const arn = keyArn(context, key.keyId);
  switch (key.state) {
    case 'Disabled':
      return new KmsError('DisabledException', `${arn} is disabled.`);
    case 'PendingDeletion':
      return new KmsError('KMSInvalidStateException', `${arn} is pending deletion.`);
    case 'PendingImport':
      return new KmsError('KMSInvalidStateException', `${arn} is pending import.`);
    case 'Unavailable':
      return new KmsError('KeyUnavailableException', `${arn} is unavailable.`);
    default:
      return new KmsError('KMSInvalidStateException', `${arn} is ${key.state}.`);
  }
}

/** Cryptographic operations need an Enabled key. */
export function requireEnabled(context: ServiceContext, key: KeyRecord): void {
  if (key.state !== 'Enabled') throw keyStateError(context, key);
}

/** Most management operations accept Enabled and Disabled keys, not ones pending deletion. */
export function requireManageable(context: ServiceContext, key: KeyRecord): void {
  if (key.state !== 'Enabled' && key.state !== 'Disabled') throw keyStateError(context, key);
}

export function requireKeyUsage(context: ServiceContext, key: KeyRecord, usage: string, operation: string): void {
  if (key.keyUsage !== usage) {
    throw new KmsError(
      'InvalidKeyUsageException',
      `${keyArn(context, key.keyId)} key usage is ${key.keyUsage} which is not valid for ${operation}.`,
    );
  }
}

/** AWS answers DryRunOperationException once every check has passed and DryRun is set. */
export function stopIfDryRun(dryRun: boolean | undefined): void {
  if (dryRun) {
    throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
  }
}

/**
 * Writes a change to a key that the caller checked was in one of `allowedStates`. The store
 * re-checks the state in the same statement; if another request moved the key meanwhile (a
 * deletion scheduled on another worker, say), the caller gets the error that key's state now
 * deserves, and nothing is written.
 */
export async function updateKeyInState(
  context: ServiceContext,
  key: KeyRecord,
  patch: KeyPatchInput,
  allowedStates: readonly KeyState[],
): Promise<void> {
  if (await context.store.updateKey(key.keyId, patch, allowedStates)) return;
  const current = await context.store.getKey(key.keyId);
  if (!current) throw keyNotFound(context, key.keyId);
  throw keyStateError(context, current);
}

export const MANAGEABLE_STATES: readonly KeyState[] = ['Enabled', 'Disabled'];
