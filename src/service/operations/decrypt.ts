import type { DecryptRequest, DecryptResponse } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { KmsError } from '../errors.ts';
import { keyArn, stopIfDryRun } from '../key-resolution.ts';
import { decryptCiphertext } from '../encryption.ts';

export const decrypt: Operation<DecryptRequest, DecryptResponse> = async (context, input, caller) => {
  if (input.CiphertextBlob === undefined) {
    throw new KmsError('ValidationException', 'CiphertextBlob is required.');
  }
  if (input.Recipient !== undefined) {
    throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by Strongroom.');
  }
  const { key, version, plaintext, algorithm } = await decryptCiphertext(context, {
    ciphertextBlob: input.CiphertextBlob,
    encryptionContext: input.EncryptionContext,
    keyIdParameter: input.KeyId,
    encryptionAlgorithm: input.EncryptionAlgorithm,
    operation: 'Decrypt',
    caller,
    access: { action: 'kms:Decrypt' },
    dryRun: () => stopIfDryRun(input.DryRun),
  });
  return {
    KeyId: keyArn(context, key.keyId),
    Plaintext: plaintext,
    EncryptionAlgorithm: algorithm as DecryptResponse['EncryptionAlgorithm'],
    // AWS reports the key material only for symmetric encryption keys.
    KeyMaterialId: key.keySpec === 'SYMMETRIC_DEFAULT' ? version.keyMaterialId : undefined,
  };
};
