import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { XksConfigError, loadXksProxyConfig, type XksProxyFlags } from '../../src/transports/xks-proxy/config.ts';
import { principalAllowed } from '../../src/transports/xks-proxy/operations.ts';

const dir = mkdtempSync(join(tmpdir(), 'strongroom-xks-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ACCESS_KEY_ID = 'ABCDEFGHIJKLMNOPQRST2345';
const SECRET = 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=';
let files = 0;
function privateFile(text: string, mode = 0o600): string {
  const path = join(dir, `file-${files++}`);
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
  return path;
}

const hsm = { module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 't', pinFile: '/dev/null', auditLog: join(dir, 'audit.log') };
const flags = (extra: Partial<XksProxyFlags> = {}): XksProxyFlags => ({
  ...hsm,
  credentialsFile: privateFile(`${ACCESS_KEY_ID}:${SECRET}\n`),
  key: ['k1=label-1'],
  ...extra,
});
const fileConfig = (config: object, mode = 0o600): XksProxyFlags => ({ ...hsm, config: privateFile(JSON.stringify(config), mode) });
const store = (extra: object = {}) => ({ uriPathPrefix: '/p', credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET }], keys: { k1: 'label-1' }, ...extra });

describe('xks-proxy configuration', () => {
  it('builds one key store from flags, with defaults stated', () => {
    const config = loadXksProxyConfig(flags({ uriPathPrefix: '/example/prefix/', key: ['k1=label-1', 'k2=label-2:disabled'] }));
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.region, 'us-east-1');
    assert.equal(config.keyStores.length, 1);
    const [only] = config.keyStores;
    assert.equal(only.uriPathPrefix, '/example/prefix');
    assert.equal(only.credentials[0].accessKeyId, ACCESS_KEY_ID);
    assert.equal(String(only.credentials[0].secretAccessKey), '[SecretBytes redacted]');
    assert.deepEqual(only.keys.get('k2'), { xksKeyId: 'k2', label: 'label-2', enabled: false });
    assert.equal(config.ciphertextMetadata.length, 0);
  });

  it('reads key stores from a file, paths relative to it, and lets flags override scalars', () => {
    const config = loadXksProxyConfig({
      ...fileConfig({
        region: 'eu-west-1',
        port: 8443,
        ciphertextMetadata: Buffer.from('key_version=1').toString('base64'),
        keyStores: [store(), store({ uriPathPrefix: '', keys: [{ xksKeyId: 'x.y_z-1', label: 'l', enabled: true }], allowedPrincipalArns: ['arn:aws:iam::1:role/a-*'] })],
      }),
      port: 9000,
    });
    assert.equal(config.region, 'eu-west-1');
    assert.equal(config.port, 9000);
    assert.deepEqual(config.ciphertextMetadata, Buffer.from('key_version=1'));
    assert.deepEqual(config.keyStores.map((entry) => entry.uriPathPrefix), ['/p', '']);
    assert.deepEqual(config.keyStores[1].allowedPrincipalArns, ['arn:aws:iam::1:role/a-*']);
  });

  const refusals: Array<[string, () => XksProxyFlags, RegExp]> = [
    ['a configuration file group or others may read', () => fileConfig({ keyStores: [store()] }, 0o644), /chmod 600/],
    ['a configuration file that is not JSON', () => ({ ...hsm, config: privateFile('{ "keyStores": [') }), /not valid JSON/],
    ['no key store', () => fileConfig({}), /no key store configured/],
    ['key stores from both the file and flags', () => ({ ...fileConfig({ keyStores: [store()] }), key: ['k=l'] }), /not both/],
    ['two key stores with one prefix', () => fileConfig({ keyStores: [store(), store()] }), /two key stores have the URI path prefix/],
    ['a prefix with a dot', () => flags({ uriPathPrefix: '/a.b' }), /must be empty or \/-separated/],
    ['a prefix that includes /kms/xks/v1', () => flags({ uriPathPrefix: '/a/kms/xks/v1' }), /leave that ending off/],
    ['a prefix over 117 characters', () => flags({ uriPathPrefix: `/${'a'.repeat(117)}` }), /at most 117/],
    ['three credentials', () => fileConfig({ keyStores: [store({ credentials: [1, 2, 3].map(() => ({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET })) })] }), /one or two credentials/],
    ['two credentials with one access key id', () => fileConfig({ keyStores: [store({ credentials: [1, 2].map(() => ({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET })) })] }), /same access key id/],
    ['an access key id of 19 characters', () => flags({ credentialsFile: privateFile(`${ACCESS_KEY_ID.slice(0, 19)}:${SECRET}`) }), /accessKeyId must be 20-30/],
    ['a secret of 42 characters', () => flags({ credentialsFile: privateFile(`${ACCESS_KEY_ID}:${SECRET.slice(0, 42)}`) }), /secretAccessKey must be 43-64/],
    ['a credentials line without a colon', () => flags({ credentialsFile: privateFile(ACCESS_KEY_ID) }), /ACCESS_KEY_ID:SECRET/],
    ['a key id with a slash', () => flags({ key: ['a/b=label'] }), /must be 1-128 characters/],
    ['a key id mapped twice', () => flags({ key: ['a=l1', 'a=l2'] }), /mapped twice/],
    ['a --key without a label', () => flags({ key: ['a='] }), /XKS_KEY_ID=TOKEN_KEY_LABEL/],
    ['no keys', () => flags({ key: [] }), /at least one XKS key id/],
    ['ciphertextMetadata of 21 bytes', () => flags({ ciphertextMetadata: Buffer.alloc(21).toString('base64') }), /at most 20 bytes/],
    ['ciphertextMetadata that is not base64', () => flags({ ciphertextMetadata: 'a b' }), /must be base64/],
    ['--tls-cert without --tls-key', () => flags({ tlsCert: '/c.pem' }), /go together/],
    ['--tls-client-ca without a server certificate', () => flags({ tlsClientCa: '/ca.pem' }), /needs --tls-cert/],
    ['a region that is not one', () => flags({ region: 'mars' }), /AWS region/],
    ['no PIN file', () => ({ ...flags(), pinFile: undefined }), /--pin-file/],
  ];
  for (const [title, make, message] of refusals) {
    it(`refuses ${title}`, () => {
      assert.throws(() => loadXksProxyConfig(make()), (error: unknown) => {
        assert.ok(error instanceof XksConfigError);
        assert.match(error.message, message);
        assert.ok(!error.message.includes(SECRET) && !error.message.includes(SECRET.slice(0, 42)), 'the secret is in the message');
        return true;
      });
    });
  }
});

describe('allowedPrincipalArns', () => {
  it('matches exactly, or by prefix when the entry ends in *', () => {
    const allowed = ['arn:aws:iam::1:role/exact', 'arn:aws:iam::1:role/team-*'];
    assert.equal(principalAllowed(allowed, 'arn:aws:iam::1:role/exact'), true);
    assert.equal(principalAllowed(allowed, 'arn:aws:iam::1:role/exact2'), false);
    assert.equal(principalAllowed(allowed, 'arn:aws:iam::1:role/team-a'), true);
    assert.equal(principalAllowed(allowed, 'arn:aws:iam::2:role/team-a'), false);
    assert.equal(principalAllowed(allowed, ''), false);
  });
});
