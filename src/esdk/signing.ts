import { createECDH, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { registerPresigned } from './ecdsa-presigned.ts';
import { malformed } from './errors.ts';
import { takePresignMaterial } from './signing-key-pool.ts';
import type { AlgorithmSuite } from './types.ts';

/**
 * ECDSA keys of the signing suites (framework/algorithm-suites.md, "signature algorithm"): the
 * public key travels in the encryption context as a base64 compressed SEC1 point.
 */
const NODE_CURVE = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' } as const;
const COORDINATE_LENGTH = { 'P-256': 32, 'P-384': 48 } as const;

type Curve = keyof typeof NODE_CURVE;

/**
 * A fresh key pair for one message: from the background pool when one is ready (its precomputed
 * nonce is registered for MessageSigner), else generated here.
 */
export function generateSigningKey(curve: Curve): { privateKey: KeyObject; publicKeyBase64: string } {
  const material = takePresignMaterial(curve);
  if (material) {
    registerPresigned(material);
    return { privateKey: material.privateKey, publicKeyBase64: material.publicKeyBase64 };
  }
  return makeSigningKey(curve);
}

/** A fresh key pair made on this thread. */
export function makeSigningKey(curve: Curve): { privateKey: KeyObject; publicKeyBase64: string } {
  // From ECDH rather than generateKeyPairSync + a JWK export, which can deadlock on Node 20
  // (signing-key-pool.ts says how).
  const size = COORDINATE_LENGTH[curve];
  const ecdh = createECDH(NODE_CURVE[curve]);
  const point = ecdh.generateKeys();
  const d = ecdh.getPrivateKey();
  const privateKey = createPrivateKey({
    format: 'jwk',
    key: {
      kty: 'EC',
      crv: curve,
      d: Buffer.concat([Buffer.alloc(size - d.length), d]).toString('base64url'),
      x: point.subarray(1, 1 + size).toString('base64url'),
      y: point.subarray(1 + size).toString('base64url'),
    },
  });
  d.fill(0);
  return { privateKey, publicKeyBase64: ecdh.getPublicKey('base64', 'compressed') };
}

/**
 * SubjectPublicKeyInfo DER up to the point, for a compressed point (RFC 5480): SEQUENCE { algorithm
 * id-ecPublicKey + curve OID, BIT STRING 00 ‖ point }. Importing this lets OpenSSL decompress the
 * point (failing when it is not on the curve), which costs far less than a JWK import.
 */
const COMPRESSED_SPKI_PREFIX = {
  'P-256': Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'),
  'P-384': Buffer.from('3046301006072a8648ce3d020106052b81040022033200', 'hex'),
} as const;

/** The verification key from the context value; a value that is not a point on the curve is malformed. */
export function verificationKeyFromContext(suite: AlgorithmSuite, value: string): KeyObject {
  const curve = (suite.signature as NonNullable<AlgorithmSuite['signature']>).curve;
  const compressed = Buffer.from(value, 'base64');
  if (compressed.length !== COORDINATE_LENGTH[curve] + 1 || (compressed[0] !== 2 && compressed[0] !== 3) || compressed.toString('base64') !== value) {
    throw malformed('signature public key is not a compressed point');
  }
  try {
    return createPublicKey({ key: Buffer.concat([COMPRESSED_SPKI_PREFIX[curve], compressed]), format: 'der', type: 'spki' });
  } catch {
    throw malformed('signature public key is not a point on the curve');
  }
}
