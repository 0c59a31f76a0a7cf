import { randomInt } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Sealer } from '../crypto/seal.ts';
import { openRootSealer } from './root-key.ts';
import { SoftwareKeyStore } from '../keystores/software/software-key-store.ts';
import { AccessKeyResolver, newAccessKey, storeAccessKey } from '../service/access-keys.ts';
import type { ServiceContext } from '../service/context.ts';
import { ensureAdministrator } from '../service/principals.ts';
import { openAuditLog, type AuditLog } from '../service/audit/index.ts';
import { openHsmStore, openMetadataStore, openQuotaBuckets } from '../storage/index.ts';
import { HsmClusterKeyStoreBackend } from '../keystores/pkcs11/cluster/stored.ts';
import { hsmAuditFile } from '../keystores/pkcs11/cluster/audit-file.ts';
import { SecretBytes } from '../crypto/secret-bytes.ts';
import type { CustomKeyStoreType, MetadataStore } from '../storage/types.ts';
import type { CustomKeyStoreBackend } from '../keystores/types.ts';
import { CustomKeyStoreConnections } from '../service/custom-key-stores/connections.ts';
import { RequestQuotas, type QuotaLimits } from '../service/quotas.ts';
import { XksBackend, type XksBackendOptions } from '../keystores/xks/xks-backend.ts';

export interface InstanceOptions {
  dataDir: string;
  region: string;
  now?: () => Date;
  /**
   * Where the audit trail's commits run: a worker thread (the server: the event loop keeps
   * serving during the fsync) or inline (tests with a moved clock, one-shot CLI commands).
   */
  auditMode?: 'worker' | 'inline';
  /** Backends for custom key stores, replacing the defaults (tests of the service layer). */
  customKeyStoreBackends?: Partial<Record<CustomKeyStoreType, CustomKeyStoreBackend>>;
  /** How external key stores reach their proxies: extra CA certificates, static addresses. */
  xks?: Pick<XksBackendOptions, 'ca' | 'addresses' | 'timeoutMs'>;
  /**
   * The metadata and audit database: `postgres://…` to share one among several nodes; default the
   * data directory's SQLite files. The root key stays per node (the same key file, or the same HSM key).
   */
  databaseUrl?: string;
  /**
   * Request-rate quotas for the installation, and this process's share of them (1 / processes).
   * With PostgreSQL the share is not used: every process draws on buckets shared in the database.
   */
  quotas?: { limits: QuotaLimits; share: number };
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
  // A key file (made at first start) or a key in an HSM (strongroom init --root-key); close() ends it.
  const root = await openRootSealer(dataDir, { create: true });
  const sealer = root.sealer;
  const databaseUrl = options.databaseUrl ?? `sqlite:${paths.database}`;
  const store = await openMetadataStore(databaseUrl);
  const accountId = await store.putSettingIfAbsent('account-id', newAccountId());
  const { log: audit } = await openAuditLog({
    dataDir,
    sealer,
    ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}),
    mode: options.auditMode ?? 'worker',
    ...(options.auditMode === 'inline' && options.now ? { now: options.now } : {}),
  });
  const software = new SoftwareKeyStore(sealer);
  // HSM clusters' configuration (strongroom hsm cluster …), read by the AWS_CLOUDHSM backend.
  const hsmStore = await openHsmStore(databaseUrl);
  const quotas = options.quotas && Object.keys(options.quotas.limits).length > 0 ? options.quotas : undefined;
  // Shared by every node on PostgreSQL; undefined on SQLite, where each process keeps its share.
  const quotaBuckets = quotas ? await openQuotaBuckets(databaseUrl) : undefined;
  const context: ServiceContext = {
    store,
    keyStore: software,
    customKeyStores: new CustomKeyStoreConnections(
      options.customKeyStoreBackends ?? {
        AWS_CLOUDHSM: new HsmClusterKeyStoreBackend(hsmStore, (secret) => SecretBytes.from(Buffer.from(secret, 'utf8')), {
          auditFor: (clusterId) => hsmAuditFile(join(dataDir, 'hsm-audit', `${clusterId}.jsonl`), clusterId),
        }),
        EXTERNAL_KEY_STORE: new XksBackend({ software, region: options.region, ...options.xks }),
      },
    ),
    sealer,
    audit,
    accountId,
    region: options.region,
    partition: 'aws',
    ...(quotas ? { quotas: new RequestQuotas(quotas.limits, quotaBuckets ? { claims: quotaBuckets } : { share: quotas.share }) } : {}),
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
      await context.customKeyStores.closeAll();
      await hsmStore.close();
      await quotaBuckets?.close();
      await store.close();
      await root.close();
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
