import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { runDueBackgroundWork } from '../service/background.ts';
import type { AccessKeyCredential } from '../service/access-keys.ts';
import { buildRequestEvent } from '../service/audit-events.ts';
import type { ServiceContext } from '../service/context.ts';
import { createKmsHandler, type RequestAuditor } from '../transports/kms-json/handler.ts';
import { createStsHandler, isStsRequest } from '../transports/sts-query/handler.ts';
import { SigV4Verifier } from '../transports/kms-json/sigv4.ts';
import { handleOpsRequest, type OpsEndpoints } from '../transports/ops/ops-handler.ts';
import { observedResponseClass } from '../transports/ops/observed-response.ts';
import { DataDirLockedError, lockDataDir } from './data-dir-lock.ts';
import {
  drainServer,
  errorSummary,
  instanceReadiness,
  processTelemetry,
  runStopSteps,
  serveMetricsToPrimary,
  startOpsListener,
  STOP_GRACE_MS,
  type ProcessTelemetry,
} from './serve-ops.ts';
import { bootstrapAdministrator, dataDirPaths, openInstance, type Instance } from './instance.ts';
import { quotaOptions, xksOptions } from './serve-settings.ts';
import { DATABASE_SETTING, operatorMessage } from './database-errors.ts';

export interface ServeOptions {
  dataDir: string;
  host: string;
  port: number;
  region: string;
  workers: number;
  tlsCert?: string;
  tlsKey?: string;
  schedulerIntervalSeconds: number;
  logLevel: string;
  /** Record encryption-context values in audit events (default: keys only). */
  auditEncryptionContextValues?: boolean;
  /** PEM file of CA certificates trusted for XKS proxies' TLS certificates. */
  xksProxyCa?: string;
  /** host=ip:port[,ip:port] entries: where external key stores' proxy hosts are reached. */
  xksProxyAddresses?: string[];
  /** CLASS=RATE entries (symmetric, rsa, ecc, control), or `aws` for AWS's defaults. */
  quotas?: string[];
  /** postgres://… : metadata and audit trail shared by several nodes (default: the data dir's SQLite). */
  databaseUrl?: string;
  /** One info log line per request (operation, outcome, duration, request id). */
  logRequests?: boolean;
  /** The operators' listener for /metrics, /healthz, /readyz; none when undefined. */
  metricsPort?: number;
  /** Where the metrics port listens (default loopback). */
  metricsHost?: string;
  /** On SIGTERM/SIGINT: seconds in-flight requests get to finish before connections are cut (default 10). */
  drainTimeoutSeconds?: number;
}

const WORKER_ENV = 'STRONGROOM_WORKER_OPTIONS';

/**
 * Where each process commits its audit events. A writer thread keeps the event loop serving
 * during the fsync, which pays when a core is free for it; when every core already runs a server
 * process, the thread only competes with them and the thread hops add latency, so commits run
 * inline (the fsync wait then lets the other processes run). Measured on 2 cores with 2 workers:
 * inline ~79% of unaudited throughput, thread 69% (bench/RESULTS.md, audit.sh).
 */
export function auditModeFor(options: Pick<ServeOptions, 'workers'>): 'worker' | 'inline' {
  return options.workers >= availableParallelism() ? 'inline' : 'worker';
}

/** `strongroom serve`: the primary owns the data dir, the scheduler and the workers. */
export async function serve(options: ServeOptions): Promise<void> {
  if (cluster.isWorker) return runWorker(JSON.parse(process.env[WORKER_ENV] as string) as ServeOptions);

  const logger = pino({ level: options.logLevel }, pino.destination(2));
  // Everything this process creates (database, WAL, lock) is for its owner's eyes only.
  process.umask(0o077);
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  let unlock: () => Promise<void>;
  try {
    unlock = await lockDataDir(dataDirPaths(dataDir), dataDir);
  } catch (error) {
    if (error instanceof DataDirLockedError) {
      process.stderr.write(`strongroom: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  let instance: Instance;
  try {
    instance = await openInstance({
      dataDir,
      region: options.region,
      auditMode: auditModeFor(options),
      xks: await xksOptions(options),
      quotas: quotaOptions(options),
      ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}),
    });
  } catch (error) {
    // A refused start (loose permissions, a damaged key file, a newer schema) is the operator's
    // to fix: say what is wrong without a stack trace.
    process.stderr.write(`strongroom: ${operatorMessage(error, DATABASE_SETTING)}\n`);
    await unlock();
    process.exit(2);
  }
  const created = await bootstrapAdministrator(instance);

  const telemetry = await processTelemetry(options, instance, logger);
  const clustered = options.workers > 1;
  const listening = clustered ? await forkWorkers(options, dataDir) : [await startServer(options, instance, logger, telemetry)];
  const port = listening[0];
  const scheme = options.tlsCert ? 'https' : 'http';
  const url = `${scheme}://${formatHost(options.host)}:${port}`;
  printWelcome({ instance, url, created, region: options.region });
  let opsServer: Server | undefined;
  if (options.metricsPort !== undefined) {
    const ops = await startOpsListener({ metricsPort: options.metricsPort, metricsHost: options.metricsHost }, telemetry, clustered);
    opsServer = ops.server;
    process.stdout.write(`metrics on http://${formatHost(options.metricsHost ?? '127.0.0.1')}:${ops.port}/metrics\n`);
  }

  // One run at a time: a slow run (many keys due) is not overlapped by the next tick.
  let schedulerRunning = false;
  let schedulerRun: Promise<void> | undefined;
  let stopping = false;
  const runScheduler = async () => {
    if (schedulerRunning || stopping) return;
    schedulerRunning = true;
    try {
      const run = await runDueBackgroundWork(instance.context);
      if (run.skipped) logger.debug('scheduled key work: another node is running its pass; skipped');
      if (run.destroyed.length || run.rotated.length) {
        logger.info({ destroyed: run.destroyed, rotated: run.rotated }, 'scheduled key work carried out');
      }
      for (const note of run.material) {
        logger.warn({ keyId: note.keyId, keyMaterialDestruction: note.outcome, reason: note.reason, missingBackupFiles: note.missingBackups }, 'custom key store material: destruction deferred or backups missing');
      }
      for (const failure of run.failed) {
        logger.error({ keyId: failure.keyId, task: failure.task, err: errorSummary(failure.error) }, 'scheduled key work failed; will retry');
      }
      // Workers drop any material they still hold for destroyed keys.
      for (const worker of Object.values(cluster.workers ?? {})) {
        for (const keyId of run.destroyed) worker?.send({ forget: keyId });
      }
    } catch (error) {
      logger.error({ err: errorSummary(error) }, 'scheduled key work failed; will retry');
    } finally {
      schedulerRunning = false;
    }
  };
  const scheduler = setInterval(() => void (schedulerRun = runScheduler()), options.schedulerIntervalSeconds * 1000);
  scheduler.unref();
  // Work that fell due while the server was down is done at start.
  schedulerRun = runScheduler();

  // Graceful: stop accepting, let requests in flight finish (bounded by --drain-timeout), then
  // flush the audit trail and close the stores (instance.close), release the data dir, exit 0.
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(scheduler);
    const drainMs = drainTimeoutMs(options);
    logger.info({ drainTimeoutMs: drainMs }, 'stopping: draining requests in flight');
    // Workers get drainMs + WORKER_KILL_MS before they are killed (stopWorkers): the bound covers that.
    await runStopSteps(
      [
        ['draining requests and stopping workers', () => Promise.all([closeServers(drainMs, logger), stopWorkers(drainMs)])],
        ['waiting for the scheduler', async () => schedulerRun],
        ['closing the metrics listener', async () => opsServer && drainServer(opsServer, 0)],
        ['closing the stores', () => instance.close()],
        ['releasing the data dir', () => unlock()],
      ],
      drainMs + WORKER_KILL_MS + STOP_GRACE_MS,
      logger,
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.stdout.write(`listening on ${url}\n`);
}

let servers: Server[] = [];

const DEFAULT_DRAIN_TIMEOUT_SECONDS = 10;
const drainTimeoutMs = (options: Pick<ServeOptions, 'drainTimeoutSeconds'>): number =>
  (options.drainTimeoutSeconds ?? DEFAULT_DRAIN_TIMEOUT_SECONDS) * 1000;

/** Stops accepting and waits for requests in flight, at most `drainMs` (serve-ops.ts, drainServer). */
async function closeServers(drainMs: number, logger?: Logger): Promise<void> {
  await Promise.all(servers.map((server) => drainServer(server, drainMs, logger)));
}

const WORKER_KILL_MS = 5_000;

/**
 * Each worker drains on SIGTERM within the same bound; one that has not exited a few seconds
 * after it is killed, so that a stuck worker cannot hold the stop forever.
 */
async function stopWorkers(drainMs: number): Promise<void> {
  const workers = Object.values(cluster.workers ?? {});
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((done) => {
          if (!worker || worker.isDead()) return done();
          const deadline = setTimeout(() => worker.process.kill('SIGKILL'), drainMs + WORKER_KILL_MS);
          worker.once('exit', () => {
            clearTimeout(deadline);
            done();
          });
          worker.kill('SIGTERM');
        }),
    ),
  );
}

/** Replacements for parts of the request path (bench/unaudited-server.ts measures without the trail). */
export interface RequestHandlerOverrides {
  readonly audit?: RequestAuditor;
  readonly context?: ServiceContext;
  /** /healthz and /readyz (default: readiness checks over `instance`). */
  readonly ops?: OpsEndpoints;
}

/**
 * The HTTP request handler `strongroom serve` runs: /healthz and /readyz, the STS query protocol, and the KMS
 * JSON front door (with the admin API), each request's event recorded before it is answered.
 */
export function createRequestHandler(
  instance: Instance,
  options: ServeOptions,
  logger: Logger,
  overrides: RequestHandlerOverrides = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const context = overrides.context ?? instance.context;
  // The access key is read once per request: the SigV4 lookup's record (a fresh read, so a key
  // deactivated on any node is refused) is handed to authenticate with the verified request.
  const lookup = async (accessKeyId: string) => {
    const resolved = await instance.accessKeys.resolve(accessKeyId);
    if (!resolved) return undefined;
    const { secretAccessKey, ...credential } = resolved;
    return { secretAccessKey, credential };
  };
  const authenticate = (accessKeyId: string, sessionToken: string | undefined, credential: AccessKeyCredential | undefined) =>
    instance.accessKeys.authenticate(accessKeyId, sessionToken, context.now(), credential);
  // Each request's event, durable before its response (docs/audit.md).
  const audit: RequestAuditor = overrides.audit ?? {
    record: async (request) =>
      context.audit.record(
        await buildRequestEvent(context, request, { encryptionContextValues: options.auditEncryptionContextValues ?? false }),
      ),
  };
  const kms = createKmsHandler({
    context,
    verifier: new SigV4Verifier({ region: options.region, service: 'kms', requiredSignedHeaders: ['x-amz-target'], lookup }),
    authenticate,
    logger,
    audit,
  });
  const sts = createStsHandler({
    context,
    verifier: new SigV4Verifier({ region: options.region, service: 'sts', lookup }),
    authenticate,
    logger,
    audit,
  });
  // GET /healthz, /readyz (and /metrics' pointer to the metrics port) before the AWS protocols:
  // never signed, never audited. KMS and STS are POST only.
  const ops: OpsEndpoints = overrides.ops ?? { readiness: instanceReadiness(instance, logger) };
  return (req, res) => {
    if (req.method === 'GET' && handleOpsRequest(req, res, ops)) return;
    if (isStsRequest(req)) sts(req, res);
    else kms(req, res);
  };
}

async function startServer(options: ServeOptions, instance: Instance, logger: Logger, telemetry: ProcessTelemetry): Promise<number> {
  const handler = createRequestHandler(instance, options, logger, { ops: { readiness: telemetry.readiness } });
  // Requests are observed (metrics, access log) only when asked for: otherwise Node's own response class.
  const observed =
    telemetry.observers.metrics || telemetry.observers.accessLog ? { ServerResponse: observedResponseClass(telemetry.observers) } : {};
  const server = options.tlsCert
    ? createHttpsServer(
        { ...observed, cert: await readFile(options.tlsCert), key: await readFile(options.tlsKey as string) },
        handler,
      )
    : createHttpServer(observed, handler);
  // Bounded waits so a slow or idle client cannot hold a connection's resources forever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 65_000;
  servers.push(server);
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port, options.host, () => done());
  });
  return (server.address() as AddressInfo).port;
}

async function forkWorkers(options: ServeOptions, dataDir: string): Promise<number[]> {
  return forkServerWorkers(options.workers, { [WORKER_ENV]: JSON.stringify({ ...options, dataDir }) }, 'strongroom');
}

/**
 * Forks `count` cluster workers with `env` and resolves with the port each reports (a worker
 * sends `{ listening: port }` or `{ error }`). A worker that dies later stops the whole server.
 */
export async function forkServerWorkers(count: number, env: Record<string, string>, name: string): Promise<number[]> {
  const ports: Promise<number>[] = [];
  for (let index = 0; index < count; index++) {
    const worker = cluster.fork(env);
    ports.push(
      new Promise((done, fail) => {
        worker.once('message', (message: { listening?: number; error?: string }) => {
          if (message.listening !== undefined) done(message.listening);
          else fail(new Error(message.error ?? 'worker failed to start'));
        });
        worker.once('exit', (code) => fail(new Error(`worker exited with code ${code} during start`)));
      }),
    );
  }
  cluster.on('exit', (worker, code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') {
      process.stderr.write(`${name}: worker ${worker.process.pid} died (${signal ?? code}); stopping\n`);
      process.kill(process.pid, 'SIGTERM');
    }
  });
  return Promise.all(ports);
}

async function runWorker(options: ServeOptions): Promise<void> {
  const logger = pino({ level: options.logLevel }, pino.destination(2));
  try {
    const instance = await openInstance({
      dataDir: options.dataDir,
      region: options.region,
      auditMode: auditModeFor(options),
      xks: await xksOptions(options),
      quotas: quotaOptions(options),
      ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}),
    });
    const telemetry = await processTelemetry(options, instance, logger);
    await serveMetricsToPrimary(telemetry);
    const port = await startServer(options, instance, logger, telemetry);
    // SIGTERM from the primary; SIGINT too, as Ctrl-C reaches every process of the group.
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      const drainMs = drainTimeoutMs(options);
      await runStopSteps(
        [
          ['draining requests', () => closeServers(drainMs, logger)],
          ['closing the stores', () => instance.close()],
        ],
        drainMs + STOP_GRACE_MS,
        logger,
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('message', (message: { forget?: string }) => {
      if (typeof message?.forget === 'string') instance.context.keyStore.forget(message.forget);
    });
    process.send?.({ listening: port });
  } catch (error) {
    process.send?.({ error: operatorMessage(error, DATABASE_SETTING) });
    process.exit(1);
  }
}

function printWelcome(args: { instance: Instance; url: string; created: boolean; region: string }): void {
  const { credentials } = dataDirPaths(args.instance.dataDir);
  const lines = [
    `Strongroom: data dir ${args.instance.dataDir}, account ${args.instance.context.accountId}, region ${args.region}`,
    args.created
      ? `Created the administrator's access key in ${credentials} (profile "default"; keep it secret).`
      : `Administrator credentials: ${credentials} (profile "default").`,
    'Point the AWS CLI and SDKs here with:',
    `  export AWS_SHARED_CREDENTIALS_FILE=${credentials}`,
    `  export AWS_REGION=${args.region}`,
    `  export AWS_ENDPOINT_URL_KMS=${args.url}`,
    `  (AWS CLI older than 2.13 ignores AWS_ENDPOINT_URL_KMS: pass --endpoint-url ${args.url})`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

const formatHost = (host: string): string => (host.includes(':') ? `[${host}]` : host);

