/**
 * Reading a SigV4 request's authentication (Authorization header or presigned query) and its
 * date, with AWS's error names and wording.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { KmsError } from '../../service/errors.ts';
import { firstQueryValue, joinedHeader, quote, sha256Hex, type QueryParameter } from './sigv4-canonical.ts';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** SigV4 caps presigned URLs at one week. */
export const MAX_PRESIGNED_EXPIRES_SECONDS = 604_800;
export const SIGNATURE_HEX_LENGTH = 64;
export const invalidSignature = (message: string): KmsError => new KmsError('InvalidSignatureException', message);
export const incompleteSignature = (message: string): KmsError => new KmsError('IncompleteSignatureException', message);

/** How the caller authenticated: which values came from where. */
export interface Authentication {
  readonly credential: string;
  readonly signedHeaders: string;
  readonly signature: string;
  /** The request time as signed: `YYYYMMDDTHHMMSSZ`. */
  readonly longDate: string;
  readonly requestTimeMs: number;
  /** Where the date came from, for AWS's scope-mismatch message. */
  readonly dateSource: 'X-Amz-Date' | 'Date';
  /** Presigned URLs only. */
  readonly expiresSeconds: number | undefined;
  readonly sessionToken: string | undefined;
  readonly contentSha256: string | undefined;
  readonly presigned: boolean;
}

export function readHeaderAuthentication(authorizationValues: string[], headers: Map<string, string[]>): Authentication {
  // Two Authorization headers are ambiguous (a proxy may read the other one); refuse them.
  if (authorizationValues.length !== 1) throw malformedAuthorization(authorizationValues.join(','));
  const authorization = authorizationValues[0].trim();
  const space = firstWhitespace(authorization);
  const algorithm = space < 0 ? authorization : authorization.slice(0, space);
  if (algorithm !== ALGORITHM) throw incompleteSignature(`Unsupported AWS 'algorithm': '${quote(algorithm)}'`);

  // AWS splits the parameters on commas and whitespace alike, so "a=1, b=2" and "a=1,b=2" both parse.
  const params = new Map<string, string>();
  for (const token of splitOnSeparators(space < 0 ? '' : authorization.slice(space + 1))) {
    const equals = token.indexOf('=');
    if (equals < 0) throw malformedAuthorization(authorization);
    const name = token.slice(0, equals);
    // A repeated parameter is ambiguous in the same way.
    if (params.has(name)) throw malformedAuthorization(authorization);
    params.set(name, token.slice(equals + 1));
  }

  const date = readHeaderDate(headers);
  const missing: string[] = [];
  for (const name of ['Credential', 'Signature', 'SignedHeaders']) {
    if (!params.get(name)) missing.push(`Authorization header requires '${name}' parameter.`);
  }
  if (date === undefined) {
    missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  }
  if (missing.length > 0 || date === undefined) throw incompleteSignature(missing.join(' '));

  return {
    credential: params.get('Credential') as string,
    signedHeaders: params.get('SignedHeaders') as string,
    signature: params.get('Signature') as string,
    ...date,
    expiresSeconds: undefined,
    sessionToken: joinedHeader(headers, 'x-amz-security-token'),
    contentSha256: joinedHeader(headers, 'x-amz-content-sha256'),
    presigned: false,
  };
}

export function readQueryAuthentication(algorithm: string, query: readonly QueryParameter[]): Authentication {
  if (algorithm !== ALGORITHM) throw incompleteSignature(`Unsupported AWS 'algorithm': '${quote(algorithm)}'`);
  const credential = firstQueryValue(query, 'X-Amz-Credential');
  const amzDate = firstQueryValue(query, 'X-Amz-Date');
  const signedHeaders = firstQueryValue(query, 'X-Amz-SignedHeaders');
  const signature = firstQueryValue(query, 'X-Amz-Signature');
  const missing: string[] = [];
  for (const [name, value] of [
    ['X-Amz-Credential', credential],
    ['X-Amz-Date', amzDate],
    ['X-Amz-SignedHeaders', signedHeaders],
    ['X-Amz-Signature', signature],
  ] as const) {
    if (!value) missing.push(`AWS query-string parameters must include '${name}'.`);
  }
  if (missing.length > 0 || !credential || !amzDate || !signedHeaders || !signature) {
    throw incompleteSignature(`${missing.join(' ')} Re-examine the query-string parameters.`);
  }

  const expires = firstQueryValue(query, 'X-Amz-Expires');
  let expiresSeconds: number | undefined;
  if (expires !== undefined) {
    if (!isDigits(expires)) throw incompleteSignature('X-Amz-Expires should be a number');
    expiresSeconds = Number(expires);
    if (expiresSeconds > MAX_PRESIGNED_EXPIRES_SECONDS) {
      throw incompleteSignature(
        'X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be ' +
          `less than ${MAX_PRESIGNED_EXPIRES_SECONDS} seconds`,
      );
    }
  }
  return {
    credential,
    signedHeaders,
    signature,
    longDate: amzDate,
    requestTimeMs: parseBasicIso(amzDate),
    dateSource: 'X-Amz-Date',
    expiresSeconds,
    sessionToken: firstQueryValue(query, 'X-Amz-Security-Token'),
    contentSha256: firstQueryValue(query, 'X-Amz-Content-Sha256'),
    presigned: true,
  };
}

/** `x-amz-date` (ISO 8601 basic), else `Date` (RFC 1123, converted to basic form for signing). */
export function readHeaderDate(
  headers: Map<string, string[]>,
): Pick<Authentication, 'longDate' | 'requestTimeMs' | 'dateSource'> | undefined {
  const amzDate = joinedHeader(headers, 'x-amz-date');
  if (amzDate !== undefined) {
    return { longDate: amzDate, requestTimeMs: parseBasicIso(amzDate), dateSource: 'X-Amz-Date' };
  }
  const httpDate = joinedHeader(headers, 'date');
  if (httpDate === undefined) return undefined;
  const ms = Date.parse(httpDate);
  // Only the IMF-fixdate form every SigV4 client sends; round-tripping rejects lenient parses.
  if (Number.isNaN(ms) || new Date(ms).toUTCString() !== httpDate) throw badDateFormat(httpDate);
  return { longDate: basicIso(ms), requestTimeMs: ms, dateSource: 'Date' };
}

// Requests signed within the same second share their x-amz-date: remember the last one parsed.
let lastBasicIso = '';
let lastBasicIsoMs = 0;

/** Parses `YYYYMMDDTHHMMSSZ` strictly (no lenient Date parsing of client input). */
export function parseBasicIso(value: string): number {
  if (value === lastBasicIso) return lastBasicIsoMs;
  const ms = parseBasicIsoUncached(value);
  lastBasicIso = value;
  lastBasicIsoMs = ms;
  return ms;
}

function parseBasicIsoUncached(value: string): number {
  if (value.length !== 16 || value[8] !== 'T' || value[15] !== 'Z') throw badDateFormat(value);
  const digits = value.slice(0, 8) + value.slice(9, 15);
  if (!isDigits(digits)) throw badDateFormat(value);
  const ms = Date.UTC(
    Number(digits.slice(0, 4)),
    Number(digits.slice(4, 6)) - 1,
    Number(digits.slice(6, 8)),
    Number(digits.slice(8, 10)),
    Number(digits.slice(10, 12)),
    Number(digits.slice(12, 14)),
  );
  // Date.UTC rolls 20240230 over to March; the round trip catches impossible dates.
  if (basicIso(ms) !== value) throw badDateFormat(value);
  return ms;
}

export const badDateFormat = (value: string): KmsError =>
  incompleteSignature(
    `Date must be in ISO-8601 'basic format'. Got '${quote(value)}'. See http://en.wikipedia.org/wiki/ISO_8601`,
  );

/** AWS's wording; it hashes the header rather than echo it, as it may carry a token or signature. */
export const malformedAuthorization = (authorization: string): KmsError =>
  incompleteSignature(
    'Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and encoded ' +
      `with Base64): '${createHash('sha256').update(authorization).digest('base64')}'.`,
  );

export function basicIso(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2024-01-01T00:05:00.000Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/**
 * The hashed payload is always hex SHA-256 of the body. A client-sent x-amz-content-sha256 must
 * agree with it: KMS has no streaming or unsigned payloads, so UNSIGNED-PAYLOAD is refused rather
 * than letting an unsigned body through.
 */
export function checkedPayloadHash(body: Buffer, contentSha256: string | undefined): string {
  const bodyHash = sha256Hex(body);
  if (contentSha256 === undefined) return bodyHash;
  if (contentSha256 === UNSIGNED_PAYLOAD) {
    throw invalidSignature("'x-amz-content-sha256' must be the SHA-256 of the body; UNSIGNED-PAYLOAD is not supported by this service.");
  }
  if (contentSha256.toLowerCase() !== bodyHash) {
    throw invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  return contentSha256;
}

/** Constant time over the 32 bytes; a wrongly sized or non-hex signature is just a mismatch. */
export function signatureMatches(provided: string, expected: Buffer): boolean {
  if (provided.length !== SIGNATURE_HEX_LENGTH) return false;
  const providedBytes = Buffer.from(provided, 'hex');
  if (providedBytes.length !== expected.length) return false; // Buffer.from stops at the first non-hex char
  return timingSafeEqual(providedBytes, expected);
}

export function firstWhitespace(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9) return i;
  }
  return -1;
}

export function splitOnSeparators(text: string): string[] {
  const tokens: string[] = [];
  let start = -1;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 32;
    const separator = c === 32 || c === 9 || c === 44; // space, tab, comma
    if (separator && start >= 0) {
      tokens.push(text.slice(start, i));
      start = -1;
    } else if (!separator && start < 0) {
      start = i;
    }
  }
  return tokens;
}

export function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

