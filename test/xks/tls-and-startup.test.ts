/**
 * `strongroom xks-proxy` configured by flags alone: HTTPS with mutual TLS (client certificate
 * chained to a configured CA and carrying the configured CN, as KMS presents
 * cks.kms.<region>.amazonaws.com), and the refusals to start on unsafe or malformed settings.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SOFTHSM_MODULE, SoftHsm, type TestToken } from '../keystores/softhsm.ts';
import { curl, failedStart, generateAesKey, newCredential, startProxy, writePrivate, type RunningProxy } from './proxy-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'strongroom-xks-tls-'));
const credential = newCredential();
const KMS_CN = 'cks.kms.us-east-1.amazonaws.com';
let token: TestToken;
let proxy: RunningProxy;
let credentialsFile: string;
let pinFile: string;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A P-256 key and a certificate for it signed by `ca`, with the given subject CN and extensions. */
function issue(name: string, commonName: string, ca: string, extensions: string): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${commonName}`]);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`]);
}

function certificateAuthority(name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '1', '-subj', `/CN=${name}`]);
}

const commonArgs = () => ['--module', SOFTHSM_MODULE, '--token-label', token.label, '--pin-file', pinFile, '--key', 'tls-key=xks-tls-key'];
const health = JSON.stringify({ requestMetadata: { kmsRequestId: 'tls-health', kmsOperation: 'KmsHealthCheck' } });

describe('strongroom xks-proxy over mutual TLS, configured by flags', { timeout: 120_000 }, () => {
  before(async () => {
    token = SoftHsm.get().createToken('xks-tls');
    generateAesKey(token, 'xks-tls-key');
    pinFile = writePrivate(join(dir, 'pin'), token.pin);
    credentialsFile = writePrivate(join(dir, 'credentials'), `# rotation: one line per credential\n${credential.accessKeyId}:${credential.secretAccessKey}\n`);
    certificateAuthority('ca');
    certificateAuthority('other-ca');
    issue('server', 'xks.example.test', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    issue('kms', KMS_CN, 'ca', 'extendedKeyUsage=clientAuth\n');
    issue('impostor', 'someone.example.test', 'ca', 'extendedKeyUsage=clientAuth\n');
    issue('stranger', KMS_CN, 'other-ca', 'extendedKeyUsage=clientAuth\n');
    proxy = await startProxy([
      ...commonArgs(),
      '--uri-path-prefix', '/tls',
      '--credentials-file', credentialsFile,
      '--audit-log', join(dir, 'audit.log'),
      '--tls-cert', join(dir, 'server.pem'),
      '--tls-key', join(dir, 'server.key'),
      '--tls-client-ca', join(dir, 'ca.pem'),
      '--tls-client-cn', KMS_CN,
    ]);
  });

  after(async () => {
    await proxy?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const tlsArgs = (client?: string) => [
    '--cacert', join(dir, 'ca.pem'),
    ...(client ? ['--cert', join(dir, `${client}.pem`), '--key', join(dir, `${client}.key`)] : []),
  ];

  it('serves HTTPS to a client presenting the KMS certificate', async () => {
    assert.match(proxy.url, /^https:\/\//);
    const { status, json } = await curl(`${proxy.url}/tls/kms/xks/v1/health`, health, { credential, extra: tlsArgs('kms') });
    assert.equal(status, 200, JSON.stringify(json));
    assert.equal((json.ekmFleetDetails as Array<{ healthStatus: string }>)[0].healthStatus, 'ACTIVE');
  });

  it('refuses in the handshake a client without a certificate or with one from another CA', async () => {
    for (const client of [undefined, 'stranger']) {
      const { exitCode, status } = await curl(`${proxy.url}/tls/kms/xks/v1/health`, health, { credential, extra: tlsArgs(client) });
      assert.notEqual(exitCode, 0, `client ${client ?? 'without certificate'}`);
      assert.equal(status, 0);
    }
  });

  it('refuses a certificate of the right CA with another common name (AuthenticationFailedException)', async () => {
    const { status, json } = await curl(`${proxy.url}/tls/kms/xks/v1/health`, health, { credential, extra: tlsArgs('impostor') });
    assert.deepEqual([status, json.errorName], [401, 'AuthenticationFailedException']);
  });

  const refusals: Array<{ title: string; args: () => string[]; message: RegExp }> = [
    {
      title: 'a credentials file others may read',
      args: () => {
        const loose = join(dir, 'loose-credentials');
        writeFileSync(loose, `${credential.accessKeyId}:${credential.secretAccessKey}\n`, { mode: 0o644 });
        return [...commonArgs(), '--credentials-file', loose, '--audit-log', join(dir, 'a.log')];
      },
      message: /chmod 600/,
    },
    {
      title: 'an access key id outside the spec alphabet',
      args: () => [...commonArgs(), '--credentials-file', writePrivate(join(dir, 'bad-id'), `akid-lowercase-1234567:${credential.secretAccessKey}\n`), '--audit-log', join(dir, 'a.log')],
      message: /accessKeyId must be 20-30 characters from A-Z and 2-7/,
    },
    {
      title: 'no audit log',
      args: () => [...commonArgs(), '--credentials-file', credentialsFile],
      message: /--audit-log is required/,
    },
    {
      title: 'a wrong PIN',
      args: () => [
        '--module', SOFTHSM_MODULE, '--token-label', token.label, '--pin-file', writePrivate(join(dir, 'wrong-pin'), 'not-the-pin-4242'),
        '--key', 'k=xks-tls-key', '--credentials-file', credentialsFile, '--audit-log', join(dir, 'a.log'),
      ],
      message: /PIN/,
    },
  ];
  for (const { title, args, message } of refusals) {
    it(`refuses to start with ${title}, without printing a secret`, async () => {
      const { code, output } = await failedStart(args());
      assert.notEqual(code, 0);
      assert.match(output, message);
      assert.ok(!output.includes(credential.secretAccessKey) && !output.includes('not-the-pin-4242') && !output.includes(token.pin));
    });
  }
});
