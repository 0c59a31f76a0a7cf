/**
 * A cluster of three remote members: three `strongroom hsm-agent` child processes, each on its own
 * SoftHSMv2 configuration and token, under 16 concurrent Encrypt+Decrypt requests through the
 * cluster key store. One agent is killed with SIGKILL, and one member's token is removed (its
 * SoftHSM token directory moved away) while the load runs: no request fails, the member is taken
 * out with a reason, and it returns, re-synchronised, once the agent restarts or the token is back.
 */
import assert from 'node:assert/strict';
import { readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { HsmCluster, type HsmAuditEvent } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { HsmClusterKeyStore } from '../../src/keystores/pkcs11/cluster/cluster-key-store.ts';
import { RemoteHsmMember } from '../../src/keystores/pkcs11/cluster/remote-member.ts';
import { keyVersionLabel } from '../../src/keystores/pkcs11/templates.ts';
import type { KeyVersionHandle } from '../../src/keystores/types.ts';
import { AgentProcess } from './agent-process.ts';
import { createStandaloneToken, listObjects, type StandaloneToken } from './softhsm.ts';
import { makeTestCerts } from './test-certs.ts';

const IN_FLIGHT = 16;
const names = ['agent-a', 'agent-b', 'agent-c'];
const tokens = names.map((name) => createStandaloneToken(name));
const certs = makeTestCerts();
const labelsOn = (token: StandaloneToken) => listObjects(token.token, token.conf).map((object) => object.label);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs IN_FLIGHT workers encrypting and decrypting until stopped; counts what completed and what failed. */
function startLoad(store: HsmClusterKeyStore, handles: KeyVersionHandle[]) {
  let stop = false;
  const result = { completed: 0, failures: [] as unknown[] };
  const worker = async (index: number): Promise<void> => {
    for (let round = 0; !stop; round++) {
      const handle = handles[(index + round) % handles.length]!;
      const plaintext = Buffer.from(`worker ${index} round ${round}`);
      const request = { principalArn: 'arn:aws:iam::111122223333:user/load', operation: 'Encrypt', requestId: `load-${index}-${round}`, keyArn: handle.keyId };
      try {
        const blob = await store.encrypt(handle, plaintext, { worker: String(index) }, request);
        assert.deepEqual(await store.decrypt(handle, blob, { worker: String(index) }, { ...request, operation: 'Decrypt' }), plaintext);
        result.completed++;
      } catch (error) {
        result.failures.push(error);
      }
    }
  };
  const running = Promise.all(Array.from({ length: IN_FLIGHT }, (_, index) => worker(index)));
  return {
    result,
    async stop() {
      stop = true;
      await running;
      return result;
    },
  };
}

/** Runs `body` with the load running; the workers are stopped even when an assertion fails. */
async function withLoad(store: HsmClusterKeyStore, handles: KeyVersionHandle[], body: (load: ReturnType<typeof startLoad>) => Promise<void>): Promise<void> {
  const load = startLoad(store, handles);
  try {
    await body(load);
  } finally {
    await load.stop();
  }
}

describe('a cluster of three hsm-agent members under concurrent load', () => {
  const agents: AgentProcess[] = [];
  let cluster: HsmCluster;
  let store: HsmClusterKeyStore;
  const events: HsmAuditEvent[] = [];
  const clusterId = `three-agents-${randomUuid()}`;
  const newVersion = async (): Promise<KeyVersionHandle> => {
    const keyId = randomUuid();
    return { keyId, version: 1, sealedMaterial: await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
  };
  const stateOf = (name: string) => cluster.status().members.find((member) => member.name === name)!;
  const waitFor = async (what: string, condition: () => boolean, ms = 20_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!condition() && Date.now() < deadline) await sleep(25);
    assert.ok(condition(), `${what} within ${ms} ms (status: ${JSON.stringify(cluster.status().members)})`);
  };
  /** Encrypts until the member has served one (round robin reaches it within a few requests). */
  const servedBy = async (name: string, handle: KeyVersionHandle): Promise<boolean> => {
    const seen = events.length;
    for (let index = 0; index < 12; index++) await store.encrypt(handle, Buffer.from('probe'), undefined);
    return events.slice(seen).some((event) => event.member === name && event.operation === 'encrypt' && event.outcome === 'ok');
  };

  before(async () => {
    agents.push(...(await Promise.all(tokens.map((token) => AgentProcess.start(token, certs)))));
    cluster = await HsmCluster.initialise(
      {
        clusterId,
        members: agents.map(
          (agent, index) =>
            new RemoteHsmMember({ name: names[index]!, host: '127.0.0.1', port: agent.port, ca: certs.read(certs.ca), cert: certs.read(certs.clientCert), key: certs.read(certs.clientKey) }),
        ),
        requestTimeoutMs: 2_000,
        probeIntervalMs: 100,
        audit: (event) => events.push(event),
      },
      new Map(tokens.map((token, index) => [names[index]!, SecretBytes.from(Buffer.from(token.token.soPin))])),
    );
    store = new HsmClusterKeyStore(cluster);
  });
  after(async () => {
    await cluster?.close();
    await Promise.all(agents.map((agent) => agent.stop('SIGKILL')));
    for (const token of tokens) token.cleanup();
    certs.cleanup();
  });

  test('SIGKILL of one agent under 16 requests in flight: no request fails; restarted, it is resynced and serves again', async () => {
    const handles = await Promise.all([newVersion(), newVersion(), newVersion()]);
    for (const token of tokens) assert.ok(labelsOn(token).includes(keyVersionLabel(handles[0]!.keyId, 1)), 'replicated to every agent');
    await withLoad(store, handles, async (load) => {
      await sleep(1_000);
      const beforeKill = load.result.completed;
      await agents[1]!.stop('SIGKILL');
      await waitFor('the killed member is taken out', () => stateOf('agent-b').state === 'DOWN');
      assert.equal(stateOf('agent-b').errorCode, 'CONNECTION_FAILED');
      // Created while the agent is down: the other two hold them, agent-b owes them.
      const madeWhileDown = await Promise.all([newVersion(), newVersion()]);
      await sleep(1_000);
      const atRestart = load.result.completed;
      agents[1] = await AgentProcess.start(tokens[1]!, certs, agents[1]!.port);
      await waitFor('the restarted member is back', () => stateOf('agent-b').state === 'ACTIVE');
      await sleep(500);
      const { completed, failures } = await load.stop();
      assert.deepEqual(failures, [], 'no client request failed');
      assert.ok(beforeKill > 0 && atRestart > beforeKill && completed > atRestart, `requests kept completing (${beforeKill}, ${atRestart}, ${completed})`);

      const labels = labelsOn(tokens[1]!);
      for (const handle of madeWhileDown) assert.ok(labels.includes(keyVersionLabel(handle.keyId, 1)), 'resynchronised: pkcs11-tool sees the key on agent-b');
      assert.ok(events.some((event) => event.member === 'agent-b' && event.operation === 'resync-create'));
      assert.ok(await servedBy('agent-b', madeWhileDown[0]!), 'agent-b serves again, with a key made while it was down');
    });
  });

  test('a member whose token is removed is taken out with a reason; with the token back it is resynced and serves', async () => {
    const handles = await Promise.all([newVersion(), newVersion()]);
    const tokenDir = join(tokens[2]!.dir, 'tokens');
    const [slotDir] = readdirSync(tokenDir);
    assert.ok(slotDir, 'SoftHSM keeps the token in a directory of its own');
    await withLoad(store, handles, async (load) => {
      await sleep(800);
      // What a pulled smart card or a lost HSM partition looks like to SoftHSM's running library:
      // its objects vanish and C_GetTokenInfo fails (docs/hsm-cluster.md, "Token removal").
      const seen = events.length;
      renameSync(join(tokenDir, slotDir), join(tokens[2]!.dir, 'removed'));
      await waitFor('the member without its token is taken out', () => stateOf('agent-c').state === 'DOWN');
      await sleep(800);
      assert.match(stateOf('agent-c').errorCode ?? '', /^TOKEN_NOT_(PRESENT|FOUND)$/);
      assert.equal(cluster.status().connectionState, 'CONNECTED');
      const reason = events.slice(seen).find((event) => event.member === 'agent-c' && event.operation === 'health');
      assert.equal(reason?.errorCode, 'TOKEN_NOT_PRESENT', 'the audit log says why it was taken out');
      // A key made while the token is away: agent-c owes it.
      const madeWhileRemoved = await newVersion();

      renameSync(join(tokens[2]!.dir, 'removed'), join(tokenDir, slotDir));
      await waitFor('the member with its token back returns', () => stateOf('agent-c').state === 'ACTIVE');
      await sleep(500);
      const { completed, failures } = await load.stop();
      assert.deepEqual(failures, [], 'no client request failed');
      assert.ok(completed > 0);
      assert.ok(labelsOn(tokens[2]!).includes(keyVersionLabel(madeWhileRemoved.keyId, 1)), 'resynchronised: pkcs11-tool sees the key on agent-c');
      assert.ok(await servedBy('agent-c', madeWhileRemoved), 'agent-c serves again');
    });
  });
});
