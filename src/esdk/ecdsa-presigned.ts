import { createHash, createSign, type Hash, type KeyObject, type Sign } from 'node:crypto';
import { EsdkError } from './errors.ts';
import type { PresignMaterial } from './signing-key-pool.ts';

/**
 * ECDSA signing with a precomputed nonce (FIPS 186-5 §6.4.1, split into its message-independent
 * and message-dependent halves). signing-key-pool.ts computed k, r = (k·G).x mod n and k⁻¹; here
 * s = k⁻¹(e + r·d) mod n. The hash length equals the order length for both suites (SHA-256 with
 * P-256, SHA-384 with P-384), so e is the whole digest.
 *
 * Each nonce is used at most once: `presigned` maps a signing key to its material and the entry is
 * deleted on use; a key without an entry (or a second signature with it, e.g. materials reused by
 * a caching CMM) is signed by OpenSSL. BigInt arithmetic is not constant-time; the key it handles
 * signs exactly one message and is discarded, so there is no series of signatures under one key
 * for a timing observer to combine (see docs/esdk.md).
 */
const ORDER = {
  'P-256': 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  'P-384': 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
} as const;

const presigned = new WeakMap<KeyObject, PresignMaterial>();

export function registerPresigned(material: PresignMaterial): void {
  presigned.set(material.privateKey, material);
}

/** A running signature over message bytes fed in order; `sign()` returns the DER signature. */
export class MessageSigner {
  #material: PresignMaterial | undefined;
  readonly #hash: Hash | undefined;
  readonly #openssl: Sign | undefined;
  readonly #key: KeyObject;

  constructor(algorithm: 'sha256' | 'sha384', key: KeyObject) {
    this.#key = key;
    this.#material = presigned.get(key);
    if (this.#material) {
      presigned.delete(key); // one signature per nonce, whatever happens next
      this.#hash = createHash(algorithm);
    } else {
      this.#openssl = createSign(algorithm);
    }
  }

  update(bytes: Uint8Array): void {
    if (this.#hash) this.#hash.update(bytes);
    else (this.#openssl as Sign).update(bytes);
  }

  /** Whether signDigest() can be used: the hash may then be computed elsewhere (another thread). */
  get signsDigests(): boolean {
    return this.#material !== undefined;
  }

  sign(): Buffer {
    if (!this.#hash) return (this.#openssl as Sign).sign({ key: this.#key, dsaEncoding: 'der' });
    return this.signDigest((this.#hash as Hash).digest());
  }

  /** The signature for a digest of the message computed elsewhere (only when signsDigests). */
  signDigest(digest: Uint8Array): Buffer {
    const material = this.#material;
    if (!material) throw new EsdkError('KeyringFailure', 'this signer has no nonce for a digest (none, or already used)');
    this.#material = undefined; // a second signature with this nonce would give away the key
    const n = ORDER[material.curve];
    const e = BigInt(`0x${Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex')}`);
    const s = (material.kInverse * ((e + material.r * material.d) % n)) % n;
    // s = 0 has probability about 2^-256; the signature would be invalid, so refuse rather than emit it.
    if (s === 0n) throw new EsdkError('KeyringFailure', 'signature generation failed; retry');
    return derSignature(material.r, s);
  }
}

function integer(value: bigint): Buffer {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const bytes = Buffer.from(hex, 'hex');
  return bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
}

/** DER ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s } (lengths < 128 for both curves). */
function derSignature(r: bigint, s: bigint): Buffer {
  const rBytes = integer(r);
  const sBytes = integer(s);
  const body = 4 + rBytes.length + sBytes.length;
  return Buffer.concat([Buffer.from([0x30, body, 0x02, rBytes.length]), rBytes, Buffer.from([0x02, sBytes.length]), sBytes]);
}
