/**
 * `strongroom encrypt` and `strongroom decrypt`: files, directory trees and stdin/stdout through
 * the Encryption SDK with the KMS keyring, like the aws-encryption-cli. Exit codes: 0 done,
 * 1 failure (nothing half-written is left), 2 usage error. See docs/esdk-cli.md.
 */
import { Command, Option } from 'commander';
import { checkKeyIdentifiers } from './encrypt-keyring.ts';
import {
  UsageError,
  checkSuiteAllowed,
  collect,
  endpointFrom,
  integerFrom,
  parseCommitmentPolicy,
  parseContext,
  parseSuite,
  regionFrom,
  type Mode,
  type RunConfig,
} from './encrypt-options.ts';
import { runEsdkCommand } from './encrypt-run.ts';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const EXIT_CODES_HELP = `
Exit codes: 0 every input done; 1 a failure (message on stderr; no partial output file is left);
2 usage error (bad or conflicting options). See docs/esdk-cli.md.`;

/** Commander's own parse errors are usage errors too; help and version are not errors. */
function usageExit(error: { exitCode: number; code: string }): never {
  const informational = error.code === 'commander.helpDisplayed' || error.code === 'commander.help' || error.code === 'commander.version';
  process.exit(informational ? error.exitCode : EXIT_USAGE);
}

interface CommandOptions {
  input: string;
  output: string;
  recursive?: boolean;
  suffix?: string;
  overwrite: boolean;
  key?: string[];
  context?: string[];
  grantToken?: string[];
  suite?: number;
  frameLength?: number;
  commitmentPolicy: RunConfig['commitmentPolicy'];
  maxEncryptedDataKeys?: number;
  endpoint?: string;
  region?: string;
  profile?: string;
  kmsTimeout?: number;
  metadataOutput?: string;
  overwriteMetadata?: boolean;
  progress: boolean;
  cacheMaxAge?: number;
  cacheMaxMessages?: number;
  discovery?: boolean;
  discoveryAccount?: string[];
  discoveryPartition?: string;
}

export function configFrom(mode: Mode, options: CommandOptions, env: NodeJS.ProcessEnv): RunConfig {
  const keys = options.key ?? [];
  const discovery = Boolean(options.discovery);
  if (mode === 'encrypt' && keys.length === 0) throw new UsageError('give at least one --key (the first generates the data key)');
  if (mode === 'decrypt' && keys.length === 0 && !discovery) throw new UsageError('give --key (repeatable) or --discovery');
  if (mode === 'decrypt' && keys.length > 0 && discovery) throw new UsageError('--key and --discovery exclude each other');
  if (!discovery && (options.discoveryAccount || options.discoveryPartition)) {
    throw new UsageError('--discovery-account and --discovery-partition need --discovery');
  }
  if (options.discoveryPartition !== undefined && !options.discoveryAccount) throw new UsageError('--discovery-partition needs --discovery-account');
  if (options.cacheMaxMessages !== undefined && options.cacheMaxAge === undefined) throw new UsageError('--cache-max-messages needs --cache-max-age');
  checkKeyIdentifiers(keys);
  checkSuiteAllowed(options.suite, options.commitmentPolicy);
  return {
    mode,
    input: options.input,
    output: options.output,
    recursive: Boolean(options.recursive),
    suffix: options.suffix ?? (mode === 'encrypt' ? '.encrypted' : '.decrypted'),
    overwrite: options.overwrite,
    keys,
    discovery,
    discoveryPartition: options.discoveryPartition,
    discoveryAccounts: options.discoveryAccount ?? [],
    context: parseContext(options.context ?? []),
    suiteId: options.suite,
    frameLength: options.frameLength ?? 4096,
    commitmentPolicy: options.commitmentPolicy,
    maxEncryptedDataKeys: options.maxEncryptedDataKeys,
    grantTokens: options.grantToken ?? [],
    endpoint: endpointFrom(options.endpoint, env),
    region: regionFrom(options.region, env, keys),
    profile: options.profile,
    kmsTimeoutSeconds: options.kmsTimeout ?? 60,
    metadataOutput: options.metadataOutput,
    overwriteMetadata: Boolean(options.overwriteMetadata),
    progress: options.progress,
    cacheMaxAgeSeconds: options.cacheMaxAge,
    cacheMaxMessages: options.cacheMaxMessages,
  };
}

function addSharedOptions(command: Command, mode: Mode): Command {
  return command
    .requiredOption('-i, --input <path|->', 'a file, a directory (with --recursive), or - for stdin')
    .requiredOption('-o, --output <path|->', 'a file, a directory, or - for stdout')
    .option('-r, --recursive', 'process every file under the input directory, keeping the tree')
    .option('--suffix <suffix>', `appended to output names in a directory (default: .${mode}ed)`)
    .option('--no-overwrite', 'skip inputs whose output file exists instead of replacing it')
    .addOption(new Option('-c, --context <key=value>', mode === 'encrypt' ? 'encryption context pair (repeatable)' : 'pair the message context must contain (repeatable)').argParser(collect))
    .addOption(new Option('--grant-token <token>', 'KMS grant token (repeatable)').argParser(collect))
    .addOption(
      new Option('--commitment-policy <policy>', 'require-encrypt-require-decrypt, require-encrypt-allow-decrypt or forbid-encrypt-allow-decrypt')
        .argParser(parseCommitmentPolicy)
        .default('REQUIRE_ENCRYPT_REQUIRE_DECRYPT', 'require-encrypt-require-decrypt'),
    )
    .addOption(new Option('--max-encrypted-data-keys <n>', 'refuse messages with more encrypted data keys (1..65535)').argParser(integerFrom(1, 65_535)))
    .option('--endpoint <url>', 'KMS endpoint (default: AWS_ENDPOINT_URL_KMS, else AWS_ENDPOINT_URL, else AWS)')
    .option('--region <region>', 'region (default: AWS_REGION, AWS_DEFAULT_REGION, the first key ARN, the AWS config file)')
    .option('--profile <name>', 'credentials profile (default: AWS_PROFILE, else "default")')
    .addOption(new Option('--kms-timeout <seconds>', 'give up on a KMS that does not connect or answer within this long, per attempt (default 60)').argParser(integerFrom(1, 3600)))
    .option('--metadata-output <file|->', 'append one JSON line per file processed (- for stdout)')
    .option('--overwrite-metadata', 'truncate the metadata file instead of appending')
    .option('--no-progress', 'never show a progress bar (shown only on a terminal, for inputs of 16 MiB or more)')
    .addOption(new Option('--cache-max-age <seconds>', 'reuse data keys across files for up to this long (caching materials manager)').argParser(integerFrom(1, 86_400)))
    .addOption(new Option('--cache-max-messages <n>', 'with --cache-max-age: messages per data key (default 2^32)').argParser(integerFrom(1, 2 ** 32)))
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride(usageExit);
}

/**
 * Exits once stdout and stderr have taken everything written (an empty write's callback runs after
 * the writes before it). The command is done: a library's idle worker or socket must not keep a
 * script waiting, and a pipe must not lose the end of the output to an early exit.
 */
function exitWhenFlushed(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

function action(mode: Mode) {
  return async (options: CommandOptions) => {
    let code = EXIT_OK;
    try {
      await runEsdkCommand(configFrom(mode, options, process.env));
    } catch (error) {
      const usage = error instanceof UsageError;
      process.stderr.write(`strongroom ${mode}: ${usage ? 'usage: ' : ''}${error instanceof Error ? error.message : String(error)}\n`);
      code = usage ? EXIT_USAGE : EXIT_FAILURE;
    }
    exitWhenFlushed(code);
  };
}

export function registerEncryptCommands(program: Command): void {
  const encrypt = program.command('encrypt').description('encrypt files or stdin into AWS Encryption SDK messages under KMS keys');
  addSharedOptions(encrypt, 'encrypt')
    .addOption(new Option('-k, --key <id|arn|alias>', 'KMS key (repeatable; the first generates the data key, the others wrap it too)').argParser(collect))
    .addOption(new Option('--suite <id|name>', 'algorithm suite, e.g. 0x0578 (default) or 0x0478').argParser(parseSuite))
    .addOption(new Option('--frame-length <bytes>', 'frame length; 0 for a non-framed body (default 4096)').argParser(integerFrom(0, 2 ** 32 - 1)))
    .action(action('encrypt'));

  const decrypt = program.command('decrypt').description('decrypt AWS Encryption SDK messages made under KMS keys');
  addSharedOptions(decrypt, 'decrypt')
    .addOption(new Option('-k, --key <id|arn|alias>', 'KMS key that may decrypt (repeatable; names are resolved to key ARNs)').argParser(collect))
    .option('--discovery', 'decrypt with whichever KMS key the message names (instead of --key)')
    .addOption(new Option('--discovery-account <id>', 'with --discovery: only keys of this account (repeatable)').argParser(collect))
    .option('--discovery-partition <partition>', 'with --discovery-account: the partition (default aws)')
    .action(action('decrypt'));
}
