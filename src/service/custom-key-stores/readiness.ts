import type { CustomKeyStoreRecord } from '../../storage/types.ts';
import type { ServiceContext } from '../context.ts';

/**
 * /readyz's `hsmClusters` check: every AWS_CLOUDHSM custom key store whose stored ConnectionState
 * is CONNECTED has its cluster serving in this process — connected (now, if this process had not
 * used the store yet, as its first request would) with at least one member passing its health
 * check. A store the operator disconnected does not count: its keys are meant to be unavailable.
 *
 * EXTERNAL_KEY_STORE stores are not checked: their only status is the proxy's health call, a
 * signed request to another party's service on every probe (XksBackend runs it at connect).
 *
 * The list of stores is kept from the last read that worked: while the metadata store is down
 * (its own check reports that), the clusters known to be connected are still checked.
 */
export function connectedClustersCheck(context: ServiceContext): () => Promise<void> {
  let connected: CustomKeyStoreRecord[] = [];
  return async () => {
    try {
      connected = (await context.store.listCustomKeyStores()).filter(
        (record) => record.type === 'AWS_CLOUDHSM' && record.connectionState === 'CONNECTED',
      );
    } catch {
      // The metadataStore check fails for this; keep the last list.
    }
    const failing: string[] = [];
    await Promise.all(
      connected.map(async (record) => {
        try {
          const store = await context.customKeyStores.open(context.sealer, record);
          const health = await store.checkHealth?.();
          if (health && !health.serving) failing.push(record.customKeyStoreId);
        } catch {
          failing.push(record.customKeyStoreId);
        }
      }),
    );
    // Store ids only: not secret, and what an operator looks up with DescribeCustomKeyStores.
    if (failing.length > 0) throw new Error(`custom key stores whose HSM cluster is not serving: ${failing.sort().join(', ')}`);
  };
}
