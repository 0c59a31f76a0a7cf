import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { ADMIN_OPERATIONS } from '../../service/admin/index.ts';
import { OPERATIONS } from '../../service/operations.ts';
import { isStsRequest } from '../sts-query/handler.ts';
import { isOpsPath } from './ops-handler.ts';
import type { ServerMetrics } from './metrics.ts';

/** Where each answered request is reported: metrics, an access log line, or both. */
export interface RequestObservers {
  readonly metrics?: ServerMetrics;
  /** One info line per request (`--log-requests`). */
  readonly accessLog?: Logger;
}

type Headers = OutgoingHttpHeaders | OutgoingHttpHeader[] | undefined;

/**
 * A ServerResponse (http.createServer's `ServerResponse` option) that reports each request when
 * its head is written: Node routes every response through writeHead, the implicit one included.
 * The handlers stay unaware of it, and it costs one clock read and one header scan per request,
 * no closure and no listener. The operation comes from X-Amz-Target checked against the service's
 * catalogue (anything else is "Unknown", so clients cannot mint label values); the outcome is
 * "ok" for 200, else the error name the KMS protocol puts in x-amzn-ErrorType.
 */
export function observedResponseClass(observers: RequestObservers): typeof ServerResponse {
  const { metrics, accessLog } = observers;
  class ObservedResponse extends ServerResponse {
    private readonly startedAt = performance.now();
    private observed = false;

    override writeHead(statusCode: number, reasonOrHeaders?: string | Headers, maybeHeaders?: Headers): this {
      if (!this.observed) {
        this.observed = true;
        this.report(statusCode, typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders);
      }
      return super.writeHead(statusCode, reasonOrHeaders as string, maybeHeaders);
    }

    private report(statusCode: number, headers: Headers): void {
      const req = this.req as IncomingMessage;
      // Probes and scrapes are not traffic.
      if (req.method === 'GET' && isOpsPath(req.url)) return;
      const seconds = (performance.now() - this.startedAt) / 1000;
      const operation = operationOf(req);
      const outcome = statusCode === 200 ? 'ok' : (headerValue(headers, 'x-amzn-errortype') ?? `HTTP${statusCode}`);
      metrics?.observeRequest(operation, outcome, seconds);
      accessLog?.info(
        {
          requestId: headerValue(headers, 'x-amzn-requestid'),
          operation,
          status: statusCode,
          outcome,
          durationMs: Math.round(seconds * 1e6) / 1e3,
          sourceIp: req.socket.remoteAddress,
        },
        'request',
      );
    }
  }
  // Node constructs it as it would ServerResponse; the generic request type is IncomingMessage here.
  return ObservedResponse as unknown as typeof ServerResponse;
}

const KMS_PREFIX = 'TrentService.';
const ADMIN_PREFIX = 'StrongroomAdmin.';

/** The operation a request named, from closed sets only. */
function operationOf(req: IncomingMessage): string {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length !== 12 || raw[i].toLowerCase() !== 'x-amz-target') continue;
    const target = raw[i + 1];
    if (target.startsWith(KMS_PREFIX)) {
      const name = target.slice(KMS_PREFIX.length);
      return OPERATIONS.has(name) ? name : 'Unknown';
    }
    if (target.startsWith(ADMIN_PREFIX)) {
      const name = target.slice(ADMIN_PREFIX.length);
      return ADMIN_OPERATIONS.has(name) ? `admin:${name}` : 'Unknown';
    }
    return 'Unknown';
  }
  return isStsRequest(req) ? 'STS' : 'Unknown';
}

/** A response header's value from writeHead's argument (flat array or object form). */
function headerValue(headers: Headers, lowerName: string): string | undefined {
  if (headers === undefined) return undefined;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i];
      if (typeof name === 'string' && name.length === lowerName.length && name.toLowerCase() === lowerName) return String(headers[i + 1]);
    }
    return undefined;
  }
  for (const name in headers) {
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return String(headers[name]);
  }
  return undefined;
}
