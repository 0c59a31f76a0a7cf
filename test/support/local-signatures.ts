/**
 * Signatures checked outside Strongroom, from the public key GetPublicKey returns, the way a KMS
 * user verifies offline: node:crypto (OpenSSL) for RSA, ECDSA and Ed25519; @noble/curves for
 * Ed25519ph and @noble/post-quantum for ML-DSA, which node 20 lacks.
 */
import { constants, createHash, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { ed25519ph } from '@noble/curves/ed25519.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { shake256 } from '@noble/hashes/sha3.js';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';

export type Hash = 'sha256' | 'sha384' | 'sha512';

/** The hash each signing algorithm names (ML-DSA's SHAKE256 is internal to the scheme). */
export function hashOf(algorithm: string): Hash {
  if (algorithm.endsWith('SHA_256')) return 'sha256';
  if (algorithm.endsWith('SHA_384')) return 'sha384';
  return 'sha512';
}

export const digestOf = (algorithm: string, message: Uint8Array): Buffer => createHash(hashOf(algorithm)).update(message).digest();

export const DIGEST_LENGTH: Record<Hash, number> = { sha256: 32, sha384: 48, sha512: 64 };

/** FIPS 204 parameter sets: the scheme and its raw public key length. */
export const ML_DSA = {
  ML_DSA_44: { scheme: ml_dsa44, publicKeyLength: 1312, oidLastArc: 0x11 },
  ML_DSA_65: { scheme: ml_dsa65, publicKeyLength: 1952, oidLastArc: 0x12 },
  ML_DSA_87: { scheme: ml_dsa87, publicKeyLength: 2592, oidLastArc: 0x13 },
} as const;
export type MlDsaSpec = keyof typeof ML_DSA;
export const isMlDsa = (spec: string): spec is MlDsaSpec => spec in ML_DSA;

/**
 * The raw ML-DSA public key inside an RFC 9881 SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID
 * id-ml-dsa-NN }, BIT STRING 00 || key }, parameters absent. Fails unless `spki` has exactly that shape.
 */
export function mlDsaRawPublicKey(spec: MlDsaSpec, spki: Uint8Array): Uint8Array {
  const { publicKeyLength, oidLastArc } = ML_DSA[spec];
  const bitString = publicKeyLength + 1;
  const algorithm = Buffer.from([0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, oidLastArc]);
  const body = algorithm.length + 4 + bitString; // AlgorithmIdentifier, BIT STRING header, its contents
  const prefix = Buffer.concat([
    Buffer.from([0x30, 0x82, body >> 8, body & 0xff]),
    algorithm,
    Buffer.from([0x03, 0x82, bitString >> 8, bitString & 0xff, 0x00]),
  ]);
  const bytes = Buffer.from(spki);
  if (bytes.length !== prefix.length + publicKeyLength || !bytes.subarray(0, prefix.length).equals(prefix)) {
    throw new Error(`not an RFC 9881 ${spec} SubjectPublicKeyInfo`);
  }
  return bytes.subarray(prefix.length);
}

/** The 32-byte Ed25519 public key A inside its SubjectPublicKeyInfo. */
export function ed25519RawPublicKey(spki: Uint8Array): Uint8Array {
  const { x } = spkiKey(spki).export({ format: 'jwk' });
  return Buffer.from(x as string, 'base64url');
}

export const spkiKey = (spki: Uint8Array): KeyObject => createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });

/**
 * FIPS 204 Algorithm 7 line 6: μ = SHAKE256(tr || M', 64) with tr = SHAKE256(pk, 64) and
 * M' = 0 || |ctx| || ctx || M for pure ML-DSA with the empty context, which is what KMS signs.
 */
export function externalMu(spec: MlDsaSpec, spki: Uint8Array, message: Uint8Array): Uint8Array {
  const tr = shake256(mlDsaRawPublicKey(spec, spki), { dkLen: 64 });
  return shake256(Buffer.concat([tr, Buffer.from([0, 0]), message]), { dkLen: 64 });
}

/**
 * Whether `signature` is a valid `algorithm` signature of `message` (the original message, also
 * when KMS was given its digest or μ) under the public key `spki`, checked without Strongroom.
 * RSASSA-PSS is checked with a salt exactly as long as the digest (AWS's parameter; OpenSSL checks
 * the length exactly when told one) unless `pssSaltLength` says otherwise.
 */
export function verifyLocally(args: {
  spec: string;
  algorithm: string;
  spki: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
  pssSaltLength?: number;
}): boolean {
  const { spec, algorithm, spki, message, signature } = args;
  if (isMlDsa(spec)) return ML_DSA[spec].scheme.verify(signature, message, mlDsaRawPublicKey(spec, spki));
  if (algorithm === 'ED25519_PH_SHA_512') {
    // KMS's DIGEST input is SHA-512(M); Ed25519ph (RFC 8032 §5.1) then hashes that input again.
    return ed25519ph.verify(signature, digestOf(algorithm, message), ed25519RawPublicKey(spki), { zip215: false });
  }
  const key = spkiKey(spki);
  if (algorithm === 'ED25519_SHA_512') return nodeVerify(null, message, key, signature);
  const hash = hashOf(algorithm);
  if (algorithm.startsWith('RSASSA_PSS')) {
    const saltLength = args.pssSaltLength ?? DIGEST_LENGTH[hash];
    return nodeVerify(hash, message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, signature);
  }
  if (algorithm.startsWith('RSASSA_PKCS1')) {
    return nodeVerify(hash, message, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
  }
  return nodeVerify(hash, message, { key, dsaEncoding: 'der' }, signature);
}

/** The order n of each ECDSA curve's base point. */
const CURVE_ORDER: Record<string, bigint> = {
  ECC_NIST_P256: p256.Point.Fn.ORDER,
  ECC_NIST_P384: p384.Point.Fn.ORDER,
  ECC_NIST_P521: p521.Point.Fn.ORDER,
  ECC_SECG_P256K1: secp256k1.Point.Fn.ORDER,
};

function derLength(length: number): Buffer {
  return length < 0x80 ? Buffer.from([length]) : Buffer.from([0x81, length]);
}

function derInteger(value: bigint): Buffer {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (bytes[0] & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02]), derLength(bytes.length), bytes]);
}

/**
 * The other valid ECDSA signature of the same message: (r, n − s) for (r, s). Made here, from a
 * KMS signature, with no private key — a signature no KMS call produced.
 */
export function ecdsaWithNegatedS(spec: string, der: Uint8Array): Buffer {
  const n = CURVE_ORDER[spec];
  let offset = 1;
  const readLength = () => {
    const first = der[offset++];
    if (first < 0x80) return first;
    let length = 0;
    for (let i = 0; i < (first & 0x7f); i++) length = (length << 8) | der[offset++];
    return length;
  };
  readLength();
  const readInteger = () => {
    if (der[offset++] !== 0x02) throw new Error('not a DER ECDSA signature');
    const length = readLength();
    const value = BigInt(`0x${Buffer.from(der.subarray(offset, offset + length)).toString('hex')}`);
    offset += length;
    return value;
  };
  const r = readInteger();
  const s = readInteger();
  const body = Buffer.concat([derInteger(r), derInteger(n - s)]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}
