import type { KeyStore, KeyStoreRequestInfo } from '../keystores/types.ts';
import { CustomKeyStoreConnectError, KeyStoreUnavailableError } from '../keystores/types.ts';
import type { CustomKeyStoreRecord, KeyRecord } from '../storage/types.ts';
import type { Caller, ServiceContext } from './context.ts';
import { KmsError } from './errors.ts';
import { keyArn } from './key-resolution.ts';
import { timedKeyStore } from './key-store-timing.ts';

/** A key whose custom key store is not connected cannot be used (AWS: KMSInvalidStateException). */
const unavailable = (context: ServiceContext, key: KeyRecord): KmsError =>
  new KmsError('KMSInvalidStateException', `${keyArn(context, key.keyId)} is unavailable.`);

/**
 * The key store that holds a key's material: the software store, or the connection to its custom
 * key store. The store's ConnectionState is read on every use (not cached), so a
 * DisconnectCustomKeyStore in any server process stops every use at once.
 */
export async function keyStoreFor(context: ServiceContext, key: KeyRecord): Promise<KeyStore> {
  if (key.customKeyStoreId === undefined) return context.keyStore;
  const record = await context.store.getCustomKeyStore(key.customKeyStoreId);
  if (!record || record.connectionState !== 'CONNECTED') {
    if (record) void context.customKeyStores.close(record.customKeyStoreId);
    throw unavailable(context, key);
  }
  return connectedStore(context, record, () => unavailable(context, key));
}

/** The live connection to a CONNECTED store; a failure to (re)connect is `failure()`. */
export async function connectedStore(
  context: ServiceContext,
  record: CustomKeyStoreRecord,
  failure: () => KmsError,
): Promise<KeyStore> {
  try {
    return timedKeyStore(context, record, await context.customKeyStores.open(context.sealer, record));
  } catch (error) {
    if (error instanceof CustomKeyStoreConnectError) throw failure();
    throw error;
  }
}

/** What a custom key store may pass on about the request (software keys need nothing). */
export function requestInfo(
  context: ServiceContext,
  key: KeyRecord,
  caller: Caller,
  operation: string,
): KeyStoreRequestInfo | undefined {
  if (key.customKeyStoreId === undefined) return undefined;
  return { principalArn: caller.principalArn, operation, requestId: caller.requestId ?? '', keyArn: keyArn(context, key.keyId) };
}

/**
 * A custom key store that could not serve (HSMs or proxy down, slow or refusing) is
 * KMSInvalidStateException for the caller, as in AWS; the cause stays in the operator's log.
 */
export function keyStoreFailure(context: ServiceContext, key: KeyRecord, error: unknown): unknown {
  if (!(error instanceof KeyStoreUnavailableError)) return error;
  return new KmsError(
    'KMSInvalidStateException',
    `${keyArn(context, key.keyId)} is unavailable: its custom key store could not complete the request.`,
    { cause: error },
  );
}
