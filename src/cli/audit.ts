/**
 * `strongroom audit …`: read, export and verify the audit trail (docs/audit.md). These commands
 * open `<data-dir>/audit.db` read-only, so they run beside a live server. `verify --file` needs
 * only an export and the public key.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { openRootSealer } from './root-key.ts';
import {
  auditPaths,
  exportLines,
  loadAuditSigningKey,
  verifyExportFile,
  verifyStore,
  type VerifyResult,
} from '../service/audit/index.ts';
import type { AuditEventRow, AuditQuery, AuditStore } from '../storage/audit-types.ts';
import { databaseBackend, openAuditStore } from '../storage/index.ts';
import { DATABASE_SETTING, operatorMessage } from './database-errors.ts';
import { SqliteAuditStore } from '../storage/sqlite/audit-store.ts';

const dataDirOption = () => new Option('--data-dir <dir>', 'the data directory').default('./data');
const databaseOption = () =>
  new Option('--database <url>', "the nodes' shared PostgreSQL database (postgres://…), when the trail lives there").env('STRONGROOM_DATABASE');

/** The data directory's `audit.db` (read-only, beside a live server), or the shared PostgreSQL trail. */
async function openTrail(options: { dataDir: string; database?: string }): Promise<AuditStore> {
  if (options.database !== undefined && databaseBackend(options.database) === 'postgres') return openAuditStore(options.database);
  const path = auditPaths(resolve(options.dataDir)).database;
  if (!existsSync(path)) throw new Error(`no audit trail at ${path}`);
  return new SqliteAuditStore(path, { readonly: true });
}

/**
 * The public key for verifying a data directory's trail: the one sealed under the root key when
 * the root key is readable (a replaced PEM file cannot then vouch for a re-signed trail),
 * otherwise `audit-public-key.pem`.
 */
async function publicKeyOf(dataDir: string, store: AuditStore): Promise<string> {
  const root = await openRootSealer(resolve(dataDir), { create: false }).catch(() => undefined);
  if (root) {
    try {
      const key = await loadAuditSigningKey(store, root.sealer);
      if (key) return key.publicKeyPem;
    } finally {
      await root.close();
    }
  }
  return readFile(auditPaths(resolve(dataDir)).publicKey, 'utf8');
}

const date = (value: string): Date => {
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) throw new InvalidArgumentError('must be an ISO 8601 date or time');
  return parsed;
};

const count = (value: string): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 1_000_000) throw new InvalidArgumentError('must be an integer from 1 to 1000000');
  return parsed;
};

function printEvents(rows: AuditEventRow[]): void {
  for (const row of rows) process.stdout.write(`${row.text}\n`);
}

function report(result: VerifyResult): number {
  if (result.ok) {
    process.stdout.write(
      `audit trail intact: ${result.events} events and ${result.digests} signed digests checked` +
        (result.eventsAfterLastDigest > 0 ? `; ${result.eventsAfterLastDigest} events after the last digest are chained but not yet sealed` : '') +
        '\n',
    );
    return 0;
  }
  process.stdout.write(`audit trail BROKEN at line ${result.line}: ${result.error}\n`);
  process.stdout.write(`(${result.events} events and ${result.digests} digests were intact before it)\n`);
  return 1;
}

async function run(action: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await action()) ?? 0;
  } catch (error) {
    process.stderr.write(`error: ${operatorMessage(error, DATABASE_SETTING)}\n`);
    process.exitCode = 2;
  }
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('read, export and verify the tamper-evident audit trail');

  audit
    .command('verify')
    .description('check the hash chain and every signed digest; exit 0 when intact, 1 naming the first break')
    .addOption(dataDirOption())
    .addOption(databaseOption())
    .option('--file <export>', 'verify an export (JSON Lines) instead of a data directory')
    .option('--public-key <pem>', 'the audit public key (with --file)')
    .action((options) =>
      run(async () => {
        if (options.file) {
          if (!options.publicKey) throw new Error('--file needs --public-key (from `strongroom audit public-key`)');
          return report(await verifyExportFile(options.file, await readFile(options.publicKey, 'utf8')));
        }
        const store = await openTrail(options);
        try {
          return report(await verifyStore(store, await publicKeyOf(options.dataDir, store)));
        } finally {
          await store.close();
        }
      }),
    );

  audit
    .command('export')
    .description('write the whole trail as JSON Lines (CloudTrail-shaped events and signed digests)')
    .addOption(dataDirOption())
    .addOption(databaseOption())
    .option('--output <file>', 'write here instead of stdout (created 0600)')
    .action((options) =>
      run(async () => {
        const store = await openTrail(options);
        const file = options.output ? createWriteStream(options.output, { mode: 0o600 }) : undefined;
        const out: NodeJS.WritableStream = file ?? process.stdout;
        try {
          for await (const line of exportLines(store)) {
            if (!out.write(`${line}\n`)) await new Promise((done) => out.once('drain', done));
          }
        } finally {
          await store.close();
          if (file) await new Promise<void>((done) => file.end(() => done()));
        }
      }),
    );

  audit
    .command('tail')
    .description('print the latest events, oldest first')
    .addOption(dataDirOption())
    .addOption(databaseOption())
    .addOption(new Option('-n, --lines <n>', 'how many').default(20).argParser(count))
    .action((options) =>
      run(async () => {
        const store = await openTrail(options);
        try {
          printEvents((await store.query({ order: 'desc', limit: options.lines })).reverse());
        } finally {
          await store.close();
        }
      }),
    );

  audit
    .command('query')
    .description('print events matching every filter given, oldest first (JSON Lines)')
    .addOption(dataDirOption())
    .addOption(databaseOption())
    .addOption(new Option('--from <time>', 'at or after this time').argParser(date))
    .addOption(new Option('--to <time>', 'before this time').argParser(date))
    .option('--principal <arn>', 'made by this principal (user, role session)')
    .option('--key <key-id>', 'naming this key id')
    .option('--event <name>', 'this event name, e.g. Decrypt')
    .option('--error <code>', 'failed with this error code')
    .option('--errors', 'only failed or denied requests')
    .addOption(new Option('--limit <n>', 'at most this many').default(1000).argParser(count))
    .action((options) =>
      run(async () => {
        const store = await openTrail(options);
        try {
          const query: AuditQuery = {
            from: options.from,
            to: options.to,
            principalArn: options.principal,
            keyId: options.key,
            eventName: options.event,
            errorCode: options.error,
            onlyErrors: options.errors === true,
            limit: options.limit,
          };
          printEvents(await store.query(query));
        } finally {
          await store.close();
        }
      }),
    );

  audit
    .command('public-key')
    .description('print the audit signing public key (PEM), for verifying exports elsewhere')
    .addOption(dataDirOption())
    .addOption(databaseOption())
    .action((options) =>
      run(async () => {
        const store = await openTrail(options);
        try {
          process.stdout.write(await publicKeyOf(options.dataDir, store));
        } finally {
          await store.close();
        }
      }),
    );
}
