/**
 * The two byte-exact constructions of the XKS Proxy API spec, shared by the proxy
 * (transports/xks-proxy) and the KMS side that checks its answers (keystores/xks) (v1.0.3, Encrypt; PROTOCOL-NOTES §2.3):
 * the AAD the proxy feeds to AES-GCM, and the ciphertextDataIntegrityValue it returns.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** additionalAuthenticatedData is at most 8192 bytes, so its length always fits the uint16 prefix. */
export const MAX_AAD_BYTES = 8192;
/** ciphertextMetadata is at most 20 bytes, so its length fits the uint8 prefix. */
export const MAX_CIPHERTEXT_METADATA_BYTES = 20;

/**
 * `uint16_be(len(AAD)) || AAD || uint8(len(ciphertextMetadata)) || ciphertextMetadata`, absent
 * fields counting as empty. The lengths make the split unambiguous: without them, AAD "ab" with
 * metadata "c" would authenticate the same bytes as AAD "a" with metadata "bc", and KMS could be
 * handed a ciphertext whose metadata was shifted into its AAD.
 */
export function gcmAad(additionalAuthenticatedData: Buffer, ciphertextMetadata: Buffer): Buffer {
  if (additionalAuthenticatedData.length > MAX_AAD_BYTES) throw new RangeError('additionalAuthenticatedData is too long');
  if (ciphertextMetadata.length > MAX_CIPHERTEXT_METADATA_BYTES) throw new RangeError('ciphertextMetadata is too long');
  const out = Buffer.allocUnsafe(3 + additionalAuthenticatedData.length + ciphertextMetadata.length);
  out.writeUInt16BE(additionalAuthenticatedData.length, 0);
  additionalAuthenticatedData.copy(out, 2);
  out.writeUInt8(ciphertextMetadata.length, 2 + additionalAuthenticatedData.length);
  ciphertextMetadata.copy(out, 3 + additionalAuthenticatedData.length);
  return out;
}

export interface SealedParts {
  readonly additionalAuthenticatedData: Buffer;
  readonly ciphertextMetadata: Buffer;
  readonly initializationVector: Buffer;
  readonly ciphertext: Buffer;
  readonly authenticationTag: Buffer;
}

/**
 * SHA-256 over `AAD || ciphertextMetadata || IV || ciphertext || tag`, plain concatenation with no
 * lengths, as the spec defines it (its Appendix C is the test vector). KMS recomputes it from
 * what it received and so detects corruption between the HSM and KMS.
 */
export function ciphertextDataIntegrityValue(parts: SealedParts): Buffer {
  return createHash('sha256')
    .update(parts.additionalAuthenticatedData)
    .update(parts.ciphertextMetadata)
    .update(parts.initializationVector)
    .update(parts.ciphertext)
    .update(parts.authenticationTag)
    .digest();
}

/** Constant time; the lengths compared are public. */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
