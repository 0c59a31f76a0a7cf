/**
 * Load is not failure: requests that wait for a member's capacity (a session, a place among an
 * agent's requests in flight) do not take the member out, and a caller never waits past the
 * cluster's overall bound. In-process with a member whose one session is held per call, and over
 * two real hsm-agent processes with a burst far above their sessions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { HsmCluster, type HsmAuditEvent } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { HsmClusterKeyStore } from '../../src/keystores/pkcs11/cluster/cluster-key-store.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import type { CallProgress } from '../../src/keystores/pkcs11/cluster/member.ts';
import { RemoteHsmMember } from '../../src/keystores/pkcs11/cluster/remote-member.ts';
import type { KeyVersionHandle } from '../../src/keystores/types.ts';
import { AgentProcess } from './agent-process.ts';
import { FaultyMember } from './faulty-member.ts';
import { SOFTHSM_MODULE, SoftHsm, createStandaloneToken } from './softhsm.ts';
import { makeTestCerts } from './test-certs.ts';

/** A real member behind one "session" that each encrypt holds for holdMs, reporting its progress as a real member does. */
class OneSessionMember extends FaultyMember {
  holdMs = 0;
  #queue: Promise<void> = Promise.resolve();

  override async encrypt(objectId: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer, progress?: CallProgress): Promise<Buffer> {
    if (this.holdMs === 0) return super.encrypt(objectId, iv, aad, plaintext);
    progress?.queued();
    const previous = this.#queue;
    let release!: () => void;
    this.#queue = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      if (progress && !progress.started()) throw new Error('given up while waiting');
      await delay(this.holdMs);
      return await super.encrypt(objectId, iv, aad, plaintext);
    } finally {
      release();
    }
  }
}

const soPinOf = (soPin: string) => SecretBytes.from(Buffer.from(soPin));

describe('an in-process member whose session is busy', () => {
  const token = SoftHsm.get().createToken('load-one');
  const events: HsmAuditEvent[] = [];
  let member: OneSessionMember;
  let cluster: HsmCluster;
  let store: HsmClusterKeyStore;
  let handle: KeyVersionHandle;

  before(async () => {
    member = new OneSessionMember(new LocalHsmMember({ name: 'one', modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(token.pin), sessions: 2 }));
    cluster = await HsmCluster.initialise(
      { clusterId: `load-${randomUuid()}`, members: [member], requestTimeoutMs: 1_000, queueTimeoutMs: 4_000, probeIntervalMs: 60_000, audit: (event) => events.push(event) },
      new Map([['one', soPinOf(token.soPin)]]),
    );
    store = new HsmClusterKeyStore(cluster);
    const keyId = randomUuid();
    handle = { keyId, version: 1, sealedMaterial: await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
  });
  after(async () => {
    await cluster?.close();
  });

  test('requests queued longer than the request timeout all succeed, and the member stays in', async () => {
    member.holdMs = 100;
    // 20 × 100 ms in one session: the last waits ~1.9 s, past the 1 s request timeout.
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => store.encrypt(handle, Buffer.from('queued'), undefined)));
    member.holdMs = 0;
    assert.deepEqual(results.filter((result) => result.status === 'rejected'), []);
    assert.equal(cluster.status().members[0]!.state, 'ACTIVE');
    assert.equal(events.filter((event) => event.outcome === 'error').length, 0);
  });

  test('past the overall bound a waiting request fails as busy (POOL_TIMEOUT), in bounded time, and the member stays in', async () => {
    // Each call holds the session 500 ms, well inside the 1 s request timeout even on a loaded machine.
    member.holdMs = 500;
    const started = Date.now();
    // 12 × 500 ms in one session against a 4 s overall bound: those not started by then give up.
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => store.encrypt(handle, Buffer.from('too many'), undefined)));
    const elapsed = Date.now() - started;
    member.holdMs = 0;
    const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    assert.ok(rejected.length >= 1 && rejected.length < 12, `some gave up: ${rejected.length}`);
    for (const { reason } of rejected) assert.equal((reason as { code?: string }).code, 'POOL_TIMEOUT');
    assert.ok(elapsed < 15_000, `bounded: ${elapsed} ms`);
    assert.equal(cluster.status().members[0]!.state, 'ACTIVE');
    // And it serves at once afterwards.
    assert.equal((await store.encrypt(handle, Buffer.from('after'), undefined)).length > 0, true);
  });
});

describe('a burst far above two hsm-agents\' sessions', () => {
  const names = ['load-a', 'load-b'];
  const tokens = names.map((name) => createStandaloneToken(name));
  const certs = makeTestCerts();
  const agents: AgentProcess[] = [];
  let cluster: HsmCluster;
  let store: HsmClusterKeyStore;

  before(async () => {
    agents.push(...(await Promise.all(tokens.map((token) => AgentProcess.start(token, certs)))));
    cluster = await HsmCluster.initialise(
      {
        clusterId: `load-${randomUuid()}`,
        probeIntervalMs: 60_000,
        members: agents.map(
          (agent, index) =>
            new RemoteHsmMember({ name: names[index]!, host: '127.0.0.1', port: agent.port, ca: certs.read(certs.ca), cert: certs.read(certs.clientCert), key: certs.read(certs.clientKey) }),
        ),
      },
      new Map(tokens.map((token, index) => [names[index]!, soPinOf(token.token.soPin)])),
    );
    store = new HsmClusterKeyStore(cluster);
  });
  after(async () => {
    await cluster?.close();
    await Promise.all(agents.map((agent) => agent.stop('SIGKILL')));
    tokens.forEach((token) => token.cleanup());
    certs.cleanup();
  });

  test('700 concurrent encrypts, then 700 decrypts: none fails and no member is taken out', async () => {
    const keyId = randomUuid();
    const handle = { keyId, version: 1, sealedMaterial: await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
    const plaintexts = Array.from({ length: 700 }, (_, index) => Buffer.from(`burst ${index}`));
    const blobs = await Promise.allSettled(plaintexts.map((plaintext) => store.encrypt(handle, plaintext, undefined)));
    assert.deepEqual(blobs.filter((result) => result.status === 'rejected'), []);
    const decrypted = await Promise.allSettled(blobs.map((blob) => store.decrypt(handle, (blob as PromiseFulfilledResult<Buffer>).value, undefined)));
    assert.deepEqual(decrypted.filter((result) => result.status === 'rejected'), []);
    decrypted.forEach((result, index) => assert.deepEqual((result as PromiseFulfilledResult<Buffer>).value, plaintexts[index]));
    assert.deepEqual(cluster.status().members.map((member) => member.state), ['ACTIVE', 'ACTIVE']);
    assert.equal(cluster.status().connectionState, 'CONNECTED');
  });
});
