import type { EncryptRequest, EncryptResponse } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { encryptWithCurrentVersion, keyForEncrypt } from '../encryption.ts';
import { keyArn, stopIfDryRun } from '../key-resolution.ts';

export const encrypt: Operation<EncryptRequest, EncryptResponse> = async (context, input, caller) => {
  const target = await keyForEncrypt(context, caller, input.KeyId as string, 'Encrypt', input.EncryptionAlgorithm, {
    access: { encryptionContext: input.EncryptionContext },
  });
  stopIfDryRun(input.DryRun);
  const { ciphertextBlob } = await encryptWithCurrentVersion(
    context,
    target,
    input.Plaintext as Uint8Array,
    input.EncryptionContext,
  );
  return {
    CiphertextBlob: ciphertextBlob,
    KeyId: keyArn(context, target.key.keyId),
    EncryptionAlgorithm: target.algorithm as EncryptResponse['EncryptionAlgorithm'],
  };
};
