import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { RequestStats } from './request-stats.ts';

/**
 * Latency buckets in seconds. Most KMS calls answer in well under a millisecond of compute plus
 * one audit group commit (an fsync: a few milliseconds); custom key stores add a network hop.
 */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * One process's Prometheus metrics (docs/configuration.md lists them). Label values come from
 * closed sets only — operation names checked against the service's catalogue, error names from
 * the error catalogue, store types, call names — so a client cannot grow the series count, and
 * no label carries a request value.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests = new RequestStats(LATENCY_BUCKETS, {
    requests: 'strongroom_requests_total',
    duration: 'strongroom_request_duration_seconds',
  });
  private readonly auditCommitSeconds: Histogram<'outcome'>;
  private readonly auditEvents: Counter;
  private readonly keyStoreSeconds: Histogram<'store_type' | 'call' | 'outcome'>;
  private readonly quotaRejections: Counter<'class'>;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    // The per-request metrics are kept outside prom-client and handed to it at scrape time (request-stats.ts).
    this.registry.registerMetric(
      this.requests.requestsMetric('Requests answered, by operation and outcome ("ok" or the AWS error name).') as unknown as Metric,
    );
    this.registry.registerMetric(
      this.requests.durationMetric('Time from a request reaching the server to its response headers, by operation.') as unknown as Metric,
    );
    this.auditCommitSeconds = new Histogram({
      name: 'strongroom_audit_commit_duration_seconds',
      help: 'Duration of the audit trail group commits (one append transaction each), by outcome.',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.auditEvents = new Counter({
      name: 'strongroom_audit_events_committed_total',
      help: 'Audit events made durable.',
      registers,
    });
    this.keyStoreSeconds = new Histogram({
      name: 'strongroom_key_store_call_duration_seconds',
      help: 'Duration of calls into custom key stores (HSM clusters, external key store proxies), by store type, call and outcome.',
      labelNames: ['store_type', 'call', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.quotaRejections = new Counter({
      name: 'strongroom_quota_rejections_total',
      help: 'Requests refused with ThrottlingException for their request-rate quota, by quota class.',
      labelNames: ['class'],
      registers,
    });
    // Every class shows from the start (0), so a rate over it needs no first refusal.
    for (const quotaClass of ['symmetric', 'rsa', 'ecc', 'control']) this.quotaRejections.labels(quotaClass).inc(0);
    // Each process reports 1; summed over a cluster, a scrape shows how many processes it covers
    // (a worker that did not answer in time is missing from it).
    new Gauge({ name: 'strongroom_metrics_processes', help: 'Server processes whose metrics this scrape includes.', registers }).set(1);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** A request was answered: `operation` from a closed set, `outcome` "ok" or an error name. */
  observeRequest(operation: string, outcome: string, seconds: number): void {
    this.requests.observe(operation, outcome, seconds);
  }

  /** The audit log's commit observer (AuditLog.commitObserver). */
  readonly observeAuditCommit = (seconds: number, events: number, committed: boolean): void => {
    this.auditCommitSeconds.labels(committed ? 'ok' : 'failed').observe(seconds);
    if (committed && events > 0) this.auditEvents.inc(events);
  };

  /** The custom key stores' call observer (service/key-store-timing.ts). */
  readonly observeKeyStoreCall = (storeType: string, call: string, succeeded: boolean, seconds: number): void => {
    this.keyStoreSeconds.labels(storeType, call, succeeded ? 'ok' : 'error').observe(seconds);
  };

  /** The request-rate quotas' rejection observer (RequestQuotas.rejectionObserver): `quotaClass` from a closed set. */
  readonly observeQuotaRejection = (quotaClass: string): void => {
    this.quotaRejections.labels(quotaClass).inc();
  };
}
