/**
 * The scheduler's deletion of a key in an HSM cluster key store (key-deletion.ts, destroyDueKeys),
 * raced by what happens between its two steps: every member is recorded as owing the destroy
 * (hsm_owed_operations), then the key's row is deleted if it is still due. A deletion cancelled in
 * between takes the destroys back; one member owed the key's create (it was down at CreateKey),
 * and must still owe it, or it returns to service without the key. Real SoftHSMv2 tokens, the
 * catalog on SQLite and on PostgreSQL; the witness on the token is opensc's pkcs11-tool.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { HsmCluster } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { HsmClusterKeyStore } from '../../src/keystores/pkcs11/cluster/cluster-key-store.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import { HsmClusterKeyStoreBackend, connectStoredCluster, type HsmClusterCatalog } from '../../src/keystores/pkcs11/cluster/stored.ts';
import { decodeReference, encodeReference, newObjectId } from '../../src/keystores/pkcs11/reference.ts';
import { keyVersionLabel } from '../../src/keystores/pkcs11/templates.ts';
import type { CustomKeyStoreBackend, KeyVersionHandle } from '../../src/keystores/types.ts';
import type { ServiceContext } from '../../src/service/context.ts';
import { CustomKeyStoreConnections } from '../../src/service/custom-key-stores/connections.ts';
import { destroyDueKeys } from '../../src/service/operations/key-deletion.ts';
import type { HsmStore } from '../../src/storage/index.ts';
import type { HsmPkcs11MemberConfig, MetadataStore } from '../../src/storage/types.ts';
import { SOFTHSM_MODULE, SoftHsm, listObjects, type TestToken } from '../keystores/softhsm.ts';
import { BACKENDS, testKeyRecord, type TestDatabase } from '../storage/backends.ts';

const PIN = 'deletion-user-pin-2468';
const T0 = new Date('2026-02-01T00:00:00Z');
const DUE = new Date('2026-02-08T00:00:00Z');
const hsm = SoftHsm.get();
const tokens = new Map(BACKENDS.map((backend) => [backend.name, ['a', 'b'].map((name) => hsm.createToken(`del-${name}-${backend.name}`, PIN)) as [TestToken, TestToken]]));
const pin = (): SecretBytes => SecretBytes.from(Buffer.from(PIN));

/**
 * The scheduler's view of the service, its store raced: `meanwhile` runs just before the store's
 * destroyKeyIfDue, i.e. after the destroys were owed.
 */
function racedScheduler(store: MetadataStore, backend: CustomKeyStoreBackend, meanwhile: (keyId: string) => Promise<unknown>): ServiceContext {
  const raced = new Proxy(store, {
    get(target, property) {
      if (property === 'destroyKeyIfDue') {
        return async (keyId: string, now: Date) => (await meanwhile(keyId), target.destroyKeyIfDue(keyId, now));
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: raced, now: () => DUE, customKeyStores: new CustomKeyStoreConnections({ AWS_CLOUDHSM: backend }), keyStore: { forget: () => {} } } as unknown as ServiceContext;
}

/** CancelKeyDeletion's write. */
const cancel = (store: MetadataStore, keyId: string) => store.updateKey(keyId, { state: 'Disabled', deletionDate: null, pendingWindowInDays: null }, ['PendingDeletion']);

/** A key pending deletion, due at DUE, in a custom key store over the cluster. */
async function keyPendingDeletion(store: MetadataStore, clusterId: string, keyId: string, sealedMaterial: Buffer): Promise<void> {
  const customKeyStoreId = `cks-${randomBytes(9).toString('hex').slice(0, 17)}`;
  await store.createCustomKeyStore({
    customKeyStoreId,
    name: `store-${customKeyStoreId}`,
    type: 'AWS_CLOUDHSM',
    createdAt: T0,
    connectionState: 'DISCONNECTED',
    cloudHsmClusterId: clusterId,
    sealedSecret: randomBytes(48),
  });
  await store.createKey(
    testKeyRecord({ keyId, origin: 'AWS_CLOUDHSM', customKeyStoreId, state: 'PendingDeletion', deletionDate: DUE, pendingWindowInDays: 7 }),
    { keyId, version: 1, keyMaterialId: randomBytes(32).toString('hex'), sealedMaterial, createdAt: T0 },
    [],
  );
}

async function withStores(backendName: string, run: (stores: { metadata: MetadataStore; catalog: HsmStore }) => Promise<void>): Promise<void> {
  const db: TestDatabase = await BACKENDS.find((backend) => backend.name === backendName)!.create();
  const metadata = await db.openMetadataStore(); // the schema, hsm tables included
  const catalog = await db.openHsmStore();
  try {
    await run({ metadata, catalog });
  } finally {
    await catalog.close();
    await metadata.close();
    await db.drop();
  }
}

for (const { name: backendName } of BACKENDS) {
  test(`a deletion cancelled as it falls due leaves a member that was down at CreateKey owing the key, which it holds after its return [${backendName}]`, async () => {
    const [tokenA, tokenB] = tokens.get(backendName)!;
    await withStores(backendName, async ({ metadata, catalog }) => {
      const clusterId = `cluster-${randomUuid()}`;
      const record = (name: string, token: TestToken) => ({
        clusterId,
        name,
        config: { kind: 'pkcs11' as const, modulePath: SOFTHSM_MODULE, tokenLabel: token.label },
        addedAt: T0,
      });
      await catalog.createCluster({ clusterId, createdAt: T0, minReplicas: 1, requestTimeoutMs: 5_000 }, record('a', tokenA));
      await catalog.addMember(record('b', tokenB));
      const local = (name: string, token: TestToken) => new LocalHsmMember({ name, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: pin() });
      const soPins = new Map([['a', tokenA], ['b', tokenB]].map(([name, token]) => [name as string, SecretBytes.from(Buffer.from((token as TestToken).soPin))]));
      await (await HsmCluster.initialise({ clusterId, members: [local('a', tokenA), local('b', tokenB)] }, soPins)).close();

      // b is down while the key is made (its token cannot be found): it owes the key's create.
      let bPluggedIn = false;
      const view: HsmClusterCatalog = {
        getCluster: (id) => catalog.getCluster(id),
        listMembers: async (id) =>
          (await catalog.listMembers(id)).map((member) =>
            member.name === 'b' && !bPluggedIn ? { ...member, config: { ...(member.config as HsmPkcs11MemberConfig), tokenLabel: 'not-plugged-in' } } : member,
          ),
        owedOperations: (id, member) => catalog.owedOperations(id, member),
        oweOperation: (id, member, objectId, operation, at) => catalog.oweOperation(id, member, objectId, operation, at),
        settleOperation: (id, member, objectId) => catalog.settleOperation(id, member, objectId),
        listBackups: (id) => catalog.listBackups(id),
      };
      const keyId = randomUuid();
      const plaintext = randomBytes(24);
      const making = await connectStoredCluster(view, clusterId, pin, { probeIntervalMs: 60_000 });
      let handle: KeyVersionHandle;
      let ciphertext: Buffer;
      try {
        assert.equal(making.status().members.find((member) => member.name === 'b')?.state, 'DOWN');
        handle = { keyId, version: 1, sealedMaterial: await new HsmClusterKeyStore(making).createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
        ciphertext = await new HsmClusterKeyStore(making).encrypt(handle, plaintext, { purpose: 'test' });
      } finally {
        await making.close();
      }
      const objectId = decodeReference(handle.sealedMaterial, keyId, 1);
      assert.deepEqual(await catalog.owedOperations(clusterId, 'b'), [{ objectId, operation: 'create' }]);
      const holdsKey = (token: TestToken) => listObjects(token).some((object) => object.label === keyVersionLabel(keyId, 1));
      assert.equal(holdsKey(tokenB), false);

      await keyPendingDeletion(metadata, clusterId, keyId, handle.sealedMaterial);
      const backend = new HsmClusterKeyStoreBackend(view, (secret) => SecretBytes.from(Buffer.from(secret, 'utf8')), { probeIntervalMs: 60_000 });
      const failures: unknown[] = [];
      const destroyed = await destroyDueKeys(
        racedScheduler(metadata, backend, async (id) => {
          assert.deepEqual(await catalog.owedOperations(clusterId, 'b'), [{ objectId, operation: 'destroy' }], 'the destroy is owed first');
          await cancel(metadata, id);
        }),
        (_, error) => failures.push(error),
      );
      assert.deepEqual([destroyed, failures], [[], []]);
      assert.equal((await metadata.getKey(keyId))?.state, 'Disabled');
      assert.deepEqual(await catalog.owedOperations(clusterId, 'b'), [{ objectId, operation: 'create' }], 'b owes the create again');
      assert.deepEqual(await catalog.owedOperations(clusterId, 'a'), [], 'a owes nothing, as before');

      // b back: the store's connection re-synchronises it before it serves.
      bPluggedIn = true;
      const store = await backend.connect({ customKeyStoreId: 'cks-0123456789abcdef0', cloudHsmClusterId: clusterId, secret: PIN });
      try {
        assert.ok(holdsKey(tokenB), 'b holds the key');
        assert.deepEqual(await catalog.owedOperations(clusterId, 'b'), []);
        assert.deepEqual(await store.decrypt(handle, ciphertext, { purpose: 'test' }), plaintext);
      } finally {
        await store.close();
      }
      // b alone serves it.
      const onlyB = await connectStoredCluster(
        { ...view, listMembers: async (id) => (await view.listMembers(id)).filter((member) => member.name === 'b') },
        clusterId,
        pin,
        { probeIntervalMs: 60_000 },
      );
      try {
        assert.deepEqual(await new HsmClusterKeyStore(onlyB).decrypt(handle, ciphertext, { purpose: 'test' }), plaintext);
      } finally {
        await onlyB.close();
      }
    });
  });

  test(`a key destroyed by another process between the two steps keeps the destroys its members owe [${backendName}]`, async () => {
    await withStores(backendName, async ({ metadata, catalog }) => {
      const clusterId = `cluster-${randomUuid()}`;
      const record = (name: string) => ({ clusterId, name, config: { kind: 'pkcs11' as const, modulePath: SOFTHSM_MODULE, tokenLabel: `none-${name}` }, addedAt: T0 });
      await catalog.createCluster({ clusterId, createdAt: T0, minReplicas: 1, requestTimeoutMs: 5_000 }, record('a'));
      await catalog.addMember(record('b'));
      const keyId = randomUuid();
      const objectId = newObjectId(keyId, 1);
      await catalog.oweOperation(clusterId, 'b', objectId, 'create', T0); // b was down at CreateKey
      await keyPendingDeletion(metadata, clusterId, keyId, encodeReference(objectId));
      const backend = new HsmClusterKeyStoreBackend(catalog, (secret) => SecretBytes.from(Buffer.from(secret, 'utf8')));
      const destroyed = await destroyDueKeys(
        racedScheduler(metadata, backend, (id) => metadata.destroyKeyIfDue(id, DUE)),
        (_, error) => assert.fail(String(error)),
      );
      assert.deepEqual(destroyed, []);
      assert.equal(await metadata.getKey(keyId), undefined);
      for (const member of ['a', 'b']) assert.deepEqual(await catalog.owedOperations(clusterId, member), [{ objectId, operation: 'destroy' }], member);
    });
  });
}
