import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, test } from 'node:test';
import type { HsmStore } from '../../src/storage/index.ts';
import { StoreConflictError, type HsmMemberRecord } from '../../src/storage/types.ts';
import { forEachBackend, type TestDatabase } from './backends.ts';

const T0 = new Date('2026-01-01T00:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

function member(clusterId: string, name: string, addedAt: Date, sealedPin?: Buffer): HsmMemberRecord {
  return {
    clusterId,
    name,
    config: { kind: 'pkcs11', modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: name },
    ...(sealedPin ? { sealedPin } : {}),
    addedAt,
  };
}

forEachBackend('HSM cluster configuration store', (backend) => {
  let db: TestDatabase;
  let store: HsmStore;

  beforeEach(async () => {
    db = await backend.create();
    await (await db.openMetadataStore()).close(); // the schema, as a server start makes it
    store = await db.openHsmStore();
  });

  afterEach(async () => {
    await store.close().catch(() => {});
    await db.drop();
  });

  test('a cluster is created with its first member; a taken cluster id is a StoreConflictError', async () => {
    const pin = randomBytes(48);
    await store.createCluster({ clusterId: 'c1', createdAt: T0, minReplicas: 2, requestTimeoutMs: 5000 }, member('c1', 'a', T0, pin));
    assert.deepEqual(await store.getCluster('c1'), { clusterId: 'c1', createdAt: T0, minReplicas: 2, requestTimeoutMs: 5000 });
    assert.deepEqual(await store.listMembers('c1'), [member('c1', 'a', T0, pin)]);
    await assert.rejects(
      store.createCluster({ clusterId: 'c1', createdAt: T0, minReplicas: 1, requestTimeoutMs: 1 }, member('c1', 'b', T0)),
      StoreConflictError,
    );
    assert.deepEqual((await store.listMembers('c1')).map((m) => m.name), ['a'], 'the failed create added no member');
    assert.equal(await store.getCluster('absent'), undefined);
  });

  test('members list in the order added; a member name is unique within its cluster', async () => {
    await store.createCluster({ clusterId: 'c1', createdAt: T0, minReplicas: 1, requestTimeoutMs: 5000 }, member('c1', 'b', at(1)));
    await store.addMember(member('c1', 'a', at(2)));
    await store.addMember({ clusterId: 'c1', name: 'remote', config: { kind: 'agent', host: '127.0.0.1', port: 9000, caFile: 'ca', certFile: 'c', keyFile: 'k' }, addedAt: at(3) });
    await assert.rejects(store.addMember(member('c1', 'a', at(4))), StoreConflictError);
    const members = await store.listMembers('c1');
    assert.deepEqual(members.map((m) => m.name), ['b', 'a', 'remote']);
    assert.equal(members[2].sealedPin, undefined);
    assert.deepEqual(members[2].config, { kind: 'agent', host: '127.0.0.1', port: 9000, caFile: 'ca', certFile: 'c', keyFile: 'k' });
    assert.equal(await store.removeMember('c1', 'a'), true);
    assert.equal(await store.removeMember('c1', 'a'), false);
  });

  test('an owed operation replaces an earlier one for the same object, and settles once', async () => {
    await store.createCluster({ clusterId: 'c1', createdAt: T0, minReplicas: 1, requestTimeoutMs: 5000 }, member('c1', 'a', T0));
    const [x, y] = [randomBytes(16), randomBytes(16)];
    await store.oweOperation('c1', 'a', x, 'create', at(1));
    await store.oweOperation('c1', 'a', y, 'create', at(2));
    await store.oweOperation('c1', 'a', x, 'destroy', at(3));
    assert.deepEqual(await store.owedOperations('c1', 'a'), [
      { objectId: y, operation: 'create' },
      { objectId: x, operation: 'destroy' },
    ]);
    await store.settleOperation('c1', 'a', y);
    assert.deepEqual(await store.owedOperations('c1', 'a'), [{ objectId: x, operation: 'destroy' }]);
    assert.deepEqual(await store.owedOperations('c1', 'other'), []);
  });

  test('deleting a cluster takes its members, owed operations and backups with it', async () => {
    await store.createCluster({ clusterId: 'c1', createdAt: T0, minReplicas: 1, requestTimeoutMs: 5000 }, member('c1', 'a', T0));
    await store.createCluster({ clusterId: 'c2', createdAt: at(1), minReplicas: 1, requestTimeoutMs: 5000 }, member('c2', 'a', T0));
    await store.oweOperation('c1', 'a', randomBytes(16), 'create', at(1));
    await store.addBackup('c1', '/backups/one', at(1));
    await store.addBackup('c1', '/backups/two', at(2));
    await store.addBackup('c1', '/backups/one', at(3)); // re-recorded: now the newest
    assert.deepEqual(await store.listBackups('c1'), ['/backups/two', '/backups/one']);
    assert.deepEqual((await store.listClusters()).map((c) => c.clusterId), ['c1', 'c2']);
    assert.equal(await store.deleteCluster('c1'), true);
    assert.equal(await store.deleteCluster('c1'), false);
    assert.deepEqual(await store.listMembers('c1'), []);
    assert.deepEqual(await store.listBackups('c1'), []);
    assert.equal(await db.countRows('hsm_owed_operations', 'cluster_id = ?', 'c1'), 0);
    assert.equal((await store.listMembers('c2')).length, 1);
  });
});
