/**
 * Errors of the PKCS#11 key store. A Pkcs11Error names what went wrong as a stable `code` (what
 * callers branch on) and, when a PKCS#11 function failed, that function and its CKR_ name. The
 * message is built only from those: never from arguments, so a PIN, key bytes or plaintext can
 * never appear in it, and the native error is not attached as `cause`.
 */

export type Pkcs11ErrorCode =
  | 'MODULE_LOAD_FAILED'
  | 'TOKEN_NOT_FOUND'
  | 'TOKEN_AMBIGUOUS'
  | 'TOKEN_NOT_PRESENT'
  | 'TOKEN_NOT_INITIALIZED'
  | 'PIN_INCORRECT'
  | 'PIN_LOCKED'
  | 'PIN_EXPIRED'
  | 'PIN_INVALID'
  | 'ALREADY_LOGGED_IN'
  | 'NOT_LOGGED_IN'
  | 'DEVICE_REMOVED'
  | 'DEVICE_ERROR'
  | 'SESSION_INVALID'
  | 'SESSION_LIMIT'
  | 'POOL_TIMEOUT'
  | 'CLOSED'
  | 'KEY_NOT_FOUND'
  | 'KEY_AMBIGUOUS'
  | 'KEY_ATTRIBUTES_WRONG'
  | 'REFERENCE_INVALID'
  | 'MECHANISM_INVALID'
  | 'TEMPLATE_REJECTED'
  | 'NOT_SUPPORTED'
  | 'OBJECT_EXISTS'
  | 'CLUSTER_KEY_EXISTS'
  | 'CLUSTER_KEY_MISSING'
  | 'CEREMONY_FAILED'
  | 'MEMBER_TIMEOUT'
  | 'CONNECTION_FAILED'
  | 'PROTOCOL_ERROR'
  | 'FAILED';

export class Pkcs11Error extends Error {
  override readonly name: string = 'Pkcs11Error';
  readonly code: Pkcs11ErrorCode;
  /** The PKCS#11 function that failed, when one did (`C_Login`, …). */
  readonly function: string | undefined;
  /** Its return value's name (`CKR_PIN_INCORRECT`, …), when one did. */
  readonly returnValue: string | undefined;

  constructor(code: Pkcs11ErrorCode, message: string, details: { function?: string; returnValue?: string } = {}) {
    super(message);
    this.code = code;
    this.function = details.function;
    this.returnValue = details.returnValue;
  }
}

/** A KeyStore method this store does not implement (yet): asymmetric, HMAC, ECDH keys. */
export class Pkcs11NotSupportedError extends Pkcs11Error {
  override readonly name = 'Pkcs11NotSupportedError';

  constructor(operation: string) {
    super('NOT_SUPPORTED', `${operation} is not supported by the PKCS#11 key store yet (SYMMETRIC_DEFAULT keys only)`);
  }
}

// CK_RV values (PKCS#11 v2.40 §5.1; pkcs11t.h). Listed here rather than read from pkcs11js,
// which lacks the v2.40 additions (CKR_ACTION_PROHIBITED arrives as "CKR_VENDOR_DEFINED").
const CKR: Record<number, string> = {
  0x00: 'CKR_OK',
  0x01: 'CKR_CANCEL',
  0x02: 'CKR_HOST_MEMORY',
  0x03: 'CKR_SLOT_ID_INVALID',
  0x05: 'CKR_GENERAL_ERROR',
  0x06: 'CKR_FUNCTION_FAILED',
  0x07: 'CKR_ARGUMENTS_BAD',
  0x10: 'CKR_ATTRIBUTE_READ_ONLY',
  0x11: 'CKR_ATTRIBUTE_SENSITIVE',
  0x12: 'CKR_ATTRIBUTE_TYPE_INVALID',
  0x13: 'CKR_ATTRIBUTE_VALUE_INVALID',
  0x1b: 'CKR_ACTION_PROHIBITED',
  0x20: 'CKR_DATA_INVALID',
  0x21: 'CKR_DATA_LEN_RANGE',
  0x30: 'CKR_DEVICE_ERROR',
  0x31: 'CKR_DEVICE_MEMORY',
  0x32: 'CKR_DEVICE_REMOVED',
  0x40: 'CKR_ENCRYPTED_DATA_INVALID',
  0x41: 'CKR_ENCRYPTED_DATA_LEN_RANGE',
  0x50: 'CKR_FUNCTION_CANCELED',
  0x54: 'CKR_FUNCTION_NOT_SUPPORTED',
  0x60: 'CKR_KEY_HANDLE_INVALID',
  0x62: 'CKR_KEY_SIZE_RANGE',
  0x63: 'CKR_KEY_TYPE_INCONSISTENT',
  0x68: 'CKR_KEY_FUNCTION_NOT_PERMITTED',
  0x6a: 'CKR_KEY_UNEXTRACTABLE',
  0x70: 'CKR_MECHANISM_INVALID',
  0x71: 'CKR_MECHANISM_PARAM_INVALID',
  0x82: 'CKR_OBJECT_HANDLE_INVALID',
  0x90: 'CKR_OPERATION_ACTIVE',
  0x91: 'CKR_OPERATION_NOT_INITIALIZED',
  0xa0: 'CKR_PIN_INCORRECT',
  0xa1: 'CKR_PIN_INVALID',
  0xa2: 'CKR_PIN_LEN_RANGE',
  0xa3: 'CKR_PIN_EXPIRED',
  0xa4: 'CKR_PIN_LOCKED',
  0xb0: 'CKR_SESSION_CLOSED',
  0xb1: 'CKR_SESSION_COUNT',
  0xb3: 'CKR_SESSION_HANDLE_INVALID',
  0xb5: 'CKR_SESSION_READ_ONLY',
  0xb7: 'CKR_SESSION_READ_ONLY_EXISTS',
  0xb8: 'CKR_SESSION_READ_WRITE_SO_EXISTS',
  0xd0: 'CKR_TEMPLATE_INCOMPLETE',
  0xd1: 'CKR_TEMPLATE_INCONSISTENT',
  0xe0: 'CKR_TOKEN_NOT_PRESENT',
  0xe1: 'CKR_TOKEN_NOT_RECOGNIZED',
  0xe2: 'CKR_TOKEN_WRITE_PROTECTED',
  0x100: 'CKR_USER_ALREADY_LOGGED_IN',
  0x101: 'CKR_USER_NOT_LOGGED_IN',
  0x102: 'CKR_USER_PIN_NOT_INITIALIZED',
  0x103: 'CKR_USER_TYPE_INVALID',
  0x104: 'CKR_USER_ANOTHER_ALREADY_LOGGED_IN',
  0x150: 'CKR_BUFFER_TOO_SMALL',
  0x190: 'CKR_CRYPTOKI_NOT_INITIALIZED',
  0x191: 'CKR_CRYPTOKI_ALREADY_INITIALIZED',
};

export const CKR_ENCRYPTED_DATA_INVALID = 0x40;
export const CKR_ENCRYPTED_DATA_LEN_RANGE = 0x41;
export const CKR_GENERAL_ERROR = 0x05;
export const CKR_FUNCTION_FAILED = 0x06;
export const CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191;

const CODE_OF: Record<string, Pkcs11ErrorCode> = {
  CKR_PIN_INCORRECT: 'PIN_INCORRECT',
  CKR_PIN_LOCKED: 'PIN_LOCKED',
  CKR_PIN_EXPIRED: 'PIN_EXPIRED',
  CKR_PIN_INVALID: 'PIN_INVALID',
  CKR_PIN_LEN_RANGE: 'PIN_INVALID',
  CKR_USER_PIN_NOT_INITIALIZED: 'TOKEN_NOT_INITIALIZED',
  CKR_TOKEN_NOT_RECOGNIZED: 'TOKEN_NOT_INITIALIZED',
  CKR_TOKEN_NOT_PRESENT: 'TOKEN_NOT_PRESENT',
  CKR_SLOT_ID_INVALID: 'TOKEN_NOT_PRESENT',
  CKR_DEVICE_REMOVED: 'DEVICE_REMOVED',
  CKR_DEVICE_ERROR: 'DEVICE_ERROR',
  CKR_DEVICE_MEMORY: 'DEVICE_ERROR',
  CKR_GENERAL_ERROR: 'DEVICE_ERROR',
  CKR_HOST_MEMORY: 'DEVICE_ERROR',
  CKR_SESSION_HANDLE_INVALID: 'SESSION_INVALID',
  CKR_SESSION_CLOSED: 'SESSION_INVALID',
  CKR_SESSION_COUNT: 'SESSION_LIMIT',
  CKR_USER_NOT_LOGGED_IN: 'NOT_LOGGED_IN',
  CKR_USER_ALREADY_LOGGED_IN: 'ALREADY_LOGGED_IN',
  CKR_USER_ANOTHER_ALREADY_LOGGED_IN: 'ALREADY_LOGGED_IN',
  CKR_OBJECT_HANDLE_INVALID: 'KEY_NOT_FOUND',
  CKR_KEY_HANDLE_INVALID: 'KEY_NOT_FOUND',
  CKR_MECHANISM_INVALID: 'MECHANISM_INVALID',
  CKR_MECHANISM_PARAM_INVALID: 'MECHANISM_INVALID',
  CKR_ATTRIBUTE_READ_ONLY: 'TEMPLATE_REJECTED',
  CKR_ATTRIBUTE_TYPE_INVALID: 'TEMPLATE_REJECTED',
  CKR_ATTRIBUTE_VALUE_INVALID: 'TEMPLATE_REJECTED',
  CKR_TEMPLATE_INCOMPLETE: 'TEMPLATE_REJECTED',
  CKR_TEMPLATE_INCONSISTENT: 'TEMPLATE_REJECTED',
  CKR_ACTION_PROHIBITED: 'TEMPLATE_REJECTED',
};

/**
 * The CK_RV of an error thrown by pkcs11js, or undefined for anything else. Most calls throw its
 * Pkcs11Error with a numeric `code`; C_CreateObject, C_CopyObject and C_SetAttributeValue (which
 * pkcs11js overrides in JS) throw a plain Error whose message is "CKR_NAME:decimal".
 */
export function returnValueOf(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as Error & { code?: unknown }).code;
  if (error.name === 'Pkcs11Error' && typeof code === 'number') return code;
  const match = /^CKR_\w+:(\d+)/.exec(error.message);
  return match ? Number(match[1]) : undefined;
}

export function returnValueName(rv: number): string {
  return CKR[rv] ?? `CKR_0x${rv.toString(16)}`;
}

/**
 * Translates whatever a pkcs11js call threw. pkcs11js errors carry only the CKR_ name and a
 * native stack of call sites (never arguments); only the number is used here.
 */
export function translate(error: unknown, fn: string): Error {
  if (error instanceof Pkcs11Error) return error;
  const rv = returnValueOf(error);
  if (rv === undefined) {
    // A TypeError from the binding's argument checks, or a NativeError (library not loadable).
    return new Pkcs11Error('FAILED', `PKCS#11 ${fn} failed (${error instanceof Error ? error.name : 'error'})`, { function: fn });
  }
  const name = returnValueName(rv);
  return new Pkcs11Error(CODE_OF[name] ?? 'FAILED', `PKCS#11 ${fn} failed: ${name}`, { function: fn, returnValue: name });
}

/** Runs a synchronous pkcs11js call, translating its error. */
export function call<T>(fn: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw translate(error, fn);
  }
}

/** Awaits an asynchronous pkcs11js call, translating its error. */
export async function callAsync<T>(fn: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw translate(error, fn);
  }
}
