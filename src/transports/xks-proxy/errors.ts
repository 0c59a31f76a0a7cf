/**
 * The XKS proxy's error catalogue (XKS Proxy API spec v1.0.3, "Error codes"; PROTOCOL-NOTES §2.4).
 * One entry per errorName with its HTTP status. Raise by name, map by name. The wire form is
 * `{"errorName": …, "errorMessage": …}`; messages are short printable ASCII (<512 characters) and
 * never carry a request value that could be secret: plaintext, AAD, key bytes, credentials.
 */
export const XKS_ERROR_STATUS = {
  ValidationException: 400,
  InvalidStateException: 400,
  InvalidCiphertextException: 400,
  InvalidKeyUsageException: 400,
  AuthenticationFailedException: 401,
  AccessDeniedException: 403,
  KeyNotFoundException: 404,
  InvalidUriPathException: 404,
  ThrottlingException: 429,
  InternalException: 500,
  UnsupportedOperationException: 501,
  DependencyTimeoutException: 503,
} as const;

export type XksErrorName = keyof typeof XKS_ERROR_STATUS;

const MAX_MESSAGE_CHARS = 511;

export class XksError extends Error {
  readonly status: number;

  constructor(
    readonly errorName: XksErrorName,
    message: string,
  ) {
    super(printableAscii(message));
    this.name = errorName;
    this.status = XKS_ERROR_STATUS[errorName];
  }

  toWire(): { errorName: string; errorMessage: string } {
    return { errorName: this.errorName, errorMessage: this.message };
  }
}

/** The spec's message rule: printable ASCII only, under 512 characters. */
export function printableAscii(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > MAX_MESSAGE_CHARS ? clean.slice(0, MAX_MESSAGE_CHARS) : clean;
}

export const validation = (message: string): XksError => new XksError('ValidationException', message);

/**
 * Every failure to authenticate a ciphertext is this one error with one fixed message: the
 * caller learns nothing about which of IV, tag, AAD, metadata or ciphertext was wrong.
 */
export const invalidCiphertext = (): XksError =>
  new XksError('InvalidCiphertextException', 'The ciphertext, its authentication tag, IV, AAD or metadata do not verify under this key');
