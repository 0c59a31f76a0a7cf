/** checkReachable (storage/postgres/connection.ts), with a stand-in pool: how a failed first connection is reported. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { DatabaseUnreachableError, checkReachable, createPool, parsePostgresUrl } from '../../src/storage/postgres/connection.ts';
import { POSTGRES_TEST_URL } from './backends.ts';

const failingPool = (message: string) => ({ connect: async () => Promise.reject(new Error(message)) }) as unknown as pg.Pool;

describe('checkReachable', () => {
  it('reports a refused connection as DatabaseUnreachableError with the driver reason', async () => {
    const location = parsePostgresUrl('postgres://kms@127.0.0.1:5999/kms');
    await assert.rejects(checkReachable(failingPool('connect ECONNREFUSED 127.0.0.1:5999'), location), (error: unknown) => {
      assert.ok(error instanceof DatabaseUnreachableError);
      assert.equal(error.reason, 'connect ECONNREFUSED 127.0.0.1:5999');
      return true;
    });
  });

  it('masks the URL password should a driver message ever contain it', async () => {
    const location = parsePostgresUrl('postgres://kms:s%40cret-77@127.0.0.1:5432/kms');
    await assert.rejects(checkReachable(failingPool('login as kms with s@cret-77 refused'), location), (error: unknown) => {
      assert.ok(error instanceof DatabaseUnreachableError);
      assert.equal(error.reason, 'login as kms with *** refused');
      assert.ok(!error.message.includes('s@cret-77'));
      return true;
    });
  });

  it('gives the connection back when it is made', async () => {
    let released = 0;
    const pool = { connect: async () => ({ release: () => released++ }) } as unknown as pg.Pool;
    await checkReachable(pool, parsePostgresUrl('postgres://kms@127.0.0.1/kms'));
    assert.equal(released, 1);
  });
});

describe('createPool', () => {
  it('survives a checked-out connection that the server drops between queries (no uncaught error), and serves on', async () => {
    const pool = createPool(parsePostgresUrl(POSTGRES_TEST_URL), { max: 2 });
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', record);
    try {
      const held = await pool.connect();
      const pid = (await held.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      // Another connection ends the held one's backend, as a restart or a failover would. No query
      // is running on the held one, so the driver reports the loss as an 'error' event on it.
      const killer = new pg.Client({ connectionString: POSTGRES_TEST_URL });
      await killer.connect();
      await killer.query('SELECT pg_terminate_backend($1)', [pid]);
      for (let i = 0; i < 100 && (await killer.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await killer.end();
      await new Promise((resolve) => setTimeout(resolve, 200));
      await assert.rejects(held.query('SELECT 1'));
      held.release(new Error('dropped'));
      assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1);
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', record);
      await pool.end();
    }
  });
});
