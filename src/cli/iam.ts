/**
 * `strongroom iam …`: the identity administration API (service/admin) from the command line.
 * Requests go to a running server, SigV4-signed like any AWS client's (`--endpoint`), or, with
 * `--local`, straight to a data directory no server holds, acting as its administrator.
 * Data comes out as JSON on stdout; failures as `error: <ErrorName>: <message>` on stderr, exit 1.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { invokeAdminOperation } from '../service/admin/index.ts';
import { buildRequestEvent } from '../service/audit-events.ts';
import { KmsError, isKmsError } from '../service/errors.ts';
import { DataDirLockedError, lockDataDir } from './data-dir-lock.ts';
import { NodeSha256 } from './node-sha256.ts';
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
  if (!existsSync(paths.rootKey)) {
    throw new Error(`${dataDir} is not a Strongroom data directory (no root.key); start a server on it once first`);
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

// ---------------------------------------------------------------------------------------------
// Output and shared command plumbing

/** Dates as ISO 8601 (epoch seconds over HTTP, Date objects locally); policy documents as JSON. */
export function forDisplay(value: unknown, key = ''): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'number' && key.endsWith('Date')) return new Date(value * 1000).toISOString();
  if (typeof value === 'string' && key.endsWith('PolicyDocument')) return parsedOr(value);
  if (Array.isArray(value)) return value.map((element) => forDisplay(element));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([name, member]) => [name, forDisplay(member, name)]));
  }
  return value;
}

function parsedOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(forDisplay(value), null, 2)}\n`);
}

/** Runs an action, printing failures as `error: <ErrorName>: <message>` with exit code 1. */
export function run<Args extends unknown[]>(action: (...args: Args) => Promise<void>): (...args: Args) => Promise<void> {
  return async (...args: Args) => {
    try {
      await action(...args);
    } catch (error) {
      const text =
        error instanceof AdminCallError ? `${error.errorName}: ${error.message}` : error instanceof Error ? error.message : String(error);
      process.stderr.write(`error: ${text}\n`);
      process.exit(1);
    }
  };
}

/** The connection options, on a command whose subcommands read them with optsWithGlobals(). */
export function withConnectionOptions(command: Command): Command {
  return command
    .option('--endpoint <url>', `the server (default: AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, else ${DEFAULT_ENDPOINT})`)
    .option('--region <region>', 'the region requests are signed for (default: AWS_REGION, else us-east-1)')
    .option('--profile <name>', 'credentials profile (default: AWS_PROFILE, else "default")')
    .option('--data-dir <dir>', 'the data directory: its credentials file is the last resort; with --local, the one opened', './data')
    .option('--local', 'open --data-dir directly (no server may be running on it) and act as its administrator')
    .exitOverride(usageExit);
}

/** Usage errors exit 2; help and version exit 0. */
function usageExit(error: { exitCode: number; code: string }): never {
  const informational = error.code === 'commander.helpDisplayed' || error.code === 'commander.help' || error.code === 'commander.version';
  process.exit(informational ? error.exitCode : 2);
}

/** `k=v`, repeatable: collects into a list of pairs. */
export function keyValue(value: string, previous: [string, string][] = []): [string, string][] {
  const equals = value.indexOf('=');
  if (equals <= 0) throw new InvalidArgumentError('expected key=value');
  return [...previous, [value.slice(0, equals), value.slice(equals + 1)]];
}

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

/** A policy document given as JSON text, `@file`, or `-` for stdin. */
async function documentFrom(value: string): Promise<string> {
  if (value === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  if (value.startsWith('@')) return readFile(value.slice(1), 'utf8');
  return value;
}

const tagsOf = (pairs: [string, string][] | undefined) => pairs?.map(([Key, Value]) => ({ Key, Value }));

// ---------------------------------------------------------------------------------------------
// Commands

type Options = ConnectionOptions & Record<string, unknown>;

/** Pages through a List operation as the AWS CLI does, concatenating `member`. */
async function listAll(options: ConnectionOptions, operation: string, input: object, member: string): Promise<object> {
  const items: unknown[] = [];
  let marker: string | undefined;
  do {
    const page = await callAdmin(options, operation, { ...input, ...(marker ? { Marker: marker } : {}) });
    items.push(...((page[member] as unknown[]) ?? []));
    marker = page.IsTruncated ? (page.Marker as string) : undefined;
  } while (marker);
  return { [member]: items };
}

export function registerIamCommands(program: Command): void {
  const iam = withConnectionOptions(program.command('iam').description('users, roles, their policies and access keys (IAM operations)'));
  const action = (handler: (options: Options, ...args: string[]) => Promise<object | undefined>) =>
    run(async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const output = await handler(command.optsWithGlobals() as Options, ...(args.slice(0, -2) as string[]));
      if (output && Object.keys(output).length > 0) printJson(output);
    });
  const tagOption = () => new Option('--tag <key=value>', 'a tag (repeatable)').argParser(keyValue);
  const trustOption = () =>
    new Option('--trust-policy <json|@file|->', 'who may assume the role (JSON, @file, or - for stdin)').makeOptionMandatory();
  const tags = (o: Options) => tagsOf(o.tag as [string, string][] | undefined);

  iam.command('whoami').description('the caller: account, ARN, user id').action(action((o) => callAdmin(o, 'GetCallerIdentity', {})));

  iam.command('create-user <name>').description('create a user').addOption(tagOption())
    .action(action((o, name) => callAdmin(o, 'CreateUser', { UserName: name, Tags: tags(o) })));
  iam.command('get-user [name]').description('a user (default: the caller)')
    .action(action((o, name) => callAdmin(o, 'GetUser', name === undefined ? {} : { UserName: name })));
  iam.command('list-users').description('every user').action(action((o) => listAll(o, 'ListUsers', {}, 'Users')));
  iam.command('delete-user <name>').description('delete a user (its access keys and policies first)')
    .action(action((o, name) => callAdmin(o, 'DeleteUser', { UserName: name })));

  iam.command('create-role <name>').description('create a role').addOption(trustOption())
    .addOption(new Option('--max-session-duration <seconds>', '3600..43200 (default 3600)').argParser(integer))
    .addOption(tagOption())
    .action(action(async (o, name) => callAdmin(o, 'CreateRole', {
      RoleName: name,
      AssumeRolePolicyDocument: await documentFrom(o.trustPolicy as string),
      MaxSessionDuration: o.maxSessionDuration,
      Tags: tags(o),
    })));
  iam.command('get-role <name>').description('a role').action(action((o, name) => callAdmin(o, 'GetRole', { RoleName: name })));
  iam.command('list-roles').description('every role').action(action((o) => listAll(o, 'ListRoles', {}, 'Roles')));
  iam.command('delete-role <name>').description('delete a role (its policies first)')
    .action(action((o, name) => callAdmin(o, 'DeleteRole', { RoleName: name })));
  iam.command('update-assume-role-policy <name>').description("replace a role's trust policy").addOption(trustOption())
    .action(action(async (o, name) => callAdmin(o, 'UpdateAssumeRolePolicy', { RoleName: name, PolicyDocument: await documentFrom(o.trustPolicy as string) })));

  for (const [kind, member] of [['user', 'UserName'], ['role', 'RoleName']] as const) {
    const Kind = kind === 'user' ? 'User' : 'Role';
    iam.command(`tag-${kind} <${kind}>`).description('add or replace tags').addOption(tagOption().makeOptionMandatory())
      .action(action((o, target) => callAdmin(o, `Tag${Kind}`, { [member]: target, Tags: tags(o) })));
    iam.command(`untag-${kind} <${kind}> <keys...>`).description('remove tags by key')
      .action(action((o, target, ...keys) => callAdmin(o, `Untag${Kind}`, { [member]: target, TagKeys: keys.flat() })));
    iam.command(`put-${kind}-policy <${kind}> <policy>`).description(`create or replace an inline policy of a ${kind}`)
      .addOption(new Option('--document <json|@file|->', 'the policy (JSON, @file, or - for stdin)').makeOptionMandatory())
      .action(action(async (o, target, policy) =>
        callAdmin(o, `Put${Kind}Policy`, { [member]: target, PolicyName: policy, PolicyDocument: await documentFrom(o.document as string) })));
    iam.command(`get-${kind}-policy <${kind}> <policy>`).description(`an inline policy of a ${kind}`)
      .action(action((o, target, policy) => callAdmin(o, `Get${Kind}Policy`, { [member]: target, PolicyName: policy })));
    iam.command(`list-${kind}-policies <${kind}>`).description(`the inline policy names of a ${kind}`)
      .action(action((o, target) => listAll(o, `List${Kind}Policies`, { [member]: target }, 'PolicyNames')));
    iam.command(`delete-${kind}-policy <${kind}> <policy>`).description(`delete an inline policy of a ${kind}`)
      .action(action((o, target, policy) => callAdmin(o, `Delete${Kind}Policy`, { [member]: target, PolicyName: policy })));
  }

  const named = (user: unknown) => (user === undefined ? {} : { UserName: user });
  iam.command('create-access-key [user]').description('a new access key (default: for the caller); the secret is shown only now')
    .action(action((o, user) => callAdmin(o, 'CreateAccessKey', named(user))));
  iam.command('list-access-keys [user]').description("access key ids and states (default: the caller's); never secrets")
    .action(action((o, user) => listAll(o, 'ListAccessKeys', named(user), 'AccessKeyMetadata')));
  iam.command('update-access-key <id>').description('activate or deactivate an access key')
    .addOption(new Option('--status <status>', 'Active or Inactive').choices(['Active', 'Inactive']).makeOptionMandatory())
    .option('--user-name <user>', "the key's user (default: the caller)")
    .action(action((o, id) => callAdmin(o, 'UpdateAccessKey', { AccessKeyId: id, Status: o.status, ...named(o.userName) })));
  iam.command('delete-access-key <id>').description('delete an access key')
    .option('--user-name <user>', "the key's user (default: the caller)")
    .action(action((o, id) => callAdmin(o, 'DeleteAccessKey', { AccessKeyId: id, ...named(o.userName) })));
  iam.command('get-access-key-last-used <id>').description('when and where an access key was last used')
    .action(action((o, id) => callAdmin(o, 'GetAccessKeyLastUsed', { AccessKeyId: id })));
}
