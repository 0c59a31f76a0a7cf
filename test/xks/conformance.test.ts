/**
 * `strongroom xks-proxy` as KMS would meet it: a child process in front of a real SoftHSMv2 token,
 * called by an independent client (curl 7.75+, which signs SigV4 itself with --aws-sigv4), over
 * every endpoint, error and size limit of the XKS Proxy API spec v1.0.3, with rotated credentials
 * and the audit log checked line by line.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SOFTHSM_MODULE, SoftHsm, type TestToken } from '../keystores/softhsm.ts';
import {
  curl,
  generateAesKey,
  generateWrapOnlyKey,
  importAesKey,
  newCredential,
  startProxy,
  writePrivate,
  type Credential,
  type RunningProxy,
} from './proxy-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'strongroom-xks-conformance-'));
const auditLog = join(dir, 'audit.log');
const knownKey = randomBytes(32);
const rotatedOut = newCredential();
const rotatedIn = newCredential();
const restricted = newCredential();
const METADATA = Buffer.from('key_version=1');
const PREFIX = '/example/prefix';
let token: TestToken;
let proxy: RunningProxy;
let configFile: string;
let config: { keyStores: Array<Record<string, unknown>> } & Record<string, unknown>;

const principal = 'arn:aws:iam::111122223333:role/app';
const requestMetadata = (kmsRequestId: string, kmsOperation = 'Encrypt') => ({
  awsPrincipalArn: principal,
  kmsKeyArn: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  kmsOperation,
  kmsRequestId,
  kmsViaService: 'ebs',
});

const b64 = (bytes: Buffer | string): string => Buffer.from(bytes).toString('base64');
const url = (path: string, prefix = PREFIX): string => `${proxy.url}${prefix}/kms/xks/v1/${path}`;
const post = (path: string, body: object | string, credential: Credential = rotatedOut, prefix = PREFIX) =>
  curl(url(path, prefix), typeof body === 'string' ? body : JSON.stringify(body), { credential });

function encryptBody(plaintext: Buffer, aad: Buffer | undefined, id = 'enc') {
  return {
    requestMetadata: requestMetadata(id),
    plaintext: b64(plaintext),
    ...(aad && { additionalAuthenticatedData: b64(aad) }),
    encryptionAlgorithm: 'AES_GCM',
    ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
  };
}

function decryptBody(sealed: Record<string, unknown>, aad: Buffer | undefined, id = 'dec') {
  return {
    requestMetadata: requestMetadata(id, 'Decrypt'),
    ciphertext: sealed.ciphertext,
    initializationVector: sealed.initializationVector,
    authenticationTag: sealed.authenticationTag,
    ...(sealed.ciphertextMetadata !== undefined && { ciphertextMetadata: sealed.ciphertextMetadata }),
    ...(aad && { additionalAuthenticatedData: b64(aad) }),
    encryptionAlgorithm: 'AES_GCM',
  };
}

describe('strongroom xks-proxy in front of SoftHSMv2, driven by curl --aws-sigv4', { timeout: 120_000 }, () => {
  before(async () => {
    token = SoftHsm.get().createToken('xks-conformance');
    generateAesKey(token, 'xks-aes-1');
    generateAesKey(token, 'xks-aes-2');
    generateAesKey(token, 'xks-aes-128', 16);
    generateAesKey(token, 'xks-twice');
    generateAesKey(token, 'xks-twice');
    importAesKey(token, 'xks-known', knownKey, dir);
    await generateWrapOnlyKey(token, 'xks-wrap-only');
    const pinFile = writePrivate(join(dir, 'pin'), `${token.pin}\n`);
    config = {
      region: 'us-east-1',
      pkcs11: { module: SOFTHSM_MODULE, tokenLabel: token.label, pinFile, sessions: 4 },
      ciphertextMetadata: b64(METADATA),
      keyStores: [
        {
          uriPathPrefix: PREFIX,
          credentials: [rotatedOut, rotatedIn],
          keys: [
            { xksKeyId: 'key-1', label: 'xks-aes-1' },
            { xksKeyId: 'key-2', label: 'xks-aes-2' },
            { xksKeyId: 'known', label: 'xks-known' },
            { xksKeyId: 'disabled', label: 'xks-aes-1', enabled: false },
            { xksKeyId: 'wrap-only', label: 'xks-wrap-only' },
            { xksKeyId: 'aes-128', label: 'xks-aes-128' },
            { xksKeyId: 'missing', label: 'no-such-label' },
            { xksKeyId: 'twice', label: 'xks-twice' },
          ],
        },
        {
          uriPathPrefix: '/restricted',
          credentials: [restricted],
          keys: { 'key-1': 'xks-aes-1' },
          allowedPrincipalArns: ['arn:aws:iam::111122223333:role/allowed-*'],
        },
      ],
    };
    configFile = writePrivate(join(dir, 'xks-proxy.json'), JSON.stringify(config));
    proxy = await startProxy(['--config', configFile, '--audit-log', auditLog]);
  });

  after(async () => {
    await proxy?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers the health check with the token as the EKM, after a real encryption in it', async () => {
    const { status, json } = await post('health', { requestMetadata: { kmsRequestId: 'health-1', kmsOperation: 'KmsHealthCheck' } });
    assert.equal(status, 200);
    assert.equal(json.xksProxyFleetSize, 1);
    assert.equal(json.xksProxyVendor, 'Strongroom');
    assert.equal(json.ekmVendor, 'SoftHSM project');
    const fleet = json.ekmFleetDetails as Array<Record<string, string>>;
    assert.equal(fleet.length, 1);
    assert.equal(fleet[0].healthStatus, 'ACTIVE');
    assert.equal(fleet[0].model, 'SoftHSM v2');
    assert.match(fleet[0].id, /^xks-conformance:/);
  });

  it('describes an AES-256 key as KMS requires it, and a disabled one as DISABLED', async () => {
    const enabled = await post('keys/key-1/metadata', { requestMetadata: requestMetadata('md-1', 'CreateKey') });
    assert.equal(enabled.status, 200);
    assert.equal(enabled.json.keySpec, 'AES_256');
    assert.equal(enabled.json.keyStatus, 'ENABLED');
    assert.ok((enabled.json.keyUsage as string[]).includes('ENCRYPT') && (enabled.json.keyUsage as string[]).includes('DECRYPT'));
    const disabled = await post('keys/disabled/metadata', { requestMetadata: requestMetadata('md-2', 'DescribeKey') });
    assert.deepEqual([disabled.status, disabled.json.keyStatus], [200, 'DISABLED']);
    const wrapOnly = await post('keys/wrap-only/metadata', { requestMetadata: requestMetadata('md-3', 'CreateKey') });
    assert.deepEqual(wrapOnly.json.keyUsage, ['WRAP', 'UNWRAP']);
  });

  it('encrypts in the HSM and decrypts back, returning the spec integrity value and metadata', async () => {
    const plaintext = randomBytes(300);
    const aad = Buffer.from('kms-context-hash-and-header');
    const sealed = await post('keys/key-1/encrypt', encryptBody(plaintext, aad));
    assert.equal(sealed.status, 200, JSON.stringify(sealed.json));
    const bytes = (field: string) => Buffer.from(sealed.json[field] as string, 'base64');
    assert.equal(bytes('ciphertext').length, plaintext.length);
    assert.equal(bytes('initializationVector').length, 12);
    assert.equal(bytes('authenticationTag').length, 16);
    assert.deepEqual(bytes('ciphertextMetadata'), METADATA);
    const expected = createHash('sha256')
      .update(Buffer.concat([aad, METADATA, bytes('initializationVector'), bytes('ciphertext'), bytes('authenticationTag')]))
      .digest('base64');
    assert.equal(sealed.json.ciphertextDataIntegrityValue, expected);
    const opened = await post('keys/key-1/decrypt', decryptBody(sealed.json, aad));
    assert.equal(opened.status, 200);
    assert.deepEqual(Buffer.from(opened.json.plaintext as string, 'base64'), plaintext);
  });

  it('is AES-256-GCM under the token key with the spec AAD (checked outside the HSM with the key value)', async () => {
    const plaintext = Buffer.from('checked independently of the proxy');
    const aad = Buffer.from('project=nile,department=marketing');
    const { json } = await post('keys/known/encrypt', encryptBody(plaintext, aad));
    const decipher = createDecipheriv('aes-256-gcm', knownKey, Buffer.from(json.initializationVector as string, 'base64'));
    decipher.setAAD(Buffer.concat([Buffer.from([0, aad.length]), aad, Buffer.from([METADATA.length]), METADATA]));
    decipher.setAuthTag(Buffer.from(json.authenticationTag as string, 'base64'));
    assert.deepEqual(Buffer.concat([decipher.update(Buffer.from(json.ciphertext as string, 'base64')), decipher.final()]), plaintext);
  });

  it('handles the spec maximum sizes (4300 B plaintext, 8192 B AAD) and empty ones', async () => {
    for (const [plaintext, aad] of [
      [randomBytes(4300), randomBytes(8192)],
      [randomBytes(1), undefined],
      [Buffer.alloc(0), Buffer.alloc(0)],
    ] as Array<[Buffer, Buffer | undefined]>) {
      const sealed = await post('keys/key-2/encrypt', encryptBody(plaintext, aad));
      assert.equal(sealed.status, 200, JSON.stringify(sealed.json));
      const opened = await post('keys/key-2/decrypt', decryptBody(sealed.json, aad));
      assert.equal(opened.status, 200, JSON.stringify(opened.json));
      assert.deepEqual(Buffer.from(opened.json.plaintext as string, 'base64'), plaintext);
    }
  });

  it('refuses with InvalidCiphertextException a ciphertext with any part altered, or under another key', async () => {
    const aad = Buffer.from('aad');
    const sealed = (await post('keys/key-1/encrypt', encryptBody(randomBytes(32), aad))).json;
    const flip = (field: string) => {
      const bytes = Buffer.from(sealed[field] as string, 'base64');
      bytes[bytes.length - 1] ^= 1;
      return b64(bytes);
    };
    const cases: Array<[string, string, object]> = [
      ['ciphertext', 'key-1', decryptBody({ ...sealed, ciphertext: flip('ciphertext') }, aad)],
      ['tag', 'key-1', decryptBody({ ...sealed, authenticationTag: flip('authenticationTag') }, aad)],
      ['IV', 'key-1', decryptBody({ ...sealed, initializationVector: flip('initializationVector') }, aad)],
      ['ciphertextMetadata', 'key-1', decryptBody({ ...sealed, ciphertextMetadata: flip('ciphertextMetadata') }, aad)],
      ['no ciphertextMetadata', 'key-1', decryptBody({ ...sealed, ciphertextMetadata: undefined }, aad)],
      ['AAD', 'key-1', decryptBody(sealed, Buffer.from('aae'))],
      ['no AAD', 'key-1', decryptBody(sealed, undefined)],
      ['another key', 'key-2', decryptBody(sealed, aad)],
    ];
    for (const [title, keyId, body] of cases) {
      const { status, json } = await post(`keys/${keyId}/decrypt`, body);
      assert.deepEqual([status, json.errorName], [400, 'InvalidCiphertextException'], title);
    }
    // The pool survives all those failed C_Decrypt calls.
    assert.equal((await post('keys/key-1/decrypt', decryptBody(sealed, aad))).status, 200);
  });

  const errorCases: Array<{ title: string; path: string; body: object | string; status: number; errorName: string; prefix?: string }> = [
    { title: 'a body that is not JSON', path: 'keys/key-1/encrypt', body: '{"plaintext":', status: 400, errorName: 'ValidationException' },
    { title: 'no requestMetadata', path: 'keys/key-1/metadata', body: {}, status: 400, errorName: 'ValidationException' },
    { title: 'plaintext that is not base64', path: 'keys/key-1/encrypt', body: { ...encryptBody(Buffer.alloc(1), undefined), plaintext: '***' }, status: 400, errorName: 'ValidationException' },
    { title: 'plaintext of 4301 bytes', path: 'keys/key-1/encrypt', body: encryptBody(randomBytes(4301), undefined), status: 400, errorName: 'ValidationException' },
    { title: 'AAD of 8193 bytes', path: 'keys/key-1/encrypt', body: encryptBody(randomBytes(16), randomBytes(8193)), status: 400, errorName: 'ValidationException' },
    { title: 'an ARN of 2049 characters', path: 'keys/key-1/encrypt', body: { ...encryptBody(randomBytes(16), undefined), requestMetadata: { ...requestMetadata('arn'), kmsKeyArn: 'a'.repeat(2049) } }, status: 400, errorName: 'ValidationException' },
    { title: 'a body over 32 KiB', path: 'keys/key-1/encrypt', body: { ...encryptBody(randomBytes(16), undefined), padding: 'x'.repeat(33 * 1024) }, status: 400, errorName: 'ValidationException' },
    { title: 'ciphertextMetadata of 21 bytes', path: 'keys/key-1/decrypt', body: { ...decryptBody({ ciphertext: 'AAAA', initializationVector: b64(randomBytes(12)), authenticationTag: b64(randomBytes(16)) }, undefined), ciphertextMetadata: b64(randomBytes(21)) }, status: 400, errorName: 'ValidationException' },
    { title: 'an algorithm other than AES_GCM', path: 'keys/key-1/encrypt', body: { ...encryptBody(randomBytes(16), undefined), encryptionAlgorithm: 'AES_CBC' }, status: 501, errorName: 'UnsupportedOperationException' },
    { title: 'a disabled key (Encrypt)', path: 'keys/disabled/encrypt', body: encryptBody(randomBytes(16), undefined), status: 400, errorName: 'InvalidStateException' },
    { title: 'a disabled key (Decrypt)', path: 'keys/disabled/decrypt', body: decryptBody({ ciphertext: 'AAAA', initializationVector: b64(randomBytes(12)), authenticationTag: b64(randomBytes(16)) }, undefined), status: 400, errorName: 'InvalidStateException' },
    { title: 'a key that may not encrypt', path: 'keys/wrap-only/encrypt', body: encryptBody(randomBytes(16), undefined), status: 400, errorName: 'InvalidKeyUsageException' },
    { title: 'an AES-128 key (Encrypt)', path: 'keys/aes-128/encrypt', body: encryptBody(randomBytes(16), undefined), status: 400, errorName: 'InvalidKeyUsageException' },
    { title: 'an AES-128 key (metadata)', path: 'keys/aes-128/metadata', body: { requestMetadata: requestMetadata('m', 'CreateKey') }, status: 501, errorName: 'UnsupportedOperationException' },
    { title: 'an unmapped key id', path: 'keys/nobody/metadata', body: { requestMetadata: requestMetadata('m', 'CreateKey') }, status: 404, errorName: 'KeyNotFoundException' },
    { title: 'a key id mapped to a label the token lacks', path: 'keys/missing/encrypt', body: encryptBody(randomBytes(16), undefined), status: 404, errorName: 'KeyNotFoundException' },
    { title: 'a label two token keys share', path: 'keys/twice/encrypt', body: encryptBody(randomBytes(16), undefined), status: 400, errorName: 'InvalidStateException' },
    { title: 'an unknown URI path prefix', path: 'health', body: {}, prefix: '/other', status: 404, errorName: 'InvalidUriPathException' },
    { title: 'an unknown operation', path: 'keys/key-1/sign', body: {}, status: 404, errorName: 'InvalidUriPathException' },
  ];
  for (const { title, path, body, status, errorName, prefix } of errorCases) {
    it(`answers ${title} with ${errorName} ${status}`, async () => {
      const { status: got, json } = await post(path, body, rotatedOut, prefix);
      assert.deepEqual([got, json.errorName], [status, errorName], JSON.stringify(json));
      assert.equal(typeof json.errorMessage, 'string');
      assert.ok((json.errorMessage as string).length < 512);
      assert.match(json.errorMessage as string, /^[\x20-\x7e]*$/);
    });
  }

  it('answers GET on an XKS URI with 405', async () => {
    for (const path of ['health', 'keys/key-1/metadata']) {
      const { status } = await curl(url(path), undefined, { credential: rotatedOut, method: 'GET' });
      assert.equal(status, 405);
    }
  });

  it('lets a principal-restricted key store refuse a principal (AccessDeniedException) but not the health check', async () => {
    const denied = await post('keys/key-1/encrypt', encryptBody(randomBytes(16), undefined), restricted, '/restricted');
    assert.deepEqual([denied.status, denied.json.errorName], [403, 'AccessDeniedException']);
    const allowed = await post(
      'keys/key-1/encrypt',
      { ...encryptBody(randomBytes(16), undefined), requestMetadata: { ...requestMetadata('ok'), awsPrincipalArn: 'arn:aws:iam::111122223333:role/allowed-reader' } },
      restricted,
      '/restricted',
    );
    assert.equal(allowed.status, 200);
    const health = await post('health', { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } }, restricted, '/restricted');
    assert.equal(health.status, 200);
  });

  it('accepts both credentials of a key store during rotation and refuses every other signature', async () => {
    const body = { requestMetadata: requestMetadata('rotation', 'CreateKey') };
    assert.equal((await post('keys/key-1/metadata', body, rotatedOut)).status, 200);
    assert.equal((await post('keys/key-1/metadata', body, rotatedIn)).status, 200);
    const refusals: Array<[string, () => ReturnType<typeof curl>]> = [
      ["another key store's credential", () => post('keys/key-1/metadata', body, restricted)],
      ['a wrong secret', () => post('keys/key-1/metadata', body, { ...rotatedIn, secretAccessKey: newCredential().secretAccessKey })],
      ['an unknown access key id', () => post('keys/key-1/metadata', body, { ...newCredential(), secretAccessKey: rotatedIn.secretAccessKey })],
      ['another region', () => curl(url('keys/key-1/metadata'), JSON.stringify(body), { credential: rotatedIn, sigv4: 'aws:amz:eu-west-1:kms-xks-proxy' })],
      ['another service', () => curl(url('keys/key-1/metadata'), JSON.stringify(body), { credential: rotatedIn, sigv4: 'aws:amz:us-east-1:kms' })],
      ['no signature at all', () => curl(url('keys/key-1/metadata'), JSON.stringify(body))],
      ['no signature on the health check', () => curl(url('health'), '{}')],
    ];
    for (const [title, send] of refusals) {
      const { status, json } = await send();
      assert.deepEqual([status, json.errorName], [401, 'AuthenticationFailedException'], title);
      assert.doesNotMatch(JSON.stringify(json), new RegExp(rotatedIn.secretAccessKey.replace(/[+/=]/g, '.')), title);
    }
  });

  it('logs each request as one JSON line with its requestMetadata in a 0600 file, and no secret or payload', async () => {
    const plaintext = randomBytes(48);
    const aad = randomBytes(40);
    const sealed = await post('keys/key-1/encrypt', encryptBody(plaintext, aad, 'audit-encrypt-1'));
    await post('keys/key-1/decrypt', decryptBody(sealed.json, aad, 'audit-decrypt-1'));
    await post('keys/key-1/metadata', { requestMetadata: requestMetadata('audit-md-1', 'CreateKey') }, { ...rotatedIn, secretAccessKey: newCredential().secretAccessKey });
    assert.equal(statSync(auditLog).mode & 0o777, 0o600);
    const text = readFileSync(auditLog, 'utf8');
    const events = text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
    const encrypt = events.find((event) => event.requestMetadata?.kmsRequestId === 'audit-encrypt-1');
    assert.ok(encrypt);
    assert.equal(encrypt.operation, 'Encrypt');
    assert.equal(encrypt.externalKeyId, 'key-1');
    assert.equal(encrypt.uriPathPrefix, PREFIX);
    assert.equal(encrypt.accessKeyId, rotatedOut.accessKeyId);
    assert.equal(encrypt.httpStatus, 200);
    assert.deepEqual(encrypt.requestMetadata, requestMetadata('audit-encrypt-1'));
    const decrypt = events.find((event) => event.requestMetadata?.kmsRequestId === 'audit-decrypt-1');
    assert.equal(decrypt?.operation, 'Decrypt');
    const invalid = events.find((event) => event.errorName === 'InvalidCiphertextException');
    assert.equal(invalid?.httpStatus, 400);
    // A refused signature is logged, without the (unauthenticated) body's metadata.
    const refused = events.filter((event) => event.errorName === 'AuthenticationFailedException');
    assert.ok(refused.length > 0);
    assert.ok(refused.every((event) => event.requestMetadata === undefined && event.accessKeyId === undefined));
    assert.ok(events.some((event) => event.operation === 'GetHealthStatus' && event.requestMetadata?.kmsOperation === 'KmsHealthCheck'));
    for (const forbidden of [b64(plaintext), b64(aad), sealed.json.ciphertext as string, rotatedOut.secretAccessKey, rotatedIn.secretAccessKey, token.pin]) {
      assert.ok(!text.includes(forbidden), 'the audit log holds a payload or secret');
    }
    assert.ok(!proxy.output().includes(rotatedOut.secretAccessKey) && !proxy.output().includes(token.pin));
  });

  it('rotates credentials without a restart: SIGHUP applies the new key stores, a broken file changes nothing', async () => {
    const body = { requestMetadata: requestMetadata('reload', 'CreateKey') };
    const waitFor = async (text: string, count: number) => {
      for (let i = 0; i < 100 && proxy.output().split(text).length - 1 < count; i++) await new Promise((done) => setTimeout(done, 50));
      assert.equal(proxy.output().split(text).length - 1, count, proxy.output());
    };
    writePrivate(configFile, '{ not json');
    proxy.process.kill('SIGHUP');
    await waitFor('reload refused', 1);
    assert.equal((await post('keys/key-1/metadata', body, rotatedOut)).status, 200);

    const next = newCredential();
    const [first, ...rest] = config.keyStores;
    writePrivate(configFile, JSON.stringify({ ...config, keyStores: [{ ...first, credentials: [rotatedIn, next] }, ...rest] }));
    proxy.process.kill('SIGHUP');
    await waitFor('reloaded the key stores', 1);
    const old = await post('keys/key-1/metadata', body, rotatedOut);
    assert.deepEqual([old.status, old.json.errorName], [401, 'AuthenticationFailedException']);
    assert.equal((await post('keys/key-1/metadata', body, rotatedIn)).status, 200);
    assert.equal((await post('keys/key-1/metadata', body, next)).status, 200);
    assert.ok(!proxy.output().includes(next.secretAccessKey));
  });
});
