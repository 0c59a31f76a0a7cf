/**
 * One object per CKA_ID in a member, whoever copies the key into it. Processes that share no lock
 * (two nodes, the hsm command beside a server, two nodes through one hsm-agent) may re-synchronise
 * one member at the same moment: each checks the token first, finds nothing, and unwraps. Here the
 * two processes are two LocalHsmMember instances on one SoftHSMv2 token, whose checks run before
 * either unwrap has finished. Witness: opensc's pkcs11-tool on the token.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { after, before, describe, test } from 'node:test';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { Pkcs11Error } from '../../src/keystores/pkcs11/errors.ts';
import { HsmCluster } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { CLUSTER_KEY_ID, LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import { labelOf } from '../../src/keystores/pkcs11/cluster/slot.ts';
import { Pkcs11Token } from '../../src/keystores/pkcs11/module.ts';
import { findSecretKeys } from '../../src/keystores/pkcs11/objects.ts';
import { clusterKeyVersionTemplate, forUnwrap } from '../../src/keystores/pkcs11/templates.ts';
import { SOFTHSM_MODULE, SoftHsm, listObjects, type TestToken } from './softhsm.ts';

const hsm = SoftHsm.get();
const [source, target] = ['copies-source', 'copies-target'].map((label) => hsm.createToken(label)) as [TestToken, TestToken];

const member = (token: TestToken, name = token.label) =>
  new LocalHsmMember({ name, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(token.pin), sessions: 4 });
/** How many objects pkcs11-tool lists on the token under this CKA_ID. */
const copiesOn = (token: TestToken, objectId: Buffer): number => listObjects(token).filter((object) => object.id === objectId.toString('hex')).length;

describe('copies of one object made in a member at the same moment', () => {
  const clusterId = `cluster-${randomUuid()}`;
  let cluster: HsmCluster;

  before(async () => {
    cluster = await HsmCluster.initialise(
      { clusterId, members: [member(source), member(target)], probeIntervalMs: 60_000 },
      new Map([source, target].map((token) => [token.label, SecretBytes.from(Buffer.from(token.soPin))])),
    );
  });
  after(async () => {
    await cluster.close();
  });

  /** AES-GCM through one member, opened in another: the same key. */
  async function assertServes(encryptIn: LocalHsmMember, decryptIn: LocalHsmMember, objectId: Buffer): Promise<void> {
    const [iv, aad, plaintext] = [randomBytes(12), Buffer.from('context'), randomBytes(40)];
    assert.deepEqual(await decryptIn.decrypt(objectId, iv, aad, await encryptIn.encrypt(objectId, iv, aad, plaintext)), plaintext);
  }

  test('two unwraps of one owed object racing into a member leave one object, and the key serves from it', async () => {
    const racers = [member(target, 'racer-1'), member(target, 'racer-2')];
    await Promise.all(racers.map((racer) => racer.connect()));
    const [sourceMember, targetMember] = cluster.members as [LocalHsmMember, LocalHsmMember];
    try {
      for (let round = 0; round < 6; round++) {
        const objectId = await cluster.createKey(randomUuid(), 1);
        const wrapped = await sourceMember.wrap(objectId);
        assert.equal(await targetMember.destroy(objectId), true); // the target missed it, as a member that was down
        const outcomes = await Promise.allSettled(racers.map((racer) => racer.unwrap(objectId, labelOf(objectId), wrapped)));
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') assert.ok(outcome.reason instanceof Pkcs11Error && outcome.reason.code === 'OBJECT_EXISTS', String(outcome.reason));
        }
        assert.ok(outcomes.some((outcome) => outcome.status === 'fulfilled'), 'one of them made the copy');
        assert.equal(copiesOn(target, objectId), 1, `round ${round}: one object with the CKA_ID`);
        await assertServes(racers[0], sourceMember, objectId);
        await assertServes(sourceMember, racers[1], objectId);
        await assertServes(targetMember, racers[0], objectId);
      }
    } finally {
      await Promise.all(racers.map((racer) => racer.close()));
    }
  });

  test('a member holding two objects under one CKA_ID is taken out by KEY_AMBIGUOUS and left with one at its re-synchronisation', async () => {
    const objectId = await cluster.createKey(randomUuid(), 1);
    const [iv, aad, plaintext] = [randomBytes(12), Buffer.from('before'), randomBytes(16)];
    const sealed = await cluster.encrypt(objectId, iv, aad, plaintext);
    // A second copy, unwrapped as an unconverged race once left it (no check before or after).
    const wrapped = await cluster.members[0]!.wrap(objectId);
    const raw = await Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: target.label, pin: SecretBytes.from(Buffer.from(target.pin)), sessions: 1 });
    try {
      await raw.withSession(async (session) => {
        const [clusterKey] = findSecretKeys(raw.api, session, CLUSTER_KEY_ID, 1);
        const template = forUnwrap(clusterKeyVersionTemplate(labelOf(objectId), objectId));
        raw.api.C_UnwrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP }, clusterKey!, wrapped, template);
      });
    } finally {
      await raw.close();
    }
    assert.equal(copiesOn(target, objectId), 2);

    // Another node (members with no object handles cached yet): round robin, so one of two calls
    // reaches the target, which cannot tell its copies apart.
    const node = await HsmCluster.connect({ clusterId, members: [member(source), member(target)], probeIntervalMs: 60_000 });
    try {
      for (let call = 0; call < 2; call++) assert.deepEqual(await node.decrypt(objectId, iv, aad, sealed), plaintext);
      assert.deepEqual(
        node.status().members.find((entry) => entry.name === target.label),
        { name: target.label, state: 'DOWN', errorCode: 'KEY_AMBIGUOUS' },
      );

      await node.probeNow();
      assert.ok(node.status().members.every((entry) => entry.state === 'ACTIVE'), JSON.stringify(node.status()));
      assert.equal(copiesOn(target, objectId), 1, 'one object with the CKA_ID');
      assert.equal(copiesOn(source, objectId), 1);
      for (let call = 0; call < 4; call++) {
        assert.deepEqual(await node.decrypt(objectId, iv, aad, sealed), plaintext);
        const fresh = randomBytes(12);
        assert.deepEqual(await node.decrypt(objectId, fresh, aad, await node.encrypt(objectId, fresh, aad, plaintext)), plaintext);
      }
      await assertServes(node.members[1] as LocalHsmMember, node.members[0] as LocalHsmMember, objectId);
      assert.ok(node.status().members.every((entry) => entry.state === 'ACTIVE'), 'neither member was taken out again');
    } finally {
      await node.close();
    }
  });
});
