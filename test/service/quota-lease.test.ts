/**
 * The shared-bucket lease (src/service/quota-lease.ts) with an injected clock and claim function:
 * a fake of the database's bucket, with the same arithmetic as the claim statement, stands in for
 * PostgreSQL (test/storage/quota-buckets.test.ts runs the real statement).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKmsError } from '../../src/service/errors.ts';
import { LEASE_LIFETIME_MS, batchFor, capacityFor, type QuotaClaims } from '../../src/service/quota-lease.ts';
import { RequestQuotas } from '../../src/service/quotas.ts';

const throttled = (error: unknown) => isKmsError(error) && error.errorName === 'ThrottlingException' && error.message === 'Rate exceeded';

/** A shared token bucket per name, refilled by `clock`, as quota-buckets.ts's statement does. */
class FakeSharedBuckets implements QuotaClaims {
  readonly calls: { bucket: string; wanted: number }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly clock: () => number) {}

  async claim(bucket: string, rate: number, capacity: number, wanted: number): Promise<number> {
    this.calls.push({ bucket, wanted });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((resolve) => setImmediate(resolve)); // answered on a later turn, as over the network
    this.inFlight--;
    const now = this.clock();
    const state = this.buckets.get(bucket) ?? { tokens: capacity, at: now };
    const available = Math.min(capacity, state.tokens + ((now - state.at) / 1000) * rate);
    const granted = available >= 1 ? Math.floor(Math.min(wanted, available)) : 0;
    this.buckets.set(bucket, { tokens: available - granted, at: now });
    return granted;
  }
}

/** Charges `count` requests at once; how many were admitted and how many throttled. */
async function burst(quotas: RequestQuotas, count: number, quotaClass: 'symmetric' | 'control' = 'symmetric', action = 'kms:Encrypt') {
  const outcomes = await Promise.allSettled(
    Array.from({ length: count }, async () => {
      await quotas.charge(quotaClass, action);
    }),
  );
  for (const outcome of outcomes) if (outcome.status === 'rejected') assert.ok(throttled(outcome.reason), String(outcome.reason));
  const admitted = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
  return { admitted, throttled: count - admitted };
}

describe('quota leases on shared buckets', () => {
  test('batches are 2% of a second (at least one); the bucket holds one second (at least one request)', () => {
    assert.equal(batchFor(100_000), 2000);
    assert.equal(batchFor(10), 1);
    assert.equal(batchFor(0.5), 1);
    assert.equal(capacityFor(0.5), 1);
    assert.equal(capacityFor(300), 300);
  });

  test('the common path is synchronous: a claim of one batch, then requests spend the lease without the database', async () => {
    const now = 0;
    const shared = new FakeSharedBuckets(() => now);
    const quotas = new RequestQuotas({ symmetric: 1000 }, { claims: shared, now: () => now });
    const first = quotas.charge('symmetric', 'kms:Encrypt');
    assert.ok(first instanceof Promise, 'an empty lease claims');
    await first;
    assert.deepEqual(shared.calls, [{ bucket: 'symmetric', wanted: 20 }]);
    for (let i = 0; i < 19; i++) assert.equal(quotas.charge('symmetric', 'kms:Encrypt'), undefined);
    assert.ok(quotas.charge('symmetric', 'kms:Encrypt') instanceof Promise, 'the spent lease claims again');
  });

  test('requests arriving together share one claim in flight (never two at once per bucket)', async () => {
    const now = 0;
    const shared = new FakeSharedBuckets(() => now);
    const quotas = new RequestQuotas({ symmetric: 1000 }, { claims: shared, now: () => now });
    assert.deepEqual(await burst(quotas, 15), { admitted: 15, throttled: 0 });
    assert.equal(shared.calls.length, 1);
    // 45 more: the 5 left in the lease, then claims one after another of 20 each.
    assert.deepEqual(await burst(quotas, 45), { admitted: 45, throttled: 0 });
    assert.equal(shared.maxInFlight, 1);
    assert.equal(shared.calls.length, 3);
  });

  test('a spent shared bucket throttles whoever waits; it refills at the rate by the shared clock', async () => {
    let now = 0;
    const shared = new FakeSharedBuckets(() => now);
    const quotas = new RequestQuotas({ symmetric: 10 }, { claims: shared, now: () => now });
    assert.deepEqual(await burst(quotas, 30), { admitted: 10, throttled: 20 }); // one second's worth
    now += 300; // 3 tokens
    assert.deepEqual(await burst(quotas, 10), { admitted: 3, throttled: 7 });
  });

  test('a partly answered claim admits what it brought and throttles the rest', async () => {
    const now = 0;
    const shared = new FakeSharedBuckets(() => now);
    const quotas = new RequestQuotas({ symmetric: 1000 }, { claims: shared, now: () => now });
    await burst(quotas, 990); // leaves 10 in the shared bucket and nothing in the lease
    assert.deepEqual(await burst(quotas, 25), { admitted: 10, throttled: 15 });
  });

  test('two processes on one bucket together admit the bucket, not twice it', async () => {
    const now = 0;
    const shared = new FakeSharedBuckets(() => now);
    const a = new RequestQuotas({ symmetric: 10 }, { claims: shared, now: () => now });
    const b = new RequestQuotas({ symmetric: 10 }, { claims: shared, now: () => now });
    const [fromA, fromB] = await Promise.all([burst(a, 30), burst(b, 30)]);
    assert.equal(fromA.admitted + fromB.admitted, 10);
  });

  test('a lease older than its lifetime is dropped unspent', async () => {
    let now = 0;
    const shared = new FakeSharedBuckets(() => now);
    const quotas = new RequestQuotas({ symmetric: 1000 }, { claims: shared, now: () => now });
    await quotas.charge('symmetric', 'kms:Encrypt'); // lease: 19 left
    now += LEASE_LIFETIME_MS + 1;
    assert.ok(quotas.charge('symmetric', 'kms:Encrypt') instanceof Promise, 'the stale lease is not spent');
  });

  test('control-plane operations lease buckets of their own', async () => {
    const now = 0;
    const shared = new FakeSharedBuckets(() => now);
    const quotas = new RequestQuotas({ control: 2 }, { claims: shared, now: () => now });
    assert.deepEqual(await burst(quotas, 5, 'control', 'kms:CreateKey'), { admitted: 2, throttled: 3 });
    assert.deepEqual(await burst(quotas, 5, 'control', 'kms:ListKeys'), { admitted: 2, throttled: 3 });
    assert.deepEqual([...new Set(shared.calls.map((call) => call.bucket))], ['control:CreateKey', 'control:ListKeys']);
  });

  test('a failing database fails the waiting requests with its error (not a throttle, not an admission); the next request claims afresh', async () => {
    const failure = new Error('connection terminated');
    let fail = true;
    const quotas = new RequestQuotas(
      { symmetric: 10 },
      { claims: { claim: async () => (fail ? Promise.reject(failure) : 1) }, now: () => 0 },
    );
    const results = await Promise.allSettled([quotas.charge('symmetric', 'kms:Encrypt'), quotas.charge('symmetric', 'kms:Encrypt')]);
    assert.deepEqual(results, [
      { status: 'rejected', reason: failure },
      { status: 'rejected', reason: failure },
    ]);
    fail = false;
    await quotas.charge('symmetric', 'kms:Encrypt');
  });

  test('a database that does not answer fails the request within the claim timeout', async () => {
    const quotas = new RequestQuotas(
      { symmetric: 10 },
      { claims: { claim: () => new Promise<number>(() => {}) }, claimTimeoutMs: 50, now: () => 0 },
    );
    await assert.rejects(async () => quotas.charge('symmetric', 'kms:Encrypt'), /quota claim on symmetric took longer than 50 ms/);
  });

  test('any window of T seconds admits at most rate × T + capacity + processes × batch (simulated load on 3 processes)', async () => {
    let now = 0;
    const shared = new FakeSharedBuckets(() => now);
    const rate = 200;
    const processes = Array.from({ length: 3 }, () => new RequestQuotas({ symmetric: rate }, { claims: shared, now: () => now }));
    const admittedAt: number[] = [];
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let step = 0; step < 500; step++) {
      now = step * 10; // 5 s of load, 10 ms steps, bursts of 0-29 requests per process
      await Promise.all(
        processes.map(async (quotas) => {
          const { admitted } = await burst(quotas, Math.floor(random() * 30));
          for (let i = 0; i < admitted; i++) admittedAt.push(now);
        }),
      );
    }
    assert.ok(admittedAt.length >= rate * 4, `the load was admitted up to the quota (${admittedAt.length})`);
    for (const windowMs of [10, 100, 500, 1000, 2000]) {
      const bound = (rate * windowMs) / 1000 + capacityFor(rate) + processes.length * batchFor(rate);
      let most = 0;
      for (let start = 0; start < 5000; start += 10) {
        most = Math.max(most, admittedAt.filter((at) => at >= start && at < start + windowMs).length);
      }
      assert.ok(most <= bound, `${most} admitted in ${windowMs} ms, bound ${bound}`);
    }
  });
});
