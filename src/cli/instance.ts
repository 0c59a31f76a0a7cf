import { randomInt } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Sealer } from '../crypto/seal.ts';
import { loadOrCreateRootKeyFile } from '../keystores/root-key-file.ts';
import { SoftwareKeyStore } from '../keystores/software/software-key-store.ts';
import { AccessKeyResolver, newAccessKey, storeAccessKey } from '../service/access-keys.ts';
import type { ServiceContext } from '../service/context.ts';
import { ensureAdministrator } from '../service/principals.ts';
import { openAuditLog, type AuditLog } from '../service/audit/index.ts';
import { SqliteMetadataStore } from '../storage/sqlite/sqlite-store.ts';
import type { MetadataStore } from '../storage/types.ts';

export interface InstanceOptions {
  dataDir: string;
  region: string;
  now?: () => Date;
  /**
   * Where the audit trail's commits run: a worker thread (the server: the event loop keeps
   * serving during the fsync) or inline (tests with a moved clock, one-shot CLI commands).
   */
  auditMode?: 'worker' | 'inline';
}

export interface Instance {
  readonly dataDir: string;
  readonly context: ServiceContext;
  readonly store: MetadataStore;
  readonly sealer: Sealer;
  readonly accessKeys: AccessKeyResolver;
  readonly audit: AuditLog;
  close(): Promise<void>;
}

export const dataDirPaths = (dataDir: string) => ({
  rootKey: join(dataDir, 'root.key'),
  database: join(dataDir, 'strongroom.db'),
  credentials: join(dataDir, 'credentials'),
  lock: join(dataDir, 'strongroom.lock'),
  pid: join(dataDir, 'strongroom.pid'),
});

/** A 12-digit account id, fixed at first start. */
const newAccountId = (): string => String(randomInt(100_000_000_000, 999_999_999_999));

/** Opens (creating on first start) the embedded default: a key file and SQLite under dataDir. */
export async function openInstance(options: InstanceOptions): Promise<Instance> {
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await refuseLoosePermissions(dataDir, 'data directory');
  const paths = dataDirPaths(dataDir);
  await refuseLoosePermissions(paths.credentials, 'credentials file');
  const { rootKey } = await loadOrCreateRootKeyFile(paths.rootKey);
  // The sealer uses the root key by reference; close() zeroes it.
  const sealer = new Sealer(rootKey);
  const store = new SqliteMetadataStore(paths.database);
  const accountId = await store.putSettingIfAbsent('account-id', newAccountId());
  const { log: audit } = await openAuditLog({
    dataDir,
    sealer,
    mode: options.auditMode ?? 'worker',
    ...(options.auditMode === 'inline' && options.now ? { now: options.now } : {}),
  });
  const context: ServiceContext = {
    store,
    keyStore: new SoftwareKeyStore(sealer),
    sealer,
    audit,
    accountId,
    region: options.region,
    partition: 'aws',
    now: options.now ?? (() => new Date()),
  };
  return {
    dataDir,
    context,
    store,
    sealer,
    accessKeys: new AccessKeyResolver(store, sealer),
    audit,
    close: async () => {
      // Pending events first: every acknowledged request's event is already durable, but
      // background events may still be queued.
      await audit.close();
      await store.close();
      rootKey.zero();
    },
  };
}

export const adminPrincipalArn = (accountId: string): string => `arn:aws:iam::${accountId}:user/admin`;

/** The administrator user with AdministratorAccess: made at first start, kept on every start. */
export async function bootstrapAdministratorPrincipal(instance: Instance): Promise<void> {
  await ensureAdministrator(instance.store, adminPrincipalArn(instance.context.accountId), instance.context.now());
}

/**
 * First start: an administrator principal with one access key, written to <data-dir>/credentials
 * in the AWS shared-credentials format (profile "default"), created 0600. Returns whether it was
 * created now.
 */
export async function bootstrapAdministrator(instance: Instance): Promise<boolean> {
  await bootstrapAdministratorPrincipal(instance);
  if ((await instance.store.listAccessKeys()).length > 0) return false;
  const { credentials } = dataDirPaths(instance.dataDir);
  const accessKey = newAccessKey();
  try {
    // The file first, atomically (temp file, fsync, rename), then the database: a crash in
    // between leaves a file naming a key that does not exist yet, and the next start simply
    // makes a new one — never a stored key whose secret nobody has.
    const temporary = `${credentials}.${process.pid}.tmp`;
    await rm(temporary, { force: true });
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(
        '[default]\n' +
          `aws_access_key_id = ${accessKey.accessKeyId}\n` +
          `aws_secret_access_key = ${accessKey.secretAccessKey.exposeSecretBytes().toString('utf8')}\n`,
      );
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, credentials);
    await storeAccessKey(
      instance.store,
      instance.sealer,
      accessKey,
      adminPrincipalArn(instance.context.accountId),
      instance.context.now(),
    );
  } finally {
    accessKey.secretAccessKey.zero();
  }
  return true;
}

/**
 * Refuses a data directory or credentials file that other users can read, as ssh refuses a loose
 * private key: the directory holds the root key and the database, the file a secret.
 */
async function refuseLoosePermissions(path: string, what: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (info && (info.mode & 0o077) !== 0) {
    throw new Error(
      `${what} ${path} is accessible by other users (mode ${(info.mode & 0o777).toString(8)}); run: chmod ${info.isDirectory() ? 700 : 600} ${path}`,
    );
  }
}
