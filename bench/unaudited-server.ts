/**
 * Benchmark-only: Strongroom with the audit trail turned into a no-op, the "audit off" side of
 * bench/audit.sh. The product has no switch that turns auditing off, and must not get one; this
 * program is not part of it (nothing under src/ or bin/ imports it).
 *
 *   node --import tsx bench/unaudited-server.ts --data-dir DIR --port P [--host 127.0.0.1] \
 *     [--workers 2] [--region us-east-1] [--log-level warn]
 *
 * It runs the production request path — `createRequestHandler` from src/cli/serve.ts, the very
 * function `strongroom serve` uses, on an instance opened by `openInstance` from the same data-dir
 * layout (root key file, SQLite metadata store, `credentials` file for the administrator made at
 * first start) — with two overrides only:
 *
 * - the ServiceContext's `audit` is a no-op: probe and record resolve at once, lastCryptoUse finds
 *   nothing, trackingStart is the epoch;
 * - the RequestAuditor records nothing (no event is built, serialised, posted or committed).
 *
 * The instance's real audit log is closed right after opening (no writer thread, no digest timer).
 * As `serve`: the primary takes the data-dir lock, bootstraps the administrator and forks
 * `--workers` cluster workers (each opens its own instance and listens on the shared port; with
 * --workers 1 the primary serves), then prints `listening on http://HOST:PORT` (bench/lib.sh waits
 * for that line). HTTP only, and no background scheduler (no key falls due during a bench).
 * SIGTERM / SIGINT stop it.
 */
import cluster from 'node:cluster';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { lockDataDir } from '../src/cli/data-dir-lock.ts';
import { bootstrapAdministrator, dataDirPaths, openInstance, type Instance } from '../src/cli/instance.ts';
import { createRequestHandler, forkServerWorkers, type RequestHandlerOverrides, type ServeOptions } from '../src/cli/serve.ts';
import type { AuditTrail } from '../src/service/context.ts';
import type { RequestAuditor } from '../src/transports/kms-json/handler.ts';

const WORKER_ENV = 'STRONGROOM_BENCH_UNAUDITED_OPTIONS';

/** The trail as a no-op: nothing is probed, recorded or read. */
const noAuditTrail: AuditTrail = {
  probe: async () => {},
  record: async () => {},
  lastCryptoUse: async () => undefined,
  trackingStart: async () => new Date(0),
};
const noRequestAuditor: RequestAuditor = { record: async () => {} };

function parseOptions(): ServeOptions {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      region: { type: 'string', default: 'us-east-1' },
      workers: { type: 'string', default: '1' },
      'log-level': { type: 'string', default: 'warn' },
    },
  });
  if (!values['data-dir']) {
    process.stderr.write('unaudited-server: --data-dir is required\n');
    process.exit(2);
  }
  const port = Number(values.port);
  const workers = Number(values.workers);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || !Number.isInteger(workers) || workers < 1 || workers > 256) {
    process.stderr.write('unaudited-server: --port must be 0-65535 and --workers 1-256\n');
    process.exit(2);
  }
  return {
    dataDir: resolve(values['data-dir']),
    host: values.host as string,
    port,
    region: values.region as string,
    workers,
    schedulerIntervalSeconds: 60,
    logLevel: values['log-level'] as string,
  };
}

/** One serving process: its own instance, the production handler with the no-op audit, the shared port. */
async function startServing(options: ServeOptions): Promise<{ port: number; stop: () => Promise<void> }> {
  const logger = pino({ level: options.logLevel }, pino.destination(2));
  const instance: Instance = await openInstance({ dataDir: options.dataDir, region: options.region });
  // openInstance opened the real trail: close it, so that no writer thread or digest timer runs.
  // (instance.close() closes it again, which is a no-op.)
  await instance.audit.close();
  const overrides: RequestHandlerOverrides = {
    context: { ...instance.context, audit: noAuditTrail },
    audit: noRequestAuditor,
  };
  const server: Server = createServer(createRequestHandler(instance, options, logger, overrides));
  // As serve's startServer.
  server.requestTimeout = 30_000;
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port, options.host, () => done());
  });
  const stop = async () => {
    await new Promise<void>((done) => {
      server.close(() => done());
      server.closeIdleConnections();
    });
    await instance.close();
  };
  return { port: (server.address() as AddressInfo).port, stop };
}

async function runWorker(options: ServeOptions): Promise<void> {
  try {
    const { port, stop } = await startServing(options);
    process.on('SIGTERM', async () => {
      await stop();
      process.exit(0);
    });
    process.send?.({ listening: port });
  } catch (error) {
    process.send?.({ error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
}

async function runPrimary(options: ServeOptions): Promise<void> {
  process.umask(0o077);
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const unlock = await lockDataDir(dataDirPaths(options.dataDir), options.dataDir);
  // The administrator and its credentials file, as serve makes them at first start.
  const instance = await openInstance({ dataDir: options.dataDir, region: options.region });
  await instance.audit.close();
  await bootstrapAdministrator(instance);

  let port: number;
  let stopServing: (() => Promise<void>) | undefined;
  if (options.workers <= 1) {
    ({ port, stop: stopServing } = await startServing(options));
  } else {
    port = (await forkServerWorkers(options.workers, { [WORKER_ENV]: JSON.stringify(options) }, 'unaudited-server'))[0];
  }

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.all([
      stopServing?.(),
      ...Object.values(cluster.workers ?? {}).map(
        (worker) =>
          new Promise<void>((done) => {
            if (!worker || worker.isDead()) return done();
            worker.once('exit', () => done());
            worker.kill('SIGTERM');
          }),
      ),
    ]);
    await instance.close();
    await unlock();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  process.stdout.write(`Strongroom (bench, audit trail OFF): data dir ${options.dataDir}, ${options.workers} worker(s)\n`);
  process.stdout.write(`listening on http://${host}:${port}\n`);
}

if (cluster.isWorker) await runWorker(JSON.parse(process.env[WORKER_ENV] as string) as ServeOptions);
else await runPrimary(parseOptions());
