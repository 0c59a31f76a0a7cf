/**
 * `strongroom iam …`: the identity administration API (service/admin) from the command line,
 * reached through admin-client.ts. Data comes out as JSON on stdout; failures as
 * `error: <ErrorName>: <message>` on stderr, exit 1.
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AdminCallError, DEFAULT_ENDPOINT, callAdmin, parsedOr, type ConnectionOptions } from './admin-client.ts';

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
