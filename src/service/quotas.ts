import type { KeyRecord } from '../storage/types.ts';
import { KmsError } from './errors.ts';

/**
 * Request-rate quotas, as AWS KMS has them: shared by all cryptographic operations with symmetric
 * keys (and HMAC keys, GenerateRandom), by those with RSA keys, by those with ECC keys
 * (ECDSA/ECDH/Ed25519/ML-DSA signing keys count here), and per control-plane operation. Past a
 * quota a request is refused with ThrottlingException, which every AWS SDK retries with backoff.
 *
 * Each quota is for the whole installation (one account). A server process holds `share` of it
 * (1 / server processes): a token bucket per class refilled at share × rate per second, holding up
 * to one second's worth. Tolerance: the installation never admits more than the quota per second
 * (plus one second's burst); when the OS hands one process more than its share of connections it
 * throttles before the whole reaches the quota, by at most that imbalance.
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

interface Bucket {
  rate: number;
  tokens: number;
  at: number;
}

export class RequestQuotas {
  private readonly buckets = new Map<QuotaClass, Bucket>();

  constructor(
    limits: QuotaLimits,
    private readonly options: { share?: number; now?: () => number } = {},
  ) {
    const share = options.share ?? 1;
    if (!(share > 0 && share <= 1)) throw new RangeError('a process share of the quotas is in (0, 1]');
    const now = options.now ? options.now() : performance.now();
    for (const [quotaClass, rate] of Object.entries(limits) as [QuotaClass, number | undefined][]) {
      if (rate === undefined) continue;
      if (!(Number.isFinite(rate) && rate > 0)) throw new RangeError(`quota ${quotaClass} must be a positive number of requests per second`);
      const processRate = rate * share;
      this.buckets.set(quotaClass, { rate: processRate, tokens: Math.max(processRate, 1), at: now });
    }
  }

  /** Counts one request of the class, or throws ThrottlingException when its quota is spent. */
  charge(quotaClass: QuotaClass): void {
    const bucket = this.buckets.get(quotaClass);
    if (!bucket) return;
    const now = this.options.now ? this.options.now() : performance.now();
    const capacity = Math.max(bucket.rate, 1);
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.at) / 1000) * bucket.rate);
    bucket.at = now;
    if (bucket.tokens < 1) throw new KmsError('ThrottlingException', 'Rate exceeded');
    bucket.tokens -= 1;
  }
}
