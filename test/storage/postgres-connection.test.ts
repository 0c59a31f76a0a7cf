/** checkReachable (storage/postgres/connection.ts), with a stand-in pool: how a failed first connection is reported. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type pg from 'pg';
import { DatabaseUnreachableError, checkReachable, parsePostgresUrl } from '../../src/storage/postgres/connection.ts';

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
