import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { observeCustomKeyStoreCalls } from '../service/key-store-timing.ts';
import { connectedClustersCheck } from '../service/custom-key-stores/readiness.ts';
import type { ServerMetrics } from '../transports/ops/metrics.ts';
import type { RequestObservers } from '../transports/ops/observed-response.ts';
import { handleOpsRequest } from '../transports/ops/ops-handler.ts';
import { Readiness } from '../transports/ops/readiness.ts';
import type { Instance } from './instance.ts';

/**
 * What `strongroom serve` wires into each process for operators: readiness checks over the
 * instance, and — when a metrics port is configured — metrics fed by the request path, the audit
 * log's commits and the custom key stores' calls.
 */
export interface ProcessTelemetry {
  readonly readiness: Readiness;
  readonly metrics?: ServerMetrics;
  readonly observers: RequestObservers;
}

const READINESS_BINDING = 'strongroom:readiness-probe';
const READINESS_PROBE = Buffer.from('readiness');

/**
 * /readyz's checks: the metadata store answers a query; the root key is loaded (a seal and
 * unseal round trip under it succeeds); the audit trail commits its probe row; every connected
 * AWS_CLOUDHSM key store's cluster serves (service/custom-key-stores/readiness.ts).
 */
export function instanceReadiness(instance: Instance, logger?: Logger): Readiness {
  return new Readiness(
    {
      metadataStore: async () => {
        await instance.store.getSetting('account-id');
      },
      rootKey: async () => {
        instance.sealer.unseal(instance.sealer.seal(READINESS_PROBE, READINESS_BINDING), READINESS_BINDING).zero();
      },
      auditTrail: () => instance.audit.probe(),
      hsmClusters: connectedClustersCheck(instance.context),
    },
    { logger },
  );
}

// prom-client is loaded only by a server that serves metrics: every other command starts faster.
export async function processTelemetry(
  options: { metricsPort?: number; logRequests?: boolean },
  instance: Instance,
  logger: Logger,
): Promise<ProcessTelemetry> {
  const readiness = instanceReadiness(instance, logger);
  if (options.metricsPort === undefined) return { readiness, observers: { accessLog: options.logRequests ? logger : undefined } };
  const { ServerMetrics } = await import('../transports/ops/metrics.ts');
  const metrics = new ServerMetrics();
  instance.audit.commitObserver = metrics.observeAuditCommit;
  observeCustomKeyStoreCalls(instance.context, metrics.observeKeyStoreCall);
  const { registerHsmMemberGauge } = await import('../transports/ops/hsm-metrics.ts');
  registerHsmMemberGauge(metrics.registry, async () =>
    (await instance.context.customKeyStores.health())
      .filter(({ record }) => record.type === 'AWS_CLOUDHSM' && record.cloudHsmClusterId !== undefined)
      .map(({ record, health }) => ({ clusterId: record.cloudHsmClusterId as string, members: health.members })),
  );
  if (instance.context.quotas) instance.context.quotas.rejectionObserver = metrics.observeQuotaRejection;
  return { readiness, metrics, observers: { metrics, accessLog: options.logRequests ? logger : undefined } };
}

/** In a worker: let the primary collect this process's metrics for /metrics. */
export async function serveMetricsToPrimary(telemetry: ProcessTelemetry): Promise<void> {
  if (!telemetry.metrics) return;
  const { answerMetricsRequests } = await import('../transports/ops/cluster-metrics.ts');
  answerMetricsRequests(telemetry.metrics.registry);
}

/**
 * The operators' listener (--metrics-port, loopback by default): /metrics, /healthz, /readyz,
 * in the primary. With workers, /metrics sums every process's metrics.
 */
export async function startOpsListener(
  options: { metricsPort: number; metricsHost?: string },
  telemetry: ProcessTelemetry,
  clustered: boolean,
): Promise<{ server: Server; port: number }> {
  const registry = telemetry.metrics?.registry;
  const { clusterMetrics } = await import('../transports/ops/cluster-metrics.ts');
  const metrics = registry
    ? clustered
      ? () => clusterMetrics(registry)
      : async () => ({ contentType: registry.contentType, body: await registry.metrics() })
    : undefined;
  const server = createServer((req, res) => {
    if (handleOpsRequest(req, res, { readiness: telemetry.readiness, metrics })) return;
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: /metrics, /healthz, /readyz\n');
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.metricsPort, options.metricsHost ?? '127.0.0.1', () => done());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/**
 * Graceful stop of one listener: no new connections; requests in flight finish (each connection
 * is closed as soon as it goes idle); after `drainMs` whatever is left is cut off.
 */
export async function drainServer(server: Server, drainMs: number, logger?: Logger): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((done) => server.close(() => done()));
  server.closeIdleConnections();
  // A keep-alive connection whose request finishes after close() goes idle, not closed: sweep.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((done) => {
    timer = setTimeout(() => done('timeout'), drainMs);
  });
  if ((await Promise.race([closed, timedOut])) === 'timeout') {
    logger?.warn({ drainTimeoutMs: drainMs }, 'drain timeout: closing connections with requests still in flight');
    server.closeAllConnections();
    await closed;
  }
  clearInterval(sweep);
  clearTimeout(timer);
}

/** An error as a log field: its name and stack. */
export const errorSummary = (error: unknown) => (error instanceof Error ? { name: error.name, stack: error.stack } : String(error));

/** How long the steps after the drain (workers, scheduler, stores, data dir lock) may take together. */
export const STOP_GRACE_MS = 15_000;

/**
 * Runs a stop's steps in order and exits: 0 when all finish, 1 when one fails or when they have not
 * finished `boundMs` after the start (the log line names the step that hung), so SIGTERM always
 * ends the process, as a service manager expects, and a hang is reported rather than waited out.
 */
export async function runStopSteps(steps: [name: string, step: () => Promise<unknown>][], boundMs: number, logger: Logger): Promise<never> {
  let current = steps[0]?.[0] ?? 'stop';
  const watchdog = setTimeout(() => {
    logger.error({ step: current, boundMs }, 'stop did not finish in time; exiting');
    process.exit(1);
  }, boundMs);
  try {
    for (const [name, step] of steps) {
      current = name;
      await step();
    }
  } catch (error) {
    logger.error({ step: current, err: errorSummary(error) }, 'error while stopping');
    process.exit(1);
  }
  clearTimeout(watchdog);
  logger.info('stopped');
  process.exit(0);
}
