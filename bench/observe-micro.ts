/**
 * What request observation (metrics, --log-requests) costs per request, measured in isolation:
 * constructing a response and writing its head, with Node's ServerResponse and with the observed
 * one (src/transports/ops/observed-response.ts), on the KMS handler's header shapes. The
 * difference is the per-request cost; compare it with the server CPU per request in
 * bench/RESULTS.md (about 120 µs for Encrypt).
 *
 *   node --import tsx bench/observe-micro.ts
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import pino from 'pino';
import { ServerMetrics } from '../src/transports/ops/metrics.ts';
import { observedResponseClass } from '../src/transports/ops/observed-response.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 200_000);

function request(): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.method = 'POST';
  req.url = '/';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.rawHeaders = [
    'Host', '127.0.0.1:7373', 'Content-Type', 'application/x-amz-json-1.1', 'X-Amz-Target', 'TrentService.Encrypt',
    'X-Amz-Date', '20261129T000000Z', 'Authorization', 'AWS4-HMAC-SHA256 Credential=…', 'Content-Length', '80',
  ];
  return req;
}

const okHeaders = ['Content-Type', 'application/x-amz-json-1.1', 'Content-Length', '120', 'x-amzn-RequestId', '3bd5a96d-9681-4c1c-b62e-b56268bf8b5e'];

function run(Response: typeof ServerResponse): number {
  const req = request();
  const started = performance.now();
  for (let i = 0; i < ROUNDS; i++) {
    const res = new Response(req);
    res.writeHead(200, okHeaders);
  }
  return ((performance.now() - started) * 1000) / ROUNDS;
}

const variants: [string, typeof ServerResponse][] = [
  ['node ServerResponse', ServerResponse],
  ['observed, metrics', observedResponseClass({ metrics: new ServerMetrics({ processMetrics: false }) })],
  [
    'observed, metrics + access log (to /dev/null)',
    observedResponseClass({ metrics: new ServerMetrics({ processMetrics: false }), accessLog: pino(pino.destination('/dev/null')) }),
  ],
];
// Warm-up, then alternate the variants so drift in machine load falls on all of them.
for (const [, Response] of variants) run(Response);
const totals = new Map<string, number[]>();
for (let repeat = 0; repeat < 5; repeat++) {
  for (const [name, Response] of variants) totals.set(name, [...(totals.get(name) ?? []), run(Response)]);
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const base = median(totals.get(variants[0][0])!);
for (const [name] of variants) {
  const value = median(totals.get(name)!);
  console.log(`${name.padEnd(48)} ${value.toFixed(2)} µs/response  (+${(value - base).toFixed(2)} µs)`);
}
