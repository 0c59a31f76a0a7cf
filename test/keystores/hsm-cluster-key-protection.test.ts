/**
 * What a crypto-user PIN holder (the custom key store's KeyStorePassword) can and cannot do to a
 * cluster made by the key ceremony, on real SoftHSMv2 tokens, from a process of their own
 * (pin-holder.ts). The reviewer's attack — wrap a KMS key under the cluster wrapping key, unwrap
 * it as a non-sensitive key, read CKA_VALUE — must fail on every member, in-process or behind an
 * hsm-agent; and it must still succeed against a wrapping key made the old way, so these tests
 * can fail.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pkcs11js from 'pkcs11js';
import { HsmCatalog, clusterStatus, memberRecord } from '../../src/cli/hsm-cluster.ts';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { CLUSTER_KEY_ID } from '../../src/keystores/pkcs11/cluster/ceremony-steps.ts';
import { proveSharedClusterKey } from '../../src/keystores/pkcs11/cluster/ceremony.ts';
import { HsmCluster } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { HsmClusterKeyStore } from '../../src/keystores/pkcs11/cluster/cluster-key-store.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import { RemoteHsmMember } from '../../src/keystores/pkcs11/cluster/remote-member.ts';
import { Pkcs11Module } from '../../src/keystores/pkcs11/module.ts';
import { newObjectId } from '../../src/keystores/pkcs11/reference.ts';
import { clusterKeyVersionTemplate, keyVersionLabel, unwrappedKeyVersionAttributes, wrappingKeyTemplate } from '../../src/keystores/pkcs11/templates.ts';
import { AgentProcess } from './agent-process.ts';
import { asPinHolder } from './pin-holder.ts';
import { SOFTHSM_MODULE, SoftHsm, createStandaloneToken, listObjects, type TestToken } from './softhsm.ts';
import { makeTestCerts } from './test-certs.ts';

const P = pkcs11js;
const hsm = SoftHsm.get();
const labels = ['k-first', 'k-joined', 'k-third', 'k-legacy', 'k-legacy-joined', 'k-agent-local'];
const [first, joined, third, legacy, legacyJoined, agentLocal] = labels.map((label) => hsm.createToken(label)) as [
  TestToken,
  TestToken,
  TestToken,
  TestToken,
  TestToken,
  TestToken,
];
const remote = createStandaloneToken('k-agent-remote');
const certs = makeTestCerts();

const member = (token: TestToken) =>
  new LocalHsmMember({ name: token.label, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(token.pin), sessions: 2 });
const soPin = (token: TestToken) => SecretBytes.from(Buffer.from(token.soPin));

/** RFC 3394 unwrap (default IV) in node:crypto: what anyone holding the wrapping key's value can do offline. */
function unwrapRfc3394(key: Buffer, wrapped: Buffer): Buffer {
  const decipher = createDecipheriv('id-aes256-wrap', key, Buffer.from('a6a6a6a6a6a6a6a6', 'hex'));
  return Buffer.concat([decipher.update(wrapped), decipher.final()]);
}

/** The reviewer's template: a session object, readable. */
const READABLE = [
  { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
  { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
  { type: P.CKA_TOKEN, value: false },
  { type: P.CKA_SENSITIVE, value: false },
  { type: P.CKA_EXTRACTABLE, value: true },
];
const CLUSTER_KEY = { objectId: CLUSTER_KEY_ID.toString('latin1'), objectClass: P.CKO_SECRET_KEY };

const protectedClusterId = `protected-${randomUuid()}`;

describe('a cluster made by the ceremony, against a crypto-user PIN holder', () => {
  const clusterId = protectedClusterId;
  let cluster: HsmCluster;
  let store: HsmClusterKeyStore;
  let keyLabel: string;

  before(async () => {
    cluster = await HsmCluster.initialise(
      { clusterId, members: [member(first), member(joined)], requestTimeoutMs: 5_000, probeIntervalMs: 60_000 },
      new Map([first, joined].map((token) => [token.label, soPin(token)])),
    );
    store = new HsmClusterKeyStore(cluster);
    const keyId = randomUuid();
    await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT');
    keyLabel = keyVersionLabel(keyId, 1);
  });
  after(async () => {
    await cluster?.close();
  });

  for (const [role, token] of [['the first member', first], ['a joined member', joined]] as const) {
    test(`${role}: the reviewer's attack fails (CKR_TEMPLATE_INCONSISTENT); no key value comes out`, () => {
      const result = asPinHolder(hsm.conf, token.label, token.pin, { kind: 'wrap-and-unwrap', keyLabel, template: READABLE });
      assert.equal(result.steps.wrap, 'CKR_OK', 'wrapping under the cluster key is still allowed');
      assert.equal(result.steps.unwrap, 'CKR_TEMPLATE_INCONSISTENT');
      assert.equal(result.value, undefined);
    });

    test(`${role}: unwrapping as the unwrap template demands gives only another sensitive copy`, () => {
      const result = asPinHolder(hsm.conf, token.label, token.pin, { kind: 'wrap-and-unwrap', keyLabel, template: unwrappedKeyVersionAttributes() });
      assert.equal(result.steps.unwrap, 'CKR_OK');
      assert.equal(result.steps['read-value'], 'CKR_ATTRIBUTE_SENSITIVE');
      assert.equal(result.value, undefined);
    });

    test(`${role}: nobody can turn on CKA_DECRYPT or CKA_ENCRYPT of the cluster key, PIN or not`, () => {
      for (const pin of [token.pin, undefined]) {
        for (const type of [P.CKA_DECRYPT, P.CKA_ENCRYPT]) {
          const result = asPinHolder(hsm.conf, token.label, pin, { kind: 'set-attribute', ...CLUSTER_KEY, type, value: true });
          assert.equal(result.steps.set, 'CKR_ACTION_PROHIBITED', `${pin ? 'user' : 'public'} session, 0x${type.toString(16)}`);
        }
      }
    });

    test(`${role}: the cluster key cannot wrap itself (its wrap template: keys that wrap nothing)`, () => {
      const result = asPinHolder(hsm.conf, token.label, token.pin, { kind: 'wrap-cluster-key-under-itself' });
      assert.equal(result.steps.wrap, 'CKR_KEY_NOT_WRAPPABLE');
    });
  }

  test('the SO PIN, unlike the user PIN, can export the cluster key, and with it every wrapped key (why SO PINs are never stored)', async () => {
    const known = randomBytes(32);
    const result = asPinHolder(hsm.conf, first.label, undefined, { kind: 'so-wrap-cluster-key', soPin: first.soPin, keyHex: known.toString('hex') });
    assert.equal(result.steps.wrap, 'CKR_OK');
    const clusterKey = unwrapRfc3394(known, Buffer.from(result.value!, 'hex'));
    // The cluster key in the clear opens what the cluster's wrap gives out (what a backup holds).
    const objectId = newObjectId(randomUuid(), 1);
    const source = cluster.members[0]!;
    await source.generateAesKey(objectId, 'strongroom:so-probe');
    try {
      const kmsKey = unwrapRfc3394(clusterKey, await source.wrap(objectId));
      const iv = randomBytes(12);
      const aad = Buffer.from('so-probe');
      const sealed = await source.encrypt(objectId, iv, aad, Buffer.from('readable by the SO'));
      const decipher = createDecipheriv('aes-256-gcm', kmsKey, iv).setAAD(aad).setAuthTag(sealed.subarray(sealed.length - 16));
      assert.equal(Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]).toString(), 'readable by the SO');
    } finally {
      await source.destroy(objectId);
    }
  });

  test('a replicated key is sensitive, wrap-with-trusted and unmodifiable in the member it was unwrapped into', () => {
    for (const token of [first, joined]) {
      const { attributes } = asPinHolder(hsm.conf, token.label, token.pin, { kind: 'read-attributes', keyLabel });
      assert.deepEqual(attributes, { CKA_SENSITIVE: true, CKA_EXTRACTABLE: true, CKA_WRAP_WITH_TRUSTED: true, CKA_MODIFIABLE: false, CKA_DECRYPT: true }, token.label);
      // opensc's pkcs11-tool as the independent witness.
      const listed = listObjects(token).find((object) => object.label === keyLabel);
      assert.ok(listed?.access.includes('sensitive'), `${token.label}: ${listed?.access}`);
    }
  });

  test('health reports the cluster key as protected in every member', async () => {
    for (const slot of cluster.members) assert.equal((await slot.health()).clusterKeyProtected, true, slot.name);
  });

  test('joining: the transport key cannot be turned to decrypt, and unwraps a cluster key for the SO only', async () => {
    const source = cluster.members[0]!;
    const joining = member(third);
    try {
      const transport = await joining.beginJoin(soPin(third));
      const transportKey = { objectId: 'strongroom/ceremony-transport-key', objectClass: P.CKO_PRIVATE_KEY };
      for (const pin of [third.pin, undefined]) {
        const result = asPinHolder(hsm.conf, third.label, pin, { kind: 'set-attribute', ...transportKey, type: P.CKA_DECRYPT, value: true });
        assert.equal(result.steps.set, 'CKR_ACTION_PROHIBITED', pin ? 'user session' : 'public session');
      }
      const wrapped = await source.wrapClusterKeyFor(soPin(first), transport);
      const readable = asPinHolder(hsm.conf, third.label, third.pin, { kind: 'unwrap-with-transport-key', wrappedHex: wrapped.toString('hex'), template: READABLE });
      assert.equal(readable.steps.unwrap, 'CKR_TEMPLATE_INCONSISTENT');
      // Asking for exactly a cluster key means asking for CKA_TRUSTED, which only the SO may set.
      const asClusterKey = wrappingKeyTemplate({ label: 'x', objectId: Buffer.from('x'), trusted: true, exportableToTrustedWrappingKey: true }).filter(
        (attribute) => typeof attribute.value === 'boolean' || attribute.type === P.CKA_CLASS || attribute.type === P.CKA_KEY_TYPE,
      );
      const trusted = asPinHolder(hsm.conf, third.label, third.pin, { kind: 'unwrap-with-transport-key', wrappedHex: wrapped.toString('hex'), template: asClusterKey });
      assert.equal(trusted.steps.unwrap, 'CKR_ATTRIBUTE_READ_ONLY');
      assert.equal(trusted.value, undefined);
      // The SO's own step still works, and the new member shares the key.
      await joining.completeJoin(soPin(third), clusterId, wrapped);
      await joining.connect();
      await proveSharedClusterKey(source, joining);
      assert.equal((await joining.health()).clusterKeyProtected, true);
    } finally {
      await joining.close();
    }
  });
});

describe('a cluster wrapping key made before the templates (the old ceremony)', () => {
  const clusterId = `legacy-${randomUuid()}`;
  const keyLabel = keyVersionLabel(randomUuid(), 1);

  before(() => {
    // What the old builder made: the same attributes without CKA_WRAP_TEMPLATE/CKA_UNWRAP_TEMPLATE;
    // in a joined member (old forUnwrap), without CKA_MODIFIABLE = false too.
    const old = wrappingKeyTemplate({ label: `strongroom:cluster-wrapping-key:${clusterId}`, objectId: CLUSTER_KEY_ID, trusted: true, exportableToTrustedWrappingKey: true })
      .filter((attribute) => !Array.isArray(attribute.value));
    const module = Pkcs11Module.open(SOFTHSM_MODULE);
    try {
      const api = module.api;
      for (const [token, template] of [
        [legacy, old],
        [legacyJoined, old.filter((attribute) => attribute.type !== P.CKA_MODIFIABLE)],
      ] as const) {
        const session = api.C_OpenSession(module.findSlot({ tokenLabel: token.label }), P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
        api.C_Login(session, P.CKU_SO, token.soPin);
        api.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [...template]);
        api.C_Logout(session);
        api.C_Login(session, P.CKU_USER, token.pin);
        api.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, clusterKeyVersionTemplate(keyLabel, newObjectId(randomUuid(), 1)));
        api.C_Logout(session);
        api.C_CloseSession(session);
      }
    } finally {
      module.close();
    }
  });

  test('an old joined member\'s cluster key can be turned to decrypt by a session without any PIN', () => {
    const result = asPinHolder(hsm.conf, legacyJoined.label, undefined, { kind: 'set-attribute', ...CLUSTER_KEY, type: P.CKA_DECRYPT, value: true });
    assert.equal(result.steps.set, 'CKR_OK');
  });

  test('the reviewer\'s attack reads the key value (why the templates matter)', () => {
    const result = asPinHolder(hsm.conf, legacy.label, legacy.pin, { kind: 'wrap-and-unwrap', keyLabel, template: READABLE });
    assert.equal(result.steps.unwrap, 'CKR_OK');
    assert.equal(Buffer.from(result.value ?? '', 'hex').length, 32);
  });

  test('`hsm cluster status` warns, naming the member, the risk and the remedy; a protected cluster gets no warning', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'strongroom-key-protection-'));
    const catalog = await HsmCatalog.open(dataDir);
    try {
      const register = async (id: string, token: TestToken) => {
        const record = memberRecord(id, { memberName: token.label, module: SOFTHSM_MODULE, tokenLabel: token.label }, SecretBytes.from(Buffer.from(token.pin)), catalog.sealer);
        await catalog.store.createCluster({ clusterId: id, createdAt: new Date(), minReplicas: 1, requestTimeoutMs: 5_000 }, record);
      };
      await register(clusterId, legacy);
      const status = (await clusterStatus(catalog, clusterId)) as { Members: Array<Record<string, unknown>>; Warnings?: string[] };
      assert.equal(status.Members[0]!.State, 'ACTIVE');
      assert.equal(status.Members[0]!.ClusterKeyProtected, false);
      assert.equal(status.Warnings?.length, 1);
      assert.match(status.Warnings![0]!, /UNPROTECTED CLUSTER KEY on k-legacy:/);
      assert.match(status.Warnings![0]!, /crypto-user PIN .* can export every KMS key/);
      assert.match(status.Warnings![0]!, /Remedy: create a new cluster/);

      await register(protectedClusterId, first);
      const fine = (await clusterStatus(catalog, protectedClusterId)) as { Members: Array<Record<string, unknown>>; Warnings?: string[] };
      assert.equal(fine.Members[0]!.ClusterKeyProtected, true);
      assert.equal(fine.Warnings, undefined);
    } finally {
      await catalog.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('health says the cluster key is not protected', async () => {
    const legacyMember = member(legacy);
    try {
      const health = await legacyMember.health();
      assert.equal(health.clusterId, clusterId);
      assert.equal(health.clusterKeyProtected, false);
    } finally {
      await legacyMember.close();
    }
  });
});

describe('an hsm-agent member receives the same protected cluster key', () => {
  const clusterId = `agent-protected-${randomUuid()}`;
  let agent: AgentProcess;
  let cluster: HsmCluster;
  let keyLabel: string;

  before(async () => {
    agent = await AgentProcess.start(remote, certs);
    const remoteMember = new RemoteHsmMember({
      name: 'remote',
      host: '127.0.0.1',
      port: agent.port,
      ca: certs.read(certs.ca),
      cert: certs.read(certs.clientCert),
      key: certs.read(certs.clientKey),
    });
    cluster = await HsmCluster.initialise(
      { clusterId, members: [member(agentLocal), remoteMember], requestTimeoutMs: 5_000, probeIntervalMs: 60_000 },
      new Map([
        [agentLocal.label, soPin(agentLocal)],
        ['remote', SecretBytes.from(Buffer.from(remote.token.soPin))],
      ]),
    );
    const keyId = randomUuid();
    await new HsmClusterKeyStore(cluster).createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT');
    keyLabel = keyVersionLabel(keyId, 1);
  });
  after(async () => {
    await cluster?.close();
    await agent?.stop('SIGKILL');
    remote.cleanup();
    certs.cleanup();
  });

  test("on the agent's token the reviewer's attack fails and the cluster key cannot be turned to decrypt", async () => {
    const attack = asPinHolder(remote.conf, remote.token.label, remote.token.pin, { kind: 'wrap-and-unwrap', keyLabel, template: READABLE });
    assert.equal(attack.steps.wrap, 'CKR_OK');
    assert.equal(attack.steps.unwrap, 'CKR_TEMPLATE_INCONSISTENT');
    assert.equal(attack.value, undefined);
    const decrypt = asPinHolder(remote.conf, remote.token.label, undefined, { kind: 'set-attribute', ...CLUSTER_KEY, type: P.CKA_DECRYPT, value: true });
    assert.equal(decrypt.steps.set, 'CKR_ACTION_PROHIBITED');
    const { attributes } = asPinHolder(remote.conf, remote.token.label, remote.token.pin, { kind: 'read-attributes', keyLabel });
    assert.equal(attributes?.CKA_SENSITIVE, true);
    assert.equal(attributes?.CKA_MODIFIABLE, false);
  });

  test('the agent reports its cluster key as protected over the wire', async () => {
    const remoteMember = cluster.members[1]!;
    assert.ok(remoteMember instanceof RemoteHsmMember);
    assert.deepEqual(await remoteMember.health(), { ok: true, clusterId, clusterKeyProtected: true });
  });
});
