import type { GetPublicKeyRequest, GetPublicKeyResponse } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { KmsError } from '../errors.ts';
import { resolveKeyFor } from '../authorization.ts';
import { keyArn, requireEnabled } from '../key-resolution.ts';
import { algorithmLists, profileOf } from '../key-specs.ts';
import { keyStoreFor } from '../key-stores.ts';
import { currentVersion } from '../key-versions.ts';

export const getPublicKey: Operation<GetPublicKeyRequest, GetPublicKeyResponse> = async (context, input, caller) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: true, action: 'kms:GetPublicKey' });
  if (!profileOf(key).asymmetric) {
    throw new KmsError(
      'UnsupportedOperationException',
      `${keyArn(context, key.keyId)} key spec ${key.keySpec} is not valid for GetPublicKey.`,
    );
  }
  requireEnabled(context, key);
  const version = await currentVersion(context, key);
  return {
    KeyId: keyArn(context, key.keyId),
    // A copy: the key store's buffer also keys its KeyObject cache and must never change.
    PublicKey: Buffer.from(await (await keyStoreFor(context, key)).publicKey(version, key.keySpec)),
    CustomerMasterKeySpec: key.keySpec as GetPublicKeyResponse['CustomerMasterKeySpec'],
    KeySpec: key.keySpec as GetPublicKeyResponse['KeySpec'],
    KeyUsage: key.keyUsage as GetPublicKeyResponse['KeyUsage'],
    ...(algorithmLists(key) as Pick<GetPublicKeyResponse, 'EncryptionAlgorithms' | 'SigningAlgorithms' | 'KeyAgreementAlgorithms'>),
  };
};
