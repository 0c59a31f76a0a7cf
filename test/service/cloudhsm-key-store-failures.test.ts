/**
 * What a caller of the KMS API sees when a CloudHSM key store's HSMs cannot serve: AWS's
 * exceptions (KMSInvalidStateException for the key, CloudHsmClusterInvalidConfigurationException
 * for CreateKey without enough HSMs, CustomKeyStoreInvalidStateException for GenerateRandom),
 * never KMSInternalException. The service in-process over the real cluster key store
 * (ConnectedHsmClusterKeyStore) on two SoftHSMv2 tokens, members behind a switch that makes them
 * fail like broken HSMs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CreateCustomKeyStoreResponse, DescribeCustomKeyStoresResponse, EncryptResponse } from '@aws-sdk/client-kms';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { HsmCluster } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import { ConnectedHsmClusterKeyStore } from '../../src/keystores/pkcs11/cluster/stored.ts';
import { KeyStoreUnavailableError, type ConnectedKeyStore, type CustomKeyStoreBackend, type CustomKeyStoreConnectRequest } from '../../src/keystores/types.ts';
import { isKmsError, type KmsErrorName } from '../../src/service/errors.ts';
import { FaultyMember } from '../keystores/faulty-member.ts';
import { SOFTHSM_MODULE, SoftHsm } from '../keystores/softhsm.ts';
import { Harness, PLAINTEXT } from '../support/service-harness.ts';

const PIN = 'kmsuser-pin-8642';
const CLUSTER = 'cluster-failuresabcd';
const TRUST_ANCHOR = `-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGVGb3JUZXN0czAKBggqhkjOPQQDAjAA\n-----END CERTIFICATE-----\n`;
const hsm = SoftHsm.get();
const tokens = ['fail-a', 'fail-b'].map((label) => hsm.createToken(label, PIN));

/** The cluster's members, rebuilt at each connect, each behind a FaultyMember switch. */
class FaultyClusterBackend implements CustomKeyStoreBackend {
  members: FaultyMember[] = [];
  store: ConnectedHsmClusterKeyStore | undefined;

  async check(): Promise<void> {}

  async connect(request: CustomKeyStoreConnectRequest): Promise<ConnectedKeyStore> {
    const pin = Buffer.from(request.secret, 'utf8');
    this.members = tokens.map((token) => new FaultyMember(new LocalHsmMember({ name: token.label, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin, sessions: 2 })));
    // minReplicas 2: what the stored backend requires of a two-member cluster (docs/custom-key-stores.md).
    const cluster = await HsmCluster.connect({ clusterId: CLUSTER, members: this.members, minReplicas: 2, requestTimeoutMs: 500, queueTimeoutMs: 2_000, probeIntervalMs: 60_000 });
    this.store = new ConnectedHsmClusterKeyStore(cluster);
    return this.store;
  }

  fail(...indexes: number[]): void {
    indexes.forEach((index) => (this.members[index]!.mode = 'error'));
  }

  async heal(): Promise<void> {
    for (const member of this.members) member.mode = 'ok';
    await this.store!.cluster.probeNow();
    assert.equal(this.store!.cluster.status().members.filter((member) => member.state === 'ACTIVE').length, 2);
  }
}

describe('a CloudHSM key store whose HSMs cannot serve', () => {
  let dir: string;
  let h: Harness;
  const backend = new FaultyClusterBackend();
  let storeId: string;
  let keyId: string;

  /** The error's name, and its cause (what the server logs) — never a 500. */
  const failure = async (operation: string, input: object, errorName: KmsErrorName): Promise<{ message: string; cause: unknown }> => {
    try {
      await h.call(operation, input);
    } catch (error) {
      assert.ok(isKmsError(error), `expected a KmsError, got ${String(error)}`);
      assert.equal(error.errorName, errorName, error.message);
      return { message: error.message, cause: (error as Error).cause };
    }
    assert.fail(`${operation} succeeded`);
  };

  before(async () => {
    const cluster = await HsmCluster.initialise(
      { clusterId: CLUSTER, members: tokens.map((token) => new LocalHsmMember({ name: token.label, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(PIN) })) },
      new Map(tokens.map((token) => [token.label, SecretBytes.from(Buffer.from(token.soPin))])),
    );
    await cluster.close();
    dir = await mkdtemp(join(tmpdir(), 'strongroom-cloudhsm-failures-'));
    h = await Harness.open(dir, { customKeyStoreBackends: { AWS_CLOUDHSM: backend } });
    storeId = (
      await h.call<CreateCustomKeyStoreResponse>('CreateCustomKeyStore', {
        CustomKeyStoreName: 'failing',
        CloudHsmClusterId: CLUSTER,
        TrustAnchorCertificate: TRUST_ANCHOR,
        KeyStorePassword: PIN,
      })
    ).CustomKeyStoreId!;
    await h.call('ConnectCustomKeyStore', { CustomKeyStoreId: storeId });
    for (let i = 0; i < 500; i++) {
      const [entry] = (await h.call<DescribeCustomKeyStoresResponse>('DescribeCustomKeyStores', { CustomKeyStoreId: storeId })).CustomKeyStores!;
      if (entry!.ConnectionState === 'CONNECTED') break;
      assert.notEqual(entry!.ConnectionState, 'FAILED');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    keyId = await h.createKey({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' });
  });
  after(async () => {
    await h?.instance.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('every member failing: Encrypt, Decrypt, ReEncrypt, GenerateDataKey are KMSInvalidStateException; the cause is kept for the log', async () => {
    const { CiphertextBlob } = await h.call<EncryptResponse>('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT });
    backend.fail(0, 1);
    try {
      const encrypt = await failure('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT }, 'KMSInvalidStateException');
      assert.match(encrypt.message, new RegExp(`key/${keyId} is unavailable`));
      assert.ok(encrypt.cause instanceof KeyStoreUnavailableError);
      assert.match(encrypt.cause.message, /HSM cluster cluster-failuresabcd could not serve the request \((DEVICE_ERROR|INSUFFICIENT_CLOUDHSM_HSMS)/);
      assert.ok(!encrypt.cause.message.includes(PIN));
      await failure('Decrypt', { CiphertextBlob }, 'KMSInvalidStateException');
      await failure('ReEncrypt', { CiphertextBlob, DestinationKeyId: keyId }, 'KMSInvalidStateException');
      await failure('GenerateDataKey', { KeyId: keyId, KeySpec: 'AES_256' }, 'KMSInvalidStateException');
      await failure('GenerateDataKeyWithoutPlaintext', { KeyId: keyId, KeySpec: 'AES_256' }, 'KMSInvalidStateException');
    } finally {
      await backend.heal();
    }
    // Healthy again, a ciphertext that does not authenticate is still the caller's: InvalidCiphertextException.
    const tampered = Buffer.from(CiphertextBlob!);
    tampered[tampered.length - 1]! ^= 1;
    await failure('Decrypt', { CiphertextBlob: tampered }, 'InvalidCiphertextException');
  });

  test('GenerateRandom with the store id and every member failing: CustomKeyStoreInvalidStateException', async () => {
    backend.fail(0, 1);
    try {
      const random = await failure('GenerateRandom', { NumberOfBytes: 16, CustomKeyStoreId: storeId }, 'CustomKeyStoreInvalidStateException');
      assert.ok(random.cause instanceof KeyStoreUnavailableError);
    } finally {
      await backend.heal();
    }
    assert.equal((await h.call<{ Plaintext: Uint8Array }>('GenerateRandom', { NumberOfBytes: 16, CustomKeyStoreId: storeId })).Plaintext.length, 16);
  });

  test('CreateKey with every member failing: CloudHsmClusterInvalidConfigurationException, and no key is made', async () => {
    const before = (await h.call<{ Keys: unknown[] }>('ListKeys', {})).Keys.length;
    backend.fail(0, 1);
    try {
      await failure('CreateKey', { CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }, 'CloudHsmClusterInvalidConfigurationException');
    } finally {
      await backend.heal();
    }
    assert.equal((await h.call<{ Keys: unknown[] }>('ListKeys', {})).Keys.length, before);
  });
});
