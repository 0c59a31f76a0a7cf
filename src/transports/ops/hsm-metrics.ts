import { Gauge, type Registry } from 'prom-client';

/** One HSM cluster as this process sees it: its id and each member's name and whether it is in service. */
export interface HsmClusterMembers {
  readonly clusterId: string;
  readonly members: readonly { readonly name: string; readonly up: boolean }[];
}

/**
 * strongroom_hsm_member_up{cluster_id, member}: 1 while the member is in service (ACTIVE), 0 while
 * it is out (DOWN, SYNCING, FAILED), for each cluster this process holds a connection to. `source`
 * runs the clusters' health checks at scrape time, so a member that died while idle shows as 0
 * without a request having to fail on it first.
 *
 * Summed over workers this would count processes, so the cluster aggregation takes the minimum:
 * a member is up only if every process connected to it has it in service. Label values are the
 * operator's own cluster ids and member names (strongroom hsm cluster …), never request content.
 */
export function registerHsmMemberGauge(registry: Registry, source: () => Promise<readonly HsmClusterMembers[]>): void {
  new Gauge({
    name: 'strongroom_hsm_member_up',
    help: 'Whether an HSM cluster member is in service (1) or out (0), by cluster and member.',
    labelNames: ['cluster_id', 'member'],
    aggregator: 'min',
    registers: [registry],
    async collect() {
      const clusters = await source().catch(() => []);
      this.reset();
      for (const cluster of clusters) {
        for (const member of cluster.members) this.labels(cluster.clusterId, member.name).set(member.up ? 1 : 0);
      }
    },
  });
}
