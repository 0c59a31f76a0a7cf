import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { GetKeyRotationStatusResponse } from '@aws-sdk/client-kms';
import { dataDirPaths } from '../../src/cli/instance.ts';
import type { KeyRecord, MetadataStore } from '../../src/storage/types.ts';
import { DAY_MS, Harness, T0 } from '../support/service-harness.ts';

/**
 * Decisions made on a key's state must hold when another process changes that state between
 * the check and the write (several workers share one database).
 */
describe('state changes that race with another process', () => {
  let dataDir: string;
  let service: Harness;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strongroom-consistency-'));
    service = await Harness.open(dataDir);
  });

  afterEach(async () => {
    await service.instance.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A view of the store whose getKey answers with what the key looked like before `change`. */
  async function staleReadAfter(keyId: string, change: () => Promise<unknown>): Promise<MetadataStore> {
    const before = (await service.instance.store.getKey(keyId)) as KeyRecord;
    await change();
    const store = service.instance.store;
    let stale = true;
    return new Proxy(store, {
      get(target, property) {
        if (property === 'getKey') {
          return async (id: string) => {
            if (stale && id === keyId) {
              stale = false; // only the operation's own first read is stale
              return before;
            }
            return target.getKey(id);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  const cases: { operation: string; input: (keyId: string) => object }[] = [
    { operation: 'EnableKey', input: (keyId) => ({ KeyId: keyId }) },
    { operation: 'DisableKey', input: (keyId) => ({ KeyId: keyId }) },
    { operation: 'UpdateKeyDescription', input: (keyId) => ({ KeyId: keyId, Description: 'late' }) },
    { operation: 'ScheduleKeyDeletion', input: (keyId) => ({ KeyId: keyId, PendingWindowInDays: 7 }) },
    { operation: 'EnableKeyRotation', input: (keyId) => ({ KeyId: keyId }) },
  ];
  for (const { operation, input } of cases) {
    test(`${operation} checked against a stale read cannot undo a deletion scheduled meanwhile`, async () => {
      const keyId = await service.createKey();
      const store = await staleReadAfter(keyId, () =>
        service.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 30 }),
      );
      const run = (await import('../../src/service/operations.ts')).OPERATIONS.get(operation)!;
      await assert.rejects(run({ ...service.instance.context, store }, input(keyId), service.caller()), {
        errorName: 'KMSInvalidStateException',
      });
      const key = await service.describe(keyId);
      assert.equal(key.KeyState, 'PendingDeletion');
      assert.equal(key.DeletionDate?.getTime(), T0.getTime() + 30 * DAY_MS);
    });
  }

  test('re-enabling rotation with the same period keeps the schedule; a new period counts from the last rotation', async () => {
    const keyId = await service.createKey();
    await service.call('EnableKeyRotation', { KeyId: keyId, RotationPeriodInDays: 90 });
    service.advanceTo(30);
    await service.call('EnableKeyRotation', { KeyId: keyId, RotationPeriodInDays: 90 });
    let status = await service.call<GetKeyRotationStatusResponse>('GetKeyRotationStatus', { KeyId: keyId });
    assert.equal(status.NextRotationDate?.getTime(), T0.getTime() + 90 * DAY_MS);
    await service.call('EnableKeyRotation', { KeyId: keyId, RotationPeriodInDays: 180 });
    status = await service.call<GetKeyRotationStatusResponse>('GetKeyRotationStatus', { KeyId: keyId });
    assert.equal(status.NextRotationDate?.getTime(), T0.getTime() + 180 * DAY_MS);
  });

  test('destroying a key leaves its sealed material in neither the database nor the WAL', async () => {
    const keyId = await service.createKey();
    const version = await service.instance.store.getKeyVersion(keyId, 1);
    const sealed = Buffer.from(version!.sealedMaterial);
    const paths = dataDirPaths(service.instance.dataDir);
    const inFiles = () =>
      [paths.database, `${paths.database}-wal`].some((path) => {
        try {
          return readFileSync(path).includes(sealed);
        } catch {
          return false;
        }
      });
    assert.ok(inFiles(), 'precondition: the sealed material is on disk');
    await service.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
    service.advanceTo(8);
    assert.deepEqual((await service.runScheduler()).destroyed, [keyId]);
    assert.equal(inFiles(), false);
    assert.equal(statSync(`${paths.database}-wal`).size, 0);
  });

  test('alias and tag limits hold inside the write, and a vanished key is NotFound, not a 500', async () => {
    const keyId = await service.createKey();
    for (let index = 0; index < 50; index++) {
      await service.call('CreateAlias', { AliasName: `alias/a${index}`, TargetKeyId: keyId });
    }
    await service.expectError('CreateAlias', { AliasName: 'alias/a50', TargetKeyId: keyId }, 'LimitExceededException');
    const tags = Array.from({ length: 50 }, (_, index) => ({ TagKey: `t${index}`, TagValue: 'v' }));
    await service.call('TagResource', { KeyId: keyId, Tags: tags });
    await service.expectError('TagResource', { KeyId: keyId, Tags: [{ TagKey: 'one-more', TagValue: 'v' }] }, 'TagException');

    const doomed = await service.createKey();
    const store = await staleReadAfter(doomed, async () => {
      await service.call('ScheduleKeyDeletion', { KeyId: doomed, PendingWindowInDays: 7 });
      service.advanceTo(8);
      await service.runScheduler();
    });
    const createAlias = (await import('../../src/service/operations.ts')).OPERATIONS.get('CreateAlias')!;
    await assert.rejects(
      createAlias({ ...service.instance.context, store }, { AliasName: 'alias/late', TargetKeyId: doomed }, service.caller()),
      { errorName: 'NotFoundException' },
    );
  });
});
