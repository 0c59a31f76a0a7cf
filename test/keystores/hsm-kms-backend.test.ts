/**
 * The custom key store backend (HsmClusterKeyStoreBackend) over a stored cluster of hsm-agent
 * members. KeyStorePassword: an agent logs in with its own PIN, so the backend asks each agent
 * (verifyPin, compared in the agent in constant time) whether that PIN is the KeyStorePassword;
 * AWS: a wrong kmsuser password is INVALID_CREDENTIALS. CreateKey: a new key must reach
 * min(2, members) members, whatever the cluster's stored minReplicas (AWS: two active HSMs).
 */
import { createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { HsmCluster } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { RemoteHsmMember } from '../../src/keystores/pkcs11/cluster/remote-member.ts';
import { HsmClusterKeyStoreBackend, type HsmClusterCatalog } from '../../src/keystores/pkcs11/cluster/stored.ts';
import { FrameReader, OP, RESPONSE_OK, encodeFrame, type Frame } from '../../src/keystores/pkcs11/cluster/wire.ts';
import { CustomKeyStoreConnectError, type ConnectedKeyStore } from '../../src/keystores/types.ts';
import type { HsmMemberRecord } from '../../src/storage/types.ts';
import { AgentProcess } from './agent-process.ts';
import { createStandaloneToken } from './softhsm.ts';
import { makeTestCerts } from './test-certs.ts';

const AGENT_PIN = 'agent-user-pin-1357';
const tokens = ['pin-a', 'pin-b'].map((label) => createStandaloneToken(label, AGENT_PIN));
/** For the redial tests: a token with the agents' PIN, and one whose agent would log in with another. */
const redialTokens = { right: createStandaloneToken('redial-right', AGENT_PIN), other: createStandaloneToken('redial-other', 'another-agent-pin-2468') };
const certs = makeTestCerts();
const isCode = (code: string) => (error: unknown) => (error as { code?: string }).code === code;
/** How many PINs the agent refused, from its log. */
const refusals = (agent: AgentProcess): number => agent.stderr().split('pin-verification-failed').length - 1;
/**
 * The agent's refusal count once it has logged at least `n`: its stderr line reaches this process
 * after the client has its answer (CI once read 1 where the second refusal was on its way).
 */
async function refusalsOnceAtLeast(agent: AgentProcess, n: number, limitMs = 5_000): Promise<number> {
  const deadline = Date.now() + limitMs;
  while (refusals(agent) < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return refusals(agent);
}

/** Sends frames on a raw mutual-TLS connection to the agent; what it answered by the time it closed the connection (or `waitMs` passed). */
function answersUntilClosed(port: number, frames: Buffer[], waitMs = 5_000): Promise<{ frames: Frame[]; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.read(certs.ca), cert: certs.read(certs.clientCert), key: certs.read(certs.clientKey), minVersion: 'TLSv1.3' });
    const reader = new FrameReader();
    const answered: Frame[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ frames: answered, closed: false });
    }, waitMs);
    socket.on('secureConnect', () => socket.write(Buffer.concat(frames)));
    socket.on('data', (chunk: Buffer) => answered.push(...reader.push(chunk)));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ frames: answered, closed: true });
    });
  });
}

after(() => certs.cleanup());

describe('a custom key store over an agent-only cluster', () => {
  const agents: AgentProcess[] = [];
  const clusterId = `pin-${randomUuid()}`;
  let records: HsmMemberRecord[];
  let agentRecords: HsmMemberRecord[];
  const catalog: HsmClusterCatalog = {
    getCluster: async (id) => (id === clusterId ? { clusterId, createdAt: new Date(), minReplicas: 1, requestTimeoutMs: 2_000 } : undefined),
    listMembers: async () => records,
    owedOperations: async () => [],
    oweOperation: async () => {},
    settleOperation: async () => {},
    listBackups: async () => [],
  };
  const backend = new HsmClusterKeyStoreBackend(catalog, (secret) => SecretBytes.from(Buffer.from(secret, 'utf8')), { probeIntervalMs: 60_000 });
  const connect = (secret: string) => backend.connect({ customKeyStoreId: 'cks-pin', cloudHsmClusterId: clusterId, secret });

  before(async () => {
    agents.push(...(await Promise.all(tokens.map((token) => AgentProcess.start(token, certs)))));
    agentRecords = records = agents.map((agent, index) => ({
      clusterId,
      name: tokens[index]!.token.label,
      config: { kind: 'agent', host: '127.0.0.1', port: agent.port, caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey },
      addedAt: new Date(),
    }));
    const members = agents.map(
      (agent, index) =>
        new RemoteHsmMember({ name: tokens[index]!.token.label, host: '127.0.0.1', port: agent.port, ca: certs.read(certs.ca), cert: certs.read(certs.clientCert), key: certs.read(certs.clientKey) }),
    );
    const cluster = await HsmCluster.initialise({ clusterId, members }, new Map(tokens.map((token) => [token.token.label, SecretBytes.from(Buffer.from(token.token.soPin))])));
    await cluster.close();
  });
  after(async () => {
    await Promise.all(agents.map((agent) => agent.stop('SIGKILL')));
    tokens.forEach((token) => token.cleanup());
  });

  test('a wrong KeyStorePassword is INVALID_CREDENTIALS, and nothing is served', async () => {
    for (const wrong of ['TOTALLY-WRONG-PASSWORD', 'agent-user-pin-135', `${AGENT_PIN}x`]) {
      await assert.rejects(connect(wrong), (error: unknown) => {
        assert.ok(error instanceof CustomKeyStoreConnectError);
        assert.equal(error.connectionErrorCode, 'INVALID_CREDENTIALS');
        assert.ok(!error.message.includes(wrong) && !error.message.includes(AGENT_PIN));
        return true;
      });
    }
    for (const agent of agents) {
      assert.ok(!agent.stderr().includes(AGENT_PIN), 'the agent never logs the PIN');
      assert.ok(!agent.stderr().includes('TOTALLY-WRONG-PASSWORD'), 'nor the password it was asked about');
    }
  });

  test('the right KeyStorePassword connects every agent and the store serves', async () => {
    const store = await connect(AGENT_PIN);
    try {
      const keyId = randomUuid();
      const handle = { keyId, version: 1, sealedMaterial: await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
      const blob = await store.encrypt(handle, Buffer.from('checked password'), undefined);
      assert.deepEqual(await store.decrypt(handle, blob, undefined), Buffer.from('checked password'));
    } finally {
      await store.close();
    }
  });

  test('an agent asked about another PIN than its own says no (PIN_INCORRECT at connect, and after, without asking again) and hangs up; about its own, yes', async () => {
    const direct = (pin: string) =>
      new RemoteHsmMember({
        name: 'direct',
        host: '127.0.0.1',
        port: agents[0]!.port,
        ca: certs.read(certs.ca),
        cert: certs.read(certs.clientCert),
        key: certs.read(certs.clientKey),
        expectedPin: SecretBytes.from(Buffer.from(pin)),
      });
    const wrong = direct('not-the-agent-pin');
    const refusedBefore = refusals(agents[0]!);
    try {
      await assert.rejects(wrong.connect(), isCode('PIN_INCORRECT'));
      // The refusal sticks: later calls fail the same way and do not dial to guess again.
      await assert.rejects(wrong.verifyPin(SecretBytes.from(Buffer.from(AGENT_PIN))), isCode('PIN_INCORRECT'));
      await assert.rejects(wrong.generateRandom(8), isCode('PIN_INCORRECT'));
      assert.equal((await refusalsOnceAtLeast(agents[0]!, refusedBefore + 1)) - refusedBefore, 1);
    } finally {
      await wrong.close();
    }
    // One guess per connection: the agent answers no, then hangs up.
    const { frames, closed } = await answersUntilClosed(agents[0]!.port, [
      encodeFrame(1, OP.verifyPin, [Buffer.from('not-the-agent-pin')]),
    ]);
    assert.ok(closed, 'the agent closed the connection');
    assert.deepEqual(frames.map((frame) => [frame.requestId, frame.kind, [...frame.fields[0]!]]), [[1, RESPONSE_OK, [0]]]);
    const right = direct(AGENT_PIN);
    try {
      await right.connect();
      assert.equal(await right.verifyPin(SecretBytes.from(Buffer.from(AGENT_PIN))), true);
    } finally {
      await right.close();
    }
  });

  const createIn = async (store: ConnectedKeyStore) => {
    const keyId = randomUuid();
    return store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT');
  };

  test('CreateKey needs both members of a two-member cluster active, though the stored minReplicas is 1', async () => {
    // The second member's agent is not there (a port nobody listens on): connected, one member active.
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    records = [agentRecords[0]!, { ...agentRecords[1]!, config: { ...agentRecords[1]!.config, port: closedPort } as HsmMemberRecord['config'] }];
    const store = await connect(AGENT_PIN);
    try {
      await assert.rejects(createIn(store), (error: unknown) => {
        assert.ok(error instanceof CustomKeyStoreConnectError, String(error));
        assert.equal(error.connectionErrorCode, 'INSUFFICIENT_CLOUDHSM_HSMS');
        assert.match(error.message, /1 active member\(s\); a new key needs 2/);
        return true;
      });
      // Crypto with the key versions that exist goes on with one member.
      assert.equal((await store.generateRandom!(8)).length, 8);
    } finally {
      await store.close();
      records = agentRecords;
    }
  });

  test('a one-member cluster creates keys with its one member', async () => {
    records = [agentRecords[0]!];
    const store = await connect(AGENT_PIN);
    try {
      assert.ok((await createIn(store)).length > 0);
    } finally {
      await store.close();
      records = agentRecords;
    }
  });
});

describe('an agent member whose connection was lost', () => {
  let agent: AgentProcess;
  let cluster: HsmCluster | undefined;
  const clusterId = `redial-${randomUuid()}`;
  after(async () => {
    await cluster?.close();
    await agent?.stop('SIGKILL');
    redialTokens.right.cleanup();
    redialTokens.other.cleanup();
  });

  test('an agent restarted with another PIN is refused at the next call (PIN_INCORRECT, INVALID_CREDENTIALS), not served, and not asked again', async () => {
    agent = await AgentProcess.start(redialTokens.right, certs);
    const member = new RemoteHsmMember({
      name: 'redial',
      host: '127.0.0.1',
      port: agent.port,
      ca: certs.read(certs.ca),
      cert: certs.read(certs.clientCert),
      key: certs.read(certs.clientKey),
      expectedPin: SecretBytes.from(Buffer.from(AGENT_PIN)),
    });
    // No probe ticks: the member is found out by the next request, as in an idle cluster.
    cluster = await HsmCluster.initialise(
      { clusterId, members: [member], requestTimeoutMs: 2_000, probeIntervalMs: 600_000 },
      new Map([['redial', SecretBytes.from(Buffer.from(redialTokens.right.token.soPin))]]),
    );
    assert.equal((await cluster.generateRandom(8)).length, 8);

    // The agent is restarted on the same port, now logged in to a token with another user PIN.
    await agent.stop('SIGKILL');
    agent = await AgentProcess.start(redialTokens.other, certs, agent.port);
    await assert.rejects(cluster.generateRandom(8));
    assert.deepEqual(cluster.status().members, [{ name: 'redial', state: 'FAILED', errorCode: 'PIN_INCORRECT' }]);
    assert.equal(cluster.status().connectionErrorCode, 'INVALID_CREDENTIALS');
    assert.equal(await refusalsOnceAtLeast(agent, 1), 1);

    // Later calls fail the same way without a new guess; an explicit connect() is one more.
    await assert.rejects(member.generateRandom(8), isCode('PIN_INCORRECT'));
    await assert.rejects(member.listObjects(), isCode('PIN_INCORRECT'));
    assert.equal((await member.health()).code, 'PIN_INCORRECT');
    await cluster.probeNow();
    assert.equal(refusals(agent), 1, 'no call asked the agent again');
    await assert.rejects(member.connect(), isCode('PIN_INCORRECT'));
    assert.equal(await refusalsOnceAtLeast(agent, 2), 2);
  });
});
