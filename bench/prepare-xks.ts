/**
 * Sets up bench/xks.sh's two keys on a running Strongroom (fresh data dir) as an operator would,
 * through the real @aws-sdk/client-kms: an external key store in front of the already running
 * `strongroom xks-proxy` (CreateCustomKeyStore, ConnectCustomKeyStore, then waiting until it is
 * CONNECTED), a KMS key with Origin EXTERNAL_KEY_STORE on the proxy's key, and an ordinary
 * software key. Starts no server itself.
 *
 *   node --import tsx bench/prepare-xks.ts --endpoint http://127.0.0.1:18379 \
 *     --credentials <dataDir>/credentials --xks-endpoint https://xks.test \
 *     --xks-uri-path /bench/kms/xks/v1 --xks-credentials <file: ACCESS_KEY_ID:SECRET> \
 *     --xks-key-id bench-xks-1 --out-dir <dir>
 *
 * Writes `software.state.json` and `external.state.json` in --out-dir: bench/prepare.ts state
 * files (the key id and a 32-byte ciphertext made with the SDK), so prepare.ts signs each case's
 * pool exactly as for bench/run.sh's encrypt-32. Before it finishes it checks both keys: an
 * Encrypt and Decrypt round trip through the SDK, the external key's ciphertext in the external
 * format (first byte 0x03: double encryption, the proxy's layer outside) and the software key's
 * in v1 (0x01). Prints a JSON summary (store and key ids, never a secret) on stdout.
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
    'xks-endpoint': { type: 'string' },
    'xks-uri-path': { type: 'string' },
    'xks-credentials': { type: 'string' },
    'xks-key-id': { type: 'string' },
    'out-dir': { type: 'string' },
    region: { type: 'string', default: 'us-east-1' },
  },
});

function need(name: keyof typeof args): string {
  const value = args[name];
  if (typeof value !== 'string' || value === '') {
    process.stderr.write(`prepare-xks: --${name} is required\n`);
    process.exit(2);
  }
  return value;
}

const endpoint = need('endpoint');
const outDir = need('out-dir');
const xksKeyId = need('xks-key-id');
const credentials = parseCredentialsFile(readFileSync(need('credentials'), 'utf8'));
// The proxy's SigV4 credential, as its --credentials-file holds it (one ACCESS_KEY_ID:SECRET line).
const [proxyAccessKeyId, proxySecret] = readFileSync(need('xks-credentials'), 'utf8').trim().split(':');
if (!proxyAccessKeyId || !proxySecret) throw new Error('--xks-credentials: expected one ACCESS_KEY_ID:SECRET line');

// The SDK warns on stderr about Node < 22 support ending; not this bench's concern.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const kms = new KMSClient({ endpoint, region: args.region as string, credentials, maxAttempts: 1 });

/** ConnectCustomKeyStore answers at once (CONNECTING); the attempt ends CONNECTED or FAILED. */
async function waitConnected(id: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const entry = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }))).CustomKeyStores?.[0];
    if (entry?.ConnectionState === 'CONNECTED') return;
    if (entry?.ConnectionState === 'FAILED' || Date.now() > deadline) {
      throw new Error(`key store ${id} did not connect: ${entry?.ConnectionState} ${entry?.ConnectionErrorCode ?? ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A prepare.ts state file for the key, after a round trip that checks the ciphertext's format byte. */
async function stateFor(keyId: string, formatByte: number, name: string): Promise<{ keyId: string; ciphertext32: string }> {
  const plaintext = randomBytes(32);
  const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
  if (!CiphertextBlob || CiphertextBlob[0] !== formatByte) {
    throw new Error(`${name} key: expected a ciphertext of format 0x0${formatByte}, got 0x${CiphertextBlob?.[0]?.toString(16) ?? '(none)'}`);
  }
  const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob, KeyId: keyId }));
  if (!decrypted.Plaintext || !Buffer.from(decrypted.Plaintext).equals(plaintext)) throw new Error(`${name} key: Decrypt did not round-trip`);
  const state = { keyId, ciphertext32: Buffer.from(CiphertextBlob).toString('base64') };
  writeFileSync(join(outDir, `${name}.state.json`), JSON.stringify(state));
  return state;
}

try {
  const store = await kms.send(
    new CreateCustomKeyStoreCommand({
      CustomKeyStoreName: 'bench-xks',
      CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
      XksProxyUriEndpoint: need('xks-endpoint'),
      XksProxyUriPath: need('xks-uri-path'),
      XksProxyConnectivity: 'PUBLIC_ENDPOINT',
      XksProxyAuthenticationCredential: { AccessKeyId: proxyAccessKeyId, RawSecretAccessKey: proxySecret },
    }),
  );
  const storeId = store.CustomKeyStoreId as string;
  await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
  await waitConnected(storeId);
  const external = await kms.send(
    new CreateKeyCommand({ Description: 'strongroom bench: external key', CustomKeyStoreId: storeId, Origin: 'EXTERNAL_KEY_STORE', XksKeyId: xksKeyId }),
  );
  const software = await kms.send(new CreateKeyCommand({ Description: 'strongroom bench: software key' }));
  const externalState = await stateFor(external.KeyMetadata?.KeyId as string, 0x03, 'external');
  const softwareState = await stateFor(software.KeyMetadata?.KeyId as string, 0x01, 'software');
  process.stdout.write(
    `${JSON.stringify({ customKeyStoreId: storeId, xksKeyId, externalKeyId: externalState.keyId, softwareKeyId: softwareState.keyId })}\n`,
  );
} finally {
  kms.destroy();
}
