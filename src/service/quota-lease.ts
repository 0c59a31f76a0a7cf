/**
 * One process's lease on a quota bucket shared by every node (quotas.ts). The tokens live in the
 * database (storage/postgres/quota-buckets.ts): a token bucket refilled at the quota's rate by the
 * database's clock, holding at most one second's worth. A process takes a batch of tokens from it
 * with one atomic statement and spends them locally, so most requests never wait on the database.
 *
 * Why the installation stays within its quota (the tolerance docs/configuration.md states): the
 * shared bucket hands out at most capacity + rate × T tokens in any window of T seconds (a token
 * bucket's bound, kept by the database's clock). A request admitted in a window spent a token
 * handed out either in the window or before it and still unspent when the window began. A process
 * asks for `batch` tokens at a time and claims again only once its lease is empty, so per bucket it
 * holds at most `batch` tokens handed out but unspent (in its lease, or in the one claim in
 * flight). So any window of T seconds admits at most
 *
 *     rate × T + capacity + processes × batch      (capacity = max(rate, 1), batch = batchFor(rate))
 *
 * per bucket. Leases older than LEASE_LIFETIME_MS are dropped unspent, and the answer of a claim
 * that timed out is dropped too: both only admit fewer, never more.
 */

/** The shared buckets: storage/postgres/quota-buckets.ts fits this. */
export interface QuotaClaims {
  /**
   * Refills `bucket` (holding up to `capacity`, refilled at `rate` per second) by the time elapsed
   * since its last claim, takes min(wanted, available) whole tokens when at least one is there, and
   * returns how many it took (0: none there). One atomic step however many processes claim at once.
   */
  claim(bucket: string, rate: number, capacity: number, wanted: number): Promise<number>;
}

/** Leases older than this are dropped unspent: it bounds what a process can save up. */
export const LEASE_LIFETIME_MS = 1000;

/** A claim takes 2% of a second's tokens (at least one): 2,000 at 100,000/s, one at 50/s or less. */
export const batchFor = (rate: number): number => Math.max(1, Math.floor(rate * 0.02));

/** The shared bucket's size: one second's worth, at least one request. */
export const capacityFor = (rate: number): number => Math.max(rate, 1);

interface Waiter {
  resolve: (admitted: boolean) => void;
  reject: (error: unknown) => void;
}

export class QuotaLease {
  private tokens = 0;
  private claimedAt = Number.NEGATIVE_INFINITY;
  private readonly waiting: Waiter[] = [];
  private claiming = false;

  constructor(
    private readonly bucket: string,
    private readonly rate: number,
    private readonly claims: QuotaClaims,
    private readonly now: () => number,
    private readonly claimTimeoutMs: number,
  ) {}

  /** Spends a token of the lease when it has one (the common, synchronous path). */
  take(): boolean {
    if (this.tokens >= 1 && this.now() - this.claimedAt <= LEASE_LIFETIME_MS) {
      this.tokens -= 1;
      return true;
    }
    this.tokens = 0;
    return false;
  }

  /**
   * Waits for a claim (one in flight per lease at a time, serving the requests that queue up
   * meanwhile in arrival order; while each claim is answered in full the next follows): true if it
   * brought this request a token, false if the bucket is spent. Rejects, within claimTimeoutMs,
   * when the database does not answer.
   */
  wait(): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.claiming) void this.claimWhileWaiting();
    });
  }

  private async claimWhileWaiting(): Promise<void> {
    this.claiming = true;
    try {
      while (this.waiting.length > 0) {
        const wanted = batchFor(this.rate);
        let granted: number;
        try {
          granted = await this.boundedClaim(wanted);
        } catch (error) {
          for (const waiter of this.waiting.splice(0)) waiter.reject(error);
          return;
        }
        this.tokens = granted;
        this.claimedAt = this.now();
        while (this.waiting.length > 0 && this.tokens >= 1) {
          this.tokens -= 1;
          this.waiting.shift()!.resolve(true);
        }
        // Fewer than asked for: the bucket is spent, and whoever is still waiting is throttled.
        // Otherwise the loop claims again for those still waiting.
        if (granted < wanted) for (const waiter of this.waiting.splice(0)) waiter.resolve(false);
      }
    } finally {
      this.claiming = false;
    }
  }

  /** The claim, or an error once claimTimeoutMs has passed (its late answer is then dropped). */
  private boundedClaim(wanted: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`quota claim on ${this.bucket} took longer than ${this.claimTimeoutMs} ms`)), this.claimTimeoutMs);
    });
    return Promise.race([this.claims.claim(this.bucket, this.rate, capacityFor(this.rate), wanted), timeout]).finally(() => clearTimeout(timer));
  }
}
