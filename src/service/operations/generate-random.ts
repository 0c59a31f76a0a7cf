import { randomBytes } from '../../crypto/random.ts';
import type { GenerateRandomRequest, GenerateRandomResponse } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { authorize } from '../authorization.ts';
import { KmsError } from '../errors.ts';

export const generateRandom: Operation<GenerateRandomRequest, GenerateRandomResponse> = async (context, input, caller) => {
  await authorize(context, caller, { action: 'kms:GenerateRandom', resource: '*' });
  if (input.NumberOfBytes === undefined) throw new KmsError('ValidationException', 'NumberOfBytes is required.');
  if (input.CustomKeyStoreId !== undefined) {
    throw new KmsError('CustomKeyStoreNotFoundException', `Custom key store ${input.CustomKeyStoreId} does not exist.`);
  }
  if (input.Recipient !== undefined) {
    throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by Strongroom.');
  }
  return { Plaintext: randomBytes(input.NumberOfBytes) };
};
