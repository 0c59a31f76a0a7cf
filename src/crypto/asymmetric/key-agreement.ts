import { diffieHellman } from 'node:crypto';
import { CryptoError } from '../errors.ts';
import { SecretBytes } from '../secret-bytes.ts';
import { privateKeyObject, publicKeyObject } from './keys.ts';
import type { EccKeySpec } from './key-specs.ts';

/**
 * ECDH (NIST SP 800-56A r3 §5.7.1.2, cofactor 1 on every supported curve): the x-coordinate of
 * d·Q, as DeriveSharedSecret returns it (no KDF applied).
 *
 * The peer key is a DER SubjectPublicKeyInfo. It must name the key's own curve (an id-ecPublicKey
 * with the named-curve OID; explicit curve parameters are refused even when they describe the
 * same curve), and OpenSSL checks that the point is on the curve when it decodes it — the defence
 * against invalid-curve attacks, which would otherwise leak the private key a few bits at a time.
 */
export function ecdhSharedSecret(args: { spec: EccKeySpec; privateKey: SecretBytes; peerPublicKey: Uint8Array }): SecretBytes {
  const { spec, privateKey, peerPublicKey } = args;
  const ownKey = privateKeyObject(spec, privateKey);
  const peerKey = publicKeyObject(spec, peerPublicKey);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: ownKey, publicKey: peerKey });
  } catch {
    throw new CryptoError('key agreement failed');
  }
  try {
    return SecretBytes.from(shared);
  } finally {
    shared.fill(0);
  }
}
