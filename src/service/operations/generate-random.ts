import { randomBytes } from '../../crypto/random.ts';
import type { GenerateRandomRequest, GenerateRandomResponse } from '@aws-sdk/client-kms';
import type { Caller, Operation, ServiceContext } from '../context.ts';
import { KeyStoreUnavailableError, type ConnectedKeyStore } from '../../keystores/types.ts';
import { connectedStore } from '../key-stores.ts';
import { authorize } from '../authorization.ts';
import { KmsError } from '../errors.ts';

export const generateRandom: Operation<GenerateRandomRequest, GenerateRandomResponse> = async (context, input, caller) => {
  await authorize(context, caller, { action: 'kms:GenerateRandom', resource: '*' });
  if (input.NumberOfBytes === undefined) throw new KmsError('ValidationException', 'NumberOfBytes is required.');
  if (input.Recipient !== undefined) {
    throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by Strongroom.');
  }
  if (input.CustomKeyStoreId !== undefined) return { Plaintext: await randomFromCustomKeyStore(context, input, caller) };
  return { Plaintext: randomBytes(input.NumberOfBytes) };
};

/** GenerateRandom in a CloudHSM key store: the bytes come from the cluster's HSMs (AWS). */
async function randomFromCustomKeyStore(context: ServiceContext, input: GenerateRandomRequest, caller: Caller): Promise<Buffer> {
  const id = input.CustomKeyStoreId as string;
  const record = await context.store.getCustomKeyStore(id);
  if (!record) throw new KmsError('CustomKeyStoreNotFoundException', `Custom key store ${id} does not exist.`);
  if (record.type !== 'AWS_CLOUDHSM') {
    throw new KmsError('UnsupportedOperationException', 'GenerateRandom takes a CustomKeyStoreId of a CloudHSM key store only.');
  }
  const invalidState = () =>
    new KmsError('CustomKeyStoreInvalidStateException', `Custom key store ${id} is not connected.`);
  if (record.connectionState !== 'CONNECTED') throw invalidState();
  const store = (await connectedStore(context, record, invalidState)) as ConnectedKeyStore;
  if (!store.generateRandom) throw new KmsError('UnsupportedOperationException', 'This key store cannot generate random bytes.');
  try {
    // The HSM layer's own audit log names the KMS request it served.
    return await store.generateRandom(input.NumberOfBytes as number, {
      principalArn: caller.principalArn,
      operation: 'GenerateRandom',
      requestId: caller.requestId ?? '',
    });
  } catch (error) {
    // The cluster's HSMs could not serve (AWS: CustomKeyStoreInvalidStateException); the cause is for the operator's log.
    if (error instanceof KeyStoreUnavailableError) {
      throw new KmsError('CustomKeyStoreInvalidStateException', `Custom key store ${id} could not complete the request.`, { cause: error });
    }
    throw error;
  }
}
