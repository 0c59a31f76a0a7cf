import type { KeyRecord } from '../storage/types.ts';
import { KmsError } from './errors.ts';
import { QuotaLease, capacityFor, type QuotaClaims } from './quota-lease.ts';

/**
 * Request-rate quotas, as AWS KMS has them: shared by all cryptographic operations with symmetric
 * keys (and HMAC keys, GenerateRandom), by those with RSA keys, by those with ECC keys
 * (ECDSA/ECDH/Ed25519/ML-DSA signing keys count here), and one per control-plane operation (AWS:
 * "Request quotas for each AWS KMS API operation", https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html:
 * each control-plane operation has a quota of its own, the cryptographic ones share by key type).
 * The `control` rate is each control-plane operation's, counted by the IAM action the request is
 * first authorized for (kms:CreateKey, kms:DescribeKey, ...). Past a quota a request is refused
 * with ThrottlingException, which every AWS SDK retries with backoff.
 *
 * Each quota is for the whole installation (one account):
 * - With PostgreSQL (several nodes), the buckets are shared through the database and each process
 *   leases tokens from them in batches (quota-lease.ts, which derives the tolerance: in any window
 *   of T seconds at most rate × T + max(rate, 1) + processes × batch requests per bucket).
 * - With SQLite (one machine), a server process holds `share` of each quota (1 / server
 *   processes): a token bucket refilled at share × rate per second, holding one second's worth
 *   (at least one request). Any window of T seconds admits at most rate × T + processes ×
 *   max(share × rate, 1). When the OS hands one process more than its share of connections, that
 *   process throttles before the whole reaches the quota. The buckets stay in memory: a write to
 *   the SQLite database per claim would empty the other processes' read caches, and a SQLite data
 *   directory is locked to one server, so several nodes need PostgreSQL anyway.
 */

export type QuotaClass = 'symmetric' | 'rsa' | 'ecc' | 'control';

/** Requests per second for the whole installation; an absent class is not limited. */
export type QuotaLimits = Partial<Record<QuotaClass, number>>;

/**
 * AWS's default quotas in its largest Regions (Cryptographic operations: symmetric 100,000/s,
 * RSA 500/s, ECC 300/s). Control-plane operations are not limited by default: AWS's per-operation
 * values (CreateKey 5/s, ...) suit a shared cloud, not an installation whose operator scripts it.
 */
export const AWS_DEFAULT_QUOTAS: QuotaLimits = { symmetric: 100_000, rsa: 500, ecc: 300 };

const CRYPTO_ACTIONS = new Set([
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:GenerateDataKeyPair',
  'kms:GenerateDataKeyPairWithoutPlaintext',
  'kms:GenerateMac',
  'kms:VerifyMac',
  'kms:Sign',
  'kms:Verify',
  'kms:DeriveSharedSecret',
  'kms:GenerateRandom',
]);

/** The quota a request counts against, from its first authorized action and key. */
export function quotaClassOf(action: string, key: KeyRecord | undefined): QuotaClass {
  if (!CRYPTO_ACTIONS.has(action)) return 'control';
  const spec = key?.keySpec ?? 'SYMMETRIC_DEFAULT';
  if (spec.startsWith('RSA_')) return 'rsa';
  if (spec.startsWith('ECC_') || spec.startsWith('ML_DSA_')) return 'ecc';
  return 'symmetric';
}

/** The bucket a request draws from: its class's, or for the control plane its operation's own. */
export function quotaBucketOf(quotaClass: QuotaClass, action: string): string {
  return quotaClass === 'control' ? `control:${action.replace(/^kms:/, '')}` : quotaClass;
}

interface LocalBucket {
  rate: number;
  tokens: number;
  at: number;
}

export interface RequestQuotasOptions {
  /** This process's share of each quota when the buckets are its own (no `claims`): (0, 1]. */
  share?: number;
  /** The shared buckets (PostgreSQL); absent: each process keeps its share in memory. */
  claims?: QuotaClaims;
  /** How long a claim on the shared buckets may take before the request fails (default 5 s). */
  claimTimeoutMs?: number;
  /** A monotonic clock in milliseconds (tests move it). */
  now?: () => number;
}

export class RequestQuotas {
  private readonly limits = new Map<QuotaClass, number>();
  private readonly local = new Map<string, LocalBucket>();
  private readonly leases = new Map<string, QuotaLease>();
  private readonly share: number;
  private readonly now: () => number;
  /** Told of each request refused for its quota (the metrics' counter); never of a request value. */
  rejectionObserver?: (quotaClass: QuotaClass) => void;

  constructor(
    limits: QuotaLimits,
    private readonly options: RequestQuotasOptions = {},
  ) {
    this.share = options.share ?? 1;
    if (!(this.share > 0 && this.share <= 1)) throw new RangeError('a process share of the quotas is in (0, 1]');
    this.now = options.now ?? (() => performance.now());
    for (const [quotaClass, rate] of Object.entries(limits) as [QuotaClass, number | undefined][]) {
      if (rate === undefined) continue;
      if (!(Number.isFinite(rate) && rate > 0)) throw new RangeError(`quota ${quotaClass} must be a positive number of requests per second`);
      this.limits.set(quotaClass, rate);
    }
  }

  /**
   * Counts one request of the class (and, for the control plane, of its operation `action`), or
   * throws ThrottlingException when its quota is spent. Synchronous unless it must claim tokens
   * from the shared buckets; then it returns the claim, which rejects with ThrottlingException, or
   * with the database's failure (the request fails as on any store failure).
   */
  charge(quotaClass: QuotaClass, action: string): void | Promise<void> {
    const rate = this.limits.get(quotaClass);
    if (rate === undefined) return;
    const bucket = quotaBucketOf(quotaClass, action);
    if (!this.options.claims) {
      if (!this.takeLocal(bucket, rate)) throw this.throttled(quotaClass);
      return;
    }
    let lease = this.leases.get(bucket);
    if (!lease) {
      lease = new QuotaLease(bucket, rate, this.options.claims, this.now, this.options.claimTimeoutMs ?? 5000);
      this.leases.set(bucket, lease);
    }
    if (lease.take()) return;
    return lease.wait().then((admitted) => {
      if (!admitted) throw this.throttled(quotaClass);
    });
  }

  private takeLocal(name: string, rate: number): boolean {
    const now = this.now();
    let bucket = this.local.get(name);
    if (!bucket) {
      const processRate = rate * this.share;
      bucket = { rate: processRate, tokens: capacityFor(processRate), at: now };
      this.local.set(name, bucket);
    }
    bucket.tokens = Math.min(capacityFor(bucket.rate), bucket.tokens + ((now - bucket.at) / 1000) * bucket.rate);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private throttled(quotaClass: QuotaClass): KmsError {
    this.rejectionObserver?.(quotaClass);
    return new KmsError('ThrottlingException', 'Rate exceeded');
  }
}
