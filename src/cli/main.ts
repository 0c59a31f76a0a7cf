import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerAuditCommands } from './audit.ts';
import { registerEncryptCommands } from './encrypt.ts';
import { registerHsmCommands } from './hsm.ts';
import { registerIamCommands } from './iam.ts';
import { registerInitCommand } from './init.ts';
import { registerMigrateCommand } from './migrate.ts';
import { registerPolicyCommands } from './policy.ts';
import { ConfigError, resolveServeConfig, serveCommandOptions } from './config.ts';
import { serve, type ServeOptions } from './serve.ts';
import { registerXksProxyCommand } from './xks-proxy.ts';

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export { DEFAULT_PORT } from './config.ts';

export function buildProgram(): Command {
  const program = new Command('strongroom')
    .description('Self-hosted key management service speaking the AWS KMS wire protocol')
    .version(packageJson.version, '-V, --version')
    .showHelpAfterError();

  // Settings: flags > STRONGROOM_* environment > --config file > defaults (src/cli/config.ts,
  // docs/configuration.md).
  const serveCommand = program
    .command('serve')
    .description('run the KMS server on the embedded default store (SQLite and a root key file under --data-dir)')
    .option('--config <file>', 'JSON file of settings (keys: the flags in camelCase) [STRONGROOM_CONFIG]');
  for (const option of serveCommandOptions()) serveCommand.addOption(option);
  serveCommand.action(async (flags: Record<string, unknown>) => {
    let options: ServeOptions;
    try {
      ({ options } = await resolveServeConfig({ flags, env: process.env, configFile: flags.config as string | undefined }));
    } catch (error) {
      if (error instanceof ConfigError) program.error(`error: ${error.message}`);
      throw error;
    }
    await serve(options);
  });
  registerInitCommand(program);
  registerMigrateCommand(program);
  registerIamCommands(program);
  registerPolicyCommands(program);
  registerAuditCommands(program);
  registerEncryptCommands(program);
  registerHsmCommands(program);
  registerXksProxyCommand(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
