import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { initRootKey, parseRootKeyUri } from './root-key.ts';

/** `strongroom init`: prepares a data directory whose root key lives in a PKCS#11 token. */
export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('prepare a new data directory with its root key in an HSM (without it, serve makes a root key file)')
    .option('--data-dir <dir>', 'the data directory to prepare', './data')
    .requiredOption(
      '--root-key <uri>',
      'PKCS#11 URI of the root key, e.g. "pkcs11:token=strongroom;object=root-key?module-path=/usr/lib/softhsm/libsofthsm2.so"',
    )
    .option('--pin-file <file>', "file holding the token user's PIN (0600); or pin-source=file:<path> in the URI")
    .action(async (options: { dataDir: string; rootKey: string; pinFile?: string }) => {
      const dataDir = resolve(options.dataDir);
      let config;
      try {
        config = parseRootKeyUri(options.rootKey, options.pinFile);
      } catch (error) {
        program.error(`error: ${(error as Error).message}`, { exitCode: 2 });
      }
      process.umask(0o077);
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      try {
        const { generated } = await initRootKey(dataDir, config);
        process.stdout.write(
          `${generated ? 'generated' : 'found'} the root key "${config.objectLabel}" in token "${config.tokenLabel}" ` +
            `(AES-256, non-extractable); ${dataDir} now seals everything with it. Start: strongroom serve --data-dir ${dataDir}\n`,
        );
      } catch (error) {
        process.stderr.write(`strongroom init: ${(error as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
