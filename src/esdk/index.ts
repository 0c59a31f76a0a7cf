/**
 * Strongroom's AWS Encryption SDK: the message format of the official SDKs (header v1/v2, every
 * algorithm suite, framed and non-framed bodies, signature footer, key commitment), raw keyrings,
 * the multi-keyring, the default materials manager, buffered and streaming encrypt/decrypt, and
 * (kms.ts) the KMS keyrings and the caching materials manager.
 * See docs/esdk.md.
 */
export * from './types.ts';
export type { DecryptOptions, EncryptOptions, MessageHeaderInfo } from './options.ts';
export { EsdkError, type EsdkErrorCode } from './errors.ts';
export { ALGORITHM_SUITE_IDS, getAlgorithmSuite } from './suites.ts';
export { serializeEncryptionContext } from './serialize/encryption-context.ts';
export { RawAesKeyring, type RawAesKeyringOptions } from './keyrings/raw-aes-keyring.ts';
export { RawRsaKeyring, type RawRsaKeyringOptions, type RsaPadding } from './keyrings/raw-rsa-keyring.ts';
export { MultiKeyring, type MultiKeyringOptions } from './keyrings/multi-keyring.ts';
export { DefaultCryptographicMaterialsManager } from './cmm/default-cmm.ts';
export { encrypt } from './encrypt.ts';
export { decrypt } from './decrypt.ts';
export { encryptStream } from './encrypt-stream.ts';
export { decryptStream } from './decrypt-stream.ts';
export * from './kms.ts';
