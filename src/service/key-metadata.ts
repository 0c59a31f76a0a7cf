import type { KeyMetadata } from '@aws-sdk/client-kms';
import type { KeyRecord } from '../storage/types.ts';
import type { ServiceContext } from './context.ts';
import { keyArn } from './key-resolution.ts';
import { algorithmLists } from './key-specs.ts';

/** The KeyMetadata structure DescribeKey and CreateKey answer with, field for field as AWS. */
export async function keyMetadata(context: ServiceContext, key: KeyRecord): Promise<KeyMetadata> {
  const current = await context.store.getKeyVersion(key.keyId, key.currentVersion);
  const customKeyStore =
    key.customKeyStoreId === undefined ? undefined : await context.store.getCustomKeyStore(key.customKeyStoreId);
  // A key whose custom key store is not connected is Unavailable (AWS), whatever its own state,
  // except pending deletion, which the store's state does not change.
  const state =
    customKeyStore && customKeyStore.connectionState !== 'CONNECTED' && key.state !== 'PendingDeletion'
      ? 'Unavailable'
      : key.state;
  return {
    AWSAccountId: context.accountId,
    KeyId: key.keyId,
    Arn: keyArn(context, key.keyId),
    CreationDate: key.createdAt,
    Enabled: key.state === 'Enabled',
    Description: key.description,
    KeyUsage: key.keyUsage as KeyMetadata['KeyUsage'],
    KeyState: state,
    DeletionDate: key.state === 'PendingDeletion' ? key.deletionDate : undefined,
    Origin: key.origin as KeyMetadata['Origin'],
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: key.keySpec as KeyMetadata['CustomerMasterKeySpec'],
    KeySpec: key.keySpec as KeyMetadata['KeySpec'],
    ...(algorithmLists(key) as Pick<KeyMetadata, 'EncryptionAlgorithms' | 'SigningAlgorithms' | 'MacAlgorithms' | 'KeyAgreementAlgorithms'>),
    MultiRegion: false,
    CurrentKeyMaterialId: current?.keyMaterialId,
    ...(key.customKeyStoreId !== undefined ? { CustomKeyStoreId: key.customKeyStoreId } : {}),
    ...(customKeyStore?.cloudHsmClusterId !== undefined ? { CloudHsmClusterId: customKeyStore.cloudHsmClusterId } : {}),
    ...(key.xksKeyId !== undefined ? { XksKeyConfiguration: { Id: key.xksKeyId } } : {}),
  };
}
