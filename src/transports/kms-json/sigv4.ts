/**
 * Server-side AWS Signature Version 4 verification for the KMS JSON protocol.
 *
 * The canonical request is rebuilt from what the client says it signed (its own SignedHeaders
 * list) and from the request exactly as received; the expected signature is then compared in
 * constant time. Both the Authorization-header form and the presigned (query-string) form are
 * accepted, as AWS accepts both. PROTOCOL-NOTES §1.3; AWS SigV4 "Create a canonical request".
 *
 * Error names and wording follow AWS. No message carries the secret, the signature this server
 * expected, or the request body; values echoed from the request (credential scope, dates,
 * algorithm, header names) are not secret and are passed through `quote`, which strips control
 * characters and bounds their length. A malformed Authorization header is never echoed: like AWS,
 * we print its SHA-256 instead, because it may hold a caller's token or signature.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  canonicalHeaderBlock,
  canonicalQuery,
  canonicalUri,
  firstQueryValue,
  indexHeaders,
  joinedHeader,
  parseQuery,
  quote,
  type QueryParameter,
} from './sigv4-canonical.ts';
import { KmsError } from '../../service/errors.ts';

export interface SignedRequest {
  method: string;
  /** Path and optional query, as node's `req.url`. */
  url: string;
  /** Node's `req.rawHeaders`: name, value, name, value, … in arrival order. */
  rawHeaders: readonly string[];
  body: Buffer;
}

export interface SigningSecret {
  /** Raw UTF-8 bytes of the secret access key. */
  secretAccessKey: Buffer;
}

export interface VerifiedCaller {
  accessKeyId: string;
  /** Passed through unjudged: deciding whether a session token is valid is the caller's job. */
  sessionToken?: string;
  signingRegion: string;
}

export interface SigV4VerifierOptions {
  /** The server's region; the credential scope must name it. */
  region: string;
  /** The signing name, `kms`. */
  service: string;
  lookup: (accessKeyId: string) => SigningSecret | undefined | Promise<SigningSecret | undefined>;
  /** Milliseconds since the epoch; for tests. */
  now?: () => number;
  /** Allowed clock skew either way; default 5 minutes, as AWS. */
  maxSkewMs?: number;
  /** Bound on cached derived signing keys; default 4096. */
  signingKeyCacheEntries?: number;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const TERMINATOR = 'aws4_request';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const DEFAULT_MAX_SKEW_MS = 5 * 60_000;
const DEFAULT_SIGNING_KEY_CACHE_ENTRIES = 4096;
/** SigV4 caps presigned URLs at one week. */
const MAX_PRESIGNED_EXPIRES_SECONDS = 604_800;
const SIGNATURE_HEX_LENGTH = 64;

const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

const invalidSignature = (message: string): KmsError => new KmsError('InvalidSignatureException', message);
const incompleteSignature = (message: string): KmsError => new KmsError('IncompleteSignatureException', message);

/** How the caller authenticated: which values came from where. */
interface Authentication {
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

export class SigV4Verifier {
  private readonly region: string;
  private readonly service: string;
  private readonly lookup: SigV4VerifierOptions['lookup'];
  private readonly now: () => number;
  private readonly maxSkewMs: number;
  private readonly maxCachedKeys: number;
  /** kSigning by access key, day, region, service and a keyed fingerprint of the secret. */
  private readonly signingKeys = new Map<string, Buffer>();
  /**
   * Fingerprints the secret for the cache key, so a rotated secret never meets a key derived from
   * the old one. Keyed with a per-process random key so the map holds nothing that could be
   * checked against a guessed secret.
   */
  private readonly fingerprintKey = randomBytes(32);
  private derivations = 0;

  constructor(opts: SigV4VerifierOptions) {
    this.region = opts.region;
    this.service = opts.service;
    this.lookup = opts.lookup;
    this.now = opts.now ?? Date.now;
    this.maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
    this.maxCachedKeys = Math.max(1, opts.signingKeyCacheEntries ?? DEFAULT_SIGNING_KEY_CACHE_ENTRIES);
  }

  /** How many signing keys have been derived (cache misses); for tests and metrics. */
  get signingKeyDerivations(): number {
    return this.derivations;
  }

  get cachedSigningKeys(): number {
    return this.signingKeys.size;
  }

  async verify(req: SignedRequest): Promise<VerifiedCaller> {
    const headers = indexHeaders(req.rawHeaders);
    const queryStart = req.url.indexOf('?');
    const rawPath = queryStart < 0 ? req.url : req.url.slice(0, queryStart);
    const query = queryStart < 0 ? [] : parseQuery(req.url.slice(queryStart + 1));

    const auth = this.readAuthentication(headers, query);
    const { accessKeyId, scope } = this.checkCredentialScope(auth);
    this.checkClock(auth);

    const signedHeaderNames = auth.signedHeaders.split(';');
    if (!signedHeaderNames.includes('host')) {
      throw invalidSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    }
    // Fail closed: an unsigned token could be swapped for another by anyone on the path.
    if (!auth.presigned && auth.sessionToken !== undefined && !signedHeaderNames.includes('x-amz-security-token')) {
      throw invalidSignature("'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.");
    }
    const canonicalHeaders = canonicalHeaderBlock(headers, signedHeaderNames);
    const payloadHash = checkedPayloadHash(req.body, auth.contentSha256);

    // Everything above is free of I/O, so malformed or stale requests never reach the lookup.
    const secret = await this.lookup(accessKeyId);
    if (secret === undefined) {
      throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    }

    const canonicalRequest =
      `${req.method}\n${canonicalUri(rawPath)}\n${canonicalQuery(query, auth.presigned)}\n` +
      `${canonicalHeaders}\n${auth.signedHeaders}\n${payloadHash}`;
    const stringToSign =
      `${ALGORITHM}\n${auth.longDate}\n${scope}\n` + createHash('sha256').update(canonicalRequest).digest('hex');
    const signingKey = this.signingKey(accessKeyId, auth.longDate.slice(0, 8), secret.secretAccessKey);
    const expected = createHmac('sha256', signingKey).update(stringToSign).digest();

    if (!signatureMatches(auth.signature, expected)) throw invalidSignature(SIGNATURE_MISMATCH);
    return auth.sessionToken === undefined
      ? { accessKeyId, signingRegion: this.region }
      : { accessKeyId, sessionToken: auth.sessionToken, signingRegion: this.region };
  }

  private readAuthentication(headers: Map<string, string[]>, query: readonly QueryParameter[]): Authentication {
    const authorization = headers.get('authorization');
    const queryAlgorithm = firstQueryValue(query, 'X-Amz-Algorithm');
    if (authorization !== undefined && queryAlgorithm !== undefined) {
      throw incompleteSignature(
        'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, ' +
          'Signature query string parameter or the Authorization header should be specified',
      );
    }
    if (authorization !== undefined) return readHeaderAuthentication(authorization, headers);
    if (queryAlgorithm !== undefined) return readQueryAuthentication(queryAlgorithm, query);
    throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
  }

  private checkCredentialScope(auth: Authentication): { accessKeyId: string; scope: string } {
    const parts = auth.credential.split('/');
    if (parts.length !== 5) {
      throw incompleteSignature(
        'Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, ' +
          `got '${quote(auth.credential)}'`,
      );
    }
    const [accessKeyId, scopeDate, scopeRegion, scopeService, terminator] = parts;
    const requestDay = auth.longDate.slice(0, 8);
    if (scopeDate !== requestDay) {
      throw invalidSignature(
        'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ' +
          `'${quote(scopeDate)}' != '${requestDay}', from '${auth.dateSource}'.`,
      );
    }
    if (scopeRegion !== this.region) {
      throw invalidSignature(`Credential should be scoped to a valid region, not '${quote(scopeRegion)}'. `);
    }
    if (scopeService !== this.service) {
      throw invalidSignature(`Credential should be scoped to correct service: '${this.service}'. `);
    }
    if (terminator !== TERMINATOR) {
      throw invalidSignature(
        `Credential should be scoped with a valid terminator: '${TERMINATOR}', not '${quote(terminator)}'. `,
      );
    }
    return { accessKeyId, scope: `${scopeDate}/${scopeRegion}/${scopeService}/${terminator}` };
  }

  /** ±maxSkew around now; a presigned URL instead stays valid until its X-Amz-Expires runs out. */
  private checkClock(auth: Authentication): void {
    const now = this.now();
    const skewMinutes = `${this.maxSkewMs / 60_000} min.`;
    if (auth.requestTimeMs > now + this.maxSkewMs) {
      throw invalidSignature(
        `Signature not yet current: ${auth.longDate} is still later than ${basicIso(now + this.maxSkewMs)} ` +
          `(${basicIso(now)} + ${skewMinutes})`,
      );
    }
    if (auth.expiresSeconds !== undefined) {
      const expiresMs = auth.expiresSeconds * 1000;
      if (auth.requestTimeMs < now - expiresMs) {
        throw invalidSignature(
          `Signature expired: ${auth.longDate} is now earlier than ${basicIso(now - expiresMs)} ` +
            `(${basicIso(now)} - ${auth.expiresSeconds} sec.)`,
        );
      }
      return;
    }
    if (auth.requestTimeMs < now - this.maxSkewMs) {
      throw invalidSignature(
        `Signature expired: ${auth.longDate} is now earlier than ${basicIso(now - this.maxSkewMs)} ` +
          `(${basicIso(now)} - ${skewMinutes})`,
      );
    }
  }

  /** kSigning = HMAC chain over "AWS4"+secret, day, region, service, "aws4_request" (SigV4 §derive). */
  private signingKey(accessKeyId: string, day: string, secretAccessKey: Buffer): Buffer {
    const fingerprint = createHmac('sha256', this.fingerprintKey).update(secretAccessKey).digest('base64');
    const cacheKey = `${accessKeyId}\n${day}\n${this.region}\n${this.service}\n${fingerprint}`;
    const cached = this.signingKeys.get(cacheKey);
    if (cached !== undefined) return cached;

    this.derivations += 1;
    const seed = Buffer.concat([Buffer.from('AWS4', 'latin1'), secretAccessKey]);
    let key: Buffer = seed;
    for (const part of [day, this.region, this.service, TERMINATOR]) {
      key = createHmac('sha256', key).update(part).digest();
    }
    seed.fill(0);
    // Evict the oldest entry (Map keeps insertion order). Nothing else holds an evicted key:
    // it is read and used synchronously within one verify call, so it is safe to zero.
    while (this.signingKeys.size >= this.maxCachedKeys) {
      const [oldestKey, oldest] = this.signingKeys.entries().next().value as [string, Buffer];
      oldest.fill(0);
      this.signingKeys.delete(oldestKey);
    }
    this.signingKeys.set(cacheKey, key);
    return key;
  }
}

function readHeaderAuthentication(authorizationValues: string[], headers: Map<string, string[]>): Authentication {
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

function readQueryAuthentication(algorithm: string, query: readonly QueryParameter[]): Authentication {
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
function readHeaderDate(
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

/** Parses `YYYYMMDDTHHMMSSZ` strictly (no lenient Date parsing of client input). */
function parseBasicIso(value: string): number {
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

const badDateFormat = (value: string): KmsError =>
  incompleteSignature(
    `Date must be in ISO-8601 'basic format'. Got '${quote(value)}'. See http://en.wikipedia.org/wiki/ISO_8601`,
  );

/** AWS's wording; it hashes the header rather than echo it, as it may carry a token or signature. */
const malformedAuthorization = (authorization: string): KmsError =>
  incompleteSignature(
    'Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and encoded ' +
      `with Base64): '${createHash('sha256').update(authorization).digest('base64')}'.`,
  );

function basicIso(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2024-01-01T00:05:00.000Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/**
 * The hashed payload is always hex SHA-256 of the body. A client-sent x-amz-content-sha256 must
 * agree with it: KMS has no streaming or unsigned payloads, so UNSIGNED-PAYLOAD is refused rather
 * than letting an unsigned body through.
 */
function checkedPayloadHash(body: Buffer, contentSha256: string | undefined): string {
  const bodyHash = createHash('sha256').update(body).digest('hex');
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
function signatureMatches(provided: string, expected: Buffer): boolean {
  if (provided.length !== SIGNATURE_HEX_LENGTH) return false;
  const providedBytes = Buffer.from(provided, 'hex');
  if (providedBytes.length !== expected.length) return false; // Buffer.from stops at the first non-hex char
  return timingSafeEqual(providedBytes, expected);
}

function firstWhitespace(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9) return i;
  }
  return -1;
}

function splitOnSeparators(text: string): string[] {
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

function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

