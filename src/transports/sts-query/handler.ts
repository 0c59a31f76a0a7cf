/**
 * The AWS STS query protocol, for AssumeRole and GetCallerIdentity, on the same port as KMS:
 * POST / with an application/x-www-form-urlencoded body (Action=…&Version=2011-06-15&…), SigV4
 * with service `sts`, XML answers in STS's namespace. This is what the AWS CLI
 * (`aws sts assume-role`), the SDKs' STS clients and their role credential providers send when
 * AWS_ENDPOINT_URL_STS points here.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Caller, ServiceContext } from '../../service/context.ts';
import { KmsError, isKmsError } from '../../service/errors.ts';
import { assumeRole, getCallerIdentity, type AssumeRoleInput } from '../../service/sessions.ts';
import { auditFailure, authenticatedCaller, type KmsHandlerOptions } from '../kms-json/handler.ts';
import type { SigV4Verifier } from '../kms-json/sigv4.ts';
import { indexHeaders } from '../kms-json/sigv4-canonical.ts';

const NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';
const MAX_BODY_BYTES = 64 * 1024;

export interface StsHandlerOptions<Credential = unknown> extends Pick<KmsHandlerOptions<Credential>, 'authenticate' | 'audit'> {
  readonly context: ServiceContext;
  /** A verifier for the signing name `sts`. */
  readonly verifier: SigV4Verifier<Credential>;
  readonly logger: Logger;
}

/** Whether a request is for this handler: a form-encoded POST (KMS requests are JSON). */
export function isStsRequest(req: IncomingMessage): boolean {
  if (req.method !== 'POST') return false;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 12 && raw[i].toLowerCase() === 'content-type') {
      return raw[i + 1].toLowerCase().startsWith('application/x-www-form-urlencoded');
    }
  }
  return false;
}

const xmlEscape = (text: string): string =>
  text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] as string);

/** STS's error codes for our catalogue's names (STS drops the "Exception" suffix). */
function stsErrorCode(error: KmsError): string {
  switch (error.errorName) {
    case 'AccessDeniedException': return 'AccessDenied';
    case 'ValidationException': return 'ValidationError';
    case 'UnrecognizedClientException': return 'InvalidClientTokenId';
    case 'ExpiredTokenException': return 'ExpiredToken';
    case 'InvalidSignatureException': return 'SignatureDoesNotMatch';
    case 'IncompleteSignatureException': return 'IncompleteSignature';
    case 'MissingAuthenticationTokenException': return 'MissingAuthenticationToken';
    default: return error.errorName.replace(/Exception$/, '');
  }
}

function send(res: ServerResponse, status: number, requestId: string, xml: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/xml',
    'Content-Length': Buffer.byteLength(xml),
    'x-amzn-RequestId': requestId,
  });
  res.end(xml);
}

function sendError(res: ServerResponse, requestId: string, error: KmsError): void {
  const type = error.clientFault ? 'Sender' : 'Receiver';
  const code = stsErrorCode(error);
  // STS answers these with 403 where KMS uses 400.
  const forbidden = ['AccessDenied', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'MissingAuthenticationToken'];
  send(
    res,
    forbidden.includes(code) ? 403 : error.status,
    requestId,
    `<ErrorResponse xmlns="${NAMESPACE}"><Error><Type>${type}</Type><Code>${code}</Code>` +
      `<Message>${xmlEscape(error.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
  );
}

const iso = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        reject(new KmsError('ValidationException', `The request body exceeds ${MAX_BODY_BYTES} bytes.`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, received)));
    req.on('error', reject);
  });
}

export function createStsHandler<Credential>(options: StsHandlerOptions<Credential>): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const requestId = randomUUID();
    handle(options, req, res, requestId).catch((error: unknown) => {
      options.logger.error({ requestId, err: error instanceof Error ? { name: error.name, stack: error.stack } : String(error) }, 'internal error');
      if (res.headersSent) res.destroy();
      else sendError(res, requestId, new KmsError('KMSInternalException', 'An internal error occurred.'));
    });
  };
}

type StsAnswer = { output: object; xml: string };

async function handle<Credential>(
  options: StsHandlerOptions<Credential>,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  const headers = indexHeaders(req.rawHeaders);
  let caller: Caller | undefined;
  let eventName = 'Unknown';
  let input: object | undefined;
  let answer: StsAnswer | undefined;
  let failure: KmsError | undefined;
  try {
    const body = await readBody(req);
    const verified = await options.verifier.verify({ method: 'POST', url: req.url ?? '/', rawHeaders: req.rawHeaders, headers, body });
    caller = await authenticatedCaller(options, req, verified);
    const form = new URLSearchParams(body.toString('utf8'));
    const action = form.get('Action');
    if (action === 'AssumeRole' || action === 'GetCallerIdentity') eventName = action;
    if (form.get('Version') !== '2011-06-15') {
      throw new KmsError('ValidationException', 'The Version parameter must be 2011-06-15.');
    }
    if (action === 'AssumeRole') {
      const duration = form.get('DurationSeconds');
      const hasPrefix = (prefix: string) => [...form.keys()].some((key) => key.startsWith(prefix));
      input = {
        RoleArn: form.get('RoleArn') ?? undefined,
        RoleSessionName: form.get('RoleSessionName') ?? undefined,
        DurationSeconds: duration === null ? undefined : /^\d{1,6}$/.test(duration) ? Number(duration) : Number.NaN,
        Policy: form.get('Policy') ?? undefined,
        PolicyArns: hasPrefix('PolicyArns.') ? true : undefined,
        Tags: hasPrefix('Tags.') ? true : undefined,
      };
    }
    answer = await answerFor(options, caller, action, input, requestId);
  } catch (error) {
    if (!isKmsError(error)) throw error;
    failure = error;
  }
  try {
    await options.audit.record({
      eventSource: 'sts.amazonaws.com',
      eventName,
      time: options.context.now(),
      requestId,
      sourceIp: req.socket.remoteAddress,
      userAgent: headers.get('user-agent')?.[0],
      caller,
      input,
      output: answer?.output,
      error: failure,
    });
  } catch (error) {
    failure = auditFailure(options.logger, error, requestId);
  }
  if (failure || !answer) sendError(res, requestId, failure ?? new KmsError('KMSInternalException', 'An internal error occurred.'));
  else send(res, 200, requestId, answer.xml);
}

async function answerFor<Credential>(
  options: StsHandlerOptions<Credential>,
  caller: Caller,
  action: string | null,
  input: object | undefined,
  requestId: string,
): Promise<StsAnswer> {
  if (action === 'GetCallerIdentity') {
    const identity = await getCallerIdentity(options.context, caller);
    return {
      output: identity,
      xml:
        `<GetCallerIdentityResponse xmlns="${NAMESPACE}"><GetCallerIdentityResult>` +
        `<Arn>${xmlEscape(identity.Arn)}</Arn><UserId>${xmlEscape(identity.UserId)}</UserId><Account>${identity.Account}</Account>` +
        `</GetCallerIdentityResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
    };
  }
  if (action === 'AssumeRole') {
    const output = await assumeRole(options.context, caller, input as AssumeRoleInput);
    const { Credentials: credentials, AssumedRoleUser: user } = output;
    return {
      output,
      xml:
        `<AssumeRoleResponse xmlns="${NAMESPACE}"><AssumeRoleResult>` +
        `<Credentials><AccessKeyId>${credentials.AccessKeyId}</AccessKeyId>` +
        `<SecretAccessKey>${xmlEscape(credentials.SecretAccessKey)}</SecretAccessKey>` +
        `<SessionToken>${xmlEscape(credentials.SessionToken)}</SessionToken>` +
        `<Expiration>${iso(credentials.Expiration)}</Expiration></Credentials>` +
        `<AssumedRoleUser><AssumedRoleId>${xmlEscape(user.AssumedRoleId)}</AssumedRoleId><Arn>${xmlEscape(user.Arn)}</Arn></AssumedRoleUser>` +
        `</AssumeRoleResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
    };
  }
  throw new KmsError('ValidationException', 'Could not find operation for the Action parameter.');
}
