/**
 * Seams between the cluster's parts found by review after they were merged: a health check
 * (/readyz, strongroom_hsm_member_up) under load must not take a busy member out (load is not
 * failure, dispatch.ts), and the two-HSM rule for new KMS keys (stored.ts kmsMinReplicas) must
 * follow membership changes made while connected.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { HsmCluster } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import { connectStoredCluster, type HsmClusterCatalog } from '../../src/keystores/pkcs11/cluster/stored.ts';
import type { HsmMemberRecord } from '../../src/storage/types.ts';
import { SOFTHSM_MODULE, SoftHsm } from './softhsm.ts';

const hsm = SoftHsm.get();
const t1 = hsm.createToken('seam-load');
const ta = hsm.createToken('seam-a');
const tb = hsm.createToken('seam-b');
const so = (s: string) => SecretBytes.from(Buffer.from(s));

test('a health check (readyz, a metrics scrape) while the member is busy leaves it in service and its queued requests succeed', async () => {
  const member = new LocalHsmMember({ name: 'one', modulePath: SOFTHSM_MODULE, tokenLabel: t1.label, pin: Buffer.from(t1.pin), sessions: 1 });
  const cluster = await HsmCluster.initialise(
    { clusterId: `rv-${randomUuid()}`, members: [member], requestTimeoutMs: 200, queueTimeoutMs: 30_000, probeIntervalMs: 60_000 },
    new Map([['one', so(t1.soPin)]]),
  );
  try {
    const objectId = await cluster.createKey(randomUuid(), 1);
    const pt = Buffer.alloc(256 * 1024, 1);
    const run = async (withHealth: boolean) => {
      const calls = Array.from({ length: 2000 }, (_, i) => {
        const iv = Buffer.alloc(12); iv.writeUInt32BE(i, 0);
        return cluster.encrypt(objectId, iv, Buffer.alloc(0), pt).then(() => 'ok', (e) => String(e?.code ?? e));
      });
      let status;
      if (withHealth) { await new Promise((r) => setTimeout(r, 20)); status = await cluster.checkHealth(); }
      const results = await Promise.all(calls);
      const failed = results.filter((r) => r !== 'ok');
      return { failed: failed.length, codes: [...new Set(failed)], status };
    };
    const baseline = await run(false);
    const loaded = await run(true);
    assert.equal(baseline.failed, 0);
    assert.equal(loaded.status!.members[0]!.state, 'ACTIVE', 'a busy member stays in service');
    assert.equal(loaded.failed, 0, JSON.stringify(loaded.codes));
  } finally {
    await cluster.close();
  }
});

test('the two-HSM rule follows membership: after remove-member leaves one member, CreateKey works with that one', async () => {
  const clusterId = `rv-${randomUuid()}`;
  const init = await HsmCluster.initialise(
    { clusterId, members: [
      new LocalHsmMember({ name: 'a', modulePath: SOFTHSM_MODULE, tokenLabel: ta.label, pin: Buffer.from(ta.pin) }),
      new LocalHsmMember({ name: 'b', modulePath: SOFTHSM_MODULE, tokenLabel: tb.label, pin: Buffer.from(tb.pin) }),
    ], probeIntervalMs: 60_000 },
    new Map([['a', so(ta.soPin)], ['b', so(tb.soPin)]]),
  );
  await init.close();
  const rec = (name: string, label: string): HsmMemberRecord => ({ clusterId, name, config: { kind: 'pkcs11', modulePath: SOFTHSM_MODULE, tokenLabel: label }, addedAt: new Date() });
  let members = [rec('a', ta.label), rec('b', tb.label)];
  const catalog: HsmClusterCatalog = {
    getCluster: async () => ({ clusterId, createdAt: new Date(), minReplicas: 1, requestTimeoutMs: 2000 }),
    listMembers: async () => members,
    owedOperations: async () => [],
    oweOperation: async () => {},
    settleOperation: async () => {},
    listBackups: async () => [],
  };
  const pins = new Map([['a', so(ta.pin)], ['b', so(tb.pin)]]);
  const cluster = await connectStoredCluster(catalog, clusterId, (m) => pins.get(m.name), { kmsKeyCreation: true, probeIntervalMs: 60_000 });
  try {
    await cluster.createKey(randomUuid(), 1); // 2 members: fine
    members = [rec('a', ta.label)]; // hsm cluster remove-member b
    await cluster.probeNow();
    assert.deepEqual(cluster.status().members.map((m) => m.name), ['a']);
    let error: unknown;
    try { await cluster.createKey(randomUuid(), 1); } catch (e) { error = e; }
    assert.equal(error, undefined, 'one-member cluster should create keys (min(2, members) = 1)');
  } finally {
    await cluster.close();
  }
});
