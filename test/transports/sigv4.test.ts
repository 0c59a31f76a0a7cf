import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { KMSClient, ListKeysCommand } from '@aws-sdk/client-kms';
import { HttpRequest } from '@smithy/protocol-http';
import { getCanonicalHeaders, SignatureV4 } from '@smithy/signature-v4';
import { isKmsError, type KmsErrorName } from '../../src/service/errors.ts';
import {
  SigV4Verifier,
  type SignedRequest,
  type SigV4VerifierOptions,
} from '../../src/transports/kms-json/sigv4.ts';
import { kmsSigner, NodeSha256 } from '../support/sigv4-signing.ts';

const ACCESS_KEY_ID = 'AKIDEXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SESSION_TOKEN = 'FwoGZXIvYXdzEXAMPLETOKEN//////////wEaDN';
const REGION = 'us-east-1';
const SIGNING_DATE = new Date('2024-01-01T00:00:00Z');
const NOW = SIGNING_DATE.getTime();
const MINUTE = 60_000;
const BODY = '{"KeyId":"alias/app","Plaintext":"c2VjcmV0IGRhdGE="}';
const MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

interface SignOptions {
  headers?: Record<string, string>;
  body?: string;
  path?: string;
  query?: Record<string, string | string[]>;
  region?: string;
  service?: string;
  secret?: string;
  accessKeyId?: string;
  sessionToken?: string;
  signingDate?: Date;
  applyChecksum?: boolean;
  unsignableHeaders?: Set<string>;
  expiresIn?: number;
}

/** What the KMS client sends for Encrypt (amz-sdk-* headers aside). */
function kmsRequest(o: SignOptions): HttpRequest {
  return new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 1234,
    path: o.path ?? '/',
    query: o.query ?? {},
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'TrentService.Encrypt',
      host: '127.0.0.1:1234',
      'user-agent': 'aws-sdk-js/3.0 strongroom-test',
      ...o.headers,
    },
    body: o.body ?? BODY,
  });
}

function signerFor(o: SignOptions): SignatureV4 {
  return kmsSigner({
    service: o.service,
    region: o.region ?? REGION,
    credentials: {
      accessKeyId: o.accessKeyId ?? ACCESS_KEY_ID,
      secretAccessKey: o.secret ?? SECRET,
      sessionToken: o.sessionToken,
    },
    // The KMS client sends no x-amz-content-sha256; cases that want it opt in.
    applyChecksum: o.applyChecksum,
  });
}

async function signed(o: SignOptions = {}): Promise<SignedRequest> {
  const request = await signerFor(o).sign(kmsRequest(o), {
    signingDate: o.signingDate ?? SIGNING_DATE,
    unsignableHeaders: o.unsignableHeaders,
  });
  return toWire(request as HttpRequest);
}

async function presigned(o: SignOptions = {}): Promise<SignedRequest> {
  const request = await signerFor(o).presign(kmsRequest(o), {
    signingDate: o.signingDate ?? SIGNING_DATE,
    expiresIn: o.expiresIn ?? 300,
    unhoistableHeaders: new Set(['x-amz-target']),
  });
  return toWire(request as HttpRequest);
}

/**
 * A request signed with the Date header instead of X-Amz-Date. SignatureV4.sign always adds
 * X-Amz-Date, so this assembles the same smithy pieces (canonical headers, canonical request,
 * string to sign, signing key) by hand.
 */
class DateHeaderSigner extends SignatureV4 {
  async signWithDateHeader(request: HttpRequest, signingDate: Date): Promise<SignedRequest> {
    request.headers.date = signingDate.toUTCString();
    const longDate = '20240101T000000Z';
    const scope = `20240101/${REGION}/kms/aws4_request`;
    const canonicalHeaders = getCanonicalHeaders(request);
    const payloadHash = createHash('sha256').update(String(request.body)).digest('hex');
    const canonicalRequest = this.createCanonicalRequest(request, canonicalHeaders, payloadHash);
    const stringToSign = await this.createStringToSign(longDate, scope, canonicalRequest, 'AWS4-HMAC-SHA256');
    const signature = await this.sign(stringToSign, { signingDate });
    request.headers.authorization =
      `AWS4-HMAC-SHA256 Credential=${ACCESS_KEY_ID}/${scope}, ` +
      `SignedHeaders=${Object.keys(canonicalHeaders).sort().join(';')}, Signature=${signature}`;
    return toWire(request);
  }
}

const rfc3986 = (text: string): string =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function toWire(request: HttpRequest): SignedRequest {
  const pairs: string[] = [];
  for (const [name, value] of Object.entries(request.query ?? {})) {
    for (const one of Array.isArray(value) ? value : [value]) pairs.push(`${rfc3986(name)}=${rfc3986(one ?? '')}`);
  }
  return {
    method: request.method,
    url: request.path + (pairs.length > 0 ? `?${pairs.join('&')}` : ''),
    rawHeaders: Object.entries(request.headers).flat(),
    body: Buffer.from(String(request.body)),
  };
}

function headerValue(req: SignedRequest, name: string): string {
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === name) return req.rawHeaders[i + 1];
  }
  throw new Error(`test request has no ${name}`);
}

/** Replaces every occurrence of a header (or appends it); `undefined` removes it. */
function withHeader(req: SignedRequest, name: string, value: string | undefined): SignedRequest {
  const rawHeaders: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() !== name) rawHeaders.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  if (value !== undefined) rawHeaders.push(name, value);
  return { ...req, rawHeaders };
}

const withAuthorization = (req: SignedRequest, edit: (value: string) => string): SignedRequest =>
  withHeader(req, 'authorization', edit(headerValue(req, 'authorization')));

const withQueryParameter = (req: SignedRequest, name: string, value: string): SignedRequest => {
  const url = new URL(req.url, 'http://x');
  url.searchParams.set(name, value);
  return { ...req, url: url.pathname + url.search };
};

function makeVerifier(overrides: Partial<SigV4VerifierOptions> = {}): SigV4Verifier {
  return new SigV4Verifier({
    region: REGION,
    service: 'kms',
    lookup: (accessKeyId) =>
      accessKeyId.startsWith(ACCESS_KEY_ID) ? { secretAccessKey: Buffer.from(SECRET, 'utf8') } : undefined,
    now: () => NOW,
    ...overrides,
  });
}

async function assertRejected(
  verification: Promise<unknown>,
  errorName: KmsErrorName,
  message: string,
): Promise<void> {
  await assert.rejects(verification, (error: unknown) => {
    assert.ok(isKmsError(error), `expected a KmsError, got ${String(error)}`);
    assert.equal(error.errorName, errorName);
    assert.equal(error.message, message);
    // Nothing secret leaks: not the secret, not any signature-sized hex, not the body.
    assert.ok(!error.message.includes(SECRET));
    assert.doesNotMatch(error.message, /[0-9a-f]{64}/);
    assert.ok(!error.message.includes('c2VjcmV0IGRhdGE='));
    return true;
  });
}

const SCOPE = `${ACCESS_KEY_ID}/20240101/${REGION}/kms/aws4_request`;
const hashedHeader = (value: string): string => createHash('sha256').update(value).digest('base64');

interface AcceptCase {
  title: string;
  request: () => Promise<SignedRequest>;
  verifier?: Partial<SigV4VerifierOptions>;
  sessionToken?: string;
}

const accepted: AcceptCase[] = [
  { title: 'accepts a KMS Encrypt request signed by the smithy SigV4 signer', request: () => signed() },
  {
    title: 'accepts a request signed with temporary credentials and returns the session token',
    request: () => signed({ sessionToken: SESSION_TOKEN }),
    sessionToken: SESSION_TOKEN,
  },
  {
    title: 'accepts a presigned (query-string) request',
    request: () => presigned({ sessionToken: SESSION_TOKEN }),
    sessionToken: SESSION_TOKEN,
  },
  {
    title: 'accepts a presigned request after five minutes while X-Amz-Expires still covers it',
    request: () => presigned({ expiresIn: 3600 }),
    verifier: { now: () => NOW + 30 * MINUTE },
  },
  {
    title: 'accepts repeated headers joined in order and values with extra whitespace',
    request: async () => {
      const req = await signed({ headers: { 'x-custom': 'a,b c', 'x-spaced': 'one two' } });
      const rawHeaders = [...withHeader(withHeader(req, 'x-custom', undefined), 'x-spaced', undefined).rawHeaders];
      rawHeaders.push('X-Custom', '  a ', 'content-length', String(req.body.length), 'x-custom', 'b  \t c  ');
      rawHeaders.push('X-Spaced', '   one     two   ');
      return { ...req, rawHeaders };
    },
  },
  {
    title: 'accepts a request whose SignedHeaders include extra custom headers',
    request: async () => {
      const req = await signed({
        headers: { 'x-strongroom-trace': 'abc123', 'amz-sdk-invocation-id': 'b5c0e0e6-6b9f-4c8e-9a51-0d6a1f1f1f1f' },
      });
      assert.match(headerValue(req, 'authorization'), /SignedHeaders=amz-sdk-invocation-id;content-type;host;x-amz-date;x-amz-target;x-strongroom-trace,/);
      return req;
    },
  },
  {
    title: 'accepts a request carrying a matching x-amz-content-sha256',
    request: () => signed({ applyChecksum: true }),
  },
  {
    title: 'accepts a change to a header that was not signed',
    request: async () => withHeader(await signed(), 'user-agent', 'something-else/1.0'),
  },
  {
    title: 'accepts a request dated by the Date header when X-Amz-Date is absent',
    request: () =>
      new DateHeaderSigner({
        service: 'kms',
        region: REGION,
        credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET },
        sha256: NodeSha256,
      }).signWithDateHeader(kmsRequest({}), SIGNING_DATE),
  },
  {
    title: 'accepts a path needing normalisation and a query needing RFC 3986 encoding',
    request: () =>
      signed({
        path: '/x/../some%20path/./keys/',
        query: { b: '2', a: ['z y', 'x'], "sp ace*'": "it's (1)", empty: '' },
      }),
  },
  {
    title: 'accepts the Authorization parameters separated by commas and spaces in any mix',
    request: async () =>
      withAuthorization(await signed(), (value) => `  ${value.replace(' Credential', '   Credential').replaceAll(', ', ' ,, ')} `),
  },
  {
    title: 'accepts the host given as an HTTP/2 :authority pseudo-header',
    request: async () => {
      const req = await signed();
      return withHeader(withHeader(req, 'host', undefined), ':authority', '127.0.0.1:1234');
    },
  },
];

interface RejectCase {
  title: string;
  request: () => Promise<SignedRequest>;
  verifier?: Partial<SigV4VerifierOptions>;
  errorName: KmsErrorName;
  /** A function when the text depends on the request, e.g. a hash of its header. */
  message: string | ((request: SignedRequest) => string);
}

const rejected: RejectCase[] = [
  {
    title: 'rejects a request whose body was altered',
    request: async () => ({ ...(await signed()), body: Buffer.from(BODY.replace('alias/app', 'alias/other')) }),
    errorName: 'InvalidSignatureException',
    message: MISMATCH,
  },
  {
    title: 'rejects a request whose signed header was altered',
    request: async () => withHeader(await signed(), 'x-amz-target', 'TrentService.Decrypt'),
    errorName: 'InvalidSignatureException',
    message: MISMATCH,
  },
  {
    title: 'rejects a request signed with the wrong secret',
    request: () => signed({ secret: 'not-the-secret' }),
    errorName: 'InvalidSignatureException',
    message: MISMATCH,
  },
  {
    title: 'rejects a signature of the wrong length or with non-hex characters as a mismatch',
    request: async () => withAuthorization(await signed(), (value) => value.replace(/Signature=\w+/, 'Signature=abc')),
    errorName: 'InvalidSignatureException',
    message: MISMATCH,
  },
  {
    title: 'rejects a 64-character signature that is not hex as a mismatch',
    request: async () =>
      withAuthorization(await signed(), (value) => value.replace(/Signature=\w+/, `Signature=${'zz'.repeat(32)}`)),
    errorName: 'InvalidSignatureException',
    message: MISMATCH,
  },
  {
    title: 'rejects an unknown access key id',
    request: () => signed({ accessKeyId: 'AKIDUNKNOWN' }),
    errorName: 'UnrecognizedClientException',
    message: 'The security token included in the request is invalid.',
  },
  {
    title: 'rejects a credential scoped to another region',
    request: () => signed({ region: 'eu-west-1' }),
    errorName: 'InvalidSignatureException',
    message: "Credential should be scoped to a valid region, not 'eu-west-1'. ",
  },
  {
    title: 'rejects a credential scoped to another service',
    request: () => signed({ service: 'dynamodb' }),
    errorName: 'InvalidSignatureException',
    message: "Credential should be scoped to correct service: 'kms'. ",
  },
  {
    title: 'rejects a credential scope with the wrong terminator',
    request: async () =>
      withAuthorization(await signed(), (value) => value.replace('/aws4_request', '/aws4_reqest')),
    errorName: 'InvalidSignatureException',
    message: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reqest'. ",
  },
  {
    title: 'rejects a credential scope date that differs from the request date',
    request: async () => withHeader(await signed(), 'x-amz-date', '20231231T235900Z'),
    errorName: 'InvalidSignatureException',
    message:
      'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ' +
      "'20240101' != '20231231', from 'X-Amz-Date'.",
  },
  {
    title: 'rejects a request signed six minutes in the past',
    request: () => signed(),
    verifier: { now: () => NOW + 6 * MINUTE },
    errorName: 'InvalidSignatureException',
    message: 'Signature expired: 20240101T000000Z is now earlier than 20240101T000100Z (20240101T000600Z - 5 min.)',
  },
  {
    title: 'rejects a request signed six minutes in the future',
    request: () => signed(),
    verifier: { now: () => NOW - 6 * MINUTE },
    errorName: 'InvalidSignatureException',
    message:
      'Signature not yet current: 20240101T000000Z is still later than 20231231T235900Z (20231231T235400Z + 5 min.)',
  },
  {
    title: 'rejects a presigned request once X-Amz-Expires has run out',
    request: () => presigned({ expiresIn: 60 }),
    verifier: { now: () => NOW + 2 * MINUTE },
    errorName: 'InvalidSignatureException',
    message: 'Signature expired: 20240101T000000Z is now earlier than 20240101T000100Z (20240101T000200Z - 60 sec.)',
  },
  {
    title: 'rejects a presigned request whose signed query parameter was altered',
    request: async () => withQueryParameter(await presigned({ query: { Action: 'Encrypt' } }), 'Action', 'Decrypt'),
    errorName: 'InvalidSignatureException',
    message: MISMATCH,
  },
  {
    title: 'rejects a presigned request whose X-Amz-Expires exceeds a week',
    request: async () => withQueryParameter(await presigned(), 'X-Amz-Expires', '604801'),
    errorName: 'IncompleteSignatureException',
    message:
      'X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds',
  },
  {
    title: 'rejects a presigned request whose X-Amz-Expires is not a number',
    request: async () => withQueryParameter(await presigned(), 'X-Amz-Expires', '5m'),
    errorName: 'IncompleteSignatureException',
    message: 'X-Amz-Expires should be a number',
  },
  {
    title: 'rejects a query-string request missing its other auth parameters',
    request: async () => ({ ...(await signed()), url: '/?X-Amz-Algorithm=AWS4-HMAC-SHA256', rawHeaders: ['host', '127.0.0.1:1234'] }),
    errorName: 'IncompleteSignatureException',
    message:
      "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Date'. " +
      "AWS query-string parameters must include 'X-Amz-SignedHeaders'. AWS query-string parameters must include " +
      "'X-Amz-Signature'. Re-examine the query-string parameters.",
  },
  {
    title: 'rejects a request carrying both an Authorization header and query-string auth',
    request: async () => ({ ...(await presigned()), rawHeaders: (await signed()).rawHeaders }),
    errorName: 'IncompleteSignatureException',
    message:
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter ' +
      'or the Authorization header should be specified',
  },
  {
    title: 'rejects a request without an Authorization header',
    request: async () => withHeader(await signed(), 'authorization', undefined),
    errorName: 'MissingAuthenticationTokenException',
    message: 'Missing Authentication Token',
  },
  {
    title: 'rejects an Authorization header missing Signature and SignedHeaders',
    request: async () => withHeader(await signed(), 'authorization', `AWS4-HMAC-SHA256 Credential=${SCOPE}`),
    errorName: 'IncompleteSignatureException',
    message:
      "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
  },
  {
    title: 'rejects an Authorization header with no parameters and a request with no date',
    request: async () => withHeader(withHeader(await signed(), 'authorization', 'AWS4-HMAC-SHA256'), 'x-amz-date', undefined),
    errorName: 'IncompleteSignatureException',
    message:
      "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
      "Authorization header requires 'SignedHeaders' parameter. " +
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
  },
  {
    title: 'rejects a request with neither X-Amz-Date nor Date',
    request: async () => withHeader(await signed(), 'x-amz-date', undefined),
    errorName: 'IncompleteSignatureException',
    message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
  },
  {
    title: 'rejects an X-Amz-Date that is not ISO 8601 basic format',
    request: async () => withHeader(await signed(), 'x-amz-date', '2024-01-01T00:00:00Z'),
    errorName: 'IncompleteSignatureException',
    message: "Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601",
  },
  {
    title: 'rejects an Authorization parameter without an equals sign, echoing only its hash',
    request: async () =>
      withHeader(await signed(), 'authorization', `AWS4-HMAC-SHA256 Credential= ${SCOPE}, SignedHeaders=host, Signature=00`),
    errorName: 'IncompleteSignatureException',
    message:
      'Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and encoded with ' +
      `Base64): '${hashedHeader(`AWS4-HMAC-SHA256 Credential= ${SCOPE}, SignedHeaders=host, Signature=00`)}'.`,
  },
  {
    title: 'rejects two Authorization headers',
    request: async () => {
      const req = await signed();
      return { ...req, rawHeaders: [...req.rawHeaders, 'Authorization', headerValue(req, 'authorization')] };
    },
    errorName: 'IncompleteSignatureException',
    message: (request) =>
      'Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and encoded with ' +
      `Base64): '${hashedHeader(`${headerValue(request, 'authorization')},${headerValue(request, 'authorization')}`)}'.`,
  },
  {
    title: 'rejects an unsupported algorithm',
    request: async () => withAuthorization(await signed(), (value) => value.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA512')),
    errorName: 'IncompleteSignatureException',
    message: "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'",
  },
  {
    title: 'rejects a bearer token as an unsupported algorithm',
    request: async () => withHeader(await signed(), 'authorization', 'Bearer eyJhbGciOi'),
    errorName: 'IncompleteSignatureException',
    message: "Unsupported AWS 'algorithm': 'Bearer'",
  },
  {
    title: 'rejects a credential without five slash-delimited elements',
    request: async () =>
      withAuthorization(await signed(), (value) => value.replace(SCOPE, `${ACCESS_KEY_ID}/20240101/${REGION}`)),
    errorName: 'IncompleteSignatureException',
    message:
      'Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, ' +
      `got '${ACCESS_KEY_ID}/20240101/${REGION}'`,
  },
  {
    title: 'rejects a request whose SignedHeaders leave out host',
    request: () => signed({ unsignableHeaders: new Set(['host']) }),
    errorName: 'InvalidSignatureException',
    message: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
  },
  {
    title: 'rejects a request missing a header its SignedHeaders name',
    request: async () => withHeader(await signed({ headers: { 'x-custom': 'v' } }), 'x-custom', undefined),
    errorName: 'InvalidSignatureException',
    message: "Header 'x-custom' is named in SignedHeaders but is not present in the request.",
  },
  {
    title: 'rejects a session token header that was not signed',
    request: async () => withHeader(await signed(), 'x-amz-security-token', SESSION_TOKEN),
    errorName: 'InvalidSignatureException',
    message: "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
  },
  {
    title: 'rejects an x-amz-content-sha256 that does not match the body',
    request: () =>
      signed({ headers: { 'x-amz-content-sha256': createHash('sha256').update('another body').digest('hex') } }),
    errorName: 'InvalidSignatureException',
    message: "The provided 'x-amz-content-sha256' header does not match what was computed.",
  },
  {
    title: 'rejects UNSIGNED-PAYLOAD',
    request: () => signed({ headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }),
    errorName: 'InvalidSignatureException',
    message: "'x-amz-content-sha256' must be the SHA-256 of the body; UNSIGNED-PAYLOAD is not supported by this service.",
  },
];

describe('SigV4Verifier', () => {
  for (const c of accepted) {
    test(c.title, async () => {
      const caller = await makeVerifier(c.verifier).verify(await c.request());
      assert.deepEqual(caller, {
        accessKeyId: ACCESS_KEY_ID,
        signingRegion: REGION,
        ...(c.sessionToken === undefined ? {} : { sessionToken: c.sessionToken }),
      });
    });
  }

  for (const c of rejected) {
    test(c.title, async () => {
      const request = await c.request();
      const message = typeof c.message === 'string' ? c.message : c.message(request);
      await assertRejected(makeVerifier(c.verifier).verify(request), c.errorName, message);
    });
  }

  test('does not consult the key lookup for a request rejected on its form or its clock', async () => {
    let lookups = 0;
    const verifier = makeVerifier({ now: () => NOW + 10 * MINUTE, lookup: () => (lookups++, undefined) });
    await assert.rejects(verifier.verify(await signed()), { name: 'InvalidSignatureException' });
    assert.equal(lookups, 0);
  });

  test('accepts an asynchronous key lookup', async () => {
    const verifier = makeVerifier({ lookup: async () => ({ secretAccessKey: Buffer.from(SECRET) }) });
    assert.equal((await verifier.verify(await signed())).accessKeyId, ACCESS_KEY_ID);
  });
});

describe('SigV4Verifier signing-key cache', () => {
  test('derives the signing key once for repeated requests of the same key and day', async () => {
    const verifier = makeVerifier();
    const request = await signed();
    for (let i = 0; i < 5; i++) await verifier.verify(request);
    assert.equal(verifier.signingKeyDerivations, 1);
    assert.equal(verifier.cachedSigningKeys, 1);
  });

  test('derives a new signing key for a new day', async () => {
    let now = NOW;
    const verifier = makeVerifier({ now: () => now });
    await verifier.verify(await signed());
    now = NOW + 24 * 60 * MINUTE;
    await verifier.verify(await signed({ signingDate: new Date(now) }));
    assert.equal(verifier.signingKeyDerivations, 2);
  });

  test('never reuses a key derived from a secret that has since been rotated', async () => {
    let secret = SECRET;
    const verifier = makeVerifier({ lookup: () => ({ secretAccessKey: Buffer.from(secret) }) });
    const request = await signed();
    await verifier.verify(request);
    secret = 'rotated-secret';
    await assertRejected(verifier.verify(request), 'InvalidSignatureException', MISMATCH);
    await verifier.verify(await signed({ secret }));
    assert.equal(verifier.signingKeyDerivations, 2);
  });

  test('evicts the oldest signing key beyond its bound', async () => {
    const verifier = makeVerifier({ signingKeyCacheEntries: 2 });
    const requests = await Promise.all(['A', 'B', 'C'].map((suffix) => signed({ accessKeyId: ACCESS_KEY_ID + suffix })));
    for (const request of requests) await verifier.verify(request);
    assert.equal(verifier.cachedSigningKeys, 2);
    assert.equal(verifier.signingKeyDerivations, 3);
    await verifier.verify(requests[2]); // still cached
    assert.equal(verifier.signingKeyDerivations, 3);
    await verifier.verify(requests[0]); // evicted, derived again
    assert.equal(verifier.signingKeyDerivations, 4);
    assert.equal(verifier.cachedSigningKeys, 2);
  });

  test('holds at most 4096 signing keys by default', async () => {
    const verifier = makeVerifier();
    for (let i = 0; i < 4100; i++) {
      await verifier.verify(await signed({ accessKeyId: `${ACCESS_KEY_ID}${i}` }));
    }
    assert.equal(verifier.signingKeyDerivations, 4100);
    assert.equal(verifier.cachedSigningKeys, 4096);
  });
});

describe('headers the service requires to be signed', () => {
  test('rejects a request whose SignedHeaders leave out x-amz-target when the service requires it', async () => {
    const verifier = makeVerifier({ requiredSignedHeaders: ['X-Amz-Target'] });
    await assertRejected(
      verifier.verify(await signed({ unsignableHeaders: new Set(['x-amz-target']) })),
      'InvalidSignatureException',
      "'x-amz-target' must be a 'SignedHeader' in the AWS Authorization.",
    );
    await verifier.verify(await signed());
  });

  test('refuses an access key id no account could have before looking it up', async () => {
    let lookups = 0;
    const verifier = makeVerifier({
      lookup: () => {
        lookups++;
        return undefined;
      },
    });
    await assertRejected(
      verifier.verify(await signed({ accessKeyId: 'A'.repeat(129) })),
      'UnrecognizedClientException',
      'The security token included in the request is invalid.',
    );
    assert.equal(lookups, 0);
  });
});

describe('SigV4Verifier against the real KMS client over loopback', () => {
  async function withServer(run: (endpoint: string) => Promise<void>): Promise<void> {
    const verifier = new SigV4Verifier({
      region: REGION,
      service: 'kms',
      lookup: (accessKeyId) => (accessKeyId === ACCESS_KEY_ID ? { secretAccessKey: Buffer.from(SECRET) } : undefined),
    });
    const server = createServer(async (req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      try {
        const caller = await verifier.verify({
          method: req.method ?? 'GET',
          url: req.url ?? '/',
          rawHeaders: req.rawHeaders,
          body: Buffer.concat(chunks),
        });
        assert.equal(caller.sessionToken, SESSION_TOKEN);
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ Keys: [], Truncated: false }));
      } catch (error) {
        const name = isKmsError(error) ? error.errorName : 'KMSInternalException';
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: name, message: (error as Error).message }));
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      server.close();
    }
  }

  const client = (endpoint: string, secretAccessKey: string): KMSClient =>
    new KMSClient({
      region: REGION,
      endpoint,
      maxAttempts: 1,
      credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey, sessionToken: SESSION_TOKEN },
    });

  test('accepts a ListKeys call signed by @aws-sdk/client-kms with temporary credentials', async () => {
    await withServer(async (endpoint) => {
      const output = await client(endpoint, SECRET).send(new ListKeysCommand({}));
      assert.deepEqual(output.Keys, []);
    });
  });

  test('answers a client with the wrong secret with InvalidSignatureException', async () => {
    await withServer(async (endpoint) => {
      await assert.rejects(client(endpoint, 'wrong-secret').send(new ListKeysCommand({})), {
        name: 'InvalidSignatureException',
        message: MISMATCH,
      });
    });
  });
});

describe('SigV4Verifier throughput (printed, not asserted)', () => {
  test('verifies a KMS request repeatedly from the signing-key cache', async (t) => {
    const verifier = makeVerifier();
    const request = await signed({ sessionToken: SESSION_TOKEN });
    const iterations = 20_000;
    const started = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await verifier.verify(request);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    t.diagnostic(`${Math.round(iterations / seconds)} verifications/s on one core`);
    assert.equal(verifier.signingKeyDerivations, 1);
  });
});
