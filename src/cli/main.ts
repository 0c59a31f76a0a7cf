import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { registerAuditCommands } from './audit.ts';
import { registerIamCommands } from './iam.ts';
import { registerPolicyCommands } from './policy.ts';
import { serve } from './serve.ts';

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const DEFAULT_PORT = 7373;

function integerIn(min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return parsed;
  };
}

const workersOption = (value: string): number =>
  value === 'auto' ? availableParallelism() : integerIn(1, 256)(value);

export function buildProgram(): Command {
  const program = new Command('strongroom')
    .description('Self-hosted key management service speaking the AWS KMS wire protocol')
    .version(packageJson.version, '-V, --version')
    .showHelpAfterError();

  program
    .command('serve')
    .description('run the KMS server on the embedded default store (SQLite and a root key file under --data-dir)')
    .option('--data-dir <dir>', 'where keys, metadata and credentials live', './data')
    .option('--host <host>', 'address to listen on (loopback by default)', '127.0.0.1')
    .addOption(new Option('--port <port>', 'port to listen on (0 picks a free one)').default(DEFAULT_PORT).argParser(integerIn(0, 65535)))
    .option('--region <region>', 'the AWS region name this server answers as', 'us-east-1')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (needs --tls-key)')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .addOption(new Option('--workers <n|auto>', 'server processes sharing the port').default(1).argParser(workersOption))
    .addOption(
      new Option('--scheduler-interval <seconds>', 'how often due rotations and deletions are carried out')
        .default(60)
        .argParser(integerIn(1, 86_400)),
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug']).default('info'))
    .option('--audit-encryption-context-values', 'record encryption-context values in the audit trail (default: keys only)', false)
    .action(async (options) => {
      if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) {
        program.error('error: --tls-cert and --tls-key go together');
      }
      if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(options.region)) {
        program.error(`error: --region must look like an AWS region name (e.g. us-east-1)`);
      }
      await serve({
        dataDir: options.dataDir,
        host: options.host,
        port: options.port,
        region: options.region,
        workers: options.workers,
        tlsCert: options.tlsCert,
        tlsKey: options.tlsKey,
        schedulerIntervalSeconds: options.schedulerInterval,
        logLevel: options.logLevel,
        auditEncryptionContextValues: options.auditEncryptionContextValues,
      });
    });
  registerIamCommands(program);
  registerPolicyCommands(program);
  registerAuditCommands(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
