import type { EncryptRequest, EncryptResponse } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { keyArn, stopIfDryRun } from '../key-resolution.ts';
import { encryptWithCurrentVersion, keyForEncrypt } from '../symmetric-crypto.ts';

export const encrypt: Operation<EncryptRequest, EncryptResponse> = async (context, input) => {
  const key = await keyForEncrypt(context, input.KeyId as string, 'Encrypt', input.EncryptionAlgorithm);
  stopIfDryRun(input.DryRun);
  const { ciphertextBlob } = await encryptWithCurrentVersion(
    context,
    key,
    input.Plaintext as Uint8Array,
    input.EncryptionContext,
  );
  return { CiphertextBlob: ciphertextBlob, KeyId: keyArn(context, key.keyId), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
};
