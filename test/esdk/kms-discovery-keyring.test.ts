/**
 * The KMS discovery keyring against a real `strongroom serve`: it decrypts with whatever key ARN an
 * EDK names, only within its discovery filter (partition, accounts) and its client's region, and
 * never encrypts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { KmsDiscoveryKeyring } from '../../src/esdk/kms-discovery-keyring.ts';
import { KmsKeyring, type KmsClientLike } from '../../src/esdk/kms-keyring.ts';
import { getAlgorithmSuite } from '../../src/esdk/suites.ts';
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials } from '../../src/esdk/types.ts';
import { createKey } from '../support/kms-assertions.ts';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

const CONTEXT = { tenant: 'acme' };
const SUITE = getAlgorithmSuite(0x0578);

const encryptionMaterials = (): EncryptionMaterials => ({
  suite: SUITE,
  encryptionContext: CONTEXT,
  encryptedDataKeys: [],
  plaintextDataKey: undefined,
  signingKey: undefined,
  requiredEncryptionContextKeys: [],
});
const decryptionMaterials = (): DecryptionMaterials => ({
  suite: SUITE,
  encryptionContext: CONTEXT,
  plaintextDataKey: undefined,
  verificationKey: undefined,
  requiredEncryptionContextKeys: [],
});

function countingClient(inner: KMSClient): { client: KmsClientLike; keyIds: string[] } {
  const keyIds: string[] = [];
  const client = {
    config: inner.config,
    send: (command: DecryptCommand) => {
      keyIds.push(command.input.KeyId as string);
      return inner.send(command);
    },
  } as unknown as KmsClientLike;
  return { client, keyIds };
}

describe('the KMS discovery keyring against strongroom serve', () => {
  let server: RunningServer;
  let kms: KMSClient;
  let keyArn: string;
  let accountId: string;
  let edks: readonly EncryptedDataKey[];
  let dataKey: Uint8Array;

  before(async () => {
    server = await startServer({ timeoutMs: 60_000 }); // generous: the CI machine may be busy
    kms = server.kms();
    const key = await createKey(kms);
    keyArn = key.Arn as string;
    accountId = key.AWSAccountId as string;
    const encrypted = await new KmsKeyring({ generatorKeyId: keyArn, client: kms }).onEncrypt(encryptionMaterials());
    edks = encrypted.encryptedDataKeys;
    dataKey = encrypted.plaintextDataKey as Uint8Array;
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  it('decrypts with the key ARN the EDK names, asking KMS for exactly that key', async () => {
    const { client, keyIds } = countingClient(kms);
    const decrypted = await new KmsDiscoveryKeyring({ client }).onDecrypt(decryptionMaterials(), edks);
    assert.deepEqual(decrypted.plaintextDataKey, dataKey);
    assert.deepEqual(keyIds, [keyArn]);
  });

  it('decrypts when the filter names the partition and the account', async () => {
    const keyring = new KmsDiscoveryKeyring({ client: kms, discoveryFilter: { partition: 'aws', accountIds: ['000000000000', accountId] } });
    assert.deepEqual((await keyring.onDecrypt(decryptionMaterials(), edks)).plaintextDataKey, dataKey);
  });

  const filteredOut: [string, () => { partition: string; accountIds: string[] }][] = [
    ['another account', () => ({ partition: 'aws', accountIds: ['999999999999'] })],
    ['another partition', () => ({ partition: 'aws-cn', accountIds: [accountId] })],
  ];
  for (const [title, filter] of filteredOut) {
    it(`does not call KMS for a key of ${title}`, async () => {
      const { client, keyIds } = countingClient(kms);
      const result = await new KmsDiscoveryKeyring({ client, discoveryFilter: filter() }).onDecrypt(decryptionMaterials(), edks);
      assert.equal(result.plaintextDataKey, undefined);
      assert.deepEqual(keyIds, []);
    });
  }

  it('skips a single-Region key of another region than its client', async () => {
    const { client, keyIds } = countingClient(kms);
    const elsewhere = edks.map((edk) => ({ ...edk, providerInfo: Buffer.from(keyArn.replace(`:${server.region}:`, ':eu-west-3:')) }));
    const result = await new KmsDiscoveryKeyring({ client }).onDecrypt(decryptionMaterials(), elsewhere);
    assert.equal(result.plaintextDataKey, undefined);
    assert.deepEqual(keyIds, []);
  });

  it('asks a multi-Region key in its own client region', async () => {
    const { client, keyIds } = countingClient(kms);
    const mrkArn = `arn:aws:kms:eu-west-3:${accountId}:key/mrk-0123456789abcdef0123456789abcdef`;
    const mrkEdk = { ...edks[0], providerInfo: Buffer.from(mrkArn) };
    await assert.rejects(new KmsDiscoveryKeyring({ client }).onDecrypt(decryptionMaterials(), [mrkEdk]), { code: 'KeyringFailure' });
    assert.deepEqual(keyIds, [mrkArn.replace(':eu-west-3:', `:${server.region}:`)]);
  });

  it('skips EDKs of other providers and alias ARNs', async () => {
    const { client, keyIds } = countingClient(kms);
    const others = [
      { ...edks[0], providerId: 'raw-aes' },
      { ...edks[0], providerInfo: Buffer.from(keyArn.replace(/key\/.*/, 'alias/x')) },
    ];
    const result = await new KmsDiscoveryKeyring({ client }).onDecrypt(decryptionMaterials(), others);
    assert.equal(result.plaintextDataKey, undefined);
    assert.deepEqual(keyIds, []);
  });

  it('reports a failed attempt (wrong context) by key and error name', async () => {
    const materials = { ...decryptionMaterials(), encryptionContext: { tenant: 'globex' } };
    await assert.rejects(new KmsDiscoveryKeyring({ client: kms }).onDecrypt(materials, edks), (error: Error) => {
      assert.match(error.message, /InvalidCiphertextException/);
      assert.ok(!error.message.includes('globex'));
      return true;
    });
  });

  it('uses a client per region from a client supplier', async () => {
    const regions: string[] = [];
    const keyring = new KmsDiscoveryKeyring({ clientSupplier: (region) => (regions.push(region as string), kms) });
    assert.deepEqual((await keyring.onDecrypt(decryptionMaterials(), edks)).plaintextDataKey, dataKey);
    assert.deepEqual(regions, [server.region]);
  });

  it('never encrypts', async () => {
    await assert.rejects(new KmsDiscoveryKeyring({ client: kms }).onEncrypt(encryptionMaterials()), { code: 'KeyringFailure' });
  });

  const badFilters: [string, unknown][] = [
    ['an empty account list', { partition: 'aws', accountIds: [] }],
    ['an empty account id', { partition: 'aws', accountIds: [''] }],
    ['no partition', { partition: '', accountIds: ['111122223333'] }],
  ];
  for (const [title, discoveryFilter] of badFilters) {
    it(`rejects a filter with ${title}`, () => {
      assert.throws(() => new KmsDiscoveryKeyring({ client: kms, discoveryFilter } as never), { code: 'InvalidArgument' });
    });
  }
});
