/**
 * How `strongroom iam` and `strongroom policy` reach the admin API: over HTTP, SigV4-signed like
 * any AWS client's request (`--endpoint`), or with `--local` straight on a data directory no
 * server holds, as its administrator (each call recorded in the audit trail like a request).
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { invokeAdminOperation } from '../service/admin/index.ts';
import { buildRequestEvent } from '../service/audit-events.ts';
import { KmsError, isKmsError } from '../service/errors.ts';
import { DataDirLockedError, lockDataDir } from './data-dir-lock.ts';
import { NodeSha256 } from '../crypto/node-sha256.ts';
import { rootKeyPaths } from './root-key.ts';
import { adminPrincipalArn, bootstrapAdministratorPrincipal, dataDirPaths, openInstance } from './instance.ts';

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:7373';

/** How to reach the service: options shared by `iam` and `policy`. */
export interface ConnectionOptions {
  endpoint?: string;
  region?: string;
  profile?: string;
  dataDir: string;
  local?: boolean;
}

/** A failure the service answered, printed as `error: <name>: <message>`. */
export class AdminCallError extends Error {
  constructor(readonly errorName: string, message: string) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// SigV4 over HTTP

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The `[section]`s of an AWS shared-credentials file: `key = value` lines, `#`/`;` comments. */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1], current);
      continue;
    }
    const equals = line.indexOf('=');
    if (current && equals > 0) current.set(line.slice(0, equals).trim().toLowerCase(), line.slice(equals + 1).trim());
  }
  return sections;
}

async function profileCredentials(file: string, profile: string): Promise<Credentials | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const section = text === undefined ? undefined : parseIni(text).get(profile);
  const accessKeyId = section?.get('aws_access_key_id');
  const secretAccessKey = section?.get('aws_secret_access_key');
  if (!accessKeyId || !secretAccessKey) return undefined;
  const sessionToken = section?.get('aws_session_token');
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

/**
 * AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); else the profile (--profile,
 * AWS_PROFILE, "default") of AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials; else the
 * administrator's <data-dir>/credentials. A profile asked for by name must exist.
 */
async function resolveCredentials(options: ConnectionOptions): Promise<Credentials> {
  const env = process.env;
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN: sessionToken } = env;
  if (accessKeyId && secretAccessKey) return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  const named = options.profile ?? env.AWS_PROFILE;
  const sharedFile = env.AWS_SHARED_CREDENTIALS_FILE ?? join(homedir(), '.aws', 'credentials');
  const shared = await profileCredentials(sharedFile, named ?? 'default');
  if (shared) return shared;
  if (named !== undefined) throw new Error(`profile "${named}" has no credentials in ${sharedFile}`);
  const dataDirFile = dataDirPaths(resolve(options.dataDir)).credentials;
  const administrator = await profileCredentials(dataDirFile, 'default');
  if (administrator) return administrator;
  throw new Error(
    `no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --profile, or point --data-dir at a data directory with a credentials file (${dataDirFile} has none)`,
  );
}

const regionOf = (options: ConnectionOptions): string => options.region ?? process.env.AWS_REGION ?? 'us-east-1';

async function callRemote(options: ConnectionOptions, operation: string, input: object): Promise<Record<string, unknown>> {
  const endpoint = new URL(options.endpoint ?? process.env.AWS_ENDPOINT_URL_KMS ?? process.env.AWS_ENDPOINT_URL ?? DEFAULT_ENDPOINT);
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new Error(`--endpoint must be an http(s) URL`);
  // Loaded here, not at start: `strongroom serve` never signs.
  const [{ SignatureV4 }, { HttpRequest }] = await Promise.all([import('@smithy/signature-v4'), import('@smithy/protocol-http')]);
  const signer = new SignatureV4({
    service: 'kms',
    region: regionOf(options),
    credentials: await resolveCredentials(options),
    sha256: NodeSha256,
    applyChecksum: false,
  });
  const body = JSON.stringify(input);
  const signed = await signer.sign(
    new HttpRequest({
      method: 'POST',
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      port: endpoint.port ? Number(endpoint.port) : undefined,
      path: endpoint.pathname || '/',
      headers: {
        host: endpoint.host,
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `StrongroomAdmin.${operation}`,
      },
      body,
    }),
  );
  const reply = await send(endpoint, signed.headers, body);
  const parsed = reply.text === '' ? {} : parsedOr(reply.text);
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${endpoint.origin} answered HTTP ${reply.status} with no JSON`);
  if (reply.status !== 200) {
    const error = parsed as Record<string, unknown>;
    throw new AdminCallError(String(error.__type ?? `HTTP ${reply.status}`), String(error.message ?? error.Message ?? ''));
  }
  return parsed as Record<string, unknown>;
}

function send(endpoint: URL, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  const request = endpoint.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((done, fail) => {
    const outgoing = request(
      endpoint,
      { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, timeout: 30_000 },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => done({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', fail);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer from ${endpoint.origin} in 30 s`)));
    outgoing.on('error', (error: NodeJS.ErrnoException) =>
      fail(error.code === 'ECONNREFUSED' ? new Error(`cannot reach ${endpoint.origin}: is the server running? (${error.code})`) : error),
    );
    outgoing.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// --local: the data directory itself

async function callLocal(options: ConnectionOptions, operation: string, input: object): Promise<Record<string, unknown>> {
  const dataDir = resolve(options.dataDir);
  const paths = dataDirPaths(dataDir);
  if (!existsSync(paths.rootKey) && !existsSync(rootKeyPaths(dataDir).hsmConfig)) {
    throw new Error(`${dataDir} is not a Strongroom data directory (no root key); start a server on it once first`);
  }
  // Anything this process creates in the data directory is for its owner only, as with serve.
  process.umask(0o077);
  let unlock: () => Promise<void>;
  try {
    unlock = await lockDataDir(paths, dataDir);
  } catch (error) {
    if (!(error instanceof DataDirLockedError)) throw error;
    const pid = (await readFile(paths.pid, 'utf8').catch(() => '')).trim();
    throw new Error(
      `data directory ${dataDir} is held by a running Strongroom server${/^\d+$/.test(pid) ? ` (pid ${pid})` : ''}; ` +
        'send the request through it with --endpoint instead of --local, or stop it first',
    );
  }
  try {
    const instance = await openInstance({ dataDir, region: regionOf(options), auditMode: 'inline' });
    try {
      // As every server start does: the administrator exists and keeps AdministratorAccess.
      await bootstrapAdministratorPrincipal(instance);
      const context = instance.context;
      const caller = { principalArn: adminPrincipalArn(context.accountId), accessKeyId: 'local', decisions: [] };
      let output: object | undefined;
      let failure: unknown;
      try {
        output = await invokeAdminOperation(operation, context, input, caller);
      } catch (error) {
        failure = error;
      }
      // A local call is a request like any other: it has its event, durable before the answer.
      await context.audit.record(
        await buildRequestEvent(
          context,
          {
            eventSource: 'iam.amazonaws.com',
            eventName: operation,
            time: context.now(),
            requestId: randomUUID(),
            sourceIp: 'local',
            userAgent: 'strongroom-cli (--local)',
            caller,
            input,
            output,
            error: isKmsError(failure) ? failure : failure === undefined ? undefined : new KmsError('KMSInternalException', 'An internal error occurred.'),
          },
          { encryptionContextValues: false },
        ),
      );
      if (failure !== undefined) throw failure;
      return output as Record<string, unknown>;
    } finally {
      await instance.close();
    }
  } finally {
    await unlock();
  }
}

/** Calls one admin operation over HTTP or, with --local, in-process. */
export async function callAdmin(options: ConnectionOptions, operation: string, input: object): Promise<Record<string, unknown>> {
  try {
    return await (options.local ? callLocal(options, operation, input) : callRemote(options, operation, input));
  } catch (error) {
    if (isKmsError(error)) throw new AdminCallError(error.errorName, error.message);
    throw error;
  }
}

/** JSON text parsed, or the text itself when it is not JSON. */
export function parsedOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
