import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DataDirLockedError, lockDataDir } from './data-dir-lock.ts';
import { dataDirPaths } from './instance.ts';
import { operatorMessage } from './database-errors.ts';
import type { Command } from 'commander';
import { auditPaths, verifyStore } from '../service/audit/index.ts';
import { migrateSqliteToPostgres, sqliteDataDir } from '../storage/migrate.ts';
import { PostgresAuditStore } from '../storage/postgres/audit-store.ts';

/**
 * `strongroom migrate --from sqlite:DIR --to postgres://…`: moves a stopped embedded installation
 * into PostgreSQL (storage/migrate.ts), then proves the audit trail arrived intact by verifying
 * its chain and signed digests there. The root key stays where it is (the data directory's key
 * file or HSM): every node that serves the database needs it.
 */
export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('copy a whole installation (SQLite data directory) into an empty PostgreSQL database')
    .requiredOption('--from <sqlite:dir>', 'the data directory, as sqlite:<dir> (stop its server first)')
    .requiredOption('--to <url>', 'the PostgreSQL database, postgres://user@host:port/db[?schema=name]')
    .action(async (options: { from: string; to: string }) => {
      try {
        const dataDir = resolve(sqliteDataDir(options.from));
        // Held for the copy: no server may change the installation while it moves.
        let unlock: () => Promise<void>;
        try {
          unlock = await lockDataDir(dataDirPaths(dataDir), dataDir);
        } catch (error) {
          if (error instanceof DataDirLockedError) throw new Error(`${dataDir} is held by a running Strongroom server: stop it first`);
          throw error;
        }
        let report;
        try {
          report = await migrateSqliteToPostgres(dataDir, options.to);
        } finally {
          await unlock();
        }
        for (const [table, count] of Object.entries(report.rows)) process.stdout.write(`${table}: ${count} rows\n`);
        const publicKeyPath = auditPaths(dataDir).publicKey;
        if (report.rows.audit_events > 0 && existsSync(publicKeyPath)) {
          const store = await PostgresAuditStore.open(options.to);
          try {
            const result = await verifyStore(store, await readFile(publicKeyPath, 'utf8'));
            if (!result.ok) throw new Error(`the migrated audit trail does not verify: ${result.error}`);
            process.stdout.write(`audit trail verified in PostgreSQL: ${result.events} events, ${result.digests} signed digests\n`);
          } finally {
            await store.close();
          }
        }
        process.stdout.write('migrated; serve it with: strongroom serve --database <url> (each node with this root key)\n');
      } catch (error) {
        process.stderr.write(`strongroom migrate: ${operatorMessage(error, '--to')}\n`);
        process.exitCode = 1;
      }
    });
}
