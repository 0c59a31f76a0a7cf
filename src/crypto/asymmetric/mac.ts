import { createHmac } from 'node:crypto';
import { CryptoError } from '../errors.ts';
import type { SecretBytes } from '../secret-bytes.ts';
import { constantTimeEqual } from '../secret-bytes.ts';
import { lookup, type HashName, type MacAlgorithm } from './key-specs.ts';

/**
 * HMAC (RFC 2104, FIPS 198-1) for GenerateMac and VerifyMac. Any key length is accepted: the key
 * spec fixes the length of keys Strongroom generates, and HMAC itself is defined for every length
 * (longer keys are hashed first). A MAC is always the full digest; VerifyMac in AWS KMS does not
 * accept truncated MACs, and neither does verifyMac.
 */

const MAC_HASHES: Readonly<Record<MacAlgorithm, HashName>> = {
  HMAC_SHA_224: 'sha224',
  HMAC_SHA_256: 'sha256',
  HMAC_SHA_384: 'sha384',
  HMAC_SHA_512: 'sha512',
};

function macHash(algorithm: MacAlgorithm): HashName {
  const hash = lookup(MAC_HASHES, algorithm);
  if (hash === undefined) {
    throw new CryptoError('unsupported mac algorithm');
  }
  return hash;
}

export function generateMac(args: { algorithm: MacAlgorithm; key: SecretBytes; message: Uint8Array }): Buffer {
  const { algorithm, key, message } = args;
  return createHmac(macHash(algorithm), key.exposeSecretBytes()).update(message).digest();
}

/** Recomputes the MAC and compares in constant time; only the (public) lengths may differ early. */
export function verifyMac(args: { algorithm: MacAlgorithm; key: SecretBytes; message: Uint8Array; mac: Uint8Array }): boolean {
  const { algorithm, key, message, mac } = args;
  const expected = generateMac({ algorithm, key, message });
  try {
    return constantTimeEqual(expected, mac);
  } finally {
    expected.fill(0);
  }
}
