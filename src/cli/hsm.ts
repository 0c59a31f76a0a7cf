/**
 * `strongroom hsm …`: HSM clusters (docs/hsm-cluster.md), and `strongroom hsm-agent` (hsm-agent.ts).
 *
 *   hsm cluster create [--cluster-id ID] --member-name N (--module LIB (--token-label L | --slot S) --pin-file F | --agent HOST:PORT --tls-ca … --tls-cert … --tls-key …)
 *                      --so-pin-file F
 *   hsm cluster add-member ID --member-name N (--module LIB … --pin-file F | --agent HOST:PORT --tls-ca … --tls-cert … --tls-key …)
 *                             --so-pin-file F --source-so-pin-file F [--source MEMBER]
 *   hsm cluster remove-member ID NAME [--keep-objects] · hsm cluster status ID · hsm cluster list
 *   hsm backup ID --out FILE · hsm restore ID --in FILE [--member NAME]
 *
 * PINs come from files (first line) or the environment (STRONGROOM_HSM_PIN, STRONGROOM_HSM_SO_PIN,
 * STRONGROOM_HSM_SOURCE_SO_PIN), never from the command line. Output: JSON on stdout; failures:
 * `error: <message>` on stderr, exit 1; a command that did only part of its work (remove-member
 * whose token keeps objects) prints its result and the error, exit 2.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { SecretBytes } from '../crypto/secret-bytes.ts';
import {
  HsmCatalog,
  addMember,
  backupCluster,
  clusterStatus,
  createCluster,
  listClusters,
  restoreCluster,
  type MemberOptions,
} from './hsm-cluster.ts';
import { readPin, registerHsmAgentCommand } from './hsm-agent.ts';
import { IncompleteCommandError, removeMember } from './hsm-remove-member.ts';

function integerIn(min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return parsed;
  };
}

function hostPort(value: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) throw new InvalidArgumentError('must be HOST:PORT');
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

const dataDir = (): Option => new Option('--data-dir <dir>', 'the data directory').default('./data');
const database = (): Option =>
  new Option('--database <url>', "the nodes' shared PostgreSQL (postgres://…), when serve runs with --database; default: the data directory's SQLite").env(
    'STRONGROOM_DATABASE',
  );

/** The storage options every hsm command takes. */
const storageOptions = (command: Command): Command => command.addOption(dataDir()).addOption(database());

function memberOptions(command: Command, withAgent: boolean): Command {
  command
    .requiredOption('--member-name <name>', 'the member, as the cluster calls it')
    .option('--module <path>', 'in-process member: the PKCS#11 library')
    .option('--token-label <label>', 'in-process member: the token, by label')
    .addOption(new Option('--slot <id>', 'in-process member: the token, by slot id').argParser(integerIn(0, 2 ** 31)))
    .addOption(new Option('--sessions <n>', 'in-process member: PKCS#11 sessions in its pool').argParser(integerIn(1, 1024)))
    .option('--inline-calls', 'in-process member: encrypt/decrypt on the calling thread (for a token computing in-process, e.g. SoftHSM; never a network HSM)')
    .option('--pin-file <file>', "in-process member: the crypto user's PIN (default: $STRONGROOM_HSM_PIN)")
    .option('--so-pin-file <file>', "the member's Security Officer PIN, for the key ceremony (default: $STRONGROOM_HSM_SO_PIN)");
  if (withAgent) {
    command
      .addOption(new Option('--agent <host:port>', 'remote member: the hsm-agent').argParser(hostPort))
      .option('--servername <name>', "remote member: the name its certificate carries (default: the host)")
      .option('--tls-ca <file>', 'remote member: PEM CA of the agent certificate')
      .option('--tls-cert <file>', "remote member: this node's PEM client certificate")
      .option('--tls-key <file>', "remote member: this node's PEM client key");
  }
  return storageOptions(command);
}

/** Runs an action with the data directory's catalog, printing its result as JSON. */
function run<Args extends unknown[]>(action: (catalog: HsmCatalog, ...args: Args) => Promise<unknown>) {
  return async (...args: Args): Promise<void> => {
    const command = args[args.length - 1] as Command;
    let catalog: HsmCatalog | undefined;
    try {
      const { dataDir, database } = command.opts() as { dataDir: string; database?: string };
      catalog = await HsmCatalog.open(dataDir, database);
      process.stdout.write(`${JSON.stringify(await action(catalog, ...args), null, 2)}\n`);
    } catch (error) {
      if (error instanceof IncompleteCommandError) {
        // Part done: what was done on stdout, what was not on stderr.
        process.stdout.write(`${JSON.stringify(error.result, null, 2)}\n`);
        process.stderr.write(`error: ${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      const code = (error as { code?: unknown }).code;
      process.stderr.write(`error: ${typeof code === 'string' ? `${code}: ` : ''}${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    } finally {
      await catalog?.close();
    }
  };
}

async function pinIfInProcess(options: MemberOptions & { pinFile?: string }): Promise<SecretBytes | undefined> {
  return options.module ? readPin(options.pinFile, 'STRONGROOM_HSM_PIN') : undefined;
}

export function registerHsmCommands(program: Command): void {
  registerHsmAgentCommand(program);
  const hsm = program.command('hsm').description('HSM clusters: members, key ceremony, backups (docs/hsm-cluster.md)');
  const cluster = hsm.command('cluster').description('define and inspect HSM clusters');

  memberOptions(cluster.command('create').description('a cluster of one member; the cluster wrapping key is generated inside it'), true)
    .option('--cluster-id <id>', 'the cluster id (default: cluster-<11 random characters>)')
    .addOption(new Option('--min-replicas <n>', 'members that must hold a new key before it is created').default(1).argParser(integerIn(1, 32)))
    .addOption(new Option('--request-timeout-ms <ms>', 'per member call, before failing over').default(2000).argParser(integerIn(50, 600_000)))
    .action(
      run(async (catalog, options: MemberOptions & { clusterId?: string; minReplicas: number; requestTimeoutMs: number; pinFile?: string; soPinFile?: string }) => {
        const pin = await pinIfInProcess(options);
        const soPin = await readPin(options.soPinFile, 'STRONGROOM_HSM_SO_PIN');
        try {
          return await createCluster(catalog, options, pin, soPin);
        } finally {
          pin?.zero();
          soPin.zero();
        }
      }),
    );

  memberOptions(cluster.command('add-member').description('install the cluster wrapping key in a new member (ceremony) and copy every key to it'), true)
    .argument('<cluster-id>')
    .option('--source <member>', 'the active member the cluster key is taken from (default: the first active)')
    .option('--source-so-pin-file <file>', "the source member's SO PIN (default: $STRONGROOM_HSM_SOURCE_SO_PIN)")
    .action(
      run(async (catalog, clusterId: string, options: MemberOptions & { source?: string; pinFile?: string; soPinFile?: string; sourceSoPinFile?: string }) => {
        const pin = await pinIfInProcess(options);
        const soPin = await readPin(options.soPinFile, 'STRONGROOM_HSM_SO_PIN');
        const sourceSoPin = await readPin(options.sourceSoPinFile, 'STRONGROOM_HSM_SOURCE_SO_PIN');
        try {
          return await addMember(catalog, clusterId, options, pin, soPin, sourceSoPin);
        } finally {
          pin?.zero();
          soPin.zero();
          sourceSoPin.zero();
        }
      }),
    );

  cluster
    .command('remove-member')
    .description("take a member out of the cluster and destroy this cluster's keys on its token (exit code 2 if they remain)")
    .argument('<cluster-id>')
    .argument('<member-name>')
    .option('--keep-objects', "leave the cluster wrapping key and the KMS key objects on the member's token")
    .addOption(dataDir())
    .addOption(database())
    .action(run((catalog, clusterId: string, name: string, options: { keepObjects?: boolean }) => removeMember(catalog, clusterId, name, options.keepObjects)));

  cluster
    .command('status')
    .description('connect, re-synchronise members that owe operations, and report each member')
    .argument('<cluster-id>')
    .addOption(dataDir())
    .addOption(database())
    .action(run((catalog, clusterId: string) => clusterStatus(catalog, clusterId)));

  cluster
    .command('list')
    .description('the clusters of this data directory')
    .addOption(dataDir())
    .addOption(database())
    .action(run((catalog) => listClusters(catalog)));

  hsm
    .command('backup')
    .description('write every key object, wrapped under the cluster wrapping key, to a file (0600)')
    .argument('<cluster-id>')
    .requiredOption('--out <file>', 'the backup file')
    .addOption(dataDir())
    .addOption(database())
    .action(run((catalog, clusterId: string, options: { out: string }) => backupCluster(catalog, clusterId, options.out)));

  hsm
    .command('restore')
    .description("unwrap a backup's objects into members that lack them (a fresh member after the ceremony)")
    .argument('<cluster-id>')
    .requiredOption('--in <file>', 'the backup file')
    .option('--member <name>', 'only this member')
    .addOption(dataDir())
    .addOption(database())
    .action(run((catalog, clusterId: string, options: { in: string; member?: string }) => restoreCluster(catalog, clusterId, options.in, options.member)));
}
