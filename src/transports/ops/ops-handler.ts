import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readiness } from './readiness.ts';

/** The operator's endpoints. AWS clients never call these paths (KMS is POST / with X-Amz-Target). */
export const isOpsPath = (url: string | undefined): boolean => url === '/healthz' || url === '/readyz' || url === '/metrics';

export interface OpsEndpoints {
  readonly readiness: Readiness;
  /** The Prometheus exposition; absent where metrics are not served (the KMS port). */
  readonly metrics?: () => Promise<{ contentType: string; body: string }>;
}

/**
 * Answers GET /healthz, /readyz and /metrics; returns false for anything else (the caller routes
 * it on). Unauthenticated by design: nothing here is secret — check names and their state,
 * counters with closed label sets.
 */
export function handleOpsRequest(req: IncomingMessage, res: ServerResponse, endpoints: OpsEndpoints): boolean {
  if (req.method !== 'GET' || !isOpsPath(req.url)) return false;
  if (req.url === '/healthz') {
    send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
  } else if (req.url === '/readyz') {
    endpoints.readiness.report().then(
      (report) =>
        send(res, report.ready ? 200 : 503, 'application/json', JSON.stringify({ status: report.ready ? 'ready' : 'not ready', checks: report.checks }) + '\n'),
      () => send(res, 503, 'application/json', '{"status":"not ready","checks":{}}\n'),
    );
  } else if (!endpoints.metrics) {
    send(res, 404, 'text/plain; charset=utf-8', 'metrics are served on the metrics port (--metrics-port)\n');
  } else {
    endpoints.metrics().then(
      ({ contentType, body }) => send(res, 200, contentType, body),
      () => send(res, 500, 'text/plain; charset=utf-8', 'metrics could not be collected\n'),
    );
  }
  return true;
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}
