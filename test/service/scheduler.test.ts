import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { ListAliasesResponse, ScheduleKeyDeletionResponse } from '@aws-sdk/client-kms';
import { runDueBackgroundWork } from '../../src/service/background.ts';
import { DAY_MS, Harness, PLAINTEXT, T0 } from '../support/service-harness.ts';

describe('background work: scheduled deletion and automatic rotation', () => {
  let dataDir: string;
  let service: Harness;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strongroom-scheduler-'));
    service = await Harness.open(dataDir);
  });

  afterEach(async () => {
    await service.instance.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  describe('key deletion', () => {
    async function keyScheduledForDeletion(aliasName: string) {
      const keyId = await service.createKey({ Tags: [{ TagKey: 'team', TagValue: 'payments' }] });
      await service.call('CreateAlias', { AliasName: aliasName, TargetKeyId: keyId });
      const ciphertext = await service.encrypt(keyId, { purpose: 'test' });
      const scheduled = await service.call<ScheduleKeyDeletionResponse>('ScheduleKeyDeletion', {
        KeyId: keyId,
        PendingWindowInDays: 7,
      });
      assert.equal(scheduled.DeletionDate?.getTime(), T0.getTime() + 7 * DAY_MS);
      return { keyId, ciphertext };
    }

    test('a key scheduled for deletion in 7 days is not destroyed on day 6 and can still be cancelled', async () => {
      const { keyId } = await keyScheduledForDeletion('alias/day-six');
      service.advanceTo(6);
      assert.deepEqual((await service.runScheduler()).destroyed, []);
      assert.equal((await service.describe(keyId)).KeyState, 'PendingDeletion');
      assert.equal(service.countRows('key_versions', keyId), 1);

      await service.call('CancelKeyDeletion', { KeyId: keyId });
      assert.equal((await service.describe(keyId)).KeyState, 'Disabled');
      service.advanceTo(30);
      assert.deepEqual((await service.runScheduler()).destroyed, []);
      assert.equal((await service.describe(keyId)).KeyState, 'Disabled');
      assert.equal(service.countRows('key_versions', keyId), 1);
    });

    test('a key past its deletion date is destroyed with its material, aliases and tags', async () => {
      const { keyId, ciphertext } = await keyScheduledForDeletion('alias/doomed');
      const bystander = await service.createKey();
      await service.call('CreateAlias', { AliasName: 'alias/bystander', TargetKeyId: bystander });

      service.advanceTo(7, 60_000);
      assert.deepEqual((await service.runScheduler()).destroyed, [keyId]);

      await service.expectError('DescribeKey', { KeyId: keyId }, 'NotFoundException');
      await service.expectError('DescribeKey', { KeyId: 'alias/doomed' }, 'NotFoundException');
      await service.expectError('ListResourceTags', { KeyId: keyId }, 'NotFoundException');
      await service.expectError('CancelKeyDeletion', { KeyId: keyId }, 'NotFoundException');
      const aliases = await service.call<ListAliasesResponse>('ListAliases', {});
      assert.deepEqual(
        aliases.Aliases?.map((alias) => alias.AliasName),
        ['alias/bystander'],
      );
      // The proof the material is gone: no sealed version is left in the database file.
      assert.equal(service.countRows('key_versions', keyId), 0);
      assert.equal(service.countRows('keys', keyId), 0);
      assert.equal(service.countRows('tags', keyId), 0);
      assert.equal(service.countRows('aliases', keyId), 0);

      await service.expectError(
        'Decrypt',
        { CiphertextBlob: ciphertext, EncryptionContext: { purpose: 'test' } },
        'InvalidCiphertextException',
      );
      // The alias name is free again, and the bystander was not touched.
      await service.call('CreateAlias', { AliasName: 'alias/doomed', TargetKeyId: bystander });
      assert.equal((await service.describe(bystander)).KeyState, 'Enabled');
    });

    test('a key whose deletion is cancelled after the scheduler listed it as due is not destroyed', async () => {
      // With --workers, CancelKeyDeletion runs in a worker while the primary's scheduler runs: the
      // cancel can land between the scheduler's query for due keys and its delete.
      const { keyId } = await keyScheduledForDeletion('alias/cancelled-late');
      service.advanceTo(8);
      const store = service.instance.store;
      let cancelled = false;
      const racingStore = new Proxy(store, {
        get(target, property) {
          if (property === 'keysDueForDeletion') {
            return async (now: Date) => {
              const due = await target.keysDueForDeletion(now);
              await service.call('CancelKeyDeletion', { KeyId: keyId });
              cancelled = true;
              return due;
            };
          }
          const value = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      await runDueBackgroundWork({ ...service.instance.context, store: racingStore });
      assert.ok(cancelled, 'precondition: the cancel ran inside the scheduler run');
      assert.equal(service.countRows('key_versions', keyId), 1, 'the cancelled key keeps its material');
      assert.equal((await service.describe(keyId)).KeyState, 'Disabled');
    });

    test('a key is destroyed at its deletion date exactly, and only once', async () => {
      const { keyId } = await keyScheduledForDeletion('alias/exact');
      service.advanceTo(7, -1);
      assert.deepEqual((await service.runScheduler()).destroyed, []);
      service.advanceTo(7);
      assert.deepEqual((await service.runScheduler()).destroyed, [keyId]);
      assert.deepEqual((await service.runScheduler()).destroyed, []);
    });
  });

  describe('automatic rotation', () => {
    async function keyWithRotation(periodDays: number) {
      const keyId = await service.createKey();
      await service.call('EnableKeyRotation', { KeyId: keyId, RotationPeriodInDays: periodDays });
      const status = await service.rotationStatus(keyId);
      assert.equal(status.KeyRotationEnabled, true);
      assert.equal(status.NextRotationDate?.getTime(), T0.getTime() + periodDays * DAY_MS);
      return keyId;
    }

    test('rotates a key whose period has passed, keeping old ciphertexts decryptable', async () => {
      const keyId = await keyWithRotation(90);
      const before = await service.describe(keyId);
      const oldCiphertext = await service.encrypt(keyId, { app: 'ledger' });

      service.advanceTo(89);
      assert.deepEqual((await service.runScheduler()).rotated, []);
      assert.deepEqual(await service.rotations(keyId), []);

      service.advanceTo(91);
      assert.deepEqual((await service.runScheduler()).rotated, [keyId]);

      const rotations = await service.rotations(keyId);
      assert.equal(rotations.length, 1);
      assert.equal(rotations[0].RotationType, 'AUTOMATIC');
      assert.equal(rotations[0].KeyMaterialState, 'CURRENT');
      assert.equal(rotations[0].RotationDate?.getTime(), service.clock.getTime());
      const after = await service.describe(keyId);
      assert.match(after.CurrentKeyMaterialId ?? '', /^[0-9a-f]{64}$/);
      assert.notEqual(after.CurrentKeyMaterialId, before.CurrentKeyMaterialId);
      assert.equal(rotations[0].KeyMaterialId, after.CurrentKeyMaterialId);
      // The next rotation counts from the previous due date (day 90), not from when the scheduler ran.
      assert.equal((await service.rotationStatus(keyId)).NextRotationDate?.getTime(), T0.getTime() + 180 * DAY_MS);

      const oldDecrypted = await service.decrypt(oldCiphertext, { app: 'ledger' });
      assert.deepEqual(new Uint8Array(oldDecrypted.Plaintext!), PLAINTEXT);
      assert.equal(oldDecrypted.KeyMaterialId, before.CurrentKeyMaterialId);
      const newDecrypted = await service.decrypt(await service.encrypt(keyId));
      assert.equal(newDecrypted.KeyMaterialId, after.CurrentKeyMaterialId);
      assert.equal(service.countRows('key_versions', keyId), 2);
    });

    test('running the scheduler twice does not rotate twice', async () => {
      const keyId = await keyWithRotation(90);
      service.advanceTo(91);
      const [first, second] = [await service.runScheduler(), await service.runScheduler()];
      assert.deepEqual(first.rotated, [keyId]);
      assert.deepEqual(second.rotated, []);
      assert.equal((await service.rotations(keyId)).length, 1);
      assert.equal(service.countRows('key_versions', keyId), 2);
    });

    test('two scheduler runs at the same time rotate once', async () => {
      const keyId = await keyWithRotation(90);
      service.advanceTo(91);
      const runs = await Promise.all([service.runScheduler(), service.runScheduler()]);
      assert.deepEqual(runs.flatMap((run) => run.rotated), [keyId]);
      assert.equal((await service.rotations(keyId)).length, 1);
      assert.equal(service.countRows('key_versions', keyId), 2);
    });

    test('a long-overdue rotation happens once and schedules the next one in the future', async () => {
      const keyId = await keyWithRotation(90);
      service.advanceTo(250);
      assert.deepEqual((await service.runScheduler()).rotated, [keyId]);
      assert.deepEqual((await service.runScheduler()).rotated, []);
      assert.equal((await service.rotations(keyId)).length, 1);
      assert.equal((await service.rotationStatus(keyId)).NextRotationDate?.getTime(), T0.getTime() + 270 * DAY_MS);
    });

    test('a disabled key with rotation enabled is not rotated while disabled', async () => {
      const keyId = await keyWithRotation(90);
      const before = await service.describe(keyId);
      await service.call('DisableKey', { KeyId: keyId });
      service.advanceTo(200);
      assert.deepEqual((await service.runScheduler()).rotated, []);
      assert.equal(service.countRows('key_versions', keyId), 1);
      assert.equal((await service.describe(keyId)).CurrentKeyMaterialId, before.CurrentKeyMaterialId);

      // Re-enabled past its due date, it is rotated at the next run (AWS rotates such a key at once).
      await service.call('EnableKey', { KeyId: keyId });
      assert.deepEqual((await service.runScheduler()).rotated, [keyId]);
      assert.equal(service.countRows('key_versions', keyId), 2);
    });

    test('a key pending deletion is not rotated', async () => {
      const keyId = await keyWithRotation(90);
      service.advanceTo(85);
      await service.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
      service.advanceTo(91); // rotation due (day 90), deletion not yet (day 92)
      assert.deepEqual(await service.runScheduler(), { destroyed: [], rotated: [], failed: [], material: [], expiredSessions: 0 });
      assert.equal(service.countRows('key_versions', keyId), 1);
    });

    test('a key with rotation disabled again is not rotated', async () => {
      const keyId = await keyWithRotation(90);
      await service.call('DisableKeyRotation', { KeyId: keyId });
      service.advanceTo(91);
      assert.deepEqual((await service.runScheduler()).rotated, []);
      assert.equal(service.countRows('key_versions', keyId), 1);
    });
  });
});
