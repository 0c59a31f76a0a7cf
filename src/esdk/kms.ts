/**
 * The KMS-backed parts of the Encryption SDK: the AWS KMS keyring, the KMS discovery keyring and
 * the caching materials manager that cuts KMS calls (re-exported by index.ts).
 */
export {
  KmsKeyring,
  KMS_PROVIDER_ID,
  isKmsKeyIdentifier,
  isMultiRegionKey,
  mrkMatchForDecrypt,
  parseKmsArn,
  parseKmsKeyArn,
  type KmsArn,
  type KmsClientLike,
  type KmsClientSupplier,
  type KmsKeyringOptions,
} from './kms-keyring.ts';
export { KmsDiscoveryKeyring, type DiscoveryFilter, type KmsDiscoveryKeyringOptions } from './kms-discovery-keyring.ts';
export {
  CachingCryptographicMaterialsManager,
  LocalCryptographicMaterialsCache,
  MAX_BYTES_PER_CACHED_KEY,
  MAX_MESSAGES_PER_CACHED_KEY,
  decryptionCacheId,
  encryptionCacheId,
  type CacheEntry,
  type CachingCmmOptions,
  type CachingCmmStats,
  type CryptographicMaterialsCache,
  type DecryptionCacheEntry,
  type EncryptionCacheEntry,
} from './caching-cmm.ts';
