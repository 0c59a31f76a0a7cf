import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AuditRequest } from '../../service/audit-events.ts';
import type { Caller, ServiceContext } from '../../service/context.ts';
import { KmsError, isKmsError, type KmsErrorName } from '../../service/errors.ts';
import { OPERATIONS, invokeOperation } from '../../service/operations.ts';
import { ADMIN_OPERATIONS, invokeAdminOperation } from '../../service/admin/index.ts';
import type { SigV4Verifier, VerifiedCaller } from './sigv4.ts';
import { indexHeaders } from './sigv4-canonical.ts';
import { compileRequestParsers } from './validation.ts';
import { serializeOutput } from './serialize.ts';

/**
 * Largest request body accepted. The largest legitimate KMS request is a PutKeyPolicy with a
 * 32 KB policy, JSON-escaped; 1 MiB leaves room without letting a client hold much memory.
 */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;
const TARGET_PREFIX = 'TrentService.';
/**
 * The identity administration API (service/admin): IAM's operations as JSON 1.1 on the same port,
 * signed with the same SigV4 scope (service `kms`). The service checks its inputs.
 */
const ADMIN_TARGET_PREFIX = 'StrongroomAdmin.';
const CONTENT_TYPE = 'application/x-amz-json-1.1';

export interface KmsHandlerOptions<Credential = unknown> {
  readonly context: ServiceContext;
  readonly verifier: SigV4Verifier<Credential>;
  /**
   * After the signature verified: the principal a key acts as, or why it cannot (unknown key,
   * wrong or missing session token, expired temporary credentials). `credential` is what the
   * verifier's lookup handed back for this request, if anything.
   */
  readonly authenticate: (
    accessKeyId: string,
    sessionToken: string | undefined,
    credential: Credential | undefined,
  ) => Promise<{ principalArn: string } | { problem: 'unrecognized' | 'expired' }>;
  readonly logger: Logger;
  /** Makes each request's audit event durable before its response is sent (docs/audit.md). */
  readonly audit: RequestAuditor;
}

type Parsers = ReturnType<typeof compileRequestParsers>;

/**
 * The AWS JSON 1.1 front door: POST / with X-Amz-Target: TrentService.<Operation> (or
 * StrongroomAdmin.<Operation>, the admin API). It parses,
 * authenticates and validates, calls the service, and maps typed errors to AWS's wire form. It
 * never touches storage or key material itself.
 */
export function createKmsHandler<Credential>(options: KmsHandlerOptions<Credential>): (req: IncomingMessage, res: ServerResponse) => void {
  const parsers: Parsers = compileRequestParsers();
  return (req, res) => {
    const requestId = randomUUID();
    handle(options, parsers, req, res, requestId).catch((error: unknown) => {
      sendError(res, requestId, internalError(options.logger, error, requestId));
    });
  };
}

async function handle<Credential>(
  options: KmsHandlerOptions<Credential>,
  parsers: Parsers,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  let operationName = '';
  let admin = false;
  let caller: Caller | undefined;
  let input: unknown;
  let output: object | undefined;
  let failure: KmsError | undefined;
  // One index of the raw headers serves routing and SigV4; Node's own req.headers object is
  // never built (it costs a few percent of a request at full load).
  const headers = indexHeaders(req.rawHeaders);
  try {
    const body = await readBody(req, headers);
    const target = singleHeader(headers, 'x-amz-target');
    if (req.method !== 'POST' || typeof target !== 'string') throw new KmsError('UnknownOperationException', '');
    // KMS requests pay one startsWith; only what is not KMS is looked at as the admin API.
    let parse: ((body: unknown) => Record<string, unknown>) | undefined;
    if (target.startsWith(TARGET_PREFIX)) {
      operationName = target.slice(TARGET_PREFIX.length);
      if (OPERATIONS.has(operationName)) parse = parsers.get(operationName);
    } else if (target.startsWith(ADMIN_TARGET_PREFIX)) {
      operationName = target.slice(ADMIN_TARGET_PREFIX.length);
      admin = ADMIN_OPERATIONS.has(operationName);
    }
    if (!parse && !admin) throw new KmsError('UnknownOperationException', '');

    const verified = await options.verifier.verify({
      method: req.method,
      url: req.url ?? '/',
      rawHeaders: req.rawHeaders,
      headers,
      body,
    });
    caller = await authenticatedCaller(options, req, verified, requestId);

    const json = parseJsonBody(body, singleHeader(headers, 'content-type'));
    input = parse ? parse(json) : json;
    output = parse
      ? await invokeOperation(operationName, options.context, input as object, caller)
      : await invokeAdminOperation(operationName, options.context, json, caller);
  } catch (error) {
    failure = isKmsError(error) ? error : internalError(options.logger, error, requestId, operationName);
    // A client-visible error with a cause underneath (a custom key store that could not serve):
    // the cause is for the operator. Key stores' messages carry no secrets (keystores/types.ts).
    if (failure.cause instanceof Error) {
      options.logger.warn({ requestId, operation: operationName, error: failure.errorName, cause: failure.cause.message }, 'request failed in a key store');
    }
  }

  // Durable before the answer: a request whose event cannot be written gets a 500 and no result.
  const known = admin ? ADMIN_OPERATIONS.has(operationName) : OPERATIONS.has(operationName);
  try {
    await options.audit.record({
      eventSource: admin ? 'iam.amazonaws.com' : 'kms.amazonaws.com',
      eventName: known ? operationName : 'Unknown',
      time: options.context.now(),
      requestId,
      sourceIp: req.socket.remoteAddress,
      userAgent: singleHeader(headers, 'user-agent'),
      caller,
      input,
      output,
      error: failure,
    });
  } catch (error) {
    failure = auditFailure(options.logger, error, requestId);
    output = undefined;
  }

  if (failure) {
    if (failure.status === 413) res.setHeader('Connection', 'close');
    sendError(res, requestId, failure);
    return;
  }
  const payload = serializeOutput(output as object);
  // The flat [name, value, …] form skips Node's per-key object walk.
  res.writeHead(200, [
    'Content-Type',
    CONTENT_TYPE,
    'Content-Length',
    String(Buffer.byteLength(payload)),
    'x-amzn-RequestId',
    requestId,
  ]);
  res.end(payload);
}

/** Records each request's event; resolves once it is durable (docs/audit.md). */
export interface RequestAuditor {
  record(request: AuditRequest): Promise<void>;
}

/** The audit trail could not take the event: the request fails closed, as a 500. */
export function auditFailure(logger: Logger, error: unknown, requestId: string): KmsError {
  logger.error({ requestId, err: error instanceof Error ? { name: error.name, message: error.message } : String(error) }, 'audit event could not be made durable; request refused');
  return new KmsError('KMSInternalException', 'An internal error occurred.');
}

/**
 * The Caller of a request whose signature verified, with AWS's answers for credentials that
 * verify but cannot be used (unknown, wrong or missing session token, expired).
 */
export async function authenticatedCaller<Credential>(
  options: Pick<KmsHandlerOptions<Credential>, 'authenticate'>,
  req: IncomingMessage,
  verified: VerifiedCaller<Credential>,
  requestId?: string,
): Promise<Caller> {
  const authenticated = await options.authenticate(verified.accessKeyId, verified.sessionToken, verified.credential);
  if ('principalArn' in authenticated) {
    return {
      requestId,
      principalArn: authenticated.principalArn,
      accessKeyId: verified.accessKeyId,
      sourceIp: req.socket.remoteAddress,
      secureTransport: 'encrypted' in req.socket && req.socket.encrypted === true,
      decisions: [],
    };
  }
  if (authenticated.problem === 'expired') {
    throw new KmsError('ExpiredTokenException', 'The security token included in the request is expired');
  }
  throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
}

function parseJsonBody(body: Buffer, contentType: string | undefined): unknown {
  if (contentType !== undefined && !contentType.includes('json')) {
    throw new KmsError('SerializationException', 'The request Content-Type must be application/x-amz-json-1.1.');
  }
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    // JSON.parse's own message quotes the input, which may be plaintext: never pass it on.
    throw new KmsError('SerializationException', 'The request body is not valid JSON.');
  }
}

const singleHeader = (headers: Map<string, string[]>, name: string): string | undefined => headers.get(name)?.[0];

function readBody(req: IncomingMessage, headers: Map<string, string[]>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(singleHeader(headers, 'content-length') ?? 0);
    if (declared > MAX_REQUEST_BODY_BYTES) {
      req.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_REQUEST_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received)));
    req.on('error', reject);
  });
}

const tooLarge = () =>
  new KmsError('RequestEntityTooLargeException', `The request body exceeds ${MAX_REQUEST_BODY_BYTES} bytes.`);

function internalError(logger: Logger, error: unknown, requestId: string, operation = ''): KmsError {
  // Our own errors never carry request values; the stack says where it broke.
  logger.error({ requestId, operation, err: error instanceof Error ? { name: error.name, stack: error.stack } : String(error) }, 'internal error');
  return new KmsError('KMSInternalException', 'An internal error occurred.');
}

function sendError(res: ServerResponse, requestId: string, error: KmsError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify({ __type: error.errorName satisfies KmsErrorName, message: error.message });
  res.writeHead(error.status, {
    'Content-Type': CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(payload),
    'x-amzn-RequestId': requestId,
    'x-amzn-ErrorType': error.errorName,
  });
  res.end(payload);
}
