/**
 * The one error type of the crypto layer.
 *
 * Every call site passes a fixed, literal message ("decryption failed", "invalid key length", …).
 * A message never carries a value from the call: no key bytes, plaintext, associated data or
 * encryption-context values, and no lengths or offsets that would turn a failed decrypt into an
 * oracle. Decrypt, unseal and unwrap failures are deliberately one vague message each, whatever
 * went wrong (wrong key, altered header, altered tag, wrong context), and the underlying node:crypto
 * error is not attached as `cause`.
 *
 * The service layer maps a CryptoError to its catalogue entry (InvalidCiphertextException for a
 * decrypt) by where it was raised, never by its message text.
 */
export class CryptoError extends Error {
  override readonly name = 'CryptoError';

  constructor(message: string) {
    super(message);
  }
}

/**
 * A public key given from outside (a peer's key for ECDH, a key to verify with) that is not a
 * well-formed key of the expected spec. Its own type so a caller can tell the caller's bad input
 * from a fault in stored material.
 */
export class InvalidPublicKeyError extends CryptoError {
  constructor() {
    super('invalid public key');
  }
}
