import { ed25519ph } from '@noble/curves/ed25519.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { constants, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { CryptoError, InvalidPublicKeyError } from '../errors.ts';
import type { SecretBytes } from '../secret-bytes.ts';
import {
  isEccKeySpec,
  isMlDsaKeySpec,
  isRsaKeySpec,
  lookup,
  type AsymmetricKeySpec,
  type EccKeySpec,
  type MessageType,
  type SigningAlgorithm,
} from './key-specs.ts';
import { ecPrivateScalar, ecPublicPoint, ed25519PublicKey, ed25519Seed, privateKeyObject, publicKeyObject } from './keys.ts';
import { ML_DSA_MU_LENGTH, decodeMlDsaPublicKey, mlDsa, withMlDsaKeyPair } from './ml-dsa.ts';
import { modulusBits, signPkcs1Digest, signPssDigest, verifyPkcs1Digest, verifyPssDigest, type RsaHash } from './rsa-digest.ts';

/**
 * Sign and Verify as AWS KMS defines them (SignRequest.MessageType in the KMS API model):
 *
 * - RAW: the message is hashed with the algorithm's hash, then signed (node:crypto, native).
 * - DIGEST: the message is that hash, digestLength(algorithm) bytes, and is signed as is. Node
 *   cannot sign a given digest with RSA or ECDSA, so RSA encodes it here (rsa-digest.ts) and ECDSA
 *   goes through @noble/curves with prehash off. Ed25519ph is the exception KMS documents: the
 *   64-byte digest is the *message* of RFC 8032 Ed25519ph, which SHA-512s it again.
 * - EXTERNAL_MU: ML-DSA only; the message is μ of FIPS 204 Algorithm 7 line 6 (64 bytes).
 *
 * Which algorithms a key spec allows follows KMS: RSA keys any RSASSA algorithm; each curve its
 * own ECDSA hash (P-256 and secp256k1 SHA-256, P-384 SHA-384, P-521 SHA-512); Ed25519 ED25519_SHA_512
 * with RAW only and ED25519_PH_SHA_512 with DIGEST only; ML-DSA ML_DSA_SHAKE_256 with RAW or
 * EXTERNAL_MU. Any other combination is a CryptoError, on sign and on verify alike.
 *
 * verify returns false for every signature that does not verify — malformed, wrong length, high
 * or low S, anything. It throws CryptoError only for a request that is wrong regardless of the
 * signature: a disallowed combination, a digest of the wrong length, a public key that is not a
 * key of `spec`.
 */

type Family = 'rsa-pss' | 'rsa-pkcs1' | 'ecdsa' | 'ed25519' | 'ed25519ph' | 'ml-dsa';

interface AlgorithmProfile {
  readonly family: Family;
  /** The hash of RAW messages (node:crypto's name); undefined where the scheme fixes its own. */
  readonly hash: RsaHash | undefined;
  readonly digestLength: number;
}

const PROFILES: Readonly<Record<SigningAlgorithm, AlgorithmProfile>> = {
  RSASSA_PSS_SHA_256: { family: 'rsa-pss', hash: 'sha256', digestLength: 32 },
  RSASSA_PSS_SHA_384: { family: 'rsa-pss', hash: 'sha384', digestLength: 48 },
  RSASSA_PSS_SHA_512: { family: 'rsa-pss', hash: 'sha512', digestLength: 64 },
  RSASSA_PKCS1_V1_5_SHA_256: { family: 'rsa-pkcs1', hash: 'sha256', digestLength: 32 },
  RSASSA_PKCS1_V1_5_SHA_384: { family: 'rsa-pkcs1', hash: 'sha384', digestLength: 48 },
  RSASSA_PKCS1_V1_5_SHA_512: { family: 'rsa-pkcs1', hash: 'sha512', digestLength: 64 },
  ECDSA_SHA_256: { family: 'ecdsa', hash: 'sha256', digestLength: 32 },
  ECDSA_SHA_384: { family: 'ecdsa', hash: 'sha384', digestLength: 48 },
  ECDSA_SHA_512: { family: 'ecdsa', hash: 'sha512', digestLength: 64 },
  ED25519_SHA_512: { family: 'ed25519', hash: undefined, digestLength: 64 },
  ED25519_PH_SHA_512: { family: 'ed25519ph', hash: undefined, digestLength: 64 },
  ML_DSA_SHAKE_256: { family: 'ml-dsa', hash: undefined, digestLength: ML_DSA_MU_LENGTH },
};

const ECDSA_ALGORITHM: Readonly<Record<EccKeySpec, SigningAlgorithm>> = {
  ECC_NIST_P256: 'ECDSA_SHA_256',
  ECC_NIST_P384: 'ECDSA_SHA_384',
  ECC_NIST_P521: 'ECDSA_SHA_512',
  ECC_SECG_P256K1: 'ECDSA_SHA_256',
};

const NOBLE_CURVES = {
  ECC_NIST_P256: p256,
  ECC_NIST_P384: p384,
  ECC_NIST_P521: p521,
  ECC_SECG_P256K1: secp256k1,
} as const;

/** The length of a DIGEST message (or of μ for ML-DSA): 32, 48 or 64 bytes. */
export function digestLength(algorithm: SigningAlgorithm): number {
  const profile = lookup(PROFILES, algorithm);
  if (profile === undefined) {
    throw new CryptoError('unsupported signing algorithm');
  }
  return profile.digestLength;
}

function allowedMessageTypes(spec: AsymmetricKeySpec, algorithm: SigningAlgorithm, family: Family): readonly MessageType[] {
  if (isRsaKeySpec(spec) && (family === 'rsa-pss' || family === 'rsa-pkcs1')) {
    return ['RAW', 'DIGEST'];
  }
  if (isEccKeySpec(spec) && ECDSA_ALGORITHM[spec] === algorithm) {
    return ['RAW', 'DIGEST'];
  }
  if (spec === 'ECC_NIST_EDWARDS25519') {
    return family === 'ed25519' ? ['RAW'] : family === 'ed25519ph' ? ['DIGEST'] : [];
  }
  if (isMlDsaKeySpec(spec) && family === 'ml-dsa') {
    return ['RAW', 'EXTERNAL_MU'];
  }
  return [];
}

/** The profile of an allowed (spec, algorithm, messageType) combination; CryptoError otherwise. */
function checkedProfile(spec: AsymmetricKeySpec, algorithm: SigningAlgorithm, messageType: MessageType, message: Uint8Array): AlgorithmProfile {
  const profile = lookup(PROFILES, algorithm);
  if (profile === undefined || !allowedMessageTypes(spec, algorithm, profile.family).includes(messageType)) {
    throw new CryptoError('unsupported signing algorithm for key spec');
  }
  if (messageType !== 'RAW' && message.byteLength !== profile.digestLength) {
    throw new CryptoError('invalid digest length');
  }
  return profile;
}

export function sign(args: {
  spec: AsymmetricKeySpec;
  algorithm: SigningAlgorithm;
  privateKey: SecretBytes;
  message: Uint8Array;
  messageType: MessageType;
}): Buffer {
  const { spec, algorithm, privateKey, message, messageType } = args;
  const { family, hash } = checkedProfile(spec, algorithm, messageType, message);
  if (isMlDsaKeySpec(spec)) {
    // Hedged signing (FIPS 204 §3.4): fresh rnd per signature, empty context string.
    const signature = withMlDsaKeyPair(spec, privateKey, ({ secretKey }) =>
      messageType === 'EXTERNAL_MU'
        ? mlDsa(spec).internal.sign(message, secretKey, { externalMu: true })
        : mlDsa(spec).sign(message, secretKey),
    );
    return Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength);
  }
  const key = privateKeyObject(spec, privateKey);
  try {
    if (messageType === 'RAW') {
      return nodeSign(hash ?? null, message, nodeKeyOptions(family, hash, key));
    }
    switch (family) {
      case 'rsa-pkcs1':
        return signPkcs1Digest(hash!, key, message);
      case 'rsa-pss':
        return signPssDigest(hash!, key, message);
      case 'ecdsa':
        return signEcdsaDigest(spec as EccKeySpec, key, message);
      case 'ed25519ph':
        return signEd25519ph(key, message);
      default:
        throw new CryptoError('unsupported signing algorithm for key spec');
    }
  } catch (error) {
    if (error instanceof CryptoError) {
      throw error;
    }
    throw new CryptoError('signing failed');
  }
}

export function verify(args: {
  spec: AsymmetricKeySpec;
  algorithm: SigningAlgorithm;
  publicKey: Uint8Array;
  message: Uint8Array;
  messageType: MessageType;
  signature: Uint8Array;
}): boolean {
  const { spec, algorithm, publicKey, message, messageType, signature } = args;
  const { family, hash } = checkedProfile(spec, algorithm, messageType, message);
  if (isMlDsaKeySpec(spec)) {
    const rawPublicKey = decodeMlDsaPublicKey(spec, publicKey);
    if (rawPublicKey === undefined) {
      throw new InvalidPublicKeyError();
    }
    return quietly(() =>
      messageType === 'EXTERNAL_MU'
        ? mlDsa(spec).internal.verify(signature, message, rawPublicKey, { externalMu: true })
        : mlDsa(spec).verify(signature, message, rawPublicKey),
    );
  }
  const key = publicKeyObject(spec, publicKey);
  if (messageType === 'RAW') {
    // RFC 8017 §8.1.2 and §8.2.2, step 1: an RSA signature is exactly as long as the modulus (the
    // DIGEST path checks it too). OpenSSL reads a shorter one as the same integer, so a signature
    // whose first byte is zero (1 in 256) still verified with that byte cut off.
    if ((family === 'rsa-pkcs1' || family === 'rsa-pss') && signature.byteLength !== Math.ceil(modulusBits(key) / 8)) return false;
    return quietly(() => nodeVerify(hash ?? null, message, nodeKeyOptions(family, hash, key), signature));
  }
  switch (family) {
    case 'rsa-pkcs1':
      return quietly(() => verifyPkcs1Digest(hash!, key, message, signature));
    case 'rsa-pss':
      return quietly(() => verifyPssDigest(hash!, key, message, signature));
    case 'ecdsa':
      // lowS off: OpenSSL, and so the RAW path, accepts both S values; so must DIGEST.
      return quietly(() =>
        NOBLE_CURVES[spec as EccKeySpec].verify(signature, message, ecPublicPoint(key), { prehash: false, format: 'der', lowS: false }),
      );
    case 'ed25519ph':
      // zip215 off: RFC 8032 §5.1.7 verification (canonical encodings, S < L), as OpenSSL's Ed25519.
      return quietly(() => ed25519ph.verify(signature, message, ed25519PublicKey(key), { zip215: false }));
    default:
      throw new CryptoError('unsupported signing algorithm for key spec');
  }
}

function nodeKeyOptions(family: Family, hash: RsaHash | undefined, key: KeyObject) {
  switch (family) {
    case 'rsa-pss':
      // RFC 8017 §9.1 with KMS's parameters: MGF1 with the message hash (OpenSSL's default for
      // PSS), salt as long as the hash — enforced exactly on verify, not auto-detected.
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: digestBytes(hash!) };
    case 'rsa-pkcs1':
      return { key, padding: constants.RSA_PKCS1_PADDING };
    case 'ecdsa':
      return { key, dsaEncoding: 'der' as const };
    default:
      return { key };
  }
}

function digestBytes(hash: RsaHash): number {
  return hash === 'sha256' ? 32 : hash === 'sha384' ? 48 : 64;
}

function signEcdsaDigest(spec: EccKeySpec, key: KeyObject, digest: Uint8Array): Buffer {
  const scalar = ecPrivateScalar(spec, key);
  try {
    // extraEntropy: RFC 6979 nonce hedged with fresh randomness (RFC 6979 §3.6), so neither a bad
    // RNG nor a fault on a repeated message reveals the key.
    const signature = NOBLE_CURVES[spec].sign(digest, scalar, { prehash: false, format: 'der', extraEntropy: true });
    return Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength);
  } finally {
    scalar.fill(0);
  }
}

function signEd25519ph(key: KeyObject, digest: Uint8Array): Buffer {
  const seed = ed25519Seed(key);
  try {
    const signature = ed25519ph.sign(digest, seed);
    return Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength);
  } finally {
    seed.fill(0);
  }
}

/** A verification that throws (malformed signature or key encoding) is a failed verification. */
function quietly(check: () => boolean): boolean {
  try {
    return check() === true;
  } catch {
    return false;
  }
}
