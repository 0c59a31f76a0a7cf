import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'strongroom:metrics-request';
const RESPONSE = 'strongroom:metrics-response';

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

interface MetricsRequest {
  type: typeof REQUEST;
  id: number;
}
interface MetricsResponse {
  type: typeof RESPONSE;
  id: number;
  metrics?: MetricsJson;
}

/** In a worker: answers the primary's requests for this process's metrics, over the cluster IPC channel. */
export function answerMetricsRequests(registry: Registry): void {
  process.on('message', (message: MetricsRequest) => {
    if (message?.type !== REQUEST) return;
    registry.getMetricsAsJSON().then(
      (metrics) => process.send?.({ type: RESPONSE, id: message.id, metrics } satisfies MetricsResponse),
      () => process.send?.({ type: RESPONSE, id: message.id } satisfies MetricsResponse),
    );
  });
}

let nextRequestId = 0;

/**
 * In the primary: its own metrics and every live worker's, summed into one exposition
 * (prom-client's aggregation: counters and histograms add up; per-process gauges follow
 * prom-client's per-metric rule). A worker that does not answer within `timeoutMs` is left out
 * of this scrape rather than stalling it.
 */
export async function clusterMetrics(own: Registry, timeoutMs = 2000): Promise<{ contentType: string; body: string }> {
  const workers = Object.values(cluster.workers ?? {}).filter((worker) => worker && worker.isConnected());
  const id = ++nextRequestId;
  const answers = await Promise.all(
    workers.map(
      (worker) =>
        new Promise<MetricsJson | undefined>((resolve) => {
          const onMessage = (message: MetricsResponse) => {
            if (message?.type !== RESPONSE || message.id !== id) return;
            finish(message.metrics);
          };
          const finish = (metrics: MetricsJson | undefined) => {
            clearTimeout(timer);
            worker!.off('message', onMessage);
            resolve(metrics);
          };
          const timer = setTimeout(() => finish(undefined), timeoutMs);
          worker!.on('message', onMessage);
          worker!.send({ type: REQUEST, id } satisfies MetricsRequest);
        }),
    ),
  );
  const all = [await own.getMetricsAsJSON(), ...answers.filter((metrics): metrics is MetricsJson => metrics !== undefined)];
  const aggregated = AggregatorRegistry.aggregate(all);
  return { contentType: aggregated.contentType, body: await aggregated.metrics() };
}
