import { CryptoError } from '../errors.ts';
import { SecretBytes } from '../secret-bytes.ts';
import { isMlDsaKeySpec, type AsymmetricKeySpec } from './key-specs.ts';
import { privateKeyObject } from './keys.ts';
import { encodeMlDsaPrivateKey } from './ml-dsa.ts';

/**
 * The private key as a PKCS#8 (RFC 5208 / RFC 5958) DER PrivateKeyInfo, the form
 * GenerateDataKeyPair returns. For RSA, ECC and Ed25519 that is exactly what generateKeyPair
 * stored (checked to be a key of `spec`, then copied); for ML-DSA it is the seed-only form of
 * RFC 9881 §6. The result is a new SecretBytes the caller zeroes.
 */
export function privateKeyToPkcs8(spec: AsymmetricKeySpec, privateKey: SecretBytes): SecretBytes {
  if (isMlDsaKeySpec(spec)) {
    if (privateKey.length !== 32) {
      throw new CryptoError('invalid private key');
    }
    const encoded = encodeMlDsaPrivateKey(spec, privateKey);
    try {
      return SecretBytes.from(encoded);
    } finally {
      encoded.fill(0);
    }
  }
  privateKeyObject(spec, privateKey); // throws unless it is a PKCS#8 key of this spec
  return SecretBytes.from(privateKey.exposeSecretBytes());
}
