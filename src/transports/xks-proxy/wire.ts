/**
 * Parsing and checking of XKS request bodies (XKS Proxy API spec v1.0.3, "Request payload" of each
 * API; PROTOCOL-NOTES §2.2–2.3). Every field is checked for type, strict base64 and size before
 * anything reaches the HSM; a failure is a ValidationException that names the field, never its value.
 */
import { MAX_AAD_BYTES, MAX_CIPHERTEXT_METADATA_BYTES } from '../../crypto/xks-integrity.ts';
import { XksError, validation } from './errors.ts';

/** Plaintext and ciphertext up to 4300 bytes (spec "Size limits"); more is refused. */
export const MAX_PLAINTEXT_BYTES = 4300;
/** ARNs and the other requestMetadata strings are at most 2048 characters (spec). */
export const MAX_METADATA_STRING_CHARS = 2048;
/**
 * The largest legitimate body: 4300 B of plaintext and 8192 B of AAD in base64 (5736 + 10924
 * characters), two 2048-character ARNs and the rest of requestMetadata fit with room in 32 KiB.
 */
export const MAX_REQUEST_BODY_BYTES = 32 * 1024;
export const AUTHENTICATION_TAG_BYTES = 16;
/** The spec allows 12- or 16-byte IVs; this proxy makes 12-byte ones and accepts both. */
export const IV_LENGTHS: readonly number[] = [12, 16];

/** The requestMetadata fields this proxy reads and logs; others are ignored, as the spec asks. */
export const REQUEST_METADATA_FIELDS = [
  'awsPrincipalArn',
  'awsSourceVpc',
  'awsSourceVpce',
  'kmsKeyArn',
  'kmsOperation',
  'kmsRequestId',
  'kmsViaService',
] as const;

export type RequestMetadata = Partial<Record<(typeof REQUEST_METADATA_FIELDS)[number], string>>;

export interface EncryptRequest {
  readonly requestMetadata: RequestMetadata;
  readonly plaintext: Buffer;
  readonly additionalAuthenticatedData: Buffer;
  /** Whether the caller asked for a ciphertextDataIntegrityValue (SHA_256). */
  readonly integrityValueRequested: boolean;
}

export interface DecryptRequest {
  readonly requestMetadata: RequestMetadata;
  readonly ciphertext: Buffer;
  readonly initializationVector: Buffer;
  readonly authenticationTag: Buffer;
  readonly additionalAuthenticatedData: Buffer;
  readonly ciphertextMetadata: Buffer;
}

/** The body as a JSON object, or ValidationException. */
export function parseBody(body: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw validation('The request body is not valid JSON');
  }
  if (!isObject(parsed)) throw validation('The request body must be a JSON object');
  return parsed;
}

/**
 * requestMetadata: kmsRequestId and kmsOperation always, awsPrincipalArn for key operations,
 * kmsKeyArn for Encrypt and Decrypt. Unknown kmsOperation values are accepted (spec: never reject
 * them) and unknown fields ignored.
 */
export function readRequestMetadata(body: Record<string, unknown>, required: readonly (keyof RequestMetadata)[]): RequestMetadata {
  const raw = body.requestMetadata;
  if (!isObject(raw)) throw validation('requestMetadata is required and must be an object');
  const metadata: RequestMetadata = {};
  for (const field of REQUEST_METADATA_FIELDS) {
    const value = raw[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw validation(`requestMetadata.${field} must be a string`);
    if (value.length > MAX_METADATA_STRING_CHARS) {
      throw validation(`requestMetadata.${field} is longer than ${MAX_METADATA_STRING_CHARS} characters`);
    }
    metadata[field] = value;
  }
  for (const field of required) {
    if (!metadata[field]) throw validation(`requestMetadata.${field} is required`);
  }
  return metadata;
}

/**
 * The health check's requestMetadata as far as it is well-formed: ValidationException does not
 * apply to GetHealthStatus (spec error table), so a KMS health probe is never refused for its body.
 */
export function readHealthMetadata(body: Buffer): RequestMetadata {
  try {
    return readRequestMetadata(parseBody(body), []);
  } catch {
    return {};
  }
}

export function readEncryptRequest(body: Record<string, unknown>): EncryptRequest {
  const requestMetadata = readRequestMetadata(body, ['awsPrincipalArn', 'kmsOperation', 'kmsRequestId']);
  checkEncryptionAlgorithm(body);
  const integrityAlgorithm = body.ciphertextDataIntegrityValueAlgorithm;
  if (integrityAlgorithm !== undefined && integrityAlgorithm !== null && integrityAlgorithm !== 'SHA_256') {
    if (typeof integrityAlgorithm !== 'string') throw validation('ciphertextDataIntegrityValueAlgorithm must be a string');
    throw new XksError('UnsupportedOperationException', 'ciphertextDataIntegrityValueAlgorithm must be SHA_256');
  }
  return {
    requestMetadata,
    plaintext: requiredBase64(body, 'plaintext', MAX_PLAINTEXT_BYTES),
    additionalAuthenticatedData: optionalBase64(body, 'additionalAuthenticatedData', MAX_AAD_BYTES),
    integrityValueRequested: integrityAlgorithm === 'SHA_256',
  };
}

export function readDecryptRequest(body: Record<string, unknown>): DecryptRequest {
  const requestMetadata = readRequestMetadata(body, ['awsPrincipalArn', 'kmsOperation', 'kmsRequestId']);
  checkEncryptionAlgorithm(body);
  const initializationVector = requiredBase64(body, 'initializationVector', 16);
  if (!IV_LENGTHS.includes(initializationVector.length)) throw validation('initializationVector must be 12 or 16 bytes');
  const authenticationTag = requiredBase64(body, 'authenticationTag', AUTHENTICATION_TAG_BYTES);
  if (authenticationTag.length !== AUTHENTICATION_TAG_BYTES) throw validation('authenticationTag must be 16 bytes');
  return {
    requestMetadata,
    ciphertext: requiredBase64(body, 'ciphertext', MAX_PLAINTEXT_BYTES),
    initializationVector,
    authenticationTag,
    additionalAuthenticatedData: optionalBase64(body, 'additionalAuthenticatedData', MAX_AAD_BYTES),
    ciphertextMetadata: optionalBase64(body, 'ciphertextMetadata', MAX_CIPHERTEXT_METADATA_BYTES),
  };
}

/** AES_GCM is the only algorithm of spec v1; anything else is an operation this proxy does not have. */
function checkEncryptionAlgorithm(body: Record<string, unknown>): void {
  const algorithm = body.encryptionAlgorithm;
  if (algorithm === undefined || algorithm === null) throw validation('encryptionAlgorithm is required');
  if (typeof algorithm !== 'string') throw validation('encryptionAlgorithm must be a string');
  if (algorithm !== 'AES_GCM') throw new XksError('UnsupportedOperationException', 'encryptionAlgorithm must be AES_GCM');
}

function requiredBase64(body: Record<string, unknown>, field: string, maxBytes: number): Buffer {
  if (body[field] === undefined || body[field] === null) throw validation(`${field} is required`);
  return optionalBase64(body, field, maxBytes);
}

function optionalBase64(body: Record<string, unknown>, field: string, maxBytes: number): Buffer {
  const value = body[field];
  if (value === undefined || value === null) return Buffer.alloc(0);
  if (typeof value !== 'string') throw validation(`${field} must be a base64 string`);
  // Checked on the encoded length first, so an oversized field is never decoded.
  if (value.length > Math.ceil(maxBytes / 3) * 4) throw validation(`${field} is longer than ${maxBytes} bytes`);
  const bytes = decodeStrictBase64(value);
  if (bytes === undefined) throw validation(`${field} is not valid base64`);
  if (bytes.length > maxBytes) throw validation(`${field} is longer than ${maxBytes} bytes`);
  return bytes;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Standard base64 with padding, canonical only. Node's own decoder skips bad characters and
 * stops at stray padding, so "AAAA!" and "AA==AA" would silently decode to something.
 */
export function decodeStrictBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  // Non-zero bits in the last character's unused low bits decode fine but are not canonical.
  return bytes.toString('base64') === text ? bytes : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
