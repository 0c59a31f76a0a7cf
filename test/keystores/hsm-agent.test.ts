/**
 * Remote members: `strongroom hsm-agent` child processes on their own SoftHSMv2 tokens, reached
 * over mutual TLS. The failure test kills an agent with SIGKILL under load. The reconnect tests
 * serve a recording member in process (HsmAgentServer), to see what each connection carries.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { parseHsmBlob } from '../../src/keystores/pkcs11/ciphertext.ts';
import { HsmCluster } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { HsmClusterKeyStore } from '../../src/keystores/pkcs11/cluster/cluster-key-store.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import { HsmAgentServer } from '../../src/keystores/pkcs11/cluster/agent-server.ts';
import { RemoteHsmMember } from '../../src/keystores/pkcs11/cluster/remote-member.ts';
import { OP, encodeFrame } from '../../src/keystores/pkcs11/cluster/wire.ts';
import { Pkcs11Error } from '../../src/keystores/pkcs11/errors.ts';
import type { HsmMember } from '../../src/keystores/pkcs11/cluster/member.ts';
import { keyVersionLabel } from '../../src/keystores/pkcs11/templates.ts';
import type { KeyVersionHandle } from '../../src/keystores/types.ts';
import { AgentProcess } from './agent-process.ts';
import { SOFTHSM_MODULE, SoftHsm, createStandaloneToken, listObjects } from './softhsm.ts';
import { makeTestCerts } from './test-certs.ts';

const localToken = SoftHsm.get().createToken('agent-test-local');
const remote = createStandaloneToken('agent-test-remote');
const certs = makeTestCerts();
const remoteLabels = () => listObjects(remote.token, remote.conf).map((object) => object.label);

const remoteMember = (port: number, cert = certs.clientCert, key = certs.clientKey) =>
  new RemoteHsmMember({ name: 'remote', host: '127.0.0.1', port, ca: certs.read(certs.ca), cert: certs.read(cert), key: certs.read(key) });

after(() => certs.cleanup());

describe('a cluster of an in-process member and an hsm-agent member', () => {
  let agent: AgentProcess;
  let cluster: HsmCluster;
  let store: HsmClusterKeyStore;
  let member: RemoteHsmMember;
  const clusterId = `agent-cluster-${randomUuid()}`;
  const newVersion = async (): Promise<KeyVersionHandle> => {
    const keyId = randomUuid();
    return { keyId, version: 1, sealedMaterial: await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
  };

  before(async () => {
    agent = await AgentProcess.start(remote, certs);
    member = remoteMember(agent.port);
    cluster = await HsmCluster.initialise(
      {
        clusterId,
        members: [
          new LocalHsmMember({ name: 'local', modulePath: SOFTHSM_MODULE, tokenLabel: localToken.label, pin: Buffer.from(localToken.pin), sessions: 4 }),
          member,
        ],
        requestTimeoutMs: 1_000,
        probeIntervalMs: 100,
      },
      new Map([
        ['local', SecretBytes.from(Buffer.from(localToken.soPin))],
        ['remote', SecretBytes.from(Buffer.from(remote.token.soPin))],
      ]),
    );
    store = new HsmClusterKeyStore(cluster);
  });
  after(async () => {
    await cluster?.close();
    await agent?.stop('SIGKILL');
    remote.cleanup();
  });

  test('the agent member received the cluster key by the ceremony and holds every replicated key', async () => {
    assert.ok(remoteLabels().includes(`strongroom:cluster-wrapping-key:${clusterId}`));
    const handle = await newVersion();
    assert.ok(remoteLabels().includes(keyVersionLabel(handle.keyId, 1)));
    const blob = await store.encrypt(handle, Buffer.from('over mutual TLS'), { tenant: 'x' });
    const { iv, aad, sealed } = parseHsmBlob(blob, { tenant: 'x' });
    assert.deepEqual(await member.decrypt(handle.sealedMaterial.subarray(6), iv, aad, sealed), Buffer.from('over mutual TLS'));
    await assert.rejects(member.decrypt(handle.sealedMaterial.subarray(6), iv, Buffer.from('other aad'), sealed), /decryption failed/);
    // Random bytes from the HSMs' generators, through the agent and through the cluster.
    const [first, second] = [await member.generateRandom(32), await cluster.generateRandom(1024)];
    assert.equal(first.length, 32);
    assert.equal(second.length, 1024);
    assert.notDeepEqual(first, second.subarray(0, 32));
    await assert.rejects(member.generateRandom(1025), /random length/);
  });

  test('a client whose certificate is not from the CA, or that has none, is refused', async () => {
    const rogue = remoteMember(agent.port, certs.rogueCert, certs.rogueKey);
    assert.deepEqual(await rogue.health(), { ok: false, code: 'CONNECTION_FAILED' });
    await rogue.close();
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: agent.port, ca: certs.read(certs.ca), minVersion: 'TLSv1.3' });
      // A well-formed health request: an agent that skipped the certificate check would answer it.
      socket.on('secureConnect', () => socket.write(encodeFrame(1, OP.health, [])));
      socket.on('data', () => resolve('answered'));
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      socket.on('close', () => resolve('closed'));
    });
    assert.match(outcome, /closed|ERR_SSL|ECONNRESET/);
    // The same request with the CA's client certificate is answered.
    const answered = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: agent.port, ca: certs.read(certs.ca), cert: certs.read(certs.clientCert), key: certs.read(certs.clientKey), minVersion: 'TLSv1.3' });
      socket.on('secureConnect', () => socket.write(encodeFrame(1, OP.health, [])));
      socket.on('data', () => {
        socket.destroy();
        resolve('answered');
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    assert.equal(answered, 'answered');
    // An authenticated client announcing an oversized frame is disconnected, not buffered.
    const oversized = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: agent.port, ca: certs.read(certs.ca), cert: certs.read(certs.clientCert), key: certs.read(certs.clientKey), minVersion: 'TLSv1.3' });
      socket.on('secureConnect', () => socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff])));
      socket.on('data', () => resolve('answered'));
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      socket.on('close', () => resolve('closed'));
    });
    assert.equal(oversized, 'closed');
  });

  test('SIGKILL under concurrent load: no request fails; keys made meanwhile reach the agent before it serves again', async () => {
    const handles = await Promise.all([newVersion(), newVersion()]);
    let stop = false;
    let completed = 0;
    const failures: unknown[] = [];
    const worker = async (index: number): Promise<void> => {
      for (let round = 0; !stop; round++) {
        const handle = handles[(index + round) % handles.length]!;
        const plaintext = Buffer.from(`worker ${index} round ${round}`);
        try {
          const blob = await store.encrypt(handle, plaintext, { worker: String(index) });
          assert.deepEqual(await store.decrypt(handle, blob, { worker: String(index) }), plaintext);
          completed++;
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, index) => worker(index)));
    await new Promise((resolve) => setTimeout(resolve, 400));
    const beforeKill = completed;
    await agent.stop('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(cluster.status().members[1]!.state, 'DOWN');
    // Keys created while the agent is down: the in-process member alone holds them, the agent owes them.
    const madeWhileDown = await Promise.all([newVersion(), newVersion()]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    stop = true;
    await load;
    assert.deepEqual(failures, [], 'no client request failed');
    assert.ok(beforeKill > 0 && completed > beforeKill, `requests kept completing (${beforeKill} before the kill, ${completed} in all)`);
    for (const handle of madeWhileDown) assert.ok(!remoteLabels().includes(keyVersionLabel(handle.keyId, 1)));

    // Restart on the same port: the probe reconnects, re-synchronises, and only then returns it to service.
    agent = await AgentProcess.start(remote, certs, agent.port);
    const deadline = Date.now() + 20_000;
    while (cluster.status().members[1]!.state !== 'ACTIVE' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(cluster.status().members[1]!.state, 'ACTIVE');
    const labels = remoteLabels();
    for (const handle of madeWhileDown) assert.ok(labels.includes(keyVersionLabel(handle.keyId, 1)), 'resynchronised: pkcs11-tool sees the key');
    const blob = await store.encrypt(madeWhileDown[0]!, Buffer.from('after resync'), undefined);
    const { iv, aad, sealed } = parseHsmBlob(blob, undefined);
    assert.deepEqual(await member.decrypt(madeWhileDown[0]!.sealedMaterial.subarray(6), iv, aad, sealed), Buffer.from('after resync'));
  });
});

/** An agent's member that records the calls it receives, in order; its PIN can be changed. */
class RecordingMember implements HsmMember {
  readonly name = 'recording';
  readonly sessions = 2;
  readonly calls: string[] = [];
  pin = 'recorded-pin';

  async connect(): Promise<void> {
    this.calls.push('connect');
  }
  async verifyPin(pin: SecretBytes): Promise<boolean> {
    this.calls.push('verifyPin');
    return Buffer.from(pin.exposeSecretBytes()).equals(Buffer.from(this.pin));
  }
  async health() {
    this.calls.push('health');
    return { ok: true };
  }
  async generateRandom(length: number): Promise<Buffer> {
    this.calls.push('random');
    return Buffer.alloc(length, 7);
  }
  async close(): Promise<void> {}
  generateAesKey = unsupported;
  wrap = unsupported;
  unwrap = unsupported;
  encrypt = unsupported;
  decrypt = unsupported;
  destroy = unsupported;
  listObjects = unsupported;
  createClusterKey = unsupported;
  beginJoin = unsupported;
  wrapClusterKeyFor = unsupported;
  completeJoin = unsupported;
}

async function unsupported(): Promise<never> {
  throw new Pkcs11Error('NOT_SUPPORTED', 'not in this test');
}

describe('a remote member reconnecting to its agent', () => {
  const recording = new RecordingMember();
  let server: HsmAgentServer;
  let port = 0;
  const serve = async (): Promise<void> => {
    server = await HsmAgentServer.listen({ member: recording, host: '127.0.0.1', port, cert: certs.read(certs.agentCert), key: certs.read(certs.agentKey), ca: certs.read(certs.ca) });
    port = server.port;
  };
  /**
   * Drops every connection, as an agent restart does, and serves again on the same port; then
   * lets the client read the hang-up (a request sent before it has is lost with the connection).
   */
  const restart = async (): Promise<void> => {
    await server.close();
    await serve();
    await new Promise((resolve) => setTimeout(resolve, 100));
  };
  const member = (pin: string) =>
    new RemoteHsmMember({ name: 'recording', host: '127.0.0.1', port, ca: certs.read(certs.ca), cert: certs.read(certs.clientCert), key: certs.read(certs.clientKey), expectedPin: SecretBytes.from(Buffer.from(pin)) });
  const isCode = (code: string) => (error: unknown) => error instanceof Pkcs11Error && error.code === code;

  before(serve);
  after(async () => {
    await server?.close();
  });

  test('a new connection is greeted as at connect (OP.connect, then verifyPin) before any request, once for callers arriving together', async () => {
    recording.pin = 'recorded-pin';
    const remote = member('recorded-pin');
    try {
      await remote.connect();
      assert.deepEqual(recording.calls.splice(0), ['connect', 'verifyPin']);
      await restart();
      // Five requests at once find the connection gone: one redial, one handshake, then all five.
      const answers = await Promise.all(Array.from({ length: 5 }, () => remote.generateRandom(4)));
      assert.deepEqual(answers, Array.from({ length: 5 }, () => Buffer.alloc(4, 7)));
      assert.deepEqual(recording.calls.splice(0), ['connect', 'verifyPin', 'random', 'random', 'random', 'random', 'random']);
      // The connection stays: no further handshake.
      assert.equal((await remote.health()).ok, true);
      assert.deepEqual(recording.calls.splice(0), ['health']);
    } finally {
      await remote.close();
    }
  });

  test('a PIN the agent no longer has fails every caller of the redial with PIN_INCORRECT, asked once; connect() asks again', async () => {
    recording.pin = 'recorded-pin';
    const remote = member('recorded-pin');
    try {
      await remote.connect();
      recording.calls.length = 0;
      recording.pin = 'a-pin-changed-meanwhile';
      await restart();
      const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => remote.generateRandom(4)));
      for (const outcome of outcomes) assert.ok(outcome.status === 'rejected' && isCode('PIN_INCORRECT')(outcome.reason), String(outcome.status));
      for (let index = 0; index < 10; index++) await assert.rejects(remote.generateRandom(4), isCode('PIN_INCORRECT'));
      assert.deepEqual(recording.calls.splice(0), ['connect', 'verifyPin'], 'one guess, and no request served');
      await assert.rejects(remote.connect(), isCode('PIN_INCORRECT'));
      assert.deepEqual(recording.calls.splice(0), ['connect', 'verifyPin']);
      // Once the agent has the PIN again, connect() makes the member usable again.
      recording.pin = 'recorded-pin';
      await remote.connect();
      assert.equal((await remote.generateRandom(4)).length, 4);
      assert.deepEqual(recording.calls.splice(0), ['connect', 'verifyPin', 'random']);
    } finally {
      await remote.close();
    }
  });
});
