import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KMSClient, type KMSClientConfig } from '@aws-sdk/client-kms';

const repoRoot = resolve(import.meta.dirname, '../..');
export const STRONGROOM_BIN = join(repoRoot, 'bin/strongroom.mjs');

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface RunningServer {
  endpoint: string;
  region: string;
  dataDir: string;
  credentials: Credentials;
  process: ChildProcess;
  /** The operators' listener (http://host:port), when started with --metrics-port. */
  metricsEndpoint?: string;
  output: () => string;
  kms: (overrides?: Partial<ConstructorParameters<typeof KMSClient>[0]>) => KMSClient;
  /** SIGTERM and wait for exit (graceful). */
  stop: () => Promise<void>;
  /** SIGKILL and wait for exit (a crash). */
  kill: () => Promise<void>;
}

/** Longer than the server's own stop bound (10 s drain + 15 s grace by default). */
const STOP_BOUND_MS = 45_000;
/** A request the server never answers fails its test by name instead of holding the file to its 10-minute limit. */
const REQUEST_TIMEOUT_MS = 120_000;

function boundedRequests(handler: KMSClientConfig['requestHandler']): KMSClientConfig['requestHandler'] {
  if (handler === undefined) return { requestTimeout: REQUEST_TIMEOUT_MS };
  // A handler instance is the test's own choice; options are merged.
  if (typeof (handler as { handle?: unknown }).handle === 'function') return handler;
  return { requestTimeout: REQUEST_TIMEOUT_MS, ...(handler as object) } as KMSClientConfig['requestHandler'];
}

export async function makeDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'strongroom-test-'));
}

export async function removeDataDir(dataDir: string): Promise<void> {
  await rm(dataDir, { recursive: true, force: true });
}

export function parseCredentialsFile(text: string): Credentials {
  const accessKeyId = /aws_access_key_id\s*=\s*(\S+)/.exec(text)?.[1];
  const secretAccessKey = /aws_secret_access_key\s*=\s*(\S+)/.exec(text)?.[1];
  if (!accessKeyId || !secretAccessKey) throw new Error('credentials file lacks keys');
  return { accessKeyId, secretAccessKey };
}

/**
 * Starts a real `strongroom serve` process on a loopback port picked by the OS and waits for its
 * "listening on" line. Every test server is a separate process, as a user would run it.
 */
export async function startServer(
  options: { dataDir?: string; region?: string; args?: string[]; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RunningServer> {
  const dataDir = options.dataDir ?? (await makeDataDir());
  const region = options.region ?? 'us-east-1';
  const child = spawn(
    process.execPath,
    [STRONGROOM_BIN, 'serve', '--data-dir', dataDir, '--port', '0', '--region', region, '--log-level', 'warn', ...(options.args ?? [])],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], ...(options.env ? { env: { ...process.env, ...options.env } } : {}) },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));

  const endpoint = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => {
      // A server that never came up must not outlive the test (it would keep the runner waiting).
      child.kill('SIGKILL');
      fail(new Error(`server did not start in time:\n${output}`));
    }, options.timeoutMs ?? 30_000);
    const check = () => {
      const match = /listening on (https?:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        done(match[1]);
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`server exited with code ${code} before listening:\n${output}`));
    });
  });
  const credentials = parseCredentialsFile(await readFile(join(dataDir, 'credentials'), 'utf8'));
  const clients: KMSClient[] = [];
  const stopWith = async (signal: NodeJS.Signals) => {
    for (const client of clients) client.destroy();
    const running = child.exitCode === null && child.signalCode === null;
    if (running) child.kill(signal);
    // The server bounds its own stop (drain + grace, then exit 1 naming the step that hung): one
    // still alive well after that is a bug to report with its output, never a test run held forever.
    let timer: NodeJS.Timeout | undefined;
    const stuck = await Promise.race([exited.then(() => false), new Promise<boolean>((done) => (timer = setTimeout(() => done(true), STOP_BOUND_MS)))]);
    clearTimeout(timer);
    if (stuck) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`server did not exit within ${STOP_BOUND_MS / 1000} s of ${signal}:\n${output}`);
    }
    if (running && signal === 'SIGTERM' && child.exitCode !== 0) {
      // Not this test's failure, but never silent: CI's log shows why the stop was not clean.
      process.stderr.write(`[test support] server exited with ${child.exitCode ?? child.signalCode} on SIGTERM:\n${output}\n`);
    }
  };
  return {
    endpoint,
    region,
    dataDir,
    credentials,
    process: child,
    metricsEndpoint: /metrics on (http:\/\/\S+)\/metrics/.exec(output)?.[1],
    output: () => output,
    kms: (overrides = {}) => {
      const client = new KMSClient({ endpoint, region, credentials, maxAttempts: 1, ...overrides, requestHandler: boundedRequests(overrides.requestHandler) });
      clients.push(client);
      return client;
    },
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
  };
}
