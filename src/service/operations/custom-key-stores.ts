import type {
  ConnectCustomKeyStoreRequest,
  CreateCustomKeyStoreRequest,
  CreateCustomKeyStoreResponse,
  CustomKeyStoresListEntry,
  DeleteCustomKeyStoreRequest,
  DescribeCustomKeyStoresRequest,
  DescribeCustomKeyStoresResponse,
  DisconnectCustomKeyStoreRequest,
  UpdateCustomKeyStoreRequest,
} from '@aws-sdk/client-kms';
import { randomBytes } from '../../crypto/random.ts';
import { CustomKeyStoreConnectError } from '../../keystores/types.ts';
import type { CustomKeyStoreRecord, CustomKeyStoreType } from '../../storage/types.ts';
import { StoreConflictError } from '../../storage/types.ts';
import { authorize } from '../authorization.ts';
import type { Operation, ServiceContext } from '../context.ts';
import { customKeyStoreSecretBinding, unsealCustomKeyStoreSecret } from '../custom-key-stores/connections.ts';
import { checkError } from '../custom-key-stores/errors.ts';
import {
  MAX_CUSTOM_KEY_STORES,
  checkConflicts,
  checkTrustAnchor,
  refuseOtherTypeParameters,
  requireParameters,
  xksProxyConfiguration,
} from '../custom-key-stores/validation.ts';
import { KmsError } from '../errors.ts';
import { decodeNumericMarker, encodeMarker, pageLimit } from '../pagination.ts';

type Empty = Record<string, never>;

/** AWS's custom key store ids: "cks-" and 17 hex characters. */
const newCustomKeyStoreId = (): string => `cks-${randomBytes(9).toString('hex').slice(0, 17)}`;

const notFound = (id: string) =>
  new KmsError('CustomKeyStoreNotFoundException', `Custom key store ${id} does not exist.`);

async function requireStore(context: ServiceContext, id: string): Promise<CustomKeyStoreRecord> {
  const record = await context.store.getCustomKeyStore(id);
  if (!record) throw notFound(id);
  return record;
}

const invalidState = (record: CustomKeyStoreRecord, operation: string) =>
  new KmsError(
    'CustomKeyStoreInvalidStateException',
    `${operation} is not valid for custom key store ${record.customKeyStoreId} in connection state ${record.connectionState}.`,
  );

const sealSecret = (context: ServiceContext, id: string, secret: string): Buffer =>
  context.sealer.seal(Buffer.from(secret, 'utf8'), customKeyStoreSecretBinding(id));

/** Asks the backend whether the configuration works, in AWS's exception for what does not. */
async function checkWithBackend(context: ServiceContext, record: CustomKeyStoreRecord, secret: string): Promise<void> {
  if (!context.customKeyStores.supports(record.type)) {
    throw new KmsError('UnsupportedOperationException', `Custom key stores of type ${record.type} are not available on this server.`);
  }
  try {
    await context.customKeyStores.check(record, secret);
  } catch (error) {
    if (error instanceof CustomKeyStoreConnectError) throw checkError(record, error);
    throw error;
  }
}

export const createCustomKeyStore: Operation<CreateCustomKeyStoreRequest, CreateCustomKeyStoreResponse> = async (
  context,
  input,
  caller,
) => {
  await authorize(context, caller, { action: 'kms:CreateCustomKeyStore', resource: '*' });
  const type: CustomKeyStoreType = input.CustomKeyStoreType ?? 'AWS_CLOUDHSM';
  refuseOtherTypeParameters(type, input);
  const customKeyStoreId = newCustomKeyStoreId();
  let secret: string;
  let record: CustomKeyStoreRecord;
  const base = {
    customKeyStoreId,
    name: input.CustomKeyStoreName as string,
    type,
    createdAt: context.now(),
    connectionState: 'DISCONNECTED' as const,
  };
  if (type === 'AWS_CLOUDHSM') {
    requireParameters(type, input, ['CloudHsmClusterId', 'TrustAnchorCertificate', 'KeyStorePassword']);
    checkTrustAnchor(input.TrustAnchorCertificate as string);
    secret = input.KeyStorePassword as string;
    record = {
      ...base,
      cloudHsmClusterId: input.CloudHsmClusterId,
      trustAnchorCertificate: input.TrustAnchorCertificate,
      sealedSecret: sealSecret(context, customKeyStoreId, secret),
    };
  } else {
    requireParameters(type, input, ['XksProxyUriEndpoint', 'XksProxyUriPath', 'XksProxyAuthenticationCredential', 'XksProxyConnectivity']);
    const credential = input.XksProxyAuthenticationCredential;
    if (credential?.AccessKeyId === undefined || credential.RawSecretAccessKey === undefined) {
      throw new KmsError('ValidationException', 'XksProxyAuthenticationCredential needs AccessKeyId and RawSecretAccessKey.');
    }
    secret = credential.RawSecretAccessKey;
    record = {
      ...base,
      xksProxy: xksProxyConfiguration(input),
      sealedSecret: sealSecret(context, customKeyStoreId, secret),
    };
  }
  const existing = await context.store.listCustomKeyStores();
  checkConflicts(existing, record);
  if (existing.length >= MAX_CUSTOM_KEY_STORES) {
    throw new KmsError('LimitExceededException', `An account can have at most ${MAX_CUSTOM_KEY_STORES} custom key stores.`);
  }
  await checkWithBackend(context, record, secret);
  await context.audit.probe();
  try {
    await context.store.createCustomKeyStore(record);
  } catch (error) {
    if (error instanceof StoreConflictError) {
      throw new KmsError('CustomKeyStoreNameInUseException', `A custom key store named ${record.name} already exists.`);
    }
    throw error;
  }
  return { CustomKeyStoreId: customKeyStoreId };
};

function listEntry(record: CustomKeyStoreRecord): CustomKeyStoresListEntry {
  return {
    CustomKeyStoreId: record.customKeyStoreId,
    CustomKeyStoreName: record.name,
    CustomKeyStoreType: record.type,
    ConnectionState: record.connectionState,
    ...(record.connectionState === 'FAILED' && record.connectionErrorCode
      ? { ConnectionErrorCode: record.connectionErrorCode as CustomKeyStoresListEntry['ConnectionErrorCode'] }
      : {}),
    CreationDate: record.createdAt,
    ...(record.type === 'AWS_CLOUDHSM'
      ? { CloudHsmClusterId: record.cloudHsmClusterId, TrustAnchorCertificate: record.trustAnchorCertificate }
      : {}),
    ...(record.xksProxy
      ? {
          XksProxyConfiguration: {
            Connectivity: record.xksProxy.connectivity,
            AccessKeyId: record.xksProxy.accessKeyId,
            UriEndpoint: record.xksProxy.uriEndpoint,
            UriPath: record.xksProxy.uriPath,
          },
        }
      : {}),
  };
}

export const describeCustomKeyStores: Operation<DescribeCustomKeyStoresRequest, DescribeCustomKeyStoresResponse> = async (
  context,
  input,
  caller,
) => {
  await authorize(context, caller, { action: 'kms:DescribeCustomKeyStores', resource: '*' });
  if (input.CustomKeyStoreId !== undefined && input.CustomKeyStoreName !== undefined) {
    throw new KmsError('ValidationException', 'Specify CustomKeyStoreId or CustomKeyStoreName, not both.');
  }
  const limit = pageLimit(input.Limit, { defaultLimit: 1000, max: 1000 });
  const after = decodeNumericMarker(input.Marker) ?? 0;
  let records = await context.store.listCustomKeyStores();
  if (input.CustomKeyStoreId !== undefined) {
    records = records.filter((record) => record.customKeyStoreId === input.CustomKeyStoreId);
    if (records.length === 0) throw notFound(input.CustomKeyStoreId);
  } else if (input.CustomKeyStoreName !== undefined) {
    records = records.filter((record) => record.name === input.CustomKeyStoreName);
    if (records.length === 0) {
      throw new KmsError('CustomKeyStoreNotFoundException', `Custom key store ${input.CustomKeyStoreName} does not exist.`);
    }
  }
  const page = records.slice(after, after + limit);
  const truncated = after + limit < records.length;
  return {
    CustomKeyStores: page.map(listEntry),
    Truncated: truncated,
    ...(truncated ? { NextMarker: encodeMarker(String(after + limit)) } : {}),
  };
};

/**
 * Starts connecting and answers at once, as AWS does: the state is CONNECTING until the attempt
 * ends in CONNECTED or FAILED (with a ConnectionErrorCode); DescribeCustomKeyStores tells which.
 */
export const connectCustomKeyStore: Operation<ConnectCustomKeyStoreRequest, Empty> = async (context, input, caller) => {
  await authorize(context, caller, { action: 'kms:ConnectCustomKeyStore', resource: '*' });
  const record = await requireStore(context, input.CustomKeyStoreId as string);
  if (record.connectionState === 'DISCONNECTING' || record.connectionState === 'FAILED') {
    throw invalidState(record, 'ConnectCustomKeyStore');
  }
  if (record.connectionState === 'CONNECTED' || record.connectionState === 'CONNECTING') return {};
  await context.audit.probe();
  const started = await context.store.updateCustomKeyStore(
    record.customKeyStoreId,
    { connectionState: 'CONNECTING', connectionErrorCode: null },
    ['DISCONNECTED'],
  );
  if (!started) throw invalidState(await requireStore(context, record.customKeyStoreId), 'ConnectCustomKeyStore');
  void finishConnecting(context, { ...record, connectionState: 'CONNECTING' });
  return {};
};

/** The connection attempt ConnectCustomKeyStore started; a Disconnect meanwhile wins. */
async function finishConnecting(context: ServiceContext, record: CustomKeyStoreRecord): Promise<void> {
  let outcome: { connectionState: 'CONNECTED' | 'FAILED'; connectionErrorCode: string | null };
  try {
    await context.customKeyStores.open(context.sealer, record);
    outcome = { connectionState: 'CONNECTED', connectionErrorCode: null };
  } catch (error) {
    const code = error instanceof CustomKeyStoreConnectError ? error.connectionErrorCode : 'INTERNAL_ERROR';
    outcome = { connectionState: 'FAILED', connectionErrorCode: code };
  }
  try {
    const applied = await context.store.updateCustomKeyStore(record.customKeyStoreId, outcome, ['CONNECTING']);
    if (!applied || outcome.connectionState === 'FAILED') await context.customKeyStores.close(record.customKeyStoreId);
  } catch {
    // The store stays CONNECTING; a Disconnect resets it.
  }
}

export const disconnectCustomKeyStore: Operation<DisconnectCustomKeyStoreRequest, Empty> = async (context, input, caller) => {
  await authorize(context, caller, { action: 'kms:DisconnectCustomKeyStore', resource: '*' });
  const record = await requireStore(context, input.CustomKeyStoreId as string);
  if (record.connectionState === 'DISCONNECTING' || record.connectionState === 'DISCONNECTED') {
    throw invalidState(record, 'DisconnectCustomKeyStore');
  }
  await context.audit.probe();
  await context.store.updateCustomKeyStore(
    record.customKeyStoreId,
    { connectionState: 'DISCONNECTED', connectionErrorCode: null },
    ['CONNECTED', 'CONNECTING', 'FAILED'],
  );
  await context.customKeyStores.close(record.customKeyStoreId);
  return {};
};

export const updateCustomKeyStore: Operation<UpdateCustomKeyStoreRequest, Empty> = async (context, input, caller) => {
  await authorize(context, caller, { action: 'kms:UpdateCustomKeyStore', resource: '*' });
  const record = await requireStore(context, input.CustomKeyStoreId as string);
  refuseOtherTypeParameters(record.type, input);
  const renameOnly = Object.keys(input).every((name) => name === 'CustomKeyStoreId' || name === 'NewCustomKeyStoreName');
  const allowedStates = renameOnly ? (['CONNECTED', 'DISCONNECTED'] as const) : (['DISCONNECTED'] as const);
  if (!(allowedStates as readonly string[]).includes(record.connectionState)) {
    throw invalidState(record, 'UpdateCustomKeyStore');
  }
  const updated: CustomKeyStoreRecord = { ...record, name: input.NewCustomKeyStoreName ?? record.name };
  let secret: string | undefined;
  if (record.type === 'AWS_CLOUDHSM') {
    if (input.CloudHsmClusterId !== undefined && input.CloudHsmClusterId !== record.cloudHsmClusterId) {
      // A cluster of another lineage holds none of the store's keys (AWS: same backup history).
      throw new KmsError(
        'CloudHsmClusterNotRelatedException',
        `Cluster ${input.CloudHsmClusterId} is not related to cluster ${record.cloudHsmClusterId}.`,
      );
    }
    secret = input.KeyStorePassword;
  } else {
    const credential = input.XksProxyAuthenticationCredential;
    if (credential !== undefined && (credential.AccessKeyId === undefined || credential.RawSecretAccessKey === undefined)) {
      throw new KmsError('ValidationException', 'XksProxyAuthenticationCredential needs AccessKeyId and RawSecretAccessKey.');
    }
    updated.xksProxy = xksProxyConfiguration(input, record.xksProxy);
    secret = credential?.RawSecretAccessKey;
  }
  if (secret !== undefined) updated.sealedSecret = sealSecret(context, record.customKeyStoreId, secret);
  checkConflicts(await context.store.listCustomKeyStores(), updated);
  if (!renameOnly) {
    // The backend checks the new configuration with the secret in force (the new one, or the stored one).
    await checkWithBackend(context, updated, secret ?? unsealCustomKeyStoreSecret(context.sealer, record));
  }
  await context.audit.probe();
  try {
    const applied = await context.store.updateCustomKeyStore(
      record.customKeyStoreId,
      {
        name: updated.name,
        ...(secret !== undefined ? { sealedSecret: updated.sealedSecret } : {}),
        ...(updated.xksProxy ? { xksProxy: updated.xksProxy } : {}),
      },
      allowedStates,
    );
    if (!applied) throw invalidState(await requireStore(context, record.customKeyStoreId), 'UpdateCustomKeyStore');
  } catch (error) {
    if (error instanceof StoreConflictError) {
      throw new KmsError('CustomKeyStoreNameInUseException', `A custom key store named ${updated.name} already exists.`);
    }
    throw error;
  }
  return {};
};

export const deleteCustomKeyStore: Operation<DeleteCustomKeyStoreRequest, Empty> = async (context, input, caller) => {
  await authorize(context, caller, { action: 'kms:DeleteCustomKeyStore', resource: '*' });
  const record = await requireStore(context, input.CustomKeyStoreId as string);
  if (record.connectionState !== 'DISCONNECTED') throw invalidState(record, 'DeleteCustomKeyStore');
  await context.audit.probe();
  const outcome = await context.store.deleteCustomKeyStore(record.customKeyStoreId, ['DISCONNECTED']);
  if (outcome === 'not-found') throw notFound(record.customKeyStoreId);
  if (outcome === 'wrong-state') throw invalidState(await requireStore(context, record.customKeyStoreId), 'DeleteCustomKeyStore');
  if (outcome === 'has-keys') {
    throw new KmsError(
      'CustomKeyStoreHasCMKsException',
      `Custom key store ${record.customKeyStoreId} contains KMS keys; delete them (ScheduleKeyDeletion) first.`,
    );
  }
  return {};
};
