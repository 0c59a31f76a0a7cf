/**
 * One error type for the Encryption SDK, with a stable `code` a caller can branch on. Messages are
 * fixed strings or name structural facts (a count, a suite id, a field name); they never carry
 * plaintext, key bytes or encryption-context values.
 */
export type EsdkErrorCode =
  | 'MalformedMessage'
  | 'AuthenticationFailed'
  | 'CommitmentMismatch'
  | 'SignatureInvalid'
  | 'NoDecryptableKey'
  | 'PolicyViolation'
  | 'TooManyEncryptedDataKeys'
  | 'BodyTooLarge'
  | 'ContextMismatch'
  | 'InvalidArgument'
  | 'UnsupportedSuite'
  | 'KeyringFailure';

export class EsdkError extends Error {
  readonly code: EsdkErrorCode;
  constructor(code: EsdkErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EsdkError';
    this.code = code;
  }
}

export function malformed(what: string): EsdkError {
  return new EsdkError('MalformedMessage', `malformed message: ${what}`);
}
