import { constants, privateDecrypt, publicEncrypt } from 'node:crypto';
import { CryptoError } from '../errors.ts';
import type { SecretBytes } from '../secret-bytes.ts';
import { rsaPrivateKeyObject, rsaPublicKeyObject } from './keys.ts';
import { RSA_MODULUS_BITS, lookup, type RsaEncryptionAlgorithm, type RsaKeySpec } from './key-specs.ts';

/**
 * RSAES-OAEP (RFC 8017 §7.1) with MGF1 over the same hash as OAEP (OpenSSL's default when only
 * oaepHash is set) and an empty label, as AWS KMS uses it. Keys must be rsaEncryption keys of a
 * KMS size (2048, 3072 or 4096 bits).
 *
 * Decryption failures are one CryptoError('decryption failed'), whatever the cause: OAEP's
 * security against chosen-ciphertext attacks (Manger 2001) depends on failures being
 * indistinguishable, and OpenSSL's OAEP decoding is constant time.
 */

interface OaepHash {
  readonly name: 'sha1' | 'sha256';
  readonly length: number;
}

const OAEP_HASH: Readonly<Record<RsaEncryptionAlgorithm, OaepHash>> = {
  RSAES_OAEP_SHA_1: { name: 'sha1', length: 20 },
  RSAES_OAEP_SHA_256: { name: 'sha256', length: 32 },
};

function oaepHash(algorithm: RsaEncryptionAlgorithm): OaepHash {
  const hash = lookup(OAEP_HASH, algorithm);
  if (hash === undefined) {
    throw new CryptoError('unsupported encryption algorithm');
  }
  return hash;
}

/** The largest plaintext OAEP takes: k - 2·hLen - 2 bytes (RFC 8017 §7.1.1 step 1b). */
export function rsaOaepMaxPlaintext(spec: RsaKeySpec, algorithm: RsaEncryptionAlgorithm): number {
  const bits = lookup(RSA_MODULUS_BITS, spec);
  if (bits === undefined) {
    throw new CryptoError('unsupported key spec');
  }
  return bits / 8 - 2 * oaepHash(algorithm).length - 2;
}

export function rsaOaepEncrypt(args: { publicKey: Uint8Array; algorithm: RsaEncryptionAlgorithm; plaintext: Uint8Array }): Buffer {
  const { publicKey, algorithm, plaintext } = args;
  const hash = oaepHash(algorithm);
  const { key, spec } = rsaPublicKeyObject(publicKey);
  if (plaintext.byteLength > rsaOaepMaxPlaintext(spec, algorithm)) {
    throw new CryptoError('plaintext too long');
  }
  try {
    return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name }, plaintext);
  } catch {
    throw new CryptoError('encryption failed');
  }
}

/** Any failure — wrong key, wrong algorithm, altered or mis-sized ciphertext — is one error. */
export function rsaOaepDecrypt(args: { privateKey: SecretBytes; algorithm: RsaEncryptionAlgorithm; ciphertext: Uint8Array }): Buffer {
  const { privateKey, algorithm, ciphertext } = args;
  try {
    const hash = oaepHash(algorithm);
    const { key, spec } = rsaPrivateKeyObject(privateKey);
    if (ciphertext.byteLength !== RSA_MODULUS_BITS[spec] / 8) {
      throw new CryptoError('decryption failed');
    }
    return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name }, ciphertext);
  } catch {
    throw new CryptoError('decryption failed');
  }
}
