/**
 * Benchmark (not a test): the HSM cluster's key store against the software key store, in one run,
 * at the KeyStore level (no HTTP, no policy, no audit), as issue 6 asks:
 *
 *   software              SoftwareKeyStore.encrypt (v1 blob: KDF + GCM in node:crypto)
 *   pkcs11 direct         Pkcs11KeyStore.encrypt on one token: the single-token ceiling
 *   cluster 1 in-process  HsmClusterKeyStore over one LocalHsmMember
 *   cluster 3 agents      HsmClusterKeyStore over three `strongroom hsm-agent` child processes
 *                         (each its own SoftHSM token), mutual TLS on loopback
 *
 * for 32-byte plaintexts (what GenerateDataKey encrypts: a 32-byte data key) and 4 KB, with 16
 * requests in flight.
 *
 *   node --import tsx bench/pkcs11-cluster.ts [seconds-per-case]
 *
 * BENCH_ONLY (comma-separated case names) runs a subset. It makes its tokens, certificates and agents in temporary directories (with the test helpers
 * in test/keystores/) and removes them.
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { AgentProcess } from '../test/keystores/agent-process.ts';
import { SOFTHSM_MODULE, SoftHsm, createStandaloneToken } from '../test/keystores/softhsm.ts';
import { makeTestCerts } from '../test/keystores/test-certs.ts';

const SECONDS = Number(process.argv[2] ?? 3);
const CONCURRENCY = 16;

const hsm = SoftHsm.get();
const localToken = hsm.createToken('bench-cluster-local');
const directToken = hsm.createToken('bench-direct');
const agentTokens = ['bench-agent-1', 'bench-agent-2', 'bench-agent-3'].map((label) => createStandaloneToken(label));
const certs = makeTestCerts();

// Imported after SOFTHSM2_CONF is set (SoftHSM reads it at C_Initialize).
const { SecretBytes } = await import('../src/crypto/secret-bytes.ts');
const { Sealer } = await import('../src/crypto/seal.ts');
const { randomUuid } = await import('../src/crypto/random.ts');
const { SoftwareKeyStore } = await import('../src/keystores/software/software-key-store.ts');
const { Pkcs11KeyStore } = await import('../src/keystores/pkcs11/pkcs11-key-store.ts');
const { HsmCluster } = await import('../src/keystores/pkcs11/cluster/cluster.ts');
const { HsmClusterKeyStore } = await import('../src/keystores/pkcs11/cluster/cluster-key-store.ts');
const { LocalHsmMember } = await import('../src/keystores/pkcs11/cluster/local-member.ts');
const { RemoteHsmMember } = await import('../src/keystores/pkcs11/cluster/remote-member.ts');
type KeyStore = import('../src/keystores/types.ts').KeyStore;

async function measure(name: string, run: () => Promise<void>): Promise<number> {
  const window = async (ms: number): Promise<number> => {
    let count = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < end) {
          await run();
          count++;
        }
      }),
    );
    return count / (ms / 1000);
  };
  await window(500);
  const rate = await window(SECONDS * 1000);
  console.log(`  ${name.padEnd(24)} ${Math.round(rate).toLocaleString('en-US').padStart(9)} encrypts/s`);
  return rate;
}

const agents = await Promise.all(agentTokens.map((token) => AgentProcess.start(token, certs)));
try {
  const software = new SoftwareKeyStore(new Sealer(SecretBytes.random(32)));
  const direct = await Pkcs11KeyStore.open({ modulePath: SOFTHSM_MODULE, tokenLabel: directToken.label, pin: Buffer.from(directToken.pin), sessions: 4 });
  const inProcess = await HsmCluster.initialise(
    {
      clusterId: 'bench-local',
      members: [new LocalHsmMember({ name: 'local', modulePath: SOFTHSM_MODULE, tokenLabel: localToken.label, pin: Buffer.from(localToken.pin), sessions: 4 })],
    },
    new Map([['local', SecretBytes.from(Buffer.from(localToken.soPin))]]),
  );
  const remote = await HsmCluster.initialise(
    {
      clusterId: 'bench-agents',
      members: agents.map(
        (agent, index) =>
          new RemoteHsmMember({ name: `agent-${index + 1}`, host: '127.0.0.1', port: agent.port, ca: certs.read(certs.ca), cert: certs.read(certs.clientCert), key: certs.read(certs.clientKey) }),
      ),
    },
    new Map(agentTokens.map((token, index) => [`agent-${index + 1}`, SecretBytes.from(Buffer.from(token.token.soPin))])),
  );
  const subjects: Array<[string, KeyStore]> = [
    ['software', software],
    ['pkcs11 direct', direct],
    ['cluster 1 in-process', new HsmClusterKeyStore(inProcess)],
    ['cluster 3 agents', new HsmClusterKeyStore(remote)],
  ];
  console.log(`Node ${process.version}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), ${SECONDS} s per case, ${CONCURRENCY} in flight`);
  for (const size of [32, 4096]) {
    console.log(`\nEncrypt, ${size} B plaintext`);
    const plaintext = randomBytes(size);
    const rates: Record<string, number> = {};
    // BENCH_ONLY="software,cluster 3 agents" runs only those cases.
    const only = process.env.BENCH_ONLY?.split(',').map((name) => name.trim());
    for (const [name, store] of subjects.filter(([name]) => !only || only.includes(name))) {
      const keyId = randomUuid();
      const handle = { keyId, version: 1, sealedMaterial: await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
      rates[name] = await measure(name, async () => void (await store.encrypt(handle, plaintext, { purpose: 'bench' })));
    }
    const ratio = (name: string): string => (rates[name] && rates.software ? `${((rates[name] / rates.software) * 100).toFixed(0)}%` : 'n/a');
    console.log(`  of software: pkcs11 direct ${ratio('pkcs11 direct')}, cluster in-process ${ratio('cluster 1 in-process')}, cluster agents ${ratio('cluster 3 agents')}`);
  }
  await direct.close();
  await inProcess.close();
  await remote.close();
} finally {
  await Promise.all(agents.map((agent) => agent.stop('SIGKILL')));
  for (const token of agentTokens) token.cleanup();
  certs.cleanup();
  hsm.cleanup();
}
