import type { Sealer } from '../../crypto/seal.ts';
import {
  CustomKeyStoreConnectError,
  type ConnectedKeyStore,
  type CustomKeyStoreBackend,
  type CustomKeyStoreConnectRequest,
  type KeyStoreHealth,
  type CustomKeyStoreTarget,
  type KeyVersionHandle,
  type OwedDestruction,
} from '../../keystores/types.ts';
import type { CustomKeyStoreRecord, CustomKeyStoreType } from '../../storage/types.ts';

/** Binds a store's sealed secret to its id: a row's secret cannot be moved to another store. */
export const customKeyStoreSecretBinding = (customKeyStoreId: string): string => `custom-key-store:${customKeyStoreId}`;

/** A store's stored credential (PIN or proxy secret), unsealed for a connection or a check. */
export function unsealCustomKeyStoreSecret(sealer: Sealer, record: CustomKeyStoreRecord): string {
  try {
    const bytes = sealer.unseal(record.sealedSecret, customKeyStoreSecretBinding(record.customKeyStoreId));
    try {
      return Buffer.from(bytes.exposeSecretBytes()).toString('utf8');
    } finally {
      bytes.zero();
    }
  } catch {
    throw new CustomKeyStoreConnectError('INTERNAL_ERROR', 'the stored credential could not be unsealed');
  }
}

interface Live {
  /** What the connection was made with: a changed configuration or secret means reconnect. */
  fingerprint: string;
  store: Promise<ConnectedKeyStore>;
  /** The configuration it was made with (health reports name the store and its cluster). */
  record: CustomKeyStoreRecord;
}

const NOTHING_OWED: OwedDestruction = { withdraw: async () => {} };

/** Connection errors a retry with the same password would only repeat (and count against the HSM's lockout). */
const CREDENTIAL_REFUSALS = new Set(['INVALID_CREDENTIALS', 'USER_LOCKED_OUT', 'USER_NOT_FOUND']);

const fingerprintOf = (record: CustomKeyStoreRecord): string =>
  JSON.stringify([record.cloudHsmClusterId ?? null, record.xksProxy ?? null, record.sealedSecret.toString('base64')]);

/**
 * This process's live connections to custom key stores, one per store. The database holds each
 * store's ConnectionState, shared by every server process; a process connects a store lazily the
 * first time it uses one of its keys while the state is CONNECTED, and drops the connection when it
 * sees the state change (the service checks the state on every use). Secrets are unsealed only to
 * connect, and not kept.
 */
export class CustomKeyStoreConnections {
  private readonly live = new Map<string, Live>();

  constructor(private readonly backends: Partial<Record<CustomKeyStoreType, CustomKeyStoreBackend>> = {}) {}

  supports(type: CustomKeyStoreType): boolean {
    return this.backends[type] !== undefined;
  }

  /** The store's connected key store, connecting (or reconnecting after a change) when needed. */
  open(sealer: Sealer, record: CustomKeyStoreRecord): Promise<ConnectedKeyStore> {
    const existing = this.live.get(record.customKeyStoreId);
    // Every request with a key in the store passes here: the same record object (the metadata read cache's) is the same configuration.
    if (existing && existing.record === record) return existing.store;
    const fingerprint = fingerprintOf(record);
    if (existing?.fingerprint === fingerprint) {
      existing.record = record;
      return existing.store;
    }
    if (existing) void this.close(record.customKeyStoreId);
    const store = this.connect(sealer, record);
    const live = { fingerprint, store, record };
    this.live.set(record.customKeyStoreId, live);
    // A failed attempt is not kept: the next use tries again. Except a refused password: trying it
    // again on every request or readiness probe would count failed logins on the HSM until it locks
    // the crypto user. The refusal stays until the store's configuration (its password) changes.
    store.catch((error: unknown) => {
      if (error instanceof CustomKeyStoreConnectError && CREDENTIAL_REFUSALS.has(error.connectionErrorCode)) return;
      if (this.live.get(record.customKeyStoreId) === live) this.live.delete(record.customKeyStoreId);
    });
    return store;
  }

  /** Checks a configuration with its backend before it is saved (see CustomKeyStoreBackend.check). */
  async check(record: CustomKeyStoreRecord, secret: string): Promise<void> {
    await this.backendFor(record.type).check(this.requestFor(record, secret));
  }

  private backendFor(type: CustomKeyStoreType): CustomKeyStoreBackend {
    const backend = this.backends[type];
    if (!backend) throw new CustomKeyStoreConnectError('INTERNAL_ERROR', `this server has no ${type} backend`);
    return backend;
  }

  private requestFor(record: CustomKeyStoreRecord, secret: string): CustomKeyStoreConnectRequest {
    return {
      customKeyStoreId: record.customKeyStoreId,
      cloudHsmClusterId: record.cloudHsmClusterId,
      xksProxy: record.xksProxy,
      secret,
    };
  }

  private async connect(sealer: Sealer, record: CustomKeyStoreRecord): Promise<ConnectedKeyStore> {
    const backend = this.backendFor(record.type);
    return backend.connect(this.requestFor(record, unsealCustomKeyStoreSecret(sealer, record)));
  }

  /** The backend's oweDestruction (HSM clusters: every member owes the destroy); nothing for a backend without one. */
  async oweDestruction(record: CustomKeyStoreRecord, handles: readonly KeyVersionHandle[]): Promise<OwedDestruction> {
    return (await this.backends[record.type]?.oweDestruction?.(this.targetOf(record), handles)) ?? NOTHING_OWED;
  }

  /** Removes the versions from the store's managed backups; the missing backup files. */
  async cleanBackups(record: CustomKeyStoreRecord, handles: readonly KeyVersionHandle[]): Promise<string[]> {
    return (await this.backends[record.type]?.cleanBackups?.(this.targetOf(record), handles))?.missing ?? [];
  }

  private targetOf(record: CustomKeyStoreRecord): CustomKeyStoreTarget {
    return { customKeyStoreId: record.customKeyStoreId, cloudHsmClusterId: record.cloudHsmClusterId, xksProxy: record.xksProxy };
  }

  /** Drops this process's connection to the store, if any. */
  async close(customKeyStoreId: string): Promise<void> {
    const live = this.live.get(customKeyStoreId);
    if (!live) return;
    this.live.delete(customKeyStoreId);
    const store = await live.store.catch(() => undefined);
    await store?.close();
  }

  /**
   * Runs the health check of every connection this process holds that has one (connections still
   * being made or that failed are left out), for the HSM member gauge.
   */
  async health(): Promise<{ record: CustomKeyStoreRecord; health: KeyStoreHealth }[]> {
    const checked = await Promise.all(
      [...this.live.values()].map(async ({ record, store }) => {
        const connected = await store.catch(() => undefined);
        const health = await connected?.checkHealth?.().catch(() => undefined);
        return health && { record, health };
      }),
    );
    return checked.filter((entry) => entry !== undefined);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.live.keys()].map((id) => this.close(id)));
  }
}
