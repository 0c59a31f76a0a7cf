/**
 * Request-rate quotas held across two nodes on one PostgreSQL (issue 8): real `strongroom serve`
 * processes sharing a schema of their own, real @aws-sdk/client-kms clients. Under load split
 * across both nodes the installation admits no more than the bound docs/configuration.md states
 * (rate × T + capacity + processes × batch in T seconds), answers the rest with AWS's
 * ThrottlingException, and the SDK's own retries get a throttled request through.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DescribeKeyCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import pg from 'pg';
import { createKey } from '../support/kms-assertions.ts';
import { makeDataDir, removeDataDir, startServer, type RunningServer } from '../support/server.ts';
import { keepRawBodies } from '../support/wire-errors.ts';
import { createTestSchema, dropTestSchema } from '../support/postgres-schema.ts';

const POSTGRES = process.env.STRONGROOM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `strongroom_quotas_${randomBytes(6).toString('hex')}`;
const databaseUrl = `${POSTGRES}?schema=${schema}`;
const SYMMETRIC_RATE = 10;
const CONTROL_RATE = 5;

type SdkError = Error & { $metadata?: { httpStatusCode?: number }; $response?: { body?: Uint8Array } };

/** A throttled request as AWS answers it: 400, __type ThrottlingException, "Rate exceeded". */
function assertThrottled(error: SdkError, readBody: boolean): void {
  assert.equal(error.name, 'ThrottlingException', `${error.name}: ${error.message}`);
  assert.equal(error.message, 'Rate exceeded');
  assert.equal(error.$metadata?.httpStatusCode, 400);
  if (readBody) {
    const wire = JSON.parse(Buffer.from(error.$response!.body!).toString('utf8')) as Record<string, unknown>;
    assert.equal(wire.__type, 'ThrottlingException');
  }
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('request-rate quotas shared by two nodes on one PostgreSQL', { timeout: 240_000 }, () => {
  const nodes: RunningServer[] = [];
  const dataDirs: string[] = [];
  let keyId: string;

  before(async () => {
    await createTestSchema(POSTGRES, schema);
    const args = ['--database', databaseUrl, '--quota', `symmetric=${SYMMETRIC_RATE}`, '--quota', `control=${CONTROL_RATE}`];
    for (let index = 0; index < 2; index++) {
      const dataDir = await makeDataDir();
      dataDirs.push(dataDir);
      if (index > 0) {
        // The same root key and administrator, as an operator deploys a second node.
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        for (const file of ['root.key', 'credentials']) copyFileSync(join(dataDirs[0], file), join(dataDir, file));
      }
      nodes.push(await startServer({ dataDir, args: [...args, ...(index === 0 ? ['--metrics-port', '0'] : [])], timeoutMs: 60_000 }));
    }
    keyId = (await createKey(nodes[0].kms())).KeyId!;
  });

  after(async () => {
    for (const node of nodes) await node.stop().catch(() => {});
    for (const dir of dataDirs) await removeDataDir(dir);
    await dropTestSchema(POSTGRES, schema);
  });

  it('concurrent Encrypts split across both nodes: admitted within rate × T + capacity + processes × batch, the rest ThrottlingException', async (t) => {
    const loopsPerNode = 8;
    const durationMs = 2500;
    const admitted = [0, 0];
    const throttled = [0, 0];
    // Each loop a client of its node, without retries, keeping raw bodies to read __type.
    const clients = nodes.map((node) =>
      Array.from({ length: loopsPerNode }, () => {
        const kms = node.kms({ maxAttempts: 1 });
        keepRawBodies(kms);
        return kms;
      }),
    );
    const started = performance.now();
    let finished = started;
    await Promise.all(
      clients.flatMap((loops, node) =>
        loops.map(async (kms) => {
          while (performance.now() - started < durationMs) {
            try {
              await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('quota') }));
              admitted[node]++;
            } catch (error) {
              assertThrottled(error as SdkError, throttled[0] + throttled[1] === 0);
              throttled[node]++;
            }
            finished = Math.max(finished, performance.now());
          }
        }),
      ),
    );
    // Every admission fell between the first request sent and the last answer received.
    const seconds = (finished - started) / 1000;
    const total = admitted[0] + admitted[1];
    t.diagnostic(`admitted ${admitted.join(' + ')} = ${total}, throttled ${throttled.join(' + ')}, in ${seconds.toFixed(2)} s`);
    const bound = SYMMETRIC_RATE * seconds + SYMMETRIC_RATE /* capacity */ + 2 /* processes */ * 1; /* batch: max(1, 2% of 10) */
    assert.ok(total <= bound, `${total} admitted in ${seconds.toFixed(2)} s, bound ${bound.toFixed(1)} (per node ${admitted.join(', ')})`);
    assert.ok(total >= 0.5 * SYMMETRIC_RATE * seconds, `only ${total} admitted in ${seconds.toFixed(2)} s`);
    assert.ok(admitted[0] > 0 && admitted[1] > 0, `both nodes admitted some (${admitted.join(', ')})`);
    assert.ok(throttled[0] + throttled[1] > 0, 'the load went past the quota');

    // Node A's refusals, counted by class in its metrics.
    const response = await fetch(`${nodes[0].metricsEndpoint}/metrics`);
    const text = await response.text();
    assert.equal(sample(text, 'strongroom_quota_rejections_total{class="symmetric"}'), throttled[0]);
    assert.equal(sample(text, 'strongroom_quota_rejections_total{class="rsa"}'), 0);
  });

  it('the SDK with its default retries gets a throttled request through', async (t) => {
    // The quota is per control-plane operation: DescribeKey's own bucket, kept drained from node A
    // until the retrying client's first attempt on node B has been throttled; then the drain stops
    // and the SDK's retries (default: 3 attempts, backoff with jitter) find a refilled bucket. A
    // round whose first attempt got through proves nothing and is repeated; so is one whose
    // retries all fell within the few refills the drain's last requests took (the SDK then gives
    // up with ThrottlingException, as it should).
    const retrying: KMSClient = nodes[1].kms({ maxAttempts: 3 });
    let onAttemptThrottled = () => {};
    retrying.middlewareStack.add(
      (next) => async (args) => {
        try {
          return await next(args);
        } catch (error) {
          if ((error as Error).name === 'ThrottlingException') onAttemptThrottled();
          throw error;
        }
      },
      { step: 'deserialize', priority: 'high', name: 'observeThrottledAttempts' },
    );
    const drainClients = Array.from({ length: 8 }, () => nodes[0].kms({ maxAttempts: 1 }));
    let retriedAttempts: number | undefined;
    for (let round = 0; round < 20 && retriedAttempts === undefined; round++) {
      let draining = true;
      onAttemptThrottled = () => (draining = false);
      let drained!: () => void;
      const drainedOnce = new Promise<void>((resolve) => (drained = resolve));
      const drains = drainClients.map(async (kms) => {
        while (draining) {
          try {
            await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
          } catch (error) {
            assertThrottled(error as SdkError, false);
            drained();
          }
        }
      });
      await drainedOnce;
      const outcome = await retrying.send(new DescribeKeyCommand({ KeyId: keyId })).catch((error: SdkError) => error);
      draining = false;
      await Promise.all(drains);
      if (outcome instanceof Error) {
        assertThrottled(outcome as SdkError, false);
        assert.equal((outcome as Error & { $metadata?: { attempts?: number } }).$metadata?.attempts, 3, 'the SDK retried before giving up');
        t.diagnostic(`round ${round + 1}: every attempt throttled`);
        continue;
      }
      assert.equal(outcome.KeyMetadata?.KeyId, keyId);
      if ((outcome.$metadata.attempts ?? 1) > 1) retriedAttempts = outcome.$metadata.attempts;
      t.diagnostic(`round ${round + 1}: succeeded after ${outcome.$metadata.attempts} attempt(s)`);
    }
    assert.ok(retriedAttempts !== undefined, 'a call was throttled first and then succeeded on a retry');
  });

  // Last: it takes the shared buckets away.
  it('a claim the database cannot answer fails the request as a store failure (KMSInternalException, 500), never admits it', async () => {
    const client = new pg.Client({ connectionString: POSTGRES, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      await client.query('DROP TABLE quota_buckets');
    } finally {
      await client.end();
    }
    // At 10/s a claim brings one token, spent at once: every Encrypt claims.
    const kms = nodes[1].kms({ maxAttempts: 1 });
    await assert.rejects(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('quota') })), (error: SdkError) => {
      assert.equal(error.name, 'KMSInternalException', `${error.name}: ${error.message}`);
      assert.equal(error.$metadata?.httpStatusCode, 500);
      return true;
    });
  });
});
