export { ecdhSharedSecret } from './key-agreement.ts';
export { generateHmacKey, generateKeyPair, publicKeyFromPrivate } from './key-pairs.ts';
export type {
  AsymmetricKeySpec,
  EccKeySpec,
  HmacKeySpec,
  MacAlgorithm,
  MessageType,
  RsaEncryptionAlgorithm,
  RsaKeySpec,
  SigningAlgorithm,
} from './key-specs.ts';
export { generateMac, verifyMac } from './mac.ts';
export { privateKeyToPkcs8 } from './pkcs8.ts';
export { rsaOaepDecrypt, rsaOaepEncrypt, rsaOaepMaxPlaintext } from './rsa-encryption.ts';
export { digestLength, sign, verify } from './signatures.ts';
