/**
 * External key stores end to end, every part real: the AWS SDK → `strongroom serve` → two
 * `strongroom xks-proxy` processes (redundant links to one "xks.test" host, over TLS with a test
 * CA) → a SoftHSMv2 token. Double encryption, the proxy's own audit log, AWS's errors, and a link
 * killed under load costing no request.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeCustomKeyStoresCommand,
  DescribeKeyCommand,
  DisconnectCustomKeyStoreCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  ReEncryptCommand,
} from '@aws-sdk/client-kms';
import { SOFTHSM_MODULE, SoftHsm, type TestToken } from '../keystores/softhsm.ts';
import { startServer, type RunningServer } from '../support/server.ts';
import { generateAesKey, newCredential, startProxy, writePrivate, type Credential, type RunningProxy } from '../xks/proxy-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'strongroom-xks-e2e-'));
const PREFIX = '/strongroom';
const URI_PATH = `${PREFIX}/kms/xks/v1`;
let token: TestToken;
let credential: Credential;
let proxies: RunningProxy[] = [];
let server: RunningServer;
let kms: KMSClient;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

const portOf = (url: string): number => Number(new URL(url).port);

async function startProxies(): Promise<RunningProxy[]> {
  const started: RunningProxy[] = [];
  for (const name of ['a', 'b']) {
    started.push(
      await startProxy([
        '--config', join(dir, 'proxy.json'),
        '--audit-log', join(dir, `proxy-${name}.log`),
        '--tls-cert', join(dir, 'server.pem'),
        '--tls-key', join(dir, 'server.key'),
      ]),
    );
  }
  return started;
}

async function waitForState(id: string, states: string[]): Promise<{ ConnectionState?: string; ConnectionErrorCode?: string }> {
  for (let i = 0; i < 300; i++) {
    const entry = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }))).CustomKeyStores![0];
    if (states.includes(entry.ConnectionState as string)) return entry;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${id} never reached ${states.join('/')}`);
}

const storeInput = (name: string, overrides: Partial<Credential> = {}, endpoint = 'https://xks.test') => ({
  CustomKeyStoreName: name,
  CustomKeyStoreType: 'EXTERNAL_KEY_STORE' as const,
  XksProxyUriEndpoint: endpoint,
  XksProxyUriPath: URI_PATH,
  XksProxyConnectivity: 'PUBLIC_ENDPOINT' as const,
  XksProxyAuthenticationCredential: {
    AccessKeyId: overrides.accessKeyId ?? credential.accessKeyId,
    RawSecretAccessKey: overrides.secretAccessKey ?? credential.secretAccessKey,
  },
});

describe('external key store: Strongroom KMS ↔ Strongroom XKS proxy ↔ SoftHSMv2', { timeout: 180_000 }, () => {
  let storeId: string;
  let keyId: string;

  before(async () => {
    token = SoftHsm.get().createToken('xks-e2e');
    generateAesKey(token, 'xks-e2e-1');
    generateAesKey(token, 'xks-e2e-2');
    credential = newCredential();
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=xks-e2e-ca']);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=xks.test']);
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:xks.test,DNS:xks-down.test\n');
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'server.ext']);
    const pinFile = writePrivate(join(dir, 'pin'), `${token.pin}\n`);
    writePrivate(
      join(dir, 'proxy.json'),
      JSON.stringify({
        region: 'us-east-1',
        pkcs11: { module: SOFTHSM_MODULE, tokenLabel: token.label, pinFile, sessions: 4 },
        keyStores: [
          {
            uriPathPrefix: PREFIX,
            credentials: [credential],
            keys: [
              { xksKeyId: 'ek-1', label: 'xks-e2e-1' },
              { xksKeyId: 'ek-2', label: 'xks-e2e-2' },
              { xksKeyId: 'ek-disabled', label: 'xks-e2e-2', enabled: false },
            ],
          },
        ],
      }),
    );
    proxies = await startProxies();
    server = await startServer({
      args: [
        '--xks-proxy-ca', join(dir, 'ca.pem'),
        '--xks-proxy-address', `xks.test=${proxies.map((proxy) => `127.0.0.1:${portOf(proxy.url)}`).join(',')}`,
        // A host whose only address refuses connections: a proxy that is down.
        '--xks-proxy-address', 'xks-down.test=127.0.0.1:1',
      ],
    });
    kms = server.kms();
  });

  after(async () => {
    await server?.stop();
    for (const proxy of proxies) await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('CreateCustomKeyStore checks the proxy: unreachable and wrong credentials are refused as AWS does', async () => {
    await assert.rejects(kms.send(new CreateCustomKeyStoreCommand(storeInput('down', {}, 'https://xks-down.test'))), {
      name: 'XksProxyUriUnreachableException',
    });
    await assert.rejects(
      kms.send(new CreateCustomKeyStoreCommand(storeInput('wrong', { secretAccessKey: newCredential().secretAccessKey }))),
      { name: 'XksProxyIncorrectAuthenticationCredentialException' },
    );
    storeId = (await kms.send(new CreateCustomKeyStoreCommand(storeInput('on-prem')))).CustomKeyStoreId!;
    const entry = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId }))).CustomKeyStores![0];
    assert.equal(entry.ConnectionState, 'DISCONNECTED');
    assert.deepEqual(entry.XksProxyConfiguration, {
      Connectivity: 'PUBLIC_ENDPOINT',
      AccessKeyId: credential.accessKeyId,
      UriEndpoint: 'https://xks.test',
      UriPath: URI_PATH,
    });
    await assert.rejects(kms.send(new CreateCustomKeyStoreCommand(storeInput('again'))), { name: 'XksProxyUriInUseException' });
  });

  it('connects, and CreateKey checks the external key through the proxy', async () => {
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    assert.equal((await waitForState(storeId, ['CONNECTED', 'FAILED'])).ConnectionState, 'CONNECTED');
    const create = (xksKeyId: string) =>
      kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'EXTERNAL_KEY_STORE', XksKeyId: xksKeyId }));
    await assert.rejects(create('no-such-key'), { name: 'XksKeyNotFoundException' });
    await assert.rejects(create('ek-disabled'), { name: 'XksKeyInvalidConfigurationException' });
    keyId = (await create('ek-1')).KeyMetadata!.KeyId!;
    await assert.rejects(create('ek-1'), { name: 'XksKeyAlreadyInUseException' });
    const metadata = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    assert.equal(metadata.Origin, 'EXTERNAL_KEY_STORE');
    assert.equal(metadata.CustomKeyStoreId, storeId);
    assert.deepEqual(metadata.XksKeyConfiguration, { Id: 'ek-1' });
  });

  it('double encryption: Encrypt, Decrypt, GenerateDataKey and ReEncrypt through the proxy and the HSM', async () => {
    const plaintext = Buffer.from('on-premises secret');
    const context = { tenant: 'blue' };
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }));
    assert.equal(CiphertextBlob![0], 0x03, 'the external key format');
    const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: context }));
    assert.deepEqual(Buffer.from(decrypted.Plaintext!), plaintext);
    assert.equal(decrypted.KeyId, `arn:aws:kms:us-east-1:${/:(\d{12}):/.exec(decrypted.KeyId!)![1]}:key/${keyId}`);
    await assert.rejects(kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { tenant: 'red' } })), {
      name: 'InvalidCiphertextException',
    });
    const tampered = Buffer.from(CiphertextBlob!);
    tampered[tampered.length - 1] ^= 1; // the proxy's layer
    await assert.rejects(kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: context })), {
      name: 'InvalidCiphertextException',
    });
    const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
    const unwrapped = await kms.send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob }));
    assert.deepEqual(Buffer.from(unwrapped.Plaintext!), Buffer.from(dataKey.Plaintext!));
    const software = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const moved = await kms.send(
      new ReEncryptCommand({ CiphertextBlob, SourceEncryptionContext: context, DestinationKeyId: software, DestinationEncryptionContext: context }),
    );
    assert.equal(moved.CiphertextBlob![0], 0x01);
    // The proxy logged each call with who asked, for which KMS key, never the data.
    const log = proxies.map((_, i) => readFileSync(join(dir, `proxy-${'ab'[i]}.log`), 'utf8')).join('');
    assert.match(log, new RegExp(`key/${keyId}`));
    assert.match(log, /user\/admin/);
    assert.equal(log.includes('on-premises secret'), false);
    assert.equal(log.includes(Buffer.from('on-premises secret').toString('base64')), false);
  });

  it('one proxy killed under load: every request still succeeds through the other link', async () => {
    const plaintext = Buffer.from('load');
    let killed = false;
    let done = 0;
    const worker = async () => {
      for (let i = 0; i < 40; i++) {
        const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
        const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob }));
        assert.deepEqual(Buffer.from(Plaintext!), plaintext);
        if (++done === 60 && !killed) {
          killed = true;
          proxies[0].process.kill('SIGKILL');
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: 6 }, worker));
    } catch (error) {
      console.log(server.output());
      throw error;
    }
    assert.equal(killed, true);
    assert.equal(done, 240);
  });

  it('a disconnected store: its keys are Unavailable and refuse crypto', async () => {
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState, 'Unavailable');
    await assert.rejects(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })), {
      name: 'KMSInvalidStateException',
    });
  });
});
