/**
 * Requests by operation and outcome, with a latency histogram, kept in plain numbers and turned
 * into prom-client's metric form only when scraped. prom-client's own Counter and Histogram
 * hash and validate their labels on every observation (about 3 µs a request, measured with
 * bench/observe-micro.ts); this costs two map lookups, a bucket search and a few additions.
 */

interface OperationStats {
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
  readonly outcomes: Map<string, number>;
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** The shape prom-client's Registry and AggregatorRegistry take (what its own metrics' get() returns). */
export interface CollectableMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: 'counter' | 'histogram'; aggregator: 'sum'; values: MetricValue[] }>;
}

export class RequestStats {
  private readonly byOperation = new Map<string, OperationStats>();

  constructor(
    private readonly bounds: readonly number[],
    private readonly names: { requests: string; duration: string },
  ) {}

  observe(operation: string, outcome: string, seconds: number): void {
    let stats = this.byOperation.get(operation);
    if (!stats) {
      stats = { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0, outcomes: new Map() };
      this.byOperation.set(operation, stats);
    }
    let bucket = 0;
    while (bucket < this.bounds.length && seconds > this.bounds[bucket]) bucket++;
    stats.buckets[bucket]++;
    stats.sum += seconds;
    stats.count++;
    stats.outcomes.set(outcome, (stats.outcomes.get(outcome) ?? 0) + 1);
  }

  /** strongroom_requests_total{operation, outcome}. */
  requestsMetric(help: string): CollectableMetric {
    const name = this.names.requests;
    return {
      name,
      help,
      type: 'counter',
      aggregator: 'sum',
      get: async () => {
        const values: MetricValue[] = [];
        for (const [operation, stats] of this.byOperation) {
          for (const [outcome, count] of stats.outcomes) values.push({ labels: { operation, outcome }, value: count });
        }
        return { name, help, type: 'counter', aggregator: 'sum', values };
      },
    };
  }

  /** strongroom_request_duration_seconds{operation}: _bucket (cumulative, le), _sum, _count. */
  durationMetric(help: string): CollectableMetric {
    const name = this.names.duration;
    return {
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => {
        const values: MetricValue[] = [];
        for (const [operation, stats] of this.byOperation) {
          let cumulative = 0;
          this.bounds.forEach((bound, index) => {
            cumulative += stats.buckets[index];
            values.push({ labels: { le: bound, operation }, value: cumulative, metricName: `${name}_bucket` });
          });
          values.push({ labels: { le: '+Inf', operation }, value: stats.count, metricName: `${name}_bucket` });
          values.push({ labels: { operation }, value: stats.sum, metricName: `${name}_sum` });
          values.push({ labels: { operation }, value: stats.count, metricName: `${name}_count` });
        }
        return { name, help, type: 'histogram', aggregator: 'sum', values };
      },
    };
  }
}
