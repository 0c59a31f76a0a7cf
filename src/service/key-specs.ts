import type { KeyRecord } from '../storage/types.ts';

/**
 * What each KeySpec can be used for, and with which algorithms — AWS KMS's table
 * (developer guide, "Key spec reference"). One place, read by CreateKey's checks, DescribeKey's
 * algorithm lists, GetPublicKey and every cryptographic operation's algorithm check.
 */
export interface KeySpecProfile {
  readonly usages: readonly string[];
  readonly encryptionAlgorithms?: readonly string[];
  readonly signingAlgorithms?: readonly string[];
  readonly macAlgorithms?: readonly string[];
  readonly keyAgreementAlgorithms?: readonly string[];
  /** Asymmetric: has a public key (GetPublicKey). */
  readonly asymmetric: boolean;
}

const RSA_ENCRYPTION = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'];
const RSA_SIGNING = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
];

const rsa = (): KeySpecProfile => ({
  usages: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'],
  encryptionAlgorithms: RSA_ENCRYPTION,
  signingAlgorithms: RSA_SIGNING,
  asymmetric: true,
});
const nistCurve = (ecdsa: string): KeySpecProfile => ({
  usages: ['SIGN_VERIFY', 'KEY_AGREEMENT'],
  signingAlgorithms: [ecdsa],
  keyAgreementAlgorithms: ['ECDH'],
  asymmetric: true,
});
const mlDsa = (): KeySpecProfile => ({ usages: ['SIGN_VERIFY'], signingAlgorithms: ['ML_DSA_SHAKE_256'], asymmetric: true });
const hmac = (algorithm: string): KeySpecProfile => ({
  usages: ['GENERATE_VERIFY_MAC'],
  macAlgorithms: [algorithm],
  asymmetric: false,
});

export const KEY_SPECS: Readonly<Record<string, KeySpecProfile>> = {
  SYMMETRIC_DEFAULT: { usages: ['ENCRYPT_DECRYPT'], encryptionAlgorithms: ['SYMMETRIC_DEFAULT'], asymmetric: false },
  RSA_2048: rsa(),
  RSA_3072: rsa(),
  RSA_4096: rsa(),
  ECC_NIST_P256: nistCurve('ECDSA_SHA_256'),
  ECC_NIST_P384: nistCurve('ECDSA_SHA_384'),
  ECC_NIST_P521: nistCurve('ECDSA_SHA_512'),
  ECC_SECG_P256K1: { usages: ['SIGN_VERIFY'], signingAlgorithms: ['ECDSA_SHA_256'], asymmetric: true },
  ECC_NIST_EDWARDS25519: {
    usages: ['SIGN_VERIFY'],
    signingAlgorithms: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'],
    asymmetric: true,
  },
  ML_DSA_44: mlDsa(),
  ML_DSA_65: mlDsa(),
  ML_DSA_87: mlDsa(),
  HMAC_224: hmac('HMAC_SHA_224'),
  HMAC_256: hmac('HMAC_SHA_256'),
  HMAC_384: hmac('HMAC_SHA_384'),
  HMAC_512: hmac('HMAC_SHA_512'),
};

/** SM2 (China's GB/T 32918) needs SM2/SM3 primitives no well-kept Node library provides solidly. */
export const UNSUPPORTED_KEY_SPECS = new Set(['SM2']);

export const profileOf = (key: Pick<KeyRecord, 'keySpec'>): KeySpecProfile => KEY_SPECS[key.keySpec];

/** The algorithm lists DescribeKey and GetPublicKey report: only those of the key's usage. */
export function algorithmLists(key: Pick<KeyRecord, 'keySpec' | 'keyUsage'>): {
  EncryptionAlgorithms?: string[];
  SigningAlgorithms?: string[];
  MacAlgorithms?: string[];
  KeyAgreementAlgorithms?: string[];
} {
  const profile = profileOf(key);
  switch (key.keyUsage) {
    case 'ENCRYPT_DECRYPT':
      return { EncryptionAlgorithms: [...(profile.encryptionAlgorithms ?? [])] };
    case 'SIGN_VERIFY':
      return { SigningAlgorithms: [...(profile.signingAlgorithms ?? [])] };
    case 'GENERATE_VERIFY_MAC':
      return { MacAlgorithms: [...(profile.macAlgorithms ?? [])] };
    case 'KEY_AGREEMENT':
      return { KeyAgreementAlgorithms: [...(profile.keyAgreementAlgorithms ?? [])] };
    default:
      return {};
  }
}
