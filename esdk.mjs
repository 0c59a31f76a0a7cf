// `import { encrypt, KmsKeyring, ... } from 'strongroom/esdk'`: Strongroom's AWS Encryption SDK
// (src/esdk, docs/esdk.md) as a package export. Its sources are TypeScript, run through tsx as
// the strongroom command is; TypeScript users get the types from src/esdk/index.ts.
import { tsImport } from 'tsx/esm/api';

const esdk = await tsImport('./src/esdk/index.ts', import.meta.url);

export const {
  ALGORITHM_SUITE_IDS,
  CachingCryptographicMaterialsManager,
  DefaultCryptographicMaterialsManager,
  EsdkError,
  KMS_PROVIDER_ID,
  KmsDiscoveryKeyring,
  KmsKeyring,
  LocalCryptographicMaterialsCache,
  MAX_BYTES_PER_CACHED_KEY,
  MAX_MESSAGES_PER_CACHED_KEY,
  MultiKeyring,
  PUBLIC_KEY_CONTEXT_KEY,
  RawAesKeyring,
  RawRsaKeyring,
  decrypt,
  decryptStream,
  decryptionCacheId,
  encrypt,
  encryptStream,
  encryptionCacheId,
  getAlgorithmSuite,
  isKmsKeyIdentifier,
  isMultiRegionKey,
  mrkMatchForDecrypt,
  parseKmsArn,
  parseKmsKeyArn,
  serializeEncryptionContext,
} = esdk;
