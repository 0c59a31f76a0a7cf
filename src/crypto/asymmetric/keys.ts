import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { CryptoError, InvalidPublicKeyError } from '../errors.ts';
import type { SecretBytes } from '../secret-bytes.ts';
import { TAG_INTEGER, TAG_OCTET_STRING, TAG_SEQUENCE, readDer } from './der.ts';
import {
  EC_CURVE_NAMES,
  RSA_MODULUS_BITS,
  isEccKeySpec,
  isRsaKeySpec,
  type AsymmetricKeySpec,
  type EccKeySpec,
  type RsaKeySpec,
} from './key-specs.ts';

/**
 * Turning stored key bytes into node:crypto KeyObjects, checked against the key spec they are
 * claimed to be: an RSA_2048 key must be a 2048-bit rsaEncryption key, an ECC_NIST_P256 key must
 * be on the named curve prime256v1 (explicit curve parameters are refused), and so on. A mismatch
 * is a CryptoError, never a silent use of a different algorithm or size.
 *
 * A KeyObject holds its copy of the private key in OpenSSL memory, which JavaScript cannot wipe.
 * Building one costs hundreds of microseconds (parsing, and OpenSSL's per-key setup such as RSA
 * blinding and Montgomery tables), more than an RSA-2048 signature itself, so KeyObjects are
 * remembered per SecretBytes / public-key buffer in WeakMaps: the key store keeps one of each per
 * key version, so they are reused, and when the key store forgets a version (zeroing its
 * SecretBytes) the KeyObject becomes garbage with it. A zeroed SecretBytes is refused before the
 * cache is consulted.
 */

const privateKeyObjects = new WeakMap<SecretBytes, { spec: AsymmetricKeySpec; key: KeyObject }>();
const publicKeyObjects = new WeakMap<Uint8Array, { spec: AsymmetricKeySpec; key: KeyObject }>();

function matchesSpec(spec: AsymmetricKeySpec, key: KeyObject): boolean {
  if (isRsaKeySpec(spec)) {
    return key.asymmetricKeyType === 'rsa' && key.asymmetricKeyDetails?.modulusLength === RSA_MODULUS_BITS[spec];
  }
  if (isEccKeySpec(spec)) {
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === EC_CURVE_NAMES[spec];
  }
  if (spec === 'ECC_NIST_EDWARDS25519') {
    return key.asymmetricKeyType === 'ed25519';
  }
  return false; // ML-DSA keys never become KeyObjects in Node 20
}

/** A PKCS#8 DER private key of the given spec (RSA, ECC or Ed25519). */
export function privateKeyObject(spec: AsymmetricKeySpec, privateKey: SecretBytes): KeyObject {
  const bytes = privateKey.exposeSecretBytes(); // throws once the secret has been destroyed
  const cached = privateKeyObjects.get(privateKey);
  if (cached !== undefined && cached.spec === spec) return cached.key;
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' });
  } catch {
    throw new CryptoError('invalid private key');
  }
  if (!matchesSpec(spec, key)) {
    throw new CryptoError('invalid private key');
  }
  privateKeyObjects.set(privateKey, { spec, key });
  return key;
}

// RFC 5480 §2.1.1: AlgorithmIdentifier { id-ecPublicKey, namedCurve OID }, in DER.
const EC_PUBLIC_KEY_OID = '06072a8648ce3d0201';
const EC_ALGORITHM_IDENTIFIERS: Readonly<Record<EccKeySpec, Buffer>> = {
  ECC_NIST_P256: Buffer.from(`3013${EC_PUBLIC_KEY_OID}06082a8648ce3d030107`, 'hex'),
  ECC_NIST_P384: Buffer.from(`3010${EC_PUBLIC_KEY_OID}06052b81040022`, 'hex'),
  ECC_NIST_P521: Buffer.from(`3010${EC_PUBLIC_KEY_OID}06052b81040023`, 'hex'),
  ECC_SECG_P256K1: Buffer.from(`3010${EC_PUBLIC_KEY_OID}06052b8104000a`, 'hex'),
};

/**
 * Whether an EC SPKI names its curve by OID. OpenSSL 3 also takes explicit curve parameters and,
 * when they match a named curve closely enough, reports that curve's name — even with a cofactor
 * that is missing or wrong (Wycheproof ECDH "NoCofactor", "LargeCofactor"). RFC 5480 §2.1.1 says
 * namedCurve MUST be used, so anything else is refused before OpenSSL sees it.
 */
function namesItsCurve(spec: EccKeySpec, spki: Buffer): boolean {
  const outer = readDer(spki, 0);
  const algorithm = outer?.tag === TAG_SEQUENCE ? readDer(outer.contents, 0) : undefined;
  if (outer === undefined || algorithm === undefined || outer.end !== spki.length) {
    return false;
  }
  return outer.contents.subarray(0, algorithm.end).equals(EC_ALGORITHM_IDENTIFIERS[spec]);
}

/** A DER SubjectPublicKeyInfo of the given spec (RSA, ECC or Ed25519). */
export function publicKeyObject(spec: AsymmetricKeySpec, spki: Uint8Array): KeyObject {
  // Keyed by the buffer object: the key store's cached SPKI hits; a caller's fresh buffer (a peer
  // key, Verify with a new key) misses and is checked in full.
  const cached = publicKeyObjects.get(spki);
  if (cached !== undefined && cached.spec === spec) return cached.key;
  const key = checkedPublicKeyObject(spec, spki);
  publicKeyObjects.set(spki, { spec, key });
  return key;
}

function checkedPublicKeyObject(spec: AsymmetricKeySpec, spki: Uint8Array): KeyObject {
  const bytes = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  if (isEccKeySpec(spec) && !namesItsCurve(spec, bytes)) {
    throw new InvalidPublicKeyError();
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: bytes, format: 'der', type: 'spki' });
  } catch {
    throw new InvalidPublicKeyError();
  }
  // Only the one DER encoding OpenSSL itself would write: no BER length forms, undefined tags or
  // bytes smuggled into the BIT STRING (Wycheproof "InvalidAsn"), which OpenSSL's decoder lets
  // through, and for EC the uncompressed point form only (RFC 5480 §2.2: compressed MAY be
  // supported). One key, one encoding.
  if (!matchesSpec(spec, key) || !key.export({ type: 'spki', format: 'der' }).equals(bytes)) {
    throw new InvalidPublicKeyError();
  }
  return key;
}

/** The uncompressed SEC1 point (04 || x || y) of an EC public key, for @noble/curves. */
export function ecPublicPoint(key: KeyObject): Buffer {
  const { x, y } = key.export({ format: 'jwk' });
  if (x === undefined || y === undefined) {
    throw new InvalidPublicKeyError();
  }
  return Buffer.concat([Buffer.from([0x04]), Buffer.from(x, 'base64url'), Buffer.from(y, 'base64url')]);
}

const EC_SCALAR_LENGTH: Readonly<Record<EccKeySpec, number>> = {
  ECC_NIST_P256: 32,
  ECC_NIST_P384: 48,
  ECC_NIST_P521: 66,
  ECC_SECG_P256K1: 32,
};

/**
 * The private scalar of an EC key, left-padded to the curve's scalar length, for @noble/curves.
 * Read from OpenSSL's own SEC1 re-export (RFC 5915: SEQUENCE { INTEGER 1, OCTET STRING d, … }),
 * not from a JWK, so that the secret never becomes an unwipeable JavaScript string. The caller
 * must zero the result.
 */
export function ecPrivateScalar(spec: EccKeySpec, key: KeyObject): Uint8Array {
  const sec1 = key.export({ format: 'der', type: 'sec1' });
  try {
    const outer = readDer(sec1, 0);
    const version = outer?.tag === TAG_SEQUENCE ? readDer(outer.contents, 0) : undefined;
    const scalar = version?.tag === TAG_INTEGER ? readDer(outer!.contents, version.end) : undefined;
    const length = EC_SCALAR_LENGTH[spec];
    if (scalar?.tag !== TAG_OCTET_STRING || scalar.contents.length > length) {
      throw new CryptoError('invalid private key');
    }
    const padded = new Uint8Array(length);
    padded.set(scalar.contents, length - scalar.contents.length);
    return padded;
  } finally {
    sec1.fill(0);
  }
}

// RFC 8410 §7: an Ed25519 PrivateKeyInfo is this fixed prefix and then the 32-byte seed.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The 32-byte RFC 8032 private key (seed) of an Ed25519 key. The caller must zero the result. */
export function ed25519Seed(key: KeyObject): Uint8Array {
  const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
  try {
    if (pkcs8.length !== ED25519_PKCS8_PREFIX.length + 32 || !pkcs8.subarray(0, ED25519_PKCS8_PREFIX.length).equals(ED25519_PKCS8_PREFIX)) {
      throw new CryptoError('invalid private key');
    }
    return new Uint8Array(pkcs8.subarray(ED25519_PKCS8_PREFIX.length));
  } finally {
    pkcs8.fill(0);
  }
}

/** The 32-byte raw Ed25519 public key. */
export function ed25519PublicKey(key: KeyObject): Buffer {
  const { x } = key.export({ format: 'jwk' });
  if (x === undefined) {
    throw new InvalidPublicKeyError();
  }
  return Buffer.from(x, 'base64url');
}

/** The RSA_* spec whose modulus length `key` has, if it is an rsaEncryption key of a KMS size. */
function rsaKeySpecOf(key: KeyObject): RsaKeySpec | undefined {
  if (key.asymmetricKeyType !== 'rsa') {
    return undefined;
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  return (Object.keys(RSA_MODULUS_BITS) as RsaKeySpec[]).find((spec) => RSA_MODULUS_BITS[spec] === bits);
}

/** A DER SPKI RSA public key of any KMS size (2048, 3072 or 4096 bits), with its spec. */
export function rsaPublicKeyObject(spki: Uint8Array): { key: KeyObject; spec: RsaKeySpec } {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength), format: 'der', type: 'spki' });
  } catch {
    throw new InvalidPublicKeyError();
  }
  const spec = rsaKeySpecOf(key);
  if (spec === undefined) {
    throw new InvalidPublicKeyError();
  }
  return { key, spec };
}

/** A PKCS#8 DER RSA private key of any KMS size, with its spec. */
export function rsaPrivateKeyObject(privateKey: SecretBytes): { key: KeyObject; spec: RsaKeySpec } {
  const bytes = privateKey.exposeSecretBytes(); // throws once the secret has been destroyed
  const cached = privateKeyObjects.get(privateKey);
  if (cached !== undefined && isRsaKeySpec(cached.spec)) return { key: cached.key, spec: cached.spec };
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' });
  } catch {
    throw new CryptoError('invalid private key');
  }
  const spec = rsaKeySpecOf(key);
  if (spec === undefined) {
    throw new CryptoError('invalid private key');
  }
  privateKeyObjects.set(privateKey, { spec, key });
  return { key, spec };
}
