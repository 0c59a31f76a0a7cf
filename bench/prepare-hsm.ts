/**
 * Sets up bench/hsm.sh's three keys on a running Strongroom (fresh data dir) as an operator would,
 * through the real @aws-sdk/client-kms: for each of the two HSM clusters the `strongroom hsm
 * cluster` ceremony already made (one in-process member; three hsm-agent members) an AWS_CLOUDHSM
 * custom key store (CreateCustomKeyStore, ConnectCustomKeyStore, then waiting until it is
 * CONNECTED) and a KMS key in it (Origin AWS_CLOUDHSM), and an ordinary software key. Starts no
 * server itself.
 *
 *   node --import tsx bench/prepare-hsm.ts --endpoint http://127.0.0.1:18390 \
 *     --credentials <dataDir>/credentials --trust-anchor <ca.pem> --password-file <file> \
 *     --local-cluster cluster-benchlocala --agents-cluster cluster-benchagents --out-dir <dir>
 *
 * --password-file holds the KeyStorePassword (first line): the crypto user's PIN of the in-process
 * member (the agents log in with their own PIN; bench/hsm.sh gives every token the same one, as
 * CloudHSM's kmsuser has one password across the cluster).
 *
 * Writes `software.state.json`, `hsm-local.state.json` and `hsm-agents.state.json` in --out-dir:
 * bench/prepare.ts state files (the key id and a 32-byte ciphertext made with the SDK), so
 * prepare.ts signs each case's pool exactly as for bench/run.sh's encrypt-32 and
 * generate-data-key. Before it finishes it checks every key: an Encrypt and Decrypt round trip
 * through the SDK, the HSM keys' ciphertexts in the HSM format (first byte 0x02: AES-GCM inside
 * the token) and the software key's in v1 (0x01). Prints a JSON summary (store and key ids, never
 * a secret) on stdout.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeCustomKeyStoresCommand,
  EncryptCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { parseCredentialsFile } from '../test/support/server.ts';

const { values: args } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    credentials: { type: 'string' },
    'trust-anchor': { type: 'string' },
    'password-file': { type: 'string' },
    'local-cluster': { type: 'string' },
    'agents-cluster': { type: 'string' },
    'out-dir': { type: 'string' },
    region: { type: 'string', default: 'us-east-1' },
  },
});

function need(name: keyof typeof args): string {
  const value = args[name];
  if (typeof value !== 'string' || value === '') {
    process.stderr.write(`prepare-hsm: --${name} is required\n`);
    process.exit(2);
  }
  return value;
}

const endpoint = need('endpoint');
const outDir = need('out-dir');
const credentials = parseCredentialsFile(readFileSync(need('credentials'), 'utf8'));
const trustAnchor = readFileSync(need('trust-anchor'), 'utf8');
const password = readFileSync(need('password-file'), 'utf8').split('\n')[0]!.trim();
if (!password) throw new Error('--password-file holds no password');

// The SDK warns on stderr about Node < 22 support ending; not this bench's concern.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const kms = new KMSClient({ endpoint, region: args.region as string, credentials, maxAttempts: 1 });

/** ConnectCustomKeyStore answers at once (CONNECTING); the attempt ends CONNECTED or FAILED. */
async function waitConnected(id: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const entry = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }))).CustomKeyStores?.[0];
    if (entry?.ConnectionState === 'CONNECTED') return;
    if (entry?.ConnectionState === 'FAILED' || Date.now() > deadline) {
      throw new Error(`key store ${id} did not connect: ${entry?.ConnectionState} ${entry?.ConnectionErrorCode ?? ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A connected AWS_CLOUDHSM key store over the cluster, and a KMS key generated in its members. */
async function hsmKey(name: string, clusterId: string): Promise<{ storeId: string; keyId: string }> {
  const store = await kms.send(
    new CreateCustomKeyStoreCommand({
      CustomKeyStoreName: `bench-${name}`,
      CustomKeyStoreType: 'AWS_CLOUDHSM',
      CloudHsmClusterId: clusterId,
      TrustAnchorCertificate: trustAnchor,
      KeyStorePassword: password,
    }),
  );
  const storeId = store.CustomKeyStoreId as string;
  await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
  await waitConnected(storeId);
  const key = await kms.send(
    new CreateKeyCommand({ Description: `strongroom bench: HSM key (${name})`, CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }),
  );
  return { storeId, keyId: key.KeyMetadata?.KeyId as string };
}

/** A prepare.ts state file for the key, after a round trip that checks the ciphertext's format byte. */
async function stateFor(keyId: string, formatByte: number, name: string): Promise<void> {
  const plaintext = randomBytes(32);
  const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
  if (!CiphertextBlob || CiphertextBlob[0] !== formatByte) {
    throw new Error(`${name} key: expected a ciphertext of format 0x0${formatByte}, got 0x${CiphertextBlob?.[0]?.toString(16) ?? '(none)'}`);
  }
  const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob, KeyId: keyId }));
  if (!decrypted.Plaintext || !Buffer.from(decrypted.Plaintext).equals(plaintext)) throw new Error(`${name} key: Decrypt did not round-trip`);
  writeFileSync(join(outDir, `${name}.state.json`), JSON.stringify({ keyId, ciphertext32: Buffer.from(CiphertextBlob).toString('base64') }));
}

try {
  const local = await hsmKey('hsm-local', need('local-cluster'));
  const agents = await hsmKey('hsm-agents', need('agents-cluster'));
  const software = (await kms.send(new CreateKeyCommand({ Description: 'strongroom bench: software key' }))).KeyMetadata?.KeyId as string;
  await stateFor(local.keyId, 0x02, 'hsm-local');
  await stateFor(agents.keyId, 0x02, 'hsm-agents');
  await stateFor(software, 0x01, 'software');
  process.stdout.write(
    `${JSON.stringify({
      localStoreId: local.storeId,
      localKeyId: local.keyId,
      agentsStoreId: agents.storeId,
      agentsKeyId: agents.keyId,
      softwareKeyId: software,
    })}\n`,
  );
} finally {
  kms.destroy();
}
