import { createPublicKey, generateKeyPair as generateKeyPairCallback } from 'node:crypto';
import { promisify } from 'node:util';
import { CryptoError } from '../errors.ts';
import { SecretBytes } from '../secret-bytes.ts';
import { privateKeyObject } from './keys.ts';
import {
  EC_CURVE_NAMES,
  HMAC_KEY_LENGTHS,
  RSA_MODULUS_BITS,
  isEccKeySpec,
  isMlDsaKeySpec,
  isRsaKeySpec,
  lookup,
  type AsymmetricKeySpec,
  type HmacKeySpec,
} from './key-specs.ts';
import { ML_DSA_SEED_LENGTH, encodeMlDsaPublicKey, withMlDsaKeyPair } from './ml-dsa.ts';

/** node:crypto's generateKeyPair runs in libuv's thread pool: an RSA-4096 key takes seconds. */
const generateKeyPairInPool = promisify(generateKeyPairCallback);

const SPKI_DER = { type: 'spki', format: 'der' } as const;
const PKCS8_DER = { type: 'pkcs8', format: 'der' } as const;

/**
 * A new key pair. privateKey: PKCS#8 DER for RSA, ECC and Ed25519; the 32-byte FIPS 204 seed ξ
 * for ML-DSA. publicKey: DER SubjectPublicKeyInfo.
 *
 * RSA keys use e = 65537, as AWS KMS's do. EC keys name their curve (ecParamEncoding 'named'):
 * explicit parameters are what publicKeyObject refuses.
 *
 * Asynchronous: generation happens off the event loop (an RSA-4096 key takes up to seconds, which
 * would otherwise stall every other request on the process).
 */
export async function generateKeyPair(spec: AsymmetricKeySpec): Promise<{ privateKey: SecretBytes; publicKey: Buffer }> {
  if (isMlDsaKeySpec(spec)) {
    const seed = SecretBytes.random(ML_DSA_SEED_LENGTH);
    return { privateKey: seed, publicKey: publicKeyFromPrivate(spec, seed) };
  }
  let pair: { privateKey: Buffer; publicKey: Buffer };
  if (isRsaKeySpec(spec)) {
    pair = await generateKeyPairInPool('rsa', {
      modulusLength: RSA_MODULUS_BITS[spec], publicExponent: 65537,
      publicKeyEncoding: SPKI_DER,
      privateKeyEncoding: PKCS8_DER,
    });
  } else if (isEccKeySpec(spec)) {
    pair = await generateKeyPairInPool('ec', { namedCurve: EC_CURVE_NAMES[spec],
      publicKeyEncoding: SPKI_DER,
      privateKeyEncoding: PKCS8_DER,
    });
  } else if (spec === 'ECC_NIST_EDWARDS25519') {
    pair = await generateKeyPairInPool('ed25519', { publicKeyEncoding: SPKI_DER, privateKeyEncoding: PKCS8_DER });
  } else {
    throw new CryptoError('unsupported key spec');
  }
  const privateKey = SecretBytes.from(pair.privateKey);
  pair.privateKey.fill(0);
  return { privateKey, publicKey: pair.publicKey };
}

/** The DER SubjectPublicKeyInfo that belongs to `privateKey` (as generateKeyPair returns it). */
export function publicKeyFromPrivate(spec: AsymmetricKeySpec, privateKey: SecretBytes): Buffer {
  if (isMlDsaKeySpec(spec)) {
    return withMlDsaKeyPair(spec, privateKey, ({ publicKey }) => encodeMlDsaPublicKey(spec, publicKey));
  }
  return createPublicKey(privateKeyObject(spec, privateKey)).export({ type: 'spki', format: 'der' });
}

/** A new HMAC key of the spec's length: 28, 32, 48 or 64 bytes. */
export function generateHmacKey(spec: HmacKeySpec): SecretBytes {
  const length = lookup(HMAC_KEY_LENGTHS, spec);
  if (length === undefined) {
    throw new CryptoError('unsupported key spec');
  }
  return SecretBytes.random(length);
}
