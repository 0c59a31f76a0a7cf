export { aesGcmDecrypt, aesGcmEncrypt } from './aead.ts';
export { canonicalEncryptionContext } from './encryption-context.ts';
export {
  digestLength,
  ecdhSharedSecret,
  generateHmacKey,
  generateKeyPair,
  generateMac,
  privateKeyToPkcs8,
  publicKeyFromPrivate,
  rsaOaepDecrypt,
  rsaOaepEncrypt,
  rsaOaepMaxPlaintext,
  sign,
  verify,
  verifyMac,
  type AsymmetricKeySpec,
  type EccKeySpec,
  type HmacKeySpec,
  type MacAlgorithm,
  type MessageType,
  type RsaEncryptionAlgorithm,
  type RsaKeySpec,
  type SigningAlgorithm,
} from './asymmetric/index.ts';
export { CryptoError, InvalidPublicKeyError } from './errors.ts';
export { hkdf, type HkdfHash } from './kdf.ts';
export { bytesToUuid, randomBytes, randomUuid, uuidToBytes } from './random.ts';
export { Sealer } from './seal.ts';
export { SecretBytes, constantTimeEqual } from './secret-bytes.ts';
export {
  SYMMETRIC_CIPHERTEXT_OVERHEAD,
  decryptSymmetric,
  encryptSymmetric,
  parseSymmetricCiphertextHeader,
  type DecryptSymmetricArgs,
  type EncryptSymmetricArgs,
} from './symmetric-ciphertext.ts';
