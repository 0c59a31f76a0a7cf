/**
 * CloudHSM-style custom key stores end to end: `strongroom hsm cluster create/add-member` (the key
 * ceremony) over two real SoftHSMv2 tokens, then the AWS SDK against `strongroom serve`:
 * CreateCustomKeyStore (AWS_CLOUDHSM), connect, keys generated and replicated inside the HSMs,
 * crypto through them; with the service's movable clock, a key's deletion carried out in
 * every token, witnessed by opensc's pkcs11-tool; and a cluster whose only member, an hsm-agent,
 * is killed: its keys answer KMSInvalidStateException (400) until the agent is back.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
  GenerateDataKeyPairCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  KMSClient,
  ReEncryptCommand,
} from '@aws-sdk/client-kms';
import { keyVersionLabel } from '../../src/keystores/pkcs11/templates.ts';
import { runDueBackgroundWork } from '../../src/service/background.ts';
import { AgentProcess } from '../keystores/agent-process.ts';
import { SOFTHSM_MODULE, SoftHsm, createStandaloneToken, listObjects, type StandaloneToken, type TestToken } from '../keystores/softhsm.ts';
import { makeTestCerts, type CertFiles } from '../keystores/test-certs.ts';
import { Harness } from '../support/service-harness.ts';
import { STRONGROOM_BIN, startServer, type RunningServer } from '../support/server.ts';

const dir = mkdtempSync(join(tmpdir(), 'strongroom-cloudhsm-e2e-'));
const CRYPTO_USER_PIN = 'kmsuser-pin-13579';
const CLUSTER = 'cluster-abcdefghijk';
const AGENT_CLUSTER = 'cluster-agentmemberx';
let tokens: TestToken[];
/** Each token's own directory in SoftHSM's token directory, by label: moved away, the token is removed. */
const tokenDirs = new Map<string, string>();
let agentToken: StandaloneToken;
let certs: CertFiles;
let agent: AgentProcess;
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

/** `name{labels} value` from a Prometheus exposition, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const holds = (token: TestToken, label: string) => listObjects(token).some((object) => object.label === label);

describe('AWS_CLOUDHSM custom key store over a Strongroom HSM cluster', { timeout: 240_000 }, () => {
  let server: RunningServer;
  let kms: KMSClient;
  let storeId: string;

  before(async () => {
    const hsm = SoftHsm.get();
    tokens = ['chsm-a', 'chsm-b', 'chsm-c', 'chsm-d', 'chsm-e', 'chsm-f', 'chsm-g'].map((label) => {
      const existing = new Set(readdirSync(join(hsm.dir, 'tokens')));
      const token = hsm.createToken(label, CRYPTO_USER_PIN);
      tokenDirs.set(label, readdirSync(join(hsm.dir, 'tokens')).find((entry) => !existing.has(entry))!);
      return token;
    });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'anchor.key', '-out', 'anchor.pem', '-days', '1', '-subj', '/CN=cluster-ca'], { cwd: dir, stdio: 'ignore' });
    trustAnchor = readFileSync(join(dir, 'anchor.pem'), 'utf8');
    const dataDir = join(dir, 'served');
    makeCluster(dataDir, CLUSTER, tokens.slice(0, 2));
    // A one-member cluster whose member is an hsm-agent (its own token, the same crypto user PIN).
    agentToken = createStandaloneToken('chsm-agent', CRYPTO_USER_PIN);
    certs = makeTestCerts();
    agent = await AgentProcess.start(agentToken, certs);
    // `create` takes an in-process member; the agent joins by the ceremony, then the first leaves.
    const first = tokens[4]!;
    hsmCli(dataDir, 'cluster', 'create', '--cluster-id', AGENT_CLUSTER, '--member-name', first.label, '--module', SOFTHSM_MODULE, '--token-label', first.label,
      '--pin-file', secretFile(`${first.label}.pin`, first.pin), '--so-pin-file', secretFile(`${first.label}.so`, first.soPin));
    hsmCli(dataDir, 'cluster', 'add-member', AGENT_CLUSTER, '--member-name', 'agent', '--agent', `127.0.0.1:${agent.port}`,
      '--tls-ca', certs.ca, '--tls-cert', certs.clientCert, '--tls-key', certs.clientKey,
      '--so-pin-file', secretFile('agent.so', agentToken.token.soPin), '--source-so-pin-file', secretFile(`${first.label}.so2`, first.soPin));
    hsmCli(dataDir, 'cluster', 'remove-member', AGENT_CLUSTER, first.label);
    server = await startServer({ dataDir, args: ['--metrics-port', '0'], timeoutMs: 60_000 });
    kms = server.kms();
  });

  after(async () => {
    await server?.stop();
    await agent?.stop('SIGKILL');
    agentToken?.cleanup();
    certs?.cleanup();
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

    // GenerateDataKeyWithoutPlaintext: the data key made, sealed inside the HSMs; Decrypt gives it back.
    const sealedOnly = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: { purpose: 'wrap' } }));
    assert.equal(sealedOnly.CiphertextBlob![0], 0x02);
    assert.equal((sealedOnly as { Plaintext?: unknown }).Plaintext, undefined);
    const dataKeyBack = await kms.send(new DecryptCommand({ CiphertextBlob: sealedOnly.CiphertextBlob, EncryptionContext: { purpose: 'wrap' } }));
    assert.equal(dataKeyBack.Plaintext!.length, 32);

    // ReEncrypt from the HSM key to a second HSM key, and from a software key into the HSM key.
    const otherKeyId = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }))).KeyMetadata!.KeyId!;
    const moved = await kms.send(new ReEncryptCommand({ CiphertextBlob, SourceEncryptionContext: { a: 'b' }, DestinationKeyId: otherKeyId, DestinationEncryptionContext: { c: 'd' } }));
    assert.equal(moved.SourceKeyId, metadata.Arn);
    assert.equal(moved.CiphertextBlob![0], 0x02);
    const movedBack = await kms.send(new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob, EncryptionContext: { c: 'd' } }));
    assert.deepEqual(Buffer.from(movedBack.Plaintext!), plaintext);
    assert.equal(movedBack.KeyId, moved.KeyId);
    await assert.rejects(kms.send(new ReEncryptCommand({ CiphertextBlob, SourceEncryptionContext: { a: 'x' }, DestinationKeyId: otherKeyId })), { name: 'InvalidCiphertextException' });
    const softwareKeyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const software = await kms.send(new EncryptCommand({ KeyId: softwareKeyId, Plaintext: plaintext }));
    const intoHsm = await kms.send(new ReEncryptCommand({ CiphertextBlob: software.CiphertextBlob, DestinationKeyId: keyId }));
    assert.equal(intoHsm.CiphertextBlob![0], 0x02);
    assert.deepEqual(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: intoHsm.CiphertextBlob }))).Plaintext!), plaintext);

    // Data key pairs cannot be made under a key in a custom key store (AWS).
    await assert.rejects(kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' })), { name: 'UnsupportedOperationException' });
  });

  it('readiness and strongroom_hsm_member_up follow the members: a removed token is 0, a cluster with none serving is 503', async () => {
    const { DisconnectCustomKeyStoreCommand } = await import('@aws-sdk/client-kms');
    const metrics = server.metricsEndpoint as string;
    const member = (name: string) => `strongroom_hsm_member_up{cluster_id="${CLUSTER}",member="${name}"}`;
    const scrape = async () => (await fetch(`${metrics}/metrics`)).text();
    const readyz = async () => {
      const response = await fetch(`${metrics}/readyz`);
      return { status: response.status, body: (await response.json()) as { checks: Record<string, string> } };
    };
    /** Polls (the report is cached 1 s; members are checked at each scrape) until `done` holds. */
    const until = async <T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> => {
      let value = await read();
      for (let attempt = 0; attempt < 120 && !done(value); attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        value = await read();
      }
      return value;
    };

    const ready = await readyz();
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body.checks, { metadataStore: 'ok', rootKey: 'ok', auditTrail: 'ok', hsmClusters: 'ok' });
    let text = await scrape();
    assert.equal(sample(text, member('chsm-a')), 1);
    assert.equal(sample(text, member('chsm-b')), 1);
    // The previous test's Encrypt and Decrypt went through the cluster: their key store calls are timed.
    assert.ok((sample(text, 'strongroom_key_store_call_duration_seconds_count{store_type="AWS_CLOUDHSM",call="encrypt",outcome="ok"}') ?? 0) > 0, text);
    assert.ok((sample(text, 'strongroom_key_store_call_duration_seconds_count{store_type="AWS_CLOUDHSM",call="decrypt",outcome="ok"}') ?? 0) > 0);

    const keyId = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }))).KeyMetadata!.KeyId!;
    const tokenDir = join(SoftHsm.get().dir, 'tokens');
    const pulled = (label: string) => join(SoftHsm.get().dir, `pulled-${label}`);
    const moved: string[] = [];
    try {
      // One member's token removed: that member is 0, the cluster still serves.
      renameSync(join(tokenDir, tokenDirs.get('chsm-b')!), pulled('chsm-b'));
      moved.push('chsm-b');
      text = await until(scrape, (current) => sample(current, member('chsm-b')) === 0);
      assert.equal(sample(text, member('chsm-b')), 0);
      assert.equal(sample(text, member('chsm-a')), 1);
      assert.equal((await readyz()).status, 200);
      // Its keys still serve from the other member (a new key would need both: two active HSMs).
      await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('one member left') }));

      // Both removed: the cluster serves nothing and the node is not ready, naming the check.
      renameSync(join(tokenDir, tokenDirs.get('chsm-a')!), pulled('chsm-a'));
      moved.push('chsm-a');
      const failing = await until(readyz, (current) => current.status === 503);
      assert.equal(failing.status, 503);
      assert.deepEqual(failing.body, { status: 'not ready', checks: { metadataStore: 'ok', rootKey: 'ok', auditTrail: 'ok', hsmClusters: 'failing' } });
      text = await scrape();
      assert.equal(sample(text, member('chsm-a')), 0);
      assert.equal(sample(text, member('chsm-b')), 0);

      // Disconnected by the operator, the store no longer holds the node back.
      await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
      assert.equal((await until(readyz, (current) => current.status === 200)).status, 200);
      assert.ok(!server.output().includes(CRYPTO_USER_PIN), 'no PIN in the log');
    } finally {
      for (const label of moved) renameSync(pulled(label), join(tokenDir, tokenDirs.get(label)!));
    }
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
  it('the only HSM killed: its keys answer KMSInvalidStateException (400), GenerateRandom CustomKeyStoreInvalidStateException; back when the agent is', async () => {
    const agentStoreId = (
      await kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'agent', CloudHsmClusterId: AGENT_CLUSTER, TrustAnchorCertificate: trustAnchor, KeyStorePassword: CRYPTO_USER_PIN }))
    ).CustomKeyStoreId!;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: agentStoreId }));
    assert.equal((await waitForState(agentStoreId)).ConnectionState, 'CONNECTED');
    // One member: CreateKey needs min(2, members) = 1 active HSM (docs/custom-key-stores.md).
    const keyId = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: agentStoreId, Origin: 'AWS_CLOUDHSM' }))).KeyMetadata!.KeyId!;
    const plaintext = Buffer.from('through the agent');
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));

    await agent.stop('SIGKILL');
    await assert.rejects(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext })), (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(error.name, 'KMSInvalidStateException', error.message);
      assert.equal(error.$metadata?.httpStatusCode, 400);
      assert.match(error.message, new RegExp(`key/${keyId} is unavailable`));
      return true;
    });
    await assert.rejects(kms.send(new DecryptCommand({ CiphertextBlob })), { name: 'KMSInvalidStateException' });
    await assert.rejects(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })), { name: 'KMSInvalidStateException' });
    await assert.rejects(kms.send(new GenerateRandomCommand({ NumberOfBytes: 16, CustomKeyStoreId: agentStoreId })), { name: 'CustomKeyStoreInvalidStateException' });
    await assert.rejects(kms.send(new CreateKeyCommand({ CustomKeyStoreId: agentStoreId, Origin: 'AWS_CLOUDHSM' })), { name: 'CloudHsmClusterInvalidConfigurationException' });

    // The agent back on its port: the cluster's probe returns it to service (polled, not slept).
    agent = await AgentProcess.start(agentToken, certs, agent.port);
    let decrypted: Uint8Array | undefined;
    for (let attempt = 0; attempt < 300 && !decrypted; attempt++) {
      try {
        decrypted = (await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext;
      } catch (error) {
        assert.equal((error as Error).name, 'KMSInvalidStateException');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    assert.deepEqual(Buffer.from(decrypted!), plaintext);
  });

  it('a key whose deletion falls due while its store is disconnected: destroyed in every HSM and backup at the next connect', async () => {
    const dataDir = join(dir, 'disconnected');
    const cluster = 'cluster-wxyzabcdefg';
    const members = tokens.slice(5, 7);
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
