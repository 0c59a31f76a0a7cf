/**
 * HsmCluster over in-process members on real SoftHSMv2 tokens: the key ceremony, replication,
 * load balancing, failover, re-synchronisation, clean failure, backups and provable destruction,
 * witnessed by opensc's pkcs11-tool on every token.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { Pkcs11Error } from '../../src/keystores/pkcs11/errors.ts';
import { readBackup, restoreBackup, writeBackup } from '../../src/keystores/pkcs11/cluster/backup.ts';
import { installClusterKey } from '../../src/keystores/pkcs11/cluster/ceremony.ts';
import { HsmCluster, HsmClusterError, type HsmAuditEvent } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { HsmClusterKeyStore } from '../../src/keystores/pkcs11/cluster/cluster-key-store.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import { keyVersionLabel } from '../../src/keystores/pkcs11/templates.ts';
import type { KeyVersionHandle } from '../../src/keystores/types.ts';
import { FaultyMember } from './faulty-member.ts';
import { SOFTHSM_MODULE, SoftHsm, listObjects, type TestToken } from './softhsm.ts';

const hsm = SoftHsm.get();
const tokens = ['c-one', 'c-two', 'c-three', 'c-fresh', 'c-wrongpin', 'c-ceremony'].map((label) => hsm.createToken(label));
const [one, two, three, fresh, wrongPinToken, ceremonyToken] = tokens as [TestToken, TestToken, TestToken, TestToken, TestToken, TestToken];

const member = (token: TestToken, pin = token.pin) =>
  new LocalHsmMember({ name: token.label, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(pin), sessions: 4 });
const soPin = (token: TestToken) => SecretBytes.from(Buffer.from(token.soPin));
const labelsOn = (token: TestToken) => listObjects(token).map((object) => object.label);

describe('HsmCluster of three in-process members', () => {
  const clusterId = `cluster-${randomUuid()}`;
  let cluster: HsmCluster;
  let store: HsmClusterKeyStore;
  let faulty: FaultyMember;
  const events: HsmAuditEvent[] = [];
  const backupDir = mkdtempSync(join(tmpdir(), 'strongroom-hsm-backup-'));
  const backupFile = join(backupDir, 'cluster.backup.json');
  const managedBackups: string[] = [];

  const newVersion = async (keyId = randomUuid(), version = 1): Promise<KeyVersionHandle> => ({
    keyId,
    version,
    sealedMaterial: await store.createVersionMaterial(keyId, version, 'SYMMETRIC_DEFAULT'),
  });

  before(async () => {
    faulty = new FaultyMember(member(three));
    cluster = await HsmCluster.initialise(
      {
        clusterId,
        members: [member(one), member(two), faulty],
        requestTimeoutMs: 1_000,
        probeIntervalMs: 60_000, // the tests call probeNow
        backupFiles: async () => managedBackups,
        audit: (event) => events.push(event),
      },
      new Map([one, two, three].map((token) => [token.label, soPin(token)])),
    );
    store = new HsmClusterKeyStore(cluster);
  });
  after(async () => {
    await cluster?.close();
    rmSync(backupDir, { recursive: true, force: true });
  });

  test('the ceremony leaves one trusted cluster wrapping key in every member, and no transport key', () => {
    for (const token of [one, two, three]) {
      const objects = listObjects(token);
      const wrappingKeys = objects.filter((object) => object.label === `strongroom:cluster-wrapping-key:${clusterId}`);
      assert.equal(wrappingKeys.length, 1, token.label);
      assert.ok(wrappingKeys[0]!.access.includes('sensitive'), 'sensitive');
      assert.deepEqual(wrappingKeys[0]!.usage.sort(), ['unwrap', 'wrap']);
      assert.equal(objects.filter((object) => object.label?.includes('transport')).length, 0, 'transport pair destroyed');
      assert.equal(objects.filter((object) => object.label === 'strongroom:ceremony-probe').length, 0, 'probe destroyed');
    }
    assert.deepEqual(cluster.status().members.map((m) => m.state), ['ACTIVE', 'ACTIVE', 'ACTIVE']);
    assert.equal(cluster.status().connectionState, 'CONNECTED');
  });

  test('a created key is in every member before createKey returns, sensitive and wrap-with-trusted', async () => {
    const handle = await newVersion();
    const label = keyVersionLabel(handle.keyId, 1);
    for (const token of [one, two, three]) {
      const [object] = listObjects(token).filter((listed) => listed.label === label);
      assert.ok(object, `${token.label} holds the key`);
      assert.equal(object.id, handle.sealedMaterial.subarray(6).toString('hex'));
      assert.ok(object.access.includes('sensitive'));
      assert.deepEqual(object.usage.sort(), ['decrypt', 'encrypt']);
    }
    // Each member decrypts what the cluster encrypted: they hold the same key.
    const blob = await store.encrypt(handle, Buffer.from('replicated'), { a: 'b' });
    const { iv, aad, sealed } = (await import('../../src/keystores/pkcs11/ciphertext.ts')).parseHsmBlob(blob, { a: 'b' });
    for (const each of cluster.members) {
      assert.deepEqual(await each.decrypt(handle.sealedMaterial.subarray(6), iv, aad, sealed), Buffer.from('replicated'));
    }
  });

  test('crypto is spread over every active member', async () => {
    const handle = await newVersion();
    const before = faulty.calls;
    await Promise.all(Array.from({ length: 30 }, (_, index) => store.encrypt(handle, Buffer.from(`m${index}`), undefined)));
    const served = faulty.calls - before;
    assert.ok(served >= 5 && served <= 15, `the third member served ${served} of 30`);
  });

  test('a member that fails is taken out; the caller sees no error; it comes back after resync', async () => {
    const handle = await newVersion();
    faulty.mode = 'error';
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, index) => {
        const plaintext = Buffer.from(`payload ${index}`);
        return (await store.decrypt(handle, await store.encrypt(handle, plaintext, undefined), undefined)).equals(plaintext);
      }),
    );
    assert.ok(results.every(Boolean));
    assert.equal(cluster.status().members[2]!.state, 'DOWN');
    assert.equal(cluster.status().members[2]!.errorCode, 'DEVICE_ERROR');
    faulty.mode = 'ok';
    await cluster.probeNow();
    assert.equal(cluster.status().members[2]!.state, 'ACTIVE');
  });

  test('a member slower than the timeout is taken out and the request retried elsewhere', async () => {
    const handle = await newVersion();
    faulty.mode = 'hang';
    const started = Date.now();
    for (let index = 0; index < 6; index++) {
      assert.deepEqual(await store.decrypt(handle, await store.encrypt(handle, Buffer.from('slow'), undefined), undefined), Buffer.from('slow'));
    }
    assert.ok(Date.now() - started < 5_000, 'bounded by one timeout');
    assert.equal(cluster.status().members[2]!.errorCode, 'MEMBER_TIMEOUT');
    faulty.mode = 'ok';
    await cluster.probeNow();
    assert.equal(cluster.status().members[2]!.state, 'ACTIVE');
  });

  test('keys created and destroyed while a member is out reach it at resync, before it serves', async () => {
    const doomed = await newVersion();
    const doomedLabel = keyVersionLabel(doomed.keyId, 1);
    faulty.mode = 'error';
    // Round robin reaches the failing member within three requests; it goes out, no request fails.
    for (let index = 0; index < 3; index++) await store.encrypt(doomed, Buffer.from('x'), undefined);
    await cluster.probeNow(); // still failing: stays out
    assert.equal(cluster.status().members[2]!.state, 'DOWN');

    const created = await newVersion();
    const createdLabel = keyVersionLabel(created.keyId, 1);
    const outcome = await store.destroyVersionMaterial(doomed);
    assert.deepEqual(outcome.owedBy, [three.label]);
    assert.ok(!labelsOn(three).includes(createdLabel), 'not yet on the member that is out');
    assert.ok(labelsOn(three).includes(doomedLabel), 'still on the member that is out');

    faulty.mode = 'ok';
    await cluster.probeNow();
    assert.equal(cluster.status().members[2]!.state, 'ACTIVE');
    assert.ok(labelsOn(three).includes(createdLabel), 'created while out: replicated at resync');
    assert.ok(!labelsOn(three).includes(doomedLabel), 'destroyed while out: destroyed at resync');
    assert.ok(events.some((event) => event.member === three.label && event.operation === 'resync-create'));
  });

  test('a source that generates too late keeps nothing under the CKA_ID the cluster hands out', async () => {
    // Until the slow member is the one asked to generate (round robin), bring it back and retry.
    let late: HsmAuditEvent | undefined;
    let handle: KeyVersionHandle | undefined;
    for (let attempt = 0; attempt < 6 && !late; attempt++) {
      faulty.mode = 'slow';
      const seen = events.length;
      handle = await newVersion();
      late = events.slice(seen).find((event) => event.member === three.label && event.operation === 'generate' && event.errorCode === 'MEMBER_TIMEOUT');
      await new Promise((resolve) => setTimeout(resolve, faulty.slowMs)); // let the late call land
      faulty.mode = 'ok';
      await cluster.probeNow();
      assert.equal(cluster.status().members[2]!.state, 'ACTIVE');
    }
    assert.ok(late && handle, 'the slow member was asked to generate');
    const handedOut = handle.sealedMaterial.subarray(6).toString('hex');
    assert.notEqual(late.objectId, handedOut, 'the next attempt used a CKA_ID of its own');
    const ids = listObjects(three).map((object) => object.id);
    assert.ok(!ids.includes(late.objectId), 'the late key was destroyed at resync');
    assert.ok(ids.includes(handedOut), 'the real key was replicated at resync');
    const blob = await store.encrypt(handle, Buffer.from('one key per id'), undefined);
    const parsed = (await import('../../src/keystores/pkcs11/ciphertext.ts')).parseHsmBlob(blob, undefined);
    assert.deepEqual(await faulty.decrypt(handle.sealedMaterial.subarray(6), parsed.iv, parsed.aad, parsed.sealed), Buffer.from('one key per id'));
  });

  test('a create that cannot reach enough members fails cleanly: no object left anywhere', async () => {
    const failing = new FaultyMember(member(two));
    const strict = await HsmCluster.connect({ clusterId, members: [member(one), failing], minReplicas: 2, probeIntervalMs: 60_000 });
    const insufficient = (error: unknown) => error instanceof HsmClusterError && error.code === 'INSUFFICIENT_CLOUDHSM_HSMS';
    try {
      // Two active members, two required, one fails during the create: what was made is destroyed.
      failing.mode = 'error';
      const keyId = randomUuid();
      await assert.rejects(strict.createKey(keyId, 1), insufficient);
      for (const token of [one, two, three]) assert.ok(!labelsOn(token).includes(keyVersionLabel(keyId, 1)), token.label);
      // One active member now, two required: refused before anything is made.
      const refusedId = randomUuid();
      await assert.rejects(strict.createKey(refusedId, 1), (error: unknown) => insufficient(error) && /has 1 active member\(s\); a new key needs 2/.test((error as Error).message));
      for (const token of [one, two, three]) assert.ok(!labelsOn(token).includes(keyVersionLabel(refusedId, 1)), token.label);
    } finally {
      await strict.close();
    }
  });

  test('backup holds every key wrapped, 0600, and restores into a fresh member after the ceremony', async () => {
    const handle = await newVersion();
    const blob = await store.encrypt(handle, Buffer.from('backed up'), undefined);
    const backup = await writeBackup(cluster.members[0]!, clusterId, backupFile);
    managedBackups.push(backupFile);
    assert.equal(statSync(backupFile).mode & 0o777, 0o600);
    const entry = backup.objects.find((object) => object.label === keyVersionLabel(handle.keyId, 1));
    assert.ok(entry);
    assert.equal(Buffer.from(entry.wrapped, 'base64').length, 40, 'RFC 3394 wrap of 32 bytes');

    const newcomer = member(fresh);
    try {
      await installClusterKey(clusterId, cluster.members[0]!, soPin(one), newcomer, soPin(fresh));
      assert.equal(labelsOn(fresh).filter((label) => label?.startsWith('strongroom:') && label.includes(':v')).length, 0);
      const restored = await restoreBackup(newcomer, clusterId, backupFile);
      assert.equal(restored, backup.objects.length);
      assert.ok(labelsOn(fresh).includes(keyVersionLabel(handle.keyId, 1)));
      const parsed = (await import('../../src/keystores/pkcs11/ciphertext.ts')).parseHsmBlob(blob, undefined);
      assert.deepEqual(await newcomer.decrypt(handle.sealedMaterial.subarray(6), parsed.iv, parsed.aad, parsed.sealed), Buffer.from('backed up'));
    } finally {
      await newcomer.close();
    }
  });

  test('destroying a key removes it from every token and every managed backup (pkcs11-tool)', async () => {
    const handle = await newVersion();
    const label = keyVersionLabel(handle.keyId, 1);
    await writeBackup(cluster.members[1]!, clusterId, backupFile);
    assert.ok((await readBackup(backupFile)).objects.some((object) => object.label === label));
    for (const token of [one, two, three]) assert.ok(labelsOn(token).includes(label));

    const outcome = await store.destroyVersionMaterial(handle);
    assert.deepEqual(outcome, { destroyedIn: [one.label, two.label, three.label], owedBy: [] });
    const id = handle.sealedMaterial.subarray(6).toString('hex');
    for (const token of [one, two, three]) {
      const objects = listObjects(token);
      assert.ok(!objects.some((object) => object.label === label || object.id === id), `${token.label}: gone`);
    }
    assert.ok(!readFileSync(backupFile, 'utf8').includes(id), 'gone from the backup file');
    await assert.rejects(store.encrypt(handle, Buffer.from('x'), undefined), (error: unknown) => error instanceof Pkcs11Error && error.code === 'KEY_NOT_FOUND');
  });
});

describe('connecting a cluster', () => {
  test('a wrong PIN on every member is INVALID_CREDENTIALS', async () => {
    await assert.rejects(
      HsmCluster.connect({ clusterId: 'x', members: [member(wrongPinToken, 'not-the-pin')] }),
      (error: unknown) => error instanceof HsmClusterError && error.code === 'INVALID_CREDENTIALS',
    );
  });

  test('a member without the cluster wrapping key is not used: INSUFFICIENT_CLOUDHSM_HSMS', async () => {
    await assert.rejects(
      HsmCluster.connect({ clusterId: 'x', members: [member(wrongPinToken)] }),
      (error: unknown) => error instanceof HsmClusterError && error.code === 'INSUFFICIENT_CLOUDHSM_HSMS',
    );
  });
});

describe('the ceremony refuses what would weaken it', () => {
  const isCode = (code: string) => (error: unknown) => error instanceof Pkcs11Error && error.code === code;

  test('wrong SO PIN, a second cluster key, a member already in a cluster, a weak transport key', async () => {
    const subject = member(ceremonyToken);
    try {
      await assert.rejects(subject.createClusterKey(SecretBytes.from(Buffer.from('not-the-so-pin')), 'c'), isCode('PIN_INCORRECT'));
      await subject.createClusterKey(soPin(ceremonyToken), 'cluster-c');
      await assert.rejects(subject.createClusterKey(soPin(ceremonyToken), 'cluster-d'), isCode('CLUSTER_KEY_EXISTS'));
      await assert.rejects(subject.beginJoin(soPin(ceremonyToken)), isCode('CLUSTER_KEY_EXISTS'));
      // A transport key below 3072 bits would carry the cluster key under weaker protection.
      const weak = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
      const transport = { modulus: Buffer.from(weak.n!, 'base64url'), exponent: Buffer.from(weak.e!, 'base64url') };
      await assert.rejects(subject.wrapClusterKeyFor(soPin(ceremonyToken), transport), isCode('CEREMONY_FAILED'));
      await assert.rejects(subject.wrapClusterKeyFor(soPin(ceremonyToken), { ...transport, exponent: Buffer.from([3]) }), isCode('CEREMONY_FAILED'));
      // None of it left the member unusable or a transport key behind.
      assert.deepEqual(await subject.health(), { ok: true, clusterId: 'cluster-c', clusterKeyProtected: true });
      assert.ok(!listObjects(ceremonyToken).some((object) => object.label?.includes('transport')));
    } finally {
      await subject.close();
    }
  });
});
