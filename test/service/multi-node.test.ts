/**
 * Two nodes of one installation, in-process: two service instances, each with its own data
 * directory holding the same root key, sharing one PostgreSQL schema, with a clock the test
 * moves. What one node caches must never let it serve what the other has destroyed, and the
 * background work of several nodes must run once, not once per node. (test/wire/multi-node.test.ts
 * runs real servers; this file needs the moved clock.)
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CreateKeyResponse, EncryptResponse } from '@aws-sdk/client-kms';
import pg from 'pg';
import { adminPrincipalArn, bootstrapAdministratorPrincipal, dataDirPaths, openInstance, type Instance } from '../../src/cli/instance.ts';
import { runDueBackgroundWork } from '../../src/service/background.ts';
import type { Caller } from '../../src/service/context.ts';
import { isKmsError, type KmsErrorName } from '../../src/service/errors.ts';
import { invokeOperation } from '../../src/service/operations.ts';
import { POSTGRES_TEST_URL, postgresQuery, postgresUrl, testSchemaName } from '../storage/backends.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const T0 = new Date('2025-03-01T12:00:00Z');

describe('two nodes on one PostgreSQL (in-process)', { timeout: 120_000 }, () => {
  const schema = testSchemaName();
  const time = { clock: new Date(T0) };
  const dataDirs: string[] = [];
  let a: Instance;
  let b: Instance;

  const open = async (rootKeyFrom?: string): Promise<Instance> => {
    const dataDir = await mkdtemp(join(tmpdir(), 'strongroom-nodes-'));
    dataDirs.push(dataDir);
    if (rootKeyFrom) copyFileSync(dataDirPaths(rootKeyFrom).rootKey, dataDirPaths(dataDir).rootKey);
    return openInstance({
      dataDir,
      region: 'us-east-1',
      now: () => new Date(time.clock),
      auditMode: 'inline',
      databaseUrl: postgresUrl(schema),
    });
  };
  const caller = (node: Instance): Caller => ({
    principalArn: adminPrincipalArn(node.context.accountId),
    accessKeyId: 'AKIATESTCALLER000000',
    decisions: [],
  });
  const call = <Output>(node: Instance, operation: string, input: object) =>
    invokeOperation(operation, node.context, input, caller(node)) as Promise<Output>;
  const refuses = (node: Instance, operation: string, input: object, errorName: KmsErrorName) =>
    assert.rejects(call(node, operation, input), (error) => {
      assert.ok(isKmsError(error), `expected a KmsError, got ${String(error)}`);
      assert.equal(error.errorName, errorName);
      return true;
    });
  const createKey = async (node: Instance, input: object = {}) =>
    (await call<CreateKeyResponse>(node, 'CreateKey', input)).KeyMetadata!.KeyId!;

  before(async () => {
    await postgresQuery(`CREATE SCHEMA ${schema}`);
    a = await open();
    await bootstrapAdministratorPrincipal(a);
    b = await open(dataDirs[0]);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
    await postgresQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  test('a key version node B holds in memory is never used once node A has destroyed the key', async () => {
    time.clock = new Date(T0);
    const keyId = await createKey(a);
    const { CiphertextBlob } = await call<EncryptResponse>(a, 'Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') });
    // Node B reads (and caches) version 1 and its unsealed material.
    await call(b, 'Decrypt', { CiphertextBlob });
    await call(b, 'Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') });

    await call(a, 'ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
    await refuses(b, 'Decrypt', { CiphertextBlob }, 'KMSInvalidStateException');
    await refuses(b, 'Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') }, 'KMSInvalidStateException');

    time.clock = new Date(T0.getTime() + 8 * DAY_MS);
    const run = await runDueBackgroundWork(a.context);
    assert.deepEqual(run.destroyed, [keyId]);
    const rows = await postgresQuery('SELECT count(*) AS n FROM key_versions WHERE key_id = $1', [keyId], schema);
    assert.equal(Number(rows.rows[0].n), 0, 'the material is gone from the database');
    // Precondition: B's store still answers the version from its cache, so the refusals below
    // come from the key row, read on every request, not from a missing version.
    assert.equal((await b.store.getKeyVersion(keyId, 1))?.version, 1);
    await refuses(b, 'Decrypt', { CiphertextBlob }, 'InvalidCiphertextException');
    await refuses(b, 'Decrypt', { CiphertextBlob, KeyId: keyId }, 'NotFoundException');
    await refuses(b, 'Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') }, 'NotFoundException');
  });

  test('both schedulers running at once rotate a due key once, and neither reports a conflict', async () => {
    time.clock = new Date(T0);
    // Enough keys that one pass is still rotating when the other lists what is due.
    const keyIds: string[] = [];
    for (let i = 0; i < 16; i++) keyIds.push(await createKey(i % 2 ? a : b));
    for (const keyId of keyIds) await call(a, 'EnableKeyRotation', { KeyId: keyId, RotationPeriodInDays: 90 });
    time.clock = new Date(T0.getTime() + 91 * DAY_MS);
    const runs = await Promise.all([runDueBackgroundWork(a.context), runDueBackgroundWork(b.context)]);
    assert.deepEqual(
      runs.flatMap((run) => run.failed.map((failure) => `${failure.task} ${failure.keyId}: ${String(failure.error)}`)),
      [],
    );
    assert.deepEqual(runs.flatMap((run) => run.rotated).sort(), [...keyIds].sort());
    for (const keyId of keyIds) {
      assert.deepEqual((await a.store.listKeyVersions(keyId)).map((version) => version.version), [1, 2], keyId);
    }
  });

  test("a node skips its pass while another node's pass holds the lock, and runs once that node is gone", async () => {
    time.clock = new Date(T0);
    const keyId = await createKey(b);
    await call(b, 'EnableKeyRotation', { KeyId: keyId, RotationPeriodInDays: 90 });
    time.clock = new Date(T0.getTime() + 91 * DAY_MS);
    // Another node mid-pass: a session holding the background lock. It dies without unlocking.
    const otherNode = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await otherNode.connect();
    const taken = await otherNode.query('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [`strongroom-background:${schema}`]);
    assert.equal(taken.rows[0].locked, true);
    const skipped = await runDueBackgroundWork(b.context);
    assert.equal(skipped.skipped, true);
    assert.deepEqual(skipped.rotated, []);
    assert.equal((await b.store.listKeyVersions(keyId)).length, 1);
    await otherNode.end();
    const run = await runDueBackgroundWork(b.context);
    assert.equal(run.skipped, undefined);
    assert.deepEqual(run.rotated, [keyId]);
  });
});
