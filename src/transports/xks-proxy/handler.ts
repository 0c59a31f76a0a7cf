/**
 * The XKS proxy's HTTP front door (XKS Proxy API spec v1.0.3):
 *
 *   POST {prefix}/kms/xks/v1/keys/{externalKeyId}/metadata | encrypt | decrypt
 *   POST {prefix}/kms/xks/v1/health
 *
 * Order of checks: route (unknown prefix or path: InvalidUriPathException 404; another method:
 * 405), body size, client certificate CN (mTLS), SigV4 with the prefix's credentials (401), then
 * the body, key and HSM. Each request ends in one audit line, written before the response.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { indexHeaders } from '../kms-json/sigv4-canonical.ts';
import type { XksAuditEvent, XksAuditLog } from './audit-log.ts';
import { XksAuthenticator } from './authentication.ts';
import { XKS_KEY_ID, XKS_PATH_SUFFIX, type XksKeyStoreConfig } from './config.ts';
import { XksError } from './errors.ts';
import type { XksOperations } from './operations.ts';
import {
  MAX_REQUEST_BODY_BYTES,
  parseBody,
  readDecryptRequest,
  readEncryptRequest,
  readHealthMetadata,
  readRequestMetadata,
  type RequestMetadata,
} from './wire.ts';

export interface XksHandlerOptions {
  readonly keyStores: readonly XksKeyStoreConfig[];
  readonly region: string;
  readonly operations: XksOperations;
  readonly audit: XksAuditLog;
  /** mTLS: the client certificate's subject CN must be this (the CA is checked by the TLS layer). */
  readonly clientCommonName?: string;
  /** Reports failures the caller only sees as InternalException (never with request values). */
  readonly onInternalError?: (error: unknown, requestId: string) => void;
  /** For tests of the clock-skew limit. */
  readonly now?: () => number;
}

type Operation = 'GetKeyMetadata' | 'Encrypt' | 'Decrypt' | 'GetHealthStatus';
const KEY_OPERATIONS: Record<string, Operation> = { metadata: 'GetKeyMetadata', encrypt: 'Encrypt', decrypt: 'Decrypt' };

interface Route {
  readonly store: XksKeyStoreConfig;
  readonly operation: Operation;
  readonly externalKeyId: string | undefined;
}

interface Outcome {
  operation?: string;
  uriPathPrefix?: string;
  externalKeyId?: string;
  accessKeyId?: string;
  requestMetadata?: RequestMetadata;
}

type Stores = Map<string, { store: XksKeyStoreConfig; authenticator: XksAuthenticator }>;

export interface XksHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /**
   * Swaps in new key stores (credentials, keys, allowed principals) for the requests that arrive
   * from now on; requests in flight finish with the ones they started with. This is how a
   * credential is rotated without a restart (docs/xks-proxy.md).
   */
  reloadKeyStores(keyStores: readonly XksKeyStoreConfig[]): void;
}

export function createXksHandler(options: XksHandlerOptions): XksHandler {
  let stores = storesOf(options.keyStores, options);
  const handler = ((req: IncomingMessage, res: ServerResponse) => void respond(options, stores, req, res)) as XksHandler;
  handler.reloadKeyStores = (keyStores) => {
    stores = storesOf(keyStores, options);
  };
  return handler;
}

function storesOf(keyStores: readonly XksKeyStoreConfig[], options: XksHandlerOptions): Stores {
  const stores: Stores = new Map();
  for (const store of keyStores) {
    stores.set(store.uriPathPrefix, { store, authenticator: new XksAuthenticator(store, options.region, { now: options.now }) });
  }
  return stores;
}

/** One request from routing to response; never rejects. */
async function respond(options: XksHandlerOptions, stores: Stores, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const requestId = randomUUID();
  const started = performance.now();
  const outcome: Outcome = {};
  let status = 200;
  let payload: object;
  let error: XksError | undefined;
  try {
    payload = await serve(options, stores, req, outcome);
  } catch (thrown) {
    error = thrown instanceof XksError ? thrown : new XksError('InternalException', 'The XKS proxy failed to process the request');
    if (!(thrown instanceof XksError)) options.onInternalError?.(thrown, requestId);
    status = error.status;
    payload = error.toWire();
  }
  const event: XksAuditEvent = {
    time: new Date().toISOString(),
    requestId,
    operation: outcome.operation ?? 'Unknown',
    ...(outcome.uriPathPrefix !== undefined && { uriPathPrefix: outcome.uriPathPrefix }),
    ...(outcome.externalKeyId !== undefined && { externalKeyId: outcome.externalKeyId }),
    ...(outcome.accessKeyId !== undefined && { accessKeyId: outcome.accessKeyId }),
    ...(req.socket.remoteAddress !== undefined && { sourceIp: req.socket.remoteAddress }),
    ...(outcome.requestMetadata !== undefined && { requestMetadata: outcome.requestMetadata }),
    httpStatus: status,
    ...(error !== undefined && { errorName: error.errorName }),
    durationMs: Math.round((performance.now() - started) * 1000) / 1000,
  };
  try {
    await options.audit.record(event);
  } catch (auditError) {
    // Fail closed: an unrecorded request gets no result.
    options.onInternalError?.(auditError, requestId);
    const failure = new XksError('InternalException', 'The request could not be recorded in the audit log');
    send(res, failure, failure.toWire(), requestId);
    return;
  }
  try {
    send(res, error ?? 200, payload, requestId);
  } catch (sendError) {
    options.onInternalError?.(sendError, requestId);
    if (!res.headersSent) res.destroy();
  }
}

async function serve(options: XksHandlerOptions, stores: Stores, req: IncomingMessage, outcome: Outcome): Promise<object> {
  const route = routeOf(req.url ?? '', stores);
  outcome.operation = route.operation;
  outcome.uriPathPrefix = route.store.uriPathPrefix;
  if (route.externalKeyId !== undefined) outcome.externalKeyId = route.externalKeyId;
  if (req.method !== 'POST') throw new MethodNotAllowed();

  const headers = indexHeaders(req.rawHeaders);
  const body = await readBody(req, headers);
  checkClientCertificate(req, options.clientCommonName);
  const { authenticator } = stores.get(route.store.uriPathPrefix)!;
  outcome.accessKeyId = await authenticator.authenticate({ method: req.method, url: req.url ?? '', rawHeaders: req.rawHeaders, headers, body });

  if (route.operation === 'GetHealthStatus') {
    outcome.requestMetadata = readHealthMetadata(body);
    return options.operations.getHealthStatus();
  }
  const json = parseBody(body);
  const externalKeyId = route.externalKeyId as string;
  switch (route.operation) {
    case 'GetKeyMetadata': {
      outcome.requestMetadata = metadataForAudit(json);
      const metadata = readRequestMetadata(json, ['awsPrincipalArn', 'kmsOperation', 'kmsRequestId']);
      return options.operations.getKeyMetadata(route.store, externalKeyId, metadata);
    }
    case 'Encrypt': {
      outcome.requestMetadata = metadataForAudit(json);
      const request = readEncryptRequest(json);
      return options.operations.encrypt(route.store, externalKeyId, request);
    }
    default: {
      outcome.requestMetadata = metadataForAudit(json);
      const request = readDecryptRequest(json);
      return options.operations.decrypt(route.store, externalKeyId, request);
    }
  }
}

/** requestMetadata as far as it is well-formed, so a request refused for its body is still attributed. */
function metadataForAudit(json: Record<string, unknown>): RequestMetadata | undefined {
  try {
    return readRequestMetadata(json, []);
  } catch {
    return undefined;
  }
}

function routeOf(url: string, stores: Stores): Route {
  // The spec's canonical query string is empty; a query (a presigned URL, say) is not an XKS URI.
  if (url.includes('?') || url.includes('#')) throw invalidUri();
  const base = url.indexOf(`${XKS_PATH_SUFFIX}/`);
  if (base < 0) throw invalidUri();
  const entry = stores.get(url.slice(0, base));
  if (!entry) throw invalidUri();
  const rest = url.slice(base + XKS_PATH_SUFFIX.length + 1);
  if (rest === 'health') return { store: entry.store, operation: 'GetHealthStatus', externalKeyId: undefined };
  const parts = rest.split('/');
  if (parts.length !== 3 || parts[0] !== 'keys' || !Object.hasOwn(KEY_OPERATIONS, parts[2])) throw invalidUri();
  // Ids outside [A-Za-z0-9._-] (percent-encoded bytes included) cannot name a key of this proxy.
  if (!XKS_KEY_ID.test(parts[1])) throw invalidUri();
  return { store: entry.store, operation: KEY_OPERATIONS[parts[2]], externalKeyId: parts[1] };
}

const invalidUri = (): XksError => new XksError('InvalidUriPathException', 'The URI path is not an XKS API path of this proxy');

/** The spec: the XKS APIs are POST only, and another method on their URIs gets 405. */
class MethodNotAllowed extends XksError {
  override readonly status = 405;

  constructor() {
    super('ValidationException', 'The XKS APIs accept POST only');
  }
}

/** A body past the limit may not have been read to its end: the connection is closed after the answer. */
class BodyTooLarge extends XksError {
  constructor() {
    super('ValidationException', `The request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes`);
  }
}

function checkClientCertificate(req: IncomingMessage, commonName: string | undefined): void {
  if (commonName === undefined) return;
  const socket = req.socket as TLSSocket;
  const subject = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate().subject : undefined;
  const presented = subject?.CN;
  if (presented !== commonName) {
    throw new XksError('AuthenticationFailedException', 'The client certificate does not have the expected common name');
  }
}

/**
 * The body, up to MAX_REQUEST_BODY_BYTES. Past that the rest is drained and dropped (not kept),
 * so the refusal can still be sent; the server's request timeout bounds how long that can take.
 */
function readBody(req: IncomingMessage, headers: Map<string, string[]>): Promise<Buffer> {
  const declared = headers.get('content-length')?.[0];
  if (declared !== undefined && Number(declared) > MAX_REQUEST_BODY_BYTES) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_REQUEST_BODY_BYTES) {
        refused = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) resolve(Buffer.concat(chunks, size));
    });
    req.on('error', reject);
  });
}

const tooLarge = (): XksError => new BodyTooLarge();

function send(res: ServerResponse, outcome: XksError | 200, payload: object, requestId: string): void {
  if (res.headersSent) return;
  const body = JSON.stringify(payload);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-strongroom-request-id': requestId,
  };
  if (outcome instanceof MethodNotAllowed) headers.allow = 'POST';
  if (outcome instanceof BodyTooLarge) headers.connection = 'close';
  res.writeHead(outcome === 200 ? 200 : outcome.status, headers).end(body);
}
