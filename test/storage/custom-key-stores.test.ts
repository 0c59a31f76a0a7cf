import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, test } from 'node:test';
import { StoreConflictError, type CustomKeyStoreRecord, type MetadataStore } from '../../src/storage/types.ts';
import { forEachBackend, type TestDatabase } from './backends.ts';

const T0 = new Date('2026-01-01T00:00:00Z');

function xksStore(overrides: Partial<CustomKeyStoreRecord> = {}): CustomKeyStoreRecord {
  return {
    customKeyStoreId: `cks-${randomBytes(9).toString('hex').slice(0, 17)}`,
    name: `store-${randomUUID()}`,
    type: 'EXTERNAL_KEY_STORE',
    createdAt: T0,
    connectionState: 'DISCONNECTED',
    sealedSecret: randomBytes(60),
    xksProxy: { connectivity: 'PUBLIC_ENDPOINT', uriEndpoint: 'https://127.0.0.1:8443', uriPath: '/kms/xks/v1', accessKeyId: 'AKIAXKSPROXY00000001' },
    ...overrides,
  };
}

async function createKeyIn(store: MetadataStore, customKeyStoreId: string): Promise<string> {
  const keyId = randomUUID();
  await store.createKey(
    {
      keyId,
      createdAt: T0,
      description: '',
      keyUsage: 'ENCRYPT_DECRYPT',
      keySpec: 'SYMMETRIC_DEFAULT',
      origin: 'EXTERNAL_KEY_STORE',
      state: 'Enabled',
      policy: '{}',
      rotationEnabled: false,
      currentVersion: 1,
      onDemandRotationCount: 0,
      customKeyStoreId,
      xksKeyId: 'external-1',
    },
    { keyId, version: 1, keyMaterialId: randomBytes(32).toString('hex'), sealedMaterial: randomBytes(60), createdAt: T0 },
    [],
  );
  return keyId;
}

forEachBackend('MetadataStore: custom key stores', (backend) => {
  let db: TestDatabase;
  let store: MetadataStore;

  beforeEach(async () => {
    db = await backend.create();
    store = await db.openMetadataStore();
  });

  afterEach(async () => {
    await store.close().catch(() => {});
    await db.drop();
  });

  test('round-trips every field, lists oldest first, and refuses a taken name', async () => {
    const first = xksStore();
    const second = xksStore({
      type: 'AWS_CLOUDHSM',
      xksProxy: undefined,
      cloudHsmClusterId: 'cluster-1',
      trustAnchorCertificate: '-----BEGIN CERTIFICATE-----',
      connectionState: 'FAILED',
      connectionErrorCode: 'NETWORK_ERRORS',
    });
    await store.createCustomKeyStore(first);
    await store.createCustomKeyStore(second);
    const { xksProxy: _unused, ...secondWithoutProxy } = second;
    assert.deepEqual(await store.getCustomKeyStore(first.customKeyStoreId), first);
    assert.deepEqual(await store.getCustomKeyStore(second.customKeyStoreId), secondWithoutProxy);
    assert.deepEqual((await store.listCustomKeyStores()).map((s) => s.customKeyStoreId), [first.customKeyStoreId, second.customKeyStoreId]);
    await assert.rejects(store.createCustomKeyStore(xksStore({ name: first.name })), StoreConflictError);
    assert.equal(await store.getCustomKeyStore('cks-00000000000000000'), undefined);
  });

  test('updateCustomKeyStore applies a patch only in an expected state; null clears a field', async () => {
    const record = xksStore({ connectionState: 'FAILED', connectionErrorCode: 'USER_LOGGED_IN' });
    await store.createCustomKeyStore(record);
    const id = record.customKeyStoreId;
    assert.equal(await store.updateCustomKeyStore(id, { connectionState: 'CONNECTING' }, ['DISCONNECTED']), false);
    assert.equal((await store.getCustomKeyStore(id))?.connectionState, 'FAILED');
    assert.equal(await store.updateCustomKeyStore(id, { connectionState: 'CONNECTED', connectionErrorCode: null }, ['FAILED', 'DISCONNECTED']), true);
    const updated = await store.getCustomKeyStore(id);
    assert.equal(updated?.connectionState, 'CONNECTED');
    assert.equal(updated?.connectionErrorCode, undefined);
    assert.equal(await store.updateCustomKeyStore(id, {}), false, 'an empty patch changes nothing');
    assert.equal(await store.updateCustomKeyStore('cks-00000000000000000', { name: 'x' }), false);
    const other = xksStore();
    await store.createCustomKeyStore(other);
    await assert.rejects(store.updateCustomKeyStore(id, { name: other.name }), StoreConflictError);
  });

  test('deleteCustomKeyStore answers not-found, wrong-state and has-keys, and deletes an empty store', async () => {
    const record = xksStore();
    await store.createCustomKeyStore(record);
    const id = record.customKeyStoreId;
    assert.equal(await store.deleteCustomKeyStore('cks-00000000000000000', ['DISCONNECTED']), 'not-found');
    assert.equal(await store.deleteCustomKeyStore(id, ['CONNECTED']), 'wrong-state');
    const keyId = await createKeyIn(store, id);
    assert.equal((await store.getKey(keyId))?.customKeyStoreId, id);
    assert.equal((await store.getKey(keyId))?.xksKeyId, 'external-1');
    assert.equal(await store.countKeysInCustomKeyStore(id), 1);
    assert.equal(await store.deleteCustomKeyStore(id, ['DISCONNECTED']), 'has-keys');
    await store.destroyKey(keyId);
    assert.equal(await store.countKeysInCustomKeyStore(id), 0);
    assert.equal(await store.deleteCustomKeyStore(id, ['DISCONNECTED']), 'deleted');
    assert.equal(await store.getCustomKeyStore(id), undefined);
  });

  test('a key cannot name a custom key store that does not exist', async () => {
    await assert.rejects(createKeyIn(store, 'cks-00000000000000000'));
  });
});
