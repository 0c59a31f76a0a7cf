import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type {
  CreateCustomKeyStoreResponse,
  CreateKeyResponse,
  DecryptResponse,
  DescribeCustomKeyStoresResponse,
  DescribeKeyResponse,
  EncryptResponse,
} from '@aws-sdk/client-kms';
import { Sealer } from '../../src/crypto/seal.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { SoftwareKeyStore } from '../../src/keystores/software/software-key-store.ts';
import {
  CustomKeyStoreConnectError,
  type ConnectedKeyStore,
  type CustomKeyStoreBackend,
  type CustomKeyStoreConnectRequest,
} from '../../src/keystores/types.ts';
import { isKmsError } from '../../src/service/errors.ts';
import { Harness, PLAINTEXT } from '../support/service-harness.ts';

const TRUST_ANCHOR = `-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGVGb3JUZXN0czAKBggqhkjOPQQDAjAA\n-----END CERTIFICATE-----\n`;
const PIN = 'kmsuser-pin-1234';

/**
 * A stand-in HSM cluster backend (this file tests the service layer: the real cluster and proxy
 * backends have their own tests against SoftHSMv2 and the XKS proxy): clusters it knows, the PIN it
 * accepts, and a software key store for the crypto.
 */
class StubBackend implements CustomKeyStoreBackend {
  readonly connects: CustomKeyStoreConnectRequest[] = [];
  readonly destroyed: string[] = [];
  clusters = new Set(['cluster-abcdefghijk', 'cluster-lmnopqrstuv', 'cluster-bcdefghijkl']);
  pin = PIN;
  private readonly software = new SoftwareKeyStore(new Sealer(SecretBytes.random(32)));

  async check(request: CustomKeyStoreConnectRequest): Promise<void> {
    if (!this.clusters.has(request.cloudHsmClusterId as string)) {
      throw new CustomKeyStoreConnectError('CLUSTER_NOT_FOUND', `Cluster ${request.cloudHsmClusterId} does not exist.`);
    }
  }

  async connect(request: CustomKeyStoreConnectRequest): Promise<ConnectedKeyStore> {
    this.connects.push(request);
    await this.check(request);
    if (request.secret !== this.pin) throw new CustomKeyStoreConnectError('INVALID_CREDENTIALS', 'login failed');
    const software = this.software;
    const destroyed = this.destroyed;
    return Object.assign(Object.create(software) as SoftwareKeyStore, {
      close: async () => {},
      generateRandom: async (length: number) => Buffer.alloc(length, 7),
      destroyMaterial: async (handles: readonly { keyId: string; version: number }[]) => {
        for (const handle of handles) destroyed.push(`${handle.keyId}/${handle.version}`);
      },
    });
  }
}

describe('custom key stores (service)', () => {
  let dir: string;
  let h: Harness;
  const backend = new StubBackend();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strongroom-cks-'));
    h = await Harness.open(dir, { customKeyStoreBackends: { AWS_CLOUDHSM: backend } });
  });
  after(async () => {
    await h.instance.close();
    await rm(dir, { recursive: true, force: true });
  });

  const create = (name: string, cluster = 'cluster-abcdefghijk', extra: object = {}) =>
    h.call<CreateCustomKeyStoreResponse>('CreateCustomKeyStore', {
      CustomKeyStoreName: name,
      CloudHsmClusterId: cluster,
      TrustAnchorCertificate: TRUST_ANCHOR,
      KeyStorePassword: PIN,
      ...extra,
    });
  const describeStore = async (id: string) =>
    (await h.call<DescribeCustomKeyStoresResponse>('DescribeCustomKeyStores', { CustomKeyStoreId: id })).CustomKeyStores![0];
  const waitForState = async (id: string, states: string[]) => {
    for (let i = 0; i < 200; i++) {
      const entry = await describeStore(id);
      if (states.includes(entry.ConnectionState as string)) return entry;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`store ${id} never reached ${states.join('/')}`);
  };

  let storeId: string;

  test('CreateCustomKeyStore checks its parameters, the cluster and conflicts, and starts DISCONNECTED', async () => {
    await h.expectError('CreateCustomKeyStore', { CustomKeyStoreName: 'x', CloudHsmClusterId: 'cluster-abcdefghijk' }, 'ValidationException');
    await h.expectError(
      'CreateCustomKeyStore',
      { CustomKeyStoreName: 'x', CloudHsmClusterId: 'cluster-abcdefghijk', TrustAnchorCertificate: 'nope', KeyStorePassword: PIN },
      'IncorrectTrustAnchorException',
    );
    await assert.rejects(create('x', 'cluster-zzzzzzzzzzz'), { name: 'CloudHsmClusterNotFoundException' });
    await assert.rejects(create('x', 'cluster-abcdefghijk', { XksProxyUriPath: '/kms/xks/v1' }), { name: 'ValidationException' });
    storeId = (await create('hsm-store')).CustomKeyStoreId!;
    assert.match(storeId, /^cks-[0-9a-f]{17}$/);
    await assert.rejects(create('hsm-store', 'cluster-lmnopqrstuv'), { name: 'CustomKeyStoreNameInUseException' });
    await assert.rejects(create('other'), { name: 'CloudHsmClusterInUseException' });
    const entry = await describeStore(storeId);
    assert.equal(entry.ConnectionState, 'DISCONNECTED');
    assert.equal(entry.CustomKeyStoreType, 'AWS_CLOUDHSM');
    assert.equal(entry.CloudHsmClusterId, 'cluster-abcdefghijk');
    assert.equal(entry.TrustAnchorCertificate, TRUST_ANCHOR);
    assert.equal(JSON.stringify(entry).includes(PIN), false, 'the password is never returned');
  });

  test('DescribeCustomKeyStores by id, by name, paged; unknown ones are CustomKeyStoreNotFoundException', async () => {
    const byName = await h.call<DescribeCustomKeyStoresResponse>('DescribeCustomKeyStores', { CustomKeyStoreName: 'hsm-store' });
    assert.equal(byName.CustomKeyStores![0].CustomKeyStoreId, storeId);
    await h.expectError('DescribeCustomKeyStores', { CustomKeyStoreId: 'cks-00000000000000000' }, 'CustomKeyStoreNotFoundException');
    await h.expectError('DescribeCustomKeyStores', { CustomKeyStoreName: 'missing' }, 'CustomKeyStoreNotFoundException');
    const second = (await create('second', 'cluster-lmnopqrstuv')).CustomKeyStoreId!;
    const first = await h.call<DescribeCustomKeyStoresResponse>('DescribeCustomKeyStores', { Limit: 1 });
    assert.equal(first.Truncated, true);
    const next = await h.call<DescribeCustomKeyStoresResponse>('DescribeCustomKeyStores', { Limit: 1, Marker: first.NextMarker });
    assert.deepEqual([first.CustomKeyStores![0].CustomKeyStoreId, next.CustomKeyStores![0].CustomKeyStoreId], [storeId, second]);
    assert.equal(next.Truncated, false);
    await h.expectError('DescribeCustomKeyStores', { Marker: 'garbage' }, 'InvalidMarkerException');
    await h.call('DeleteCustomKeyStore', { CustomKeyStoreId: second });
  });

  test('CreateKey needs a connected store; Connect goes CONNECTING → CONNECTED', async () => {
    await h.expectError('CreateKey', { CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }, 'CustomKeyStoreInvalidStateException');
    await h.call('ConnectCustomKeyStore', { CustomKeyStoreId: storeId });
    const entry = await waitForState(storeId, ['CONNECTED', 'FAILED']);
    assert.equal(entry.ConnectionState, 'CONNECTED');
    assert.equal(entry.ConnectionErrorCode, undefined);
    await h.call('ConnectCustomKeyStore', { CustomKeyStoreId: storeId }); // connected already: no-op
    assert.equal(backend.connects.at(-1)?.secret, PIN, 'the backend gets the unsealed password');
  });

  let keyId: string;

  test('CreateKey in the store: Origin AWS_CLOUDHSM, CustomKeyStoreId and CloudHsmClusterId; crypto through the store', async () => {
    await h.expectError('CreateKey', { CustomKeyStoreId: storeId }, 'ValidationException'); // Origin must say AWS_CLOUDHSM
    await h.expectError('CreateKey', { Origin: 'AWS_CLOUDHSM' }, 'ValidationException'); // and needs a store
    await h.expectError(
      'CreateKey',
      { CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM', KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' },
      'UnsupportedOperationException',
    );
    await h.expectError('CreateKey', { CustomKeyStoreId: 'cks-00000000000000000', Origin: 'AWS_CLOUDHSM' }, 'CustomKeyStoreNotFoundException');
    const created = await h.call<CreateKeyResponse>('CreateKey', { CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' });
    keyId = created.KeyMetadata!.KeyId!;
    const metadata = (await h.call<DescribeKeyResponse>('DescribeKey', { KeyId: keyId })).KeyMetadata!;
    assert.equal(metadata.Origin, 'AWS_CLOUDHSM');
    assert.equal(metadata.CustomKeyStoreId, storeId);
    assert.equal(metadata.CloudHsmClusterId, 'cluster-abcdefghijk');
    assert.equal(metadata.KeyState, 'Enabled');
    const { CiphertextBlob } = await h.call<EncryptResponse>('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT });
    const decrypted = await h.call<DecryptResponse>('Decrypt', { CiphertextBlob });
    assert.deepEqual(Buffer.from(decrypted.Plaintext!), Buffer.from(PLAINTEXT));
    await h.expectError('EnableKeyRotation', { KeyId: keyId }, 'UnsupportedOperationException');
    const random = await h.call<{ Plaintext: Uint8Array }>('GenerateRandom', { NumberOfBytes: 4, CustomKeyStoreId: storeId });
    assert.deepEqual(Buffer.from(random.Plaintext), Buffer.alloc(4, 7), 'random bytes come from the store');
  });

  test('GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext refuse a key in a custom key store (UnsupportedOperationException)', async () => {
    for (const operation of ['GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext']) {
      await assert.rejects(h.call(operation, { KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' }), (error: unknown) => {
        assert.ok(isKmsError(error), String(error));
        assert.equal(error.errorName, 'UnsupportedOperationException');
        assert.match(error.message, new RegExp(`key/${keyId} origin is AWS_CLOUDHSM which is not valid for this operation\\.`));
        return true;
      });
    }
    // The same call on a software key works.
    const softwareKey = await h.createKey();
    await h.call('GenerateDataKeyPairWithoutPlaintext', { KeyId: softwareKey, KeyPairSpec: 'ECC_NIST_P256' });
  });

  test('a disconnected store: its keys are Unavailable and refuse crypto; Update and Delete follow AWS state rules', async () => {
    const { CiphertextBlob } = await h.call<EncryptResponse>('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT });
    await h.expectError('UpdateCustomKeyStore', { CustomKeyStoreId: storeId, KeyStorePassword: 'another-pin' }, 'CustomKeyStoreInvalidStateException');
    await h.call('UpdateCustomKeyStore', { CustomKeyStoreId: storeId, NewCustomKeyStoreName: 'renamed' }); // allowed while connected
    await h.expectError('DeleteCustomKeyStore', { CustomKeyStoreId: storeId }, 'CustomKeyStoreInvalidStateException');
    await h.call('DisconnectCustomKeyStore', { CustomKeyStoreId: storeId });
    await h.expectError('DisconnectCustomKeyStore', { CustomKeyStoreId: storeId }, 'CustomKeyStoreInvalidStateException');
    assert.equal((await describeStore(storeId)).ConnectionState, 'DISCONNECTED');
    assert.equal((await h.call<DescribeKeyResponse>('DescribeKey', { KeyId: keyId })).KeyMetadata!.KeyState, 'Unavailable');
    await h.expectError('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT }, 'KMSInvalidStateException');
    await h.expectError('Decrypt', { CiphertextBlob }, 'KMSInvalidStateException');
    await h.expectError('GenerateRandom', { NumberOfBytes: 4, CustomKeyStoreId: storeId }, 'CustomKeyStoreInvalidStateException');
    await h.expectError('DeleteCustomKeyStore', { CustomKeyStoreId: storeId }, 'CustomKeyStoreHasCMKsException');
    await h.expectError('UpdateCustomKeyStore', { CustomKeyStoreId: storeId, CloudHsmClusterId: 'cluster-bcdefghijkl' }, 'CloudHsmClusterNotRelatedException');
  });

  test('a wrong password: Connect ends FAILED with INVALID_CREDENTIALS; fixed by disconnect, update, connect', async () => {
    backend.pin = 'the-new-pin-5678';
    await h.call('ConnectCustomKeyStore', { CustomKeyStoreId: storeId });
    const failed = await waitForState(storeId, ['CONNECTED', 'FAILED']);
    assert.equal(failed.ConnectionState, 'FAILED');
    assert.equal(failed.ConnectionErrorCode, 'INVALID_CREDENTIALS');
    await h.expectError('ConnectCustomKeyStore', { CustomKeyStoreId: storeId }, 'CustomKeyStoreInvalidStateException');
    await h.call('DisconnectCustomKeyStore', { CustomKeyStoreId: storeId });
    await h.call('UpdateCustomKeyStore', { CustomKeyStoreId: storeId, KeyStorePassword: 'the-new-pin-5678' });
    await h.call('ConnectCustomKeyStore', { CustomKeyStoreId: storeId });
    assert.equal((await waitForState(storeId, ['CONNECTED', 'FAILED'])).ConnectionState, 'CONNECTED');
    assert.equal((await h.call<DescribeKeyResponse>('DescribeKey', { KeyId: keyId })).KeyMetadata!.KeyState, 'Enabled');
  });

  test('deleting the key destroys its material in the store; then the empty store can be deleted', async () => {
    await h.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
    h.advanceTo(8);
    await h.runScheduler();
    assert.deepEqual(backend.destroyed, [`${keyId}/1`]);
    await h.call('DisconnectCustomKeyStore', { CustomKeyStoreId: storeId });
    await h.call('DeleteCustomKeyStore', { CustomKeyStoreId: storeId });
    await h.expectError('DescribeCustomKeyStores', { CustomKeyStoreId: storeId }, 'CustomKeyStoreNotFoundException');
  });
});
