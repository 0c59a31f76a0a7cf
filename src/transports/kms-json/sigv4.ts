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
import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  canonicalHeaderBlock,
  canonicalQuery,
  canonicalUri,
  firstQueryValue,
  indexHeaders,
  parseQuery,
  sha256Hex,
  quote,
  type QueryParameter,
} from './sigv4-canonical.ts';
import {
  ALGORITHM,
  type Authentication,
  basicIso,
  checkedPayloadHash,
  incompleteSignature,
  invalidSignature,
  readHeaderAuthentication,
  readQueryAuthentication,
  signatureMatches,
} from './sigv4-authorization.ts';
import { KmsError } from '../../service/errors.ts';

export interface SignedRequest {
  method: string;
  /** Path and optional query, as node's `req.url`. */
  url: string;
  /** Node's `req.rawHeaders`: name, value, name, value, … in arrival order. */
  rawHeaders: readonly string[];
  /** indexHeaders(rawHeaders), when the caller already built it. */
  headers?: Map<string, string[]>;
  body: Buffer;
}

export interface SigningSecret<Credential = unknown> {
  /** Raw UTF-8 bytes of the secret access key. */
  secretAccessKey: Buffer;
  /**
   * What the lookup wants back with the verified request (VerifiedCaller.credential): the record
   * it read, so the caller need not read it again for the same request. Never the secret.
   */
  credential?: Credential;
}

export interface VerifiedCaller<Credential = unknown> {
  accessKeyId: string;
  /** The lookup's `credential` for this access key, when it gave one. */
  credential?: Credential;
  /** Passed through unjudged: deciding whether a session token is valid is the caller's job. */
  sessionToken?: string;
  signingRegion: string;
}

export interface SigV4VerifierOptions<Credential = unknown> {
  /** The server's region; the credential scope must name it. */
  region: string;
  /** The signing name, `kms`. */
  service: string;
  lookup: (
    accessKeyId: string,
  ) => SigningSecret<Credential> | undefined | Promise<SigningSecret<Credential> | undefined>;
  /** Milliseconds since the epoch; for tests. */
  now?: () => number;
  /** Allowed clock skew either way; default 5 minutes, as AWS. */
  maxSkewMs?: number;
  /** Bound on cached derived signing keys; default 4096. */
  signingKeyCacheEntries?: number;
  /**
   * Headers besides `host` that must be signed. For AWS JSON services this is `x-amz-target`:
   * the operation lives in that header, and an unsigned one would let anyone replaying a signed
   * request (a presigned DescribeKey, say) turn it into DisableKey with the same body.
   */
  requiredSignedHeaders?: readonly string[];
}

const TERMINATOR = 'aws4_request';
const ACCESS_KEY_ID = /^\w{1,128}$/;
const DEFAULT_MAX_SKEW_MS = 5 * 60_000;
const DEFAULT_SIGNING_KEY_CACHE_ENTRIES = 4096;

const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';


export class SigV4Verifier<Credential = unknown> {
  private readonly region: string;
  private readonly service: string;
  private readonly lookup: SigV4VerifierOptions<Credential>['lookup'];
  private readonly now: () => number;
  private readonly maxSkewMs: number;
  private readonly maxCachedKeys: number;
  private readonly requiredSignedHeaders: readonly string[];
  /**
   * kSigning by access key and day (region and service are fixed per verifier), with a copy of
   * the secret it was derived from: a hit must present the same secret (compared in constant
   * time), so a rotated secret never meets a key derived from the old one.
   */
  private readonly signingKeys = new Map<string, { secret: Buffer; key: Buffer }>();
  private derivations = 0;

  constructor(opts: SigV4VerifierOptions<Credential>) {
    this.region = opts.region;
    this.service = opts.service;
    this.lookup = opts.lookup;
    this.now = opts.now ?? Date.now;
    this.maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
    this.maxCachedKeys = Math.max(1, opts.signingKeyCacheEntries ?? DEFAULT_SIGNING_KEY_CACHE_ENTRIES);
    this.requiredSignedHeaders = (opts.requiredSignedHeaders ?? []).map((name) => name.toLowerCase());
  }

  /** How many signing keys have been derived (cache misses); for tests and metrics. */
  get signingKeyDerivations(): number {
    return this.derivations;
  }

  get cachedSigningKeys(): number {
    return this.signingKeys.size;
  }

  async verify(req: SignedRequest): Promise<VerifiedCaller<Credential>> {
    const headers = req.headers ?? indexHeaders(req.rawHeaders);
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
    for (const required of this.requiredSignedHeaders) {
      if (!signedHeaderNames.includes(required)) {
        throw invalidSignature(`'${required}' must be a 'SignedHeader' in the AWS Authorization.`);
      }
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
      `${ALGORITHM}\n${auth.longDate}\n${scope}\n` + sha256Hex(canonicalRequest);
    const signingKey = this.signingKey(accessKeyId, auth.longDate.slice(0, 8), secret.secretAccessKey);
    const expected = createHmac('sha256', signingKey).update(stringToSign).digest();

    if (!signatureMatches(auth.signature, expected)) throw invalidSignature(SIGNATURE_MISMATCH);
    const verified: VerifiedCaller<Credential> =
      auth.sessionToken === undefined
        ? { accessKeyId, signingRegion: this.region }
        : { accessKeyId, sessionToken: auth.sessionToken, signingRegion: this.region };
    if (secret.credential !== undefined) verified.credential = secret.credential;
    return verified;
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
    // Access key ids are at most 128 word characters (IAM AccessKeyIdType). Anything else cannot exist, so it
    // is refused before the lookup and never occupies a cache entry.
    if (!ACCESS_KEY_ID.test(accessKeyId)) {
      throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    }
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
    const cacheKey = `${accessKeyId}\n${day}`;
    const cached = this.signingKeys.get(cacheKey);
    if (
      cached !== undefined &&
      cached.secret.length === secretAccessKey.length &&
      timingSafeEqual(cached.secret, secretAccessKey)
    ) {
      return cached.key;
    }

    this.derivations += 1;
    const seed = Buffer.concat([Buffer.from('AWS4', 'latin1'), secretAccessKey]);
    let key: Buffer = seed;
    for (const part of [day, this.region, this.service, TERMINATOR]) {
      const next = createHmac('sha256', key).update(part).digest();
      key.fill(0); // the seed, then kDate, kRegion and kService
      key = next;
    }
    if (cached !== undefined) this.forget(cacheKey, cached);
    // Evict the oldest entry (Map keeps insertion order). Nothing else holds an evicted key:
    // it is read and used synchronously within one verify call, so it is safe to zero.
    while (this.signingKeys.size >= this.maxCachedKeys) {
      const [oldestKey, oldest] = this.signingKeys.entries().next().value as [string, { secret: Buffer; key: Buffer }];
      this.forget(oldestKey, oldest);
    }
    this.signingKeys.set(cacheKey, { secret: Buffer.from(secretAccessKey), key });
    return key;
  }

  private forget(cacheKey: string, entry: { secret: Buffer; key: Buffer }): void {
    entry.secret.fill(0);
    entry.key.fill(0);
    this.signingKeys.delete(cacheKey);
  }
}
