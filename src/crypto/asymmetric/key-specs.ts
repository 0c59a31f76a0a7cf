/**
 * The key specs and algorithm names of AWS KMS (KeySpec, SigningAlgorithmSpec, MacAlgorithmSpec,
 * EncryptionAlgorithmSpec in the KMS API model), and what each one means in node:crypto terms.
 * Other files look these tables up; no other file spells a curve name or a modulus size.
 */

export type RsaKeySpec = 'RSA_2048' | 'RSA_3072' | 'RSA_4096';
export type EccKeySpec = 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'ECC_NIST_P521' | 'ECC_SECG_P256K1';
export type MlDsaKeySpec = 'ML_DSA_44' | 'ML_DSA_65' | 'ML_DSA_87';
export type AsymmetricKeySpec = RsaKeySpec | EccKeySpec | 'ECC_NIST_EDWARDS25519' | MlDsaKeySpec;
export type HmacKeySpec = 'HMAC_224' | 'HMAC_256' | 'HMAC_384' | 'HMAC_512';
export type SigningAlgorithm =
  | 'RSASSA_PSS_SHA_256'
  | 'RSASSA_PSS_SHA_384'
  | 'RSASSA_PSS_SHA_512'
  | 'RSASSA_PKCS1_V1_5_SHA_256'
  | 'RSASSA_PKCS1_V1_5_SHA_384'
  | 'RSASSA_PKCS1_V1_5_SHA_512'
  | 'ECDSA_SHA_256'
  | 'ECDSA_SHA_384'
  | 'ECDSA_SHA_512'
  | 'ED25519_SHA_512'
  | 'ED25519_PH_SHA_512'
  | 'ML_DSA_SHAKE_256';
export type MessageType = 'RAW' | 'DIGEST' | 'EXTERNAL_MU';
export type MacAlgorithm = 'HMAC_SHA_224' | 'HMAC_SHA_256' | 'HMAC_SHA_384' | 'HMAC_SHA_512';
export type RsaEncryptionAlgorithm = 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256';

export type HashName = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

export const RSA_MODULUS_BITS: Readonly<Record<RsaKeySpec, number>> = {
  RSA_2048: 2048,
  RSA_3072: 3072,
  RSA_4096: 4096,
};

/** OpenSSL's names, as node:crypto reports them in asymmetricKeyDetails.namedCurve. */
export const EC_CURVE_NAMES: Readonly<Record<EccKeySpec, string>> = {
  ECC_NIST_P256: 'prime256v1',
  ECC_NIST_P384: 'secp384r1',
  ECC_NIST_P521: 'secp521r1',
  ECC_SECG_P256K1: 'secp256k1',
};

export const HMAC_KEY_LENGTHS: Readonly<Record<HmacKeySpec, number>> = {
  HMAC_224: 28,
  HMAC_256: 32,
  HMAC_384: 48,
  HMAC_512: 64,
};

export function lookup<K extends string, V>(table: Readonly<Record<K, V>>, key: string): V | undefined {
  return Object.hasOwn(table, key) ? table[key as K] : undefined;
}

export function isRsaKeySpec(spec: string): spec is RsaKeySpec {
  return Object.hasOwn(RSA_MODULUS_BITS, spec);
}

export function isEccKeySpec(spec: string): spec is EccKeySpec {
  return Object.hasOwn(EC_CURVE_NAMES, spec);
}

export function isMlDsaKeySpec(spec: string): spec is MlDsaKeySpec {
  return spec === 'ML_DSA_44' || spec === 'ML_DSA_65' || spec === 'ML_DSA_87';
}
