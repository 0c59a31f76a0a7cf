/**
 * `strongroom hsm …` as an operator runs it (child processes of bin/strongroom.mjs), over real
 * SoftHSMv2 tokens, with the cluster configuration in the data directory's database; and the
 * custom key store backend the service connects through, from that stored configuration.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { hsmAuditFile } from '../../src/keystores/pkcs11/cluster/audit-file.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import { HsmClusterKeyStoreBackend } from '../../src/keystores/pkcs11/cluster/stored.ts';
import { keyVersionLabel } from '../../src/keystores/pkcs11/templates.ts';
import { CustomKeyStoreConnectError, type ConnectedKeyStore } from '../../src/keystores/types.ts';
import { HsmCatalog, clusterStatus, restoreCluster } from '../../src/cli/hsm-cluster.ts';
import { AgentProcess } from './agent-process.ts';
import { SOFTHSM_MODULE, SoftHsm, createStandaloneToken, listObjects, type TestToken } from './softhsm.ts';
import { makeTestCerts } from './test-certs.ts';
import { postgresQuery, postgresUrl, testSchemaName } from '../storage/backends.ts';

const BIN = fileURLToPath(new URL('../../bin/strongroom.mjs', import.meta.url));
const hsm = SoftHsm.get();
// A custom key store's KeyStorePassword is one crypto-user PIN for the whole cluster (as
// CloudHSM's kmsuser): the members share it; their SO PINs differ.
const CRYPTO_USER_PIN = 'kms-user-pin-2468';
const first = hsm.createToken('cli-first', CRYPTO_USER_PIN);
// The second member is remote: an hsm-agent on a SoftHSM configuration of its own.
const secondMember = createStandaloneToken('cli-second', CRYPTO_USER_PIN);
const second = secondMember.token;
const certs = makeTestCerts();
const objectsOn = (token: TestToken) => (token === second ? listObjects(second, secondMember.conf) : listObjects(token));
const dir = mkdtempSync(join(tmpdir(), 'strongroom-hsm-cli-'));
const dataDir = join(dir, 'data');
const secretFile = (name: string, value: string): string => {
  const path = join(dir, name);
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return path;
};
const files = {
  firstPin: secretFile('first.pin', first.pin),
  firstSoPin: secretFile('first.so-pin', first.soPin),
  secondSoPin: secretFile('second.so-pin', second.soPin),
};

/** Runs the CLI; a command still running after 60 s is killed (`killed`: it hung). */
function strongroom(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; killed: boolean }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args, '--data-dir', dataDir], { env: process.env, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({
        code: error ? Number((error as { code?: number }).code ?? 1) : 0,
        stdout,
        stderr,
        killed: Boolean((error as { killed?: boolean } | null)?.killed),
      }),
    );
  });
}

async function json(...args: string[]): Promise<Record<string, any>> {
  const result = await strongroom(...args);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Record<string, any>;
}

/** The service's way in: the custom key store backend over the stored configuration. */
async function connectAsKms(pin: string): Promise<{ store: ConnectedKeyStore; catalog: HsmCatalog }> {
  const catalog = await HsmCatalog.open(dataDir);
  try {
    const backend = new HsmClusterKeyStoreBackend(catalog.store, (secret) => SecretBytes.from(Buffer.from(secret, 'utf8')), {
      audit: hsmAuditFile(catalog.auditLogPath('cluster-cli'), 'cluster-cli'),
    });
    return { store: await backend.connect({ customKeyStoreId: 'cks-1', cloudHsmClusterId: 'cluster-cli', secret: pin }), catalog };
  } catch (error) {
    await catalog.close();
    throw error;
  }
}

describe('strongroom hsm', () => {
  let agent: AgentProcess | undefined;
  after(async () => {
    await agent?.stop('SIGKILL');
    secondMember.cleanup();
    certs.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('cluster create, add-member (an hsm-agent), backup, list; keys and destruction through the stored cluster', async () => {
    const created = await json('hsm', 'cluster', 'create', '--cluster-id', 'cluster-cli', '--member-name', 'first', '--module', SOFTHSM_MODULE,
      '--token-label', first.label, '--pin-file', files.firstPin, '--so-pin-file', files.firstSoPin);
    assert.equal(created.ConnectionState, 'CONNECTED');
    assert.deepEqual(created.Members.map((member: any) => [member.Name, member.State, member.KeyObjects]), [['first', 'ACTIVE', 0]]);

    // PINs at rest: sealed, never the PIN's bytes; the database file is 0600.
    const db = new Database(join(dataDir, 'strongroom.db'), { readonly: true });
    const rows = db.prepare('SELECT name, sealed_pin, config FROM hsm_members').all() as Array<{ name: string; sealed_pin: Buffer; config: string }>;
    db.close();
    assert.equal(rows.length, 1);
    assert.ok(!rows[0]!.sealed_pin.includes(Buffer.from(first.pin)) && !rows[0]!.config.includes(first.pin));
    assert.equal(statSync(join(dataDir, 'strongroom.db')).mode & 0o777, 0o600);

    // A key made through the service's path lives in the first member.
    let { store, catalog } = await connectAsKms(first.pin);
    const keyId = randomUuid();
    const handle = { keyId, version: 1, sealedMaterial: await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
    const blob = await store.encrypt(handle, Buffer.from('stored cluster'), { app: 'cli' });
    await store.close();
    await catalog.close();

    agent = await AgentProcess.start(secondMember, certs);
    // A join that fails after connecting (the joining HSM's SO PIN is wrong) exits promptly with a
    // clear error: the joining agent's connection is closed, not left holding the command open.
    const wrongSoPin = secretFile('second.wrong-so-pin', `${second.soPin}-wrong`);
    const startedAt = Date.now();
    const refused = await strongroom('hsm', 'cluster', 'add-member', 'cluster-cli', '--member-name', 'second', '--agent', `127.0.0.1:${agent.port}`,
      '--tls-ca', certs.ca, '--tls-cert', certs.clientCert, '--tls-key', certs.clientKey,
      '--so-pin-file', wrongSoPin, '--source-so-pin-file', files.firstSoPin);
    assert.notEqual(refused.code, 0);
    assert.ok(!refused.killed, `add-member hung after failing: ${refused.stderr}`);
    assert.match(refused.stderr, /PIN|CKR_PIN_INCORRECT|credentials/i);
    assert.ok(Date.now() - startedAt < 60_000);
    const added = await json('hsm', 'cluster', 'add-member', 'cluster-cli', '--member-name', 'second', '--agent', `127.0.0.1:${agent.port}`,
      '--tls-ca', certs.ca, '--tls-cert', certs.clientCert, '--tls-key', certs.clientKey,
      '--so-pin-file', files.secondSoPin, '--source-so-pin-file', files.firstSoPin);
    assert.deepEqual(
      added.Members.map((member: any) => [member.Name, member.Kind, member.State, member.KeyObjects]),
      [['first', 'pkcs11', 'ACTIVE', 1], ['second', 'agent', 'ACTIVE', 1]],
    );
    const label = keyVersionLabel(keyId, 1);
    for (const token of [first, second]) assert.ok(objectsOn(token).some((object) => object.label === label), token.label);
    // The joining HSM's agent logged the fingerprint of the transport key it made: the same one.
    assert.match(added.TransportKeyFingerprint, /^[0-9a-f]{64}$/);
    assert.ok(agent.stderr().includes(`"message":"ceremony-transport-key-generated","detail":"${added.TransportKeyFingerprint}"`), agent.stderr());

    const backupFile = join(dir, 'cluster-cli.backup.json');
    const backup = await json('hsm', 'backup', 'cluster-cli', '--out', backupFile);
    assert.equal(backup.Objects, 1);
    assert.equal(statSync(backupFile).mode & 0o777, 0o600);
    const objectIdHex = handle.sealedMaterial.subarray(6).toString('hex');
    assert.ok(readFileSync(backupFile, 'utf8').includes(objectIdHex));

    const listed = await json('hsm', 'cluster', 'list');
    assert.deepEqual(listed.Clusters.map((cluster: any) => [cluster.ClusterId, cluster.Members]), [['cluster-cli', ['first', 'second']]]);

    // Decrypt through the two-member cluster, then destroy: gone from both tokens and the managed backup.
    ({ store, catalog } = await connectAsKms(first.pin));
    try {
      assert.deepEqual(await store.decrypt(handle, blob, { app: 'cli' }), Buffer.from('stored cluster'));
      await store.destroyMaterial!([handle]);
    } finally {
      await store.close();
      await catalog.close();
    }
    for (const token of [first, second]) {
      assert.ok(!objectsOn(token).some((object) => object.label === label || object.id === objectIdHex), `${token.label}: destroyed`);
    }
    assert.ok(!readFileSync(backupFile, 'utf8').includes(objectIdHex), 'destroyed in the managed backup');
    // So restoring that backup cannot bring the key back.
    const restoring = await HsmCatalog.open(dataDir);
    try {
      assert.deepEqual(await restoreCluster(restoring, 'cluster-cli', backupFile), { ClusterId: 'cluster-cli', ObjectsInBackup: 0, Restored: { first: 0, second: 0 } });
    } finally {
      await restoring.close();
    }
    for (const token of [first, second]) assert.ok(!objectsOn(token).some((object) => object.id === objectIdHex));

    // The cluster's own HSM audit log: who joined, what was made and destroyed where; no PINs.
    const auditPath = join(dataDir, 'hsm-audit', 'cluster-cli.jsonl');
    assert.equal(statSync(auditPath).mode & 0o777, 0o600);
    const auditText = readFileSync(auditPath, 'utf8');
    const events = auditText.trim().split('\n').map((line) => JSON.parse(line) as Record<string, string>);
    const about = (operation: string) => events.filter((event) => event.operation === operation && event.objectId === objectIdHex).map((event) => event.member);
    assert.deepEqual(about('create'), ['first']);
    assert.deepEqual(about('destroy').sort(), ['first', 'second']);
    assert.ok(events.some((event) => event.operation === 'join' && event.member === 'second'));
    for (const secret of [CRYPTO_USER_PIN, first.soPin, second.soPin]) assert.ok(!auditText.includes(secret));
  });

  test('cluster create with an hsm-agent as the first member', async () => {
    const standalone = createStandaloneToken('cli-agent-first', CRYPTO_USER_PIN);
    const agentFirst = await AgentProcess.start(standalone, certs);
    try {
      const created = await json('hsm', 'cluster', 'create', '--cluster-id', 'cluster-agent', '--member-name', 'remote', '--agent', `127.0.0.1:${agentFirst.port}`,
        '--tls-ca', certs.ca, '--tls-cert', certs.clientCert, '--tls-key', certs.clientKey, '--so-pin-file', secretFile('agent-first.so-pin', standalone.token.soPin));
      assert.deepEqual(created.Members.map((member: any) => [member.Name, member.Kind, member.State]), [['remote', 'agent', 'ACTIVE']]);
      const labels = listObjects(standalone.token, standalone.conf).map((object) => object.label);
      assert.ok(labels.includes('strongroom:cluster-wrapping-key:cluster-agent'), `pkcs11-tool: ${labels.join(', ')}`);
    } finally {
      await agentFirst.stop('SIGKILL');
      standalone.cleanup();
    }
  });

  test('with --database postgres://… the hsm commands keep clusters in PostgreSQL, where serve --database reads them', async () => {
    const schema = testSchemaName();
    await postgresQuery(`CREATE SCHEMA ${schema}`);
    const token = hsm.createToken('cli-pg', CRYPTO_USER_PIN);
    try {
      const database = postgresUrl(schema);
      const created = await json('hsm', 'cluster', 'create', '--cluster-id', 'cluster-pg', '--member-name', 'pg1', '--module', SOFTHSM_MODULE,
        '--token-label', token.label, '--pin-file', secretFile('pg.pin', token.pin), '--so-pin-file', secretFile('pg.so-pin', token.soPin), '--database', database);
      assert.deepEqual(created.Members.map((member: any) => [member.Name, member.State]), [['pg1', 'ACTIVE']]);
      const status = await json('hsm', 'cluster', 'status', 'cluster-pg', '--database', database);
      assert.equal(status.ClusterId, 'cluster-pg');
      assert.deepEqual(status.Members.map((member: any) => [member.Name, member.Kind, member.State, member.KeyObjects, member.OwedOperations]), [['pg1', 'pkcs11', 'ACTIVE', 0, 0]]);
      const rows = await postgresQuery('SELECT name FROM hsm_members WHERE cluster_id = $1', ['cluster-pg'], schema);
      assert.deepEqual(rows.rows.map((row) => row.name), ['pg1']);
      // Not in the data directory's SQLite.
      const listed = await json('hsm', 'cluster', 'list');
      assert.ok(!listed.Clusters.some((cluster: any) => cluster.ClusterId === 'cluster-pg'));
    } finally {
      await postgresQuery(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  test('cluster status reports each member; hsm restore puts a backup\'s objects back into a member that lost them', async () => {
    const [r1, r2] = [hsm.createToken('cli-restore-1', CRYPTO_USER_PIN), hsm.createToken('cli-restore-2', CRYPTO_USER_PIN)];
    await json('hsm', 'cluster', 'create', '--cluster-id', 'cluster-restore', '--member-name', 'r1', '--module', SOFTHSM_MODULE, '--token-label', r1.label,
      '--pin-file', secretFile('r1.pin', r1.pin), '--so-pin-file', secretFile('r1.so-pin', r1.soPin));
    await json('hsm', 'cluster', 'add-member', 'cluster-restore', '--member-name', 'r2', '--module', SOFTHSM_MODULE, '--token-label', r2.label,
      '--pin-file', secretFile('r2.pin', r2.pin), '--so-pin-file', secretFile('r2.so-pin', r2.soPin), '--source-so-pin-file', secretFile('r1.so-pin2', r1.soPin));
    const catalog = await HsmCatalog.open(dataDir);
    const keyId = randomUuid();
    let objectId: Buffer;
    try {
      const cluster = await catalog.connect('cluster-restore');
      try {
        objectId = await cluster.createKey(keyId, 1);
      } finally {
        await cluster.close();
      }
    } finally {
      await catalog.close();
    }

    const status = await json('hsm', 'cluster', 'status', 'cluster-restore');
    assert.match(status.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual({ ...status, CreatedAt: undefined }, {
      ClusterId: 'cluster-restore',
      CreatedAt: undefined,
      MinReplicas: 1,
      RequestTimeoutMs: 2000,
      ConnectionState: 'CONNECTED',
      Members: [
        { Name: 'r1', Kind: 'pkcs11', State: 'ACTIVE', KeyObjects: 1, OwedOperations: 0, ClusterKeyProtected: true },
        { Name: 'r2', Kind: 'pkcs11', State: 'ACTIVE', KeyObjects: 1, OwedOperations: 0, ClusterKeyProtected: true },
      ],
    });

    const backupFile = join(dir, 'cluster-restore.backup.json');
    assert.equal((await json('hsm', 'backup', 'cluster-restore', '--out', backupFile)).Objects, 1);
    // r2 loses its key object (outside Strongroom); the backup puts it back, as the same key.
    const member = (token: TestToken, name: string) => new LocalHsmMember({ name, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(token.pin) });
    const lost = member(r2, 'r2');
    try {
      await lost.connect();
      assert.equal(await lost.destroy(objectId), true);
    } finally {
      await lost.close();
    }
    const label = keyVersionLabel(keyId, 1);
    assert.ok(!listObjects(r2).some((object) => object.label === label), 'pkcs11-tool: gone from r2');
    const restored = await json('hsm', 'restore', 'cluster-restore', '--in', backupFile, '--member', 'r2');
    assert.deepEqual(restored, { ClusterId: 'cluster-restore', ObjectsInBackup: 1, Restored: { r2: 1 } });
    assert.ok(listObjects(r2).some((object) => object.label === label), 'pkcs11-tool: back on r2');
    const [one, two] = [member(r1, 'r1'), member(r2, 'r2')];
    try {
      await Promise.all([one.connect(), two.connect()]);
      const iv = Buffer.alloc(12, 7);
      const sealed = await one.encrypt(objectId, iv, Buffer.from('aad'), Buffer.from('restored key'));
      assert.deepEqual(await two.decrypt(objectId, iv, Buffer.from('aad'), sealed), Buffer.from('restored key'));
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  test('the backend reports INVALID_CREDENTIALS for a wrong KeyStorePassword and CLUSTER_NOT_FOUND for an unknown cluster', async () => {
    await assert.rejects(connectAsKms('wrong-pin-0000'), (error: unknown) => error instanceof CustomKeyStoreConnectError && error.connectionErrorCode === 'INVALID_CREDENTIALS');
    const catalog = await HsmCatalog.open(dataDir);
    try {
      const backend = new HsmClusterKeyStoreBackend(catalog.store, (secret) => SecretBytes.from(Buffer.from(secret)));
      await assert.rejects(backend.check({ customKeyStoreId: 'x', cloudHsmClusterId: 'cluster-none', secret: 'x' }), (error: unknown) =>
        error instanceof CustomKeyStoreConnectError && error.connectionErrorCode === 'CLUSTER_NOT_FOUND');
    } finally {
      await catalog.close();
    }
  });

  test('remove-member, but never the last one; an unknown cluster is a clear error', async () => {
    const removed = await json('hsm', 'cluster', 'remove-member', 'cluster-cli', 'first');
    assert.deepEqual(removed.Members.map((member: any) => member.Name), ['second']);
    assert.equal(removed.Removed.TokenCleaned, true);
    assert.deepEqual(objectsOn(first).filter((object) => object.label?.startsWith('strongroom:')), [], 'pkcs11-tool: the cluster key is gone from the removed token');
    const last = await strongroom('hsm', 'cluster', 'remove-member', 'cluster-cli', 'second');
    assert.equal(last.code, 1);
    assert.match(last.stderr, /^error: second is the last member of cluster-cli/);
    const catalog = await HsmCatalog.open(dataDir);
    try {
      await assert.rejects(clusterStatus(catalog, 'cluster-nope'), /no HSM cluster cluster-nope/);
    } finally {
      await catalog.close();
    }
  });
});
