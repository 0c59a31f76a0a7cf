/**
 * The shared quota buckets' claim statement (src/storage/postgres/quota-buckets.ts) on a real
 * PostgreSQL, in a schema of its own: atomic under concurrent claims from several pools (as
 * several nodes), refilled by the database's clock up to the capacity.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { PostgresQuotaBuckets } from '../../src/storage/postgres/quota-buckets.ts';
import { postgresQuery, postgresUrl, testSchemaName } from './backends.ts';

describe('shared quota buckets on PostgreSQL', () => {
  const schema = testSchemaName();
  const opened: PostgresQuotaBuckets[] = [];
  const open = async () => {
    const buckets = await PostgresQuotaBuckets.open(postgresUrl(schema));
    opened.push(buckets);
    return buckets;
  };

  before(async () => {
    await postgresQuery(`CREATE SCHEMA ${schema}`);
  });

  // Each pool holds up to 4 connections of a server other test runs share: closed after each test.
  afterEach(async () => {
    for (const buckets of opened.splice(0)) await buckets.close();
  });

  after(async () => {
    await postgresQuery(`DROP SCHEMA ${schema} CASCADE`);
  });

  test('its table is a migration component of its own (quotas, version 1), applied once by nodes starting together', async () => {
    await Promise.all([open(), open(), open()]);
    const applied = await postgresQuery('SELECT component, version FROM schema_migrations ORDER BY version', [], schema);
    assert.deepEqual(applied.rows, [{ component: 'quotas', version: 1 }]);
  });

  test('claims from six nodes at once never hand out more than the bucket holds', async () => {
    const nodes = await Promise.all(Array.from({ length: 6 }, () => open()));
    // A rate so low that nothing refills during the test: exactly the capacity, 100, is there.
    const rate = 0.0001;
    const claims = nodes.flatMap((node) => Array.from({ length: 12 }, () => node.claim('atomicity', rate, 100, 7)));
    const granted = await Promise.all(claims);
    assert.equal(
      granted.reduce((sum, tokens) => sum + tokens, 0),
      100,
    );
    for (const tokens of granted) assert.ok(Number.isInteger(tokens) && tokens >= 0 && tokens <= 7, String(tokens));
    assert.equal(await nodes[0].claim('atomicity', rate, 100, 7), 0);
  });

  test('a bucket first seen starts full; a claim takes min(wanted, available) and leaves the rest', async () => {
    const buckets = await open();
    assert.equal(await buckets.claim('fresh', 0.0001, 5, 3), 3);
    assert.equal(await buckets.claim('fresh', 0.0001, 5, 3), 2);
    assert.equal(await buckets.claim('fresh', 0.0001, 5, 3), 0);
  });

  test('it refills by the time elapsed on the database clock, up to the capacity', async () => {
    const buckets = await open();
    assert.equal(await buckets.claim('refill', 2, 5, 5), 5);
    // Moved back in time rather than waited for: 1 s ago at 2/s is 2 tokens (and a sliver more).
    await postgresQuery(`UPDATE quota_buckets SET tokens = 0, refilled_at = clock_timestamp() - interval '1 second' WHERE bucket = 'refill'`, [], schema);
    assert.equal(await buckets.claim('refill', 2, 5, 100), 2);
    await postgresQuery(`UPDATE quota_buckets SET tokens = 0, refilled_at = clock_timestamp() - interval '1 hour' WHERE bucket = 'refill'`, [], schema);
    assert.equal(await buckets.claim('refill', 2, 5, 100), 5, 'never more than the capacity');
  });

  test('less than one whole token is no token, and is kept for the next claim', async () => {
    const buckets = await open();
    await buckets.claim('fraction', 2, 1, 1);
    await postgresQuery(`UPDATE quota_buckets SET tokens = 0, refilled_at = clock_timestamp() - interval '300 milliseconds' WHERE bucket = 'fraction'`, [], schema);
    assert.equal(await buckets.claim('fraction', 2, 1, 1), 0); // 0.6 of a token
    const [row] = (await postgresQuery(`SELECT tokens FROM quota_buckets WHERE bucket = 'fraction'`, [], schema)).rows;
    assert.ok(row.tokens >= 0.6 && row.tokens < 1, String(row.tokens));
  });
});
