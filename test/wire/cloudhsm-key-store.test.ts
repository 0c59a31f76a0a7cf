/**
 * CloudHSM-style custom key stores end to end: `strongroom hsm cluster create/add-member` (the key
 * ceremony) over two real SoftHSMv2 tokens, then the AWS SDK against `strongroom serve`:
 * CreateCustomKeyStore (AWS_CLOUDHSM), connect, keys generated and replicated inside the HSMs,
 * crypto through them; and, with the service's movable clock, a key's deletion carried out in
 * every token, witnessed by opensc's pkcs11-tool.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeCustomKeyStoresCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateRandomCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { keyVersionLabel } from '../../src/keystores/pkcs11/templates.ts';
import { runDueBackgroundWork } from '../../src/service/background.ts';
import { SOFTHSM_MODULE, SoftHsm, listObjects, type TestToken } from '../keystores/softhsm.ts';
import { Harness } from '../support/service-harness.ts';
import { STRONGROOM_BIN, startServer, type RunningServer } from '../support/server.ts';

const dir = mkdtempSync(join(tmpdir(), 'strongroom-cloudhsm-e2e-'));
const CRYPTO_USER_PIN = 'kmsuser-pin-13579';
const CLUSTER = 'cluster-abcdefghijk';
let tokens: TestToken[];
let trustAnchor: string;

const secretFile = (name: string, value: string): string => {
  const path = join(dir, name);
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return path;
};

function hsmCli(dataDir: string, ...args: string[]): string {
  const result = spawnSync(process.execPath, [STRONGROOM_BIN, 'hsm', ...args, '--data-dir', dataDir], { encoding: 'utf8', env: process.env, timeout: 120_000 });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

/** A two-member cluster in `dataDir`: created in tokens[0], the cluster key installed in tokens[1]. */
function makeCluster(dataDir: string, clusterId: string, [a, b]: TestToken[]): void {
  const member = (token: TestToken) => ['--module', SOFTHSM_MODULE, '--token-label', token.label, '--pin-file', secretFile(`${token.label}.pin`, token.pin)];
  hsmCli(dataDir, 'cluster', 'create', '--cluster-id', clusterId, '--member-name', a.label, ...member(a), '--so-pin-file', secretFile(`${a.label}.so`, a.soPin));
  hsmCli(dataDir, 'cluster', 'add-member', clusterId, '--member-name', b.label, ...member(b), '--so-pin-file', secretFile(`${b.label}.so`, b.soPin),
    '--source-so-pin-file', secretFile(`${a.label}.so2`, a.soPin));
}

const holds = (token: TestToken, label: string) => listObjects(token).some((object) => object.label === label);

describe('AWS_CLOUDHSM custom key store over a Strongroom HSM cluster', { timeout: 240_000 }, () => {
  let server: RunningServer;
  let kms: KMSClient;
  let storeId: string;

  before(async () => {
    const hsm = SoftHsm.get();
    tokens = ['chsm-a', 'chsm-b', 'chsm-c', 'chsm-d', 'chsm-e', 'chsm-f'].map((label) => hsm.createToken(label, CRYPTO_USER_PIN));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'anchor.key', '-out', 'anchor.pem', '-days', '1', '-subj', '/CN=cluster-ca'], { cwd: dir, stdio: 'ignore' });
    trustAnchor = readFileSync(join(dir, 'anchor.pem'), 'utf8');
    const dataDir = join(dir, 'served');
    makeCluster(dataDir, CLUSTER, tokens.slice(0, 2));
    server = await startServer({ dataDir, timeoutMs: 60_000 });
    kms = server.kms();
  });

  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const waitForState = async (id: string) => {
    for (let i = 0; i < 500; i++) {
      const entry = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }))).CustomKeyStores![0];
      if (entry.ConnectionState === 'CONNECTED' || entry.ConnectionState === 'FAILED') return entry;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error('never settled');
  };

  it('checks the cluster at create, and reports a wrong password as INVALID_CREDENTIALS', async () => {
    const input = { CustomKeyStoreName: 'hsm', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: trustAnchor };
    await assert.rejects(
      kms.send(new CreateCustomKeyStoreCommand({ ...input, CloudHsmClusterId: 'cluster-zzzzzzzzzzz', KeyStorePassword: CRYPTO_USER_PIN })),
      { name: 'CloudHsmClusterNotFoundException' },
    );
    const wrong = (await kms.send(new CreateCustomKeyStoreCommand({ ...input, CustomKeyStoreName: 'wrong', KeyStorePassword: 'not-the-pin' }))).CustomKeyStoreId!;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: wrong }));
    const failed = await waitForState(wrong);
    assert.deepEqual([failed.ConnectionState, failed.ConnectionErrorCode], ['FAILED', 'INVALID_CREDENTIALS']);
    await assert.rejects(kms.send(new CreateCustomKeyStoreCommand({ ...input, KeyStorePassword: CRYPTO_USER_PIN })), {
      name: 'CloudHsmClusterInUseException',
    });
  });

  it('a connected store: keys generated in the HSMs, replicated to both, crypto inside them', async () => {
    const { DisconnectCustomKeyStoreCommand, DeleteCustomKeyStoreCommand } = await import('@aws-sdk/client-kms');
    const [wrong] = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreName: 'wrong' }))).CustomKeyStores!;
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: wrong.CustomKeyStoreId }));
    await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: wrong.CustomKeyStoreId }));
    storeId = (
      await kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'hsm', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: trustAnchor, KeyStorePassword: CRYPTO_USER_PIN }))
    ).CustomKeyStoreId!;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    assert.equal((await waitForState(storeId)).ConnectionState, 'CONNECTED');

    const keyId = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }))).KeyMetadata!.KeyId!;
    const metadata = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    assert.deepEqual([metadata.Origin, metadata.CustomKeyStoreId, metadata.CloudHsmClusterId], ['AWS_CLOUDHSM', storeId, CLUSTER]);
    const label = keyVersionLabel(keyId, 1);
    for (const token of tokens.slice(0, 2)) {
      const object = listObjects(token).find((candidate) => candidate.label === label);
      assert.ok(object, `${token.label} holds the key`);
      assert.ok(object.access.includes('sensitive'), object.access.join(', '));
    }

    const plaintext = Buffer.from('inside the HSM');
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: { a: 'b' } }));
    assert.equal(CiphertextBlob![0], 0x02, 'the HSM ciphertext format');
    const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { a: 'b' } }));
    assert.deepEqual(Buffer.from(decrypted.Plaintext!), plaintext);
    await assert.rejects(kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { a: 'c' } })), { name: 'InvalidCiphertextException' });
    const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 32 }));
    assert.deepEqual(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob }))).Plaintext!), Buffer.from(dataKey.Plaintext!));
    const random = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 32, CustomKeyStoreId: storeId }));
    assert.equal(random.Plaintext!.length, 32);
  });

  it("a key's deletion, when its day comes, destroys it in every HSM (pkcs11-tool: gone)", async () => {
    // The service in-process over its own data directory and cluster, with a clock the test moves.
    const dataDir = join(dir, 'in-process');
    makeCluster(dataDir, 'cluster-lmnopqrstuv', tokens.slice(2, 4));
    const h = await Harness.open(dataDir);
    try {
      const { CustomKeyStoreId } = await h.call<{ CustomKeyStoreId: string }>('CreateCustomKeyStore', {
        CustomKeyStoreName: 'deletion',
        CloudHsmClusterId: 'cluster-lmnopqrstuv',
        TrustAnchorCertificate: trustAnchor,
        KeyStorePassword: CRYPTO_USER_PIN,
      });
      await h.call('ConnectCustomKeyStore', { CustomKeyStoreId });
      for (let i = 0; i < 500; i++) {
        const { CustomKeyStores } = await h.call<{ CustomKeyStores: { ConnectionState: string }[] }>('DescribeCustomKeyStores', { CustomKeyStoreId });
        if (CustomKeyStores[0].ConnectionState !== 'CONNECTING') break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const keyId = await h.createKey({ CustomKeyStoreId, Origin: 'AWS_CLOUDHSM' });
      const label = keyVersionLabel(keyId, 1);
      assert.ok(tokens.slice(2, 4).every((token) => holds(token, label)));
      await h.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
      h.advanceTo(8);
      await h.runScheduler();
      for (const token of tokens.slice(2, 4)) assert.equal(holds(token, label), false, `${token.label} no longer holds it`);
      await h.expectError('DescribeKey', { KeyId: keyId }, 'NotFoundException');
    } finally {
      await h.instance.close();
    }
  });

  it('a key whose deletion falls due while its store is disconnected: destroyed in every HSM and backup at the next connect', async () => {
    const dataDir = join(dir, 'disconnected');
    const cluster = 'cluster-wxyzabcdefg';
    const members = tokens.slice(4, 6);
    makeCluster(dataDir, cluster, members);
    const h = await Harness.open(dataDir);
    try {
      const { CustomKeyStoreId } = await h.call<{ CustomKeyStoreId: string }>('CreateCustomKeyStore', {
        CustomKeyStoreName: 'deferred',
        CloudHsmClusterId: cluster,
        TrustAnchorCertificate: trustAnchor,
        KeyStorePassword: CRYPTO_USER_PIN,
      });
      const settle = async () => {
        for (let i = 0; i < 3000; i++) {
          const { CustomKeyStores } = await h.call<{ CustomKeyStores: { ConnectionState: string }[] }>('DescribeCustomKeyStores', { CustomKeyStoreId });
          if (!['CONNECTING', 'DISCONNECTING'].includes(CustomKeyStores[0].ConnectionState)) return CustomKeyStores[0].ConnectionState;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        throw new Error('the store never settled');
      };
      await h.call('ConnectCustomKeyStore', { CustomKeyStoreId });
      assert.equal(await settle(), 'CONNECTED');
      const keyId = await h.createKey({ CustomKeyStoreId, Origin: 'AWS_CLOUDHSM' });
      const label = keyVersionLabel(keyId, 1);
      assert.ok(members.every((token) => holds(token, label)));
      // A managed backup holding the key, and one that has gone missing since it was made.
      const backupFile = join(dir, 'deferred.backup.json');
      hsmCli(dataDir, 'backup', cluster, '--out', backupFile);
      hsmCli(dataDir, 'backup', cluster, '--out', join(dir, 'lost.backup.json'));
      rmSync(join(dir, 'lost.backup.json'));
      const objectId = JSON.parse(readFileSync(backupFile, 'utf8')).objects[0].objectId as string;

      await h.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
      await h.call('DisconnectCustomKeyStore', { CustomKeyStoreId });
      assert.equal(await settle(), 'DISCONNECTED');
      h.advanceTo(8);
      // The scheduler's run, watching what it writes to the audit trail.
      const trail = h.instance.context.audit;
      const recorded: string[] = [];
      const run = await runDueBackgroundWork({
        ...h.instance.context,
        audit: {
          probe: () => trail.probe(),
          record: (entry) => (recorded.push(entry.text), trail.record(entry)),
          lastCryptoUse: (id) => trail.lastCryptoUse(id),
          trackingStart: () => trail.trackingStart(),
        },
      });
      assert.deepEqual(run.destroyed, [keyId]);
      assert.deepEqual(run.failed, []);
      assert.deepEqual(run.material, [
        { keyId, outcome: 'DEFERRED', reason: 'the custom key store is not connected', missingBackups: [join(dir, 'lost.backup.json')] },
      ]);
      const details = recorded.map((text) => JSON.parse(text)).filter((event) => event.eventName === 'DeleteKey').map((event) => event.serviceEventDetails);
      assert.deepEqual(details, [
        { keyId },
        { keyId, keyMaterialDestruction: 'DEFERRED', reason: 'the custom key store is not connected', missingBackupFiles: [join(dir, 'lost.backup.json')] },
      ]);
      assert.ok(!recorded.some((text) => text.includes(CRYPTO_USER_PIN)));
      await h.expectError('DescribeKey', { KeyId: keyId }, 'NotFoundException');
      assert.ok(!readFileSync(backupFile, 'utf8').includes(objectId), 'removed from the managed backup at once');
      assert.ok(members.every((token) => holds(token, label)), 'still in the HSMs while the store is disconnected');

      await h.call('ConnectCustomKeyStore', { CustomKeyStoreId });
      assert.equal(await settle(), 'CONNECTED');
      for (const token of members) assert.equal(holds(token, label), false, `${token.label} no longer holds it`);
    } finally {
      await h.instance.close();
    }
  });
});
