import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { CryptoError } from '../errors.ts';
import type { SecretBytes } from '../secret-bytes.ts';
import { TAG_BIT_STRING, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, derTlv } from './der.ts';
import type { MlDsaKeySpec } from './key-specs.ts';

/**
 * ML-DSA (FIPS 204) key encodings, after RFC 9881 (draft-ietf-lamps-dilithium-certificates):
 *
 *   SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { OID }, BIT STRING (0 unused bits) || pk }
 *     OIDs id-ml-dsa-44/65/87 = 2.16.840.1.101.3.4.3.17/18/19, parameters absent (§2).
 *   PrivateKeyInfo ::= SEQUENCE { INTEGER 0, SEQUENCE { OID }, OCTET STRING { [0] IMPLICIT seed } }
 *     the "seed" choice of ML-DSA-PrivateKey (§6), 32 bytes.
 *
 * Strongroom keeps only the 32-byte seed ξ of ML-DSA.KeyGen_internal (FIPS 204 Algorithm 6) and
 * expands it for each operation: the expanded secret key is derived data, 2.5 to 4.9 KB, and
 * is wiped after use.
 */

export const ML_DSA_SEED_LENGTH = 32;
export const ML_DSA_MU_LENGTH = 64;

type MlDsa = typeof ml_dsa44;

interface MlDsaParameters {
  readonly algorithm: MlDsa;
  readonly oidLastArc: number;
  readonly publicKeyLength: number;
}

const PARAMETERS: Readonly<Record<MlDsaKeySpec, MlDsaParameters>> = {
  ML_DSA_44: { algorithm: ml_dsa44, oidLastArc: 0x11, publicKeyLength: 1312 },
  ML_DSA_65: { algorithm: ml_dsa65, oidLastArc: 0x12, publicKeyLength: 1952 },
  ML_DSA_87: { algorithm: ml_dsa87, oidLastArc: 0x13, publicKeyLength: 2592 },
};

// 2.16.840.1.101.3.4.3 (NIST sigAlgs arc), without the last arc.
const SIG_ALGS_ARC = Buffer.from('6086480165030403', 'hex');

function algorithmIdentifier(spec: MlDsaKeySpec): Buffer {
  const oid = Buffer.concat([SIG_ALGS_ARC, Buffer.from([PARAMETERS[spec].oidLastArc])]);
  return derTlv(TAG_SEQUENCE, derTlv(TAG_OID, oid));
}

export function mlDsa(spec: MlDsaKeySpec): MlDsa {
  return PARAMETERS[spec].algorithm;
}

export function encodeMlDsaPublicKey(spec: MlDsaKeySpec, publicKey: Uint8Array): Buffer {
  return derTlv(TAG_SEQUENCE, algorithmIdentifier(spec), derTlv(TAG_BIT_STRING, Buffer.from([0]), publicKey));
}

/**
 * The raw public key inside an ML-DSA SPKI, or undefined unless `spki` is exactly the DER encoding
 * for this parameter set: the only valid encoding is one fixed prefix followed by a key of one
 * fixed length, so comparing against that prefix rejects every other shape (wrong OID, parameters
 * present, unused bits, wrong key length, trailing bytes).
 */
export function decodeMlDsaPublicKey(spec: MlDsaKeySpec, spki: Uint8Array): Buffer | undefined {
  const { publicKeyLength } = PARAMETERS[spec];
  const expectedPrefix = encodeMlDsaPublicKey(spec, Buffer.alloc(publicKeyLength)).subarray(0, -publicKeyLength);
  const bytes = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  if (bytes.length !== expectedPrefix.length + publicKeyLength || !bytes.subarray(0, expectedPrefix.length).equals(expectedPrefix)) {
    return undefined;
  }
  return bytes.subarray(expectedPrefix.length);
}

/** The seed-only PrivateKeyInfo of RFC 9881 §6. The caller owns (and should zero) the result. */
export function encodeMlDsaPrivateKey(spec: MlDsaKeySpec, seed: SecretBytes): Buffer {
  const seedChoice = derTlv(0x80, seed.exposeSecretBytes()); // [0] IMPLICIT OCTET STRING
  const encoded = derTlv(TAG_SEQUENCE, Buffer.from([0x02, 0x01, 0x00]), algorithmIdentifier(spec), derTlv(TAG_OCTET_STRING, seedChoice));
  seedChoice.fill(0);
  return encoded;
}

/**
 * Key pairs expanded from a seed (FIPS 204 Algorithm 6: ~1-17 ms of pure JavaScript), remembered
 * per seed object like keys.ts's KeyObjects: the key store keeps one SecretBytes per key version,
 * so Sign does not expand again each time. When the key store forgets the version (zeroing the
 * seed) the entry becomes garbage; a zeroed seed is refused before the cache is consulted.
 */
const expandedKeys = new WeakMap<SecretBytes, { spec: MlDsaKeySpec; keys: { secretKey: Uint8Array; publicKey: Uint8Array } }>();

/** Runs `use` with the key pair expanded from `seed`. `use` must not modify or keep the keys. */
export function withMlDsaKeyPair<T>(
  spec: MlDsaKeySpec,
  seed: SecretBytes,
  use: (keys: { secretKey: Uint8Array; publicKey: Uint8Array }) => T,
): T {
  if (seed.length !== ML_DSA_SEED_LENGTH) {
    throw new CryptoError('invalid private key');
  }
  const seedBytes = seed.exposeSecretBytes(); // throws once the seed has been destroyed
  let entry = expandedKeys.get(seed);
  if (entry === undefined || entry.spec !== spec) {
    entry = { spec, keys: mlDsa(spec).keygen(seedBytes) };
    expandedKeys.set(seed, entry);
  }
  return use(entry.keys);
}
