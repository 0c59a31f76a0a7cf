import type { CreateKeyRequest } from '@aws-sdk/client-kms';
import { CustomKeyStoreConnectError, KeyStoreUnavailableError, type ConnectedKeyStore } from '../../keystores/types.ts';
import type { CustomKeyStoreRecord } from '../../storage/types.ts';
import type { ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { connectedStore } from '../key-stores.ts';

/** The origin each custom key store type gives its keys. */
const ORIGIN_OF = { AWS_CLOUDHSM: 'AWS_CLOUDHSM', EXTERNAL_KEY_STORE: 'EXTERNAL_KEY_STORE' } as const;

const XKS_KEY_ID = /^[a-zA-Z0-9-_.]{1,128}$/;

/**
 * Where CreateKey puts a new key: the software store (undefined), or a connected custom key store,
 * with AWS's rules: the Origin names the store's type, only symmetric encryption keys, the store
 * must be CONNECTED, and an external key must exist in the proxy and not back another key.
 */
export async function customKeyStorePlacement(
  context: ServiceContext,
  input: CreateKeyRequest,
  origin: string,
  keySpec: string,
  keyUsage: string,
): Promise<{ record: CustomKeyStoreRecord; keyStore: ConnectedKeyStore } | undefined> {
  if (origin !== 'AWS_KMS' && origin !== 'AWS_CLOUDHSM' && origin !== 'EXTERNAL_KEY_STORE') {
    throw new KmsError('UnsupportedOperationException', `Origin ${origin} is not supported by this Strongroom release.`);
  }
  if (input.XksKeyId !== undefined && origin !== 'EXTERNAL_KEY_STORE') {
    throw new KmsError('ValidationException', 'XksKeyId is allowed only with Origin EXTERNAL_KEY_STORE.');
  }
  if (input.CustomKeyStoreId === undefined) {
    if (origin === 'AWS_KMS') return undefined;
    throw new KmsError('ValidationException', `Origin ${origin} requires a CustomKeyStoreId.`);
  }
  const record = await context.store.getCustomKeyStore(input.CustomKeyStoreId);
  if (!record) {
    throw new KmsError('CustomKeyStoreNotFoundException', `Custom key store ${input.CustomKeyStoreId} does not exist.`);
  }
  if (ORIGIN_OF[record.type] !== origin) {
    throw new KmsError(
      'ValidationException',
      `A key in custom key store ${record.customKeyStoreId} (${record.type}) must have Origin ${ORIGIN_OF[record.type]}.`,
    );
  }
  if (keySpec !== 'SYMMETRIC_DEFAULT' || keyUsage !== 'ENCRYPT_DECRYPT') {
    throw new KmsError(
      'UnsupportedOperationException',
      'Custom key stores hold symmetric encryption keys only (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT).',
    );
  }
  if (record.connectionState !== 'CONNECTED') {
    throw new KmsError(
      'CustomKeyStoreInvalidStateException',
      `Custom key store ${record.customKeyStoreId} is not connected (its connection state is ${record.connectionState}).`,
    );
  }
  const invalidState = () =>
    new KmsError('CustomKeyStoreInvalidStateException', `Custom key store ${record.customKeyStoreId} could not be reached.`);
  const keyStore = (await connectedStore(context, record, invalidState)) as ConnectedKeyStore;
  if (origin === 'EXTERNAL_KEY_STORE') await checkExternalKey(context, record, keyStore, input.XksKeyId);
  return { record, keyStore };
}

/**
 * CreateKey's answer when a CloudHSM key store could not make the key's material. AWS: a cluster
 * without the active HSMs CreateKey needs is CloudHsmClusterInvalidConfigurationException; any
 * other failure of the HSMs, CustomKeyStoreInvalidStateException (the cause stays in the
 * operator's log). Other errors pass unchanged.
 */
export function creationFailure(record: CustomKeyStoreRecord, error: unknown): unknown {
  if (record.type !== 'AWS_CLOUDHSM') return error;
  if (error instanceof CustomKeyStoreConnectError && error.connectionErrorCode === 'INSUFFICIENT_CLOUDHSM_HSMS') {
    return new KmsError(
      'CloudHsmClusterInvalidConfigurationException',
      `The cluster of custom key store ${record.customKeyStoreId} does not have the active HSMs CreateKey requires.`,
      { cause: error },
    );
  }
  if (error instanceof KeyStoreUnavailableError) {
    return new KmsError('CustomKeyStoreInvalidStateException', `Custom key store ${record.customKeyStoreId} could not complete the request.`, {
      cause: error,
    });
  }
  return error;
}

async function checkExternalKey(
  context: ServiceContext,
  record: CustomKeyStoreRecord,
  keyStore: ConnectedKeyStore,
  xksKeyId: string | undefined,
): Promise<void> {
  if (xksKeyId === undefined) {
    throw new KmsError('ValidationException', 'Origin EXTERNAL_KEY_STORE requires an XksKeyId.');
  }
  if (!XKS_KEY_ID.test(xksKeyId)) {
    throw new KmsError('ValidationException', 'XksKeyId must be 1 to 128 characters of letters, digits, -, _ and .');
  }
  for (let after: string | undefined, page; (page = await context.store.listKeys(1000, after)); after = page.nextAfter) {
    if (page.items.some((key) => key.customKeyStoreId === record.customKeyStoreId && key.xksKeyId === xksKeyId)) {
      throw new KmsError('XksKeyAlreadyInUseException', `External key ${xksKeyId} already backs a KMS key in this key store.`);
    }
    if (page.nextAfter === undefined) break;
  }
  try {
    await keyStore.checkExternalKey?.(xksKeyId);
  } catch (error) {
    if (error instanceof CustomKeyStoreConnectError) {
      throw new KmsError(
        error.connectionErrorCode === 'XKS_KEY_NOT_FOUND' ? 'XksKeyNotFoundException' : 'XksKeyInvalidConfigurationException',
        error.message,
      );
    }
    throw error;
  }
}
