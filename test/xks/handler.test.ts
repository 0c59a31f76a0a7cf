/**
 * The proxy in-process, in front of a node:crypto stand-in for the HSM whose failures the tests
 * choose: the parts of the spec a real SoftHSM token cannot be made to show on demand (a busy or
 * unreachable HSM, a faulty one caught by the self-check, a failing audit log, clock skew).
 * conformance.test.ts drives the real thing with curl and SoftHSMv2.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HttpRequest } from '@smithy/protocol-http';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { XksAuditLog } from '../../src/transports/xks-proxy/audit-log.ts';
import type { XksProxyConfig } from '../../src/transports/xks-proxy/config.ts';
import { HsmFailure, type EkmHealth, type GcmSealed, type HsmBackend, type HsmKeyInfo } from '../../src/transports/xks-proxy/hsm-backend.ts';
import { gcmAad } from '../../src/crypto/xks-integrity.ts';
import { startXksProxyServer, type RunningXksProxy } from '../../src/transports/xks-proxy/server.ts';
import { kmsSigner } from '../support/sigv4-signing.ts';

const ACCESS_KEY_ID = 'AKIAXKSTESTAAAAAAAAA2';
const SECRET = randomBytes(32).toString('base64');

/** AES-256-GCM in node:crypto, with a switch to make the next calls fail in a chosen way. */
class SoftwareBackend implements HsmBackend {
  readonly keys = new Map<string, Buffer>([['label-1', randomBytes(32)]]);
  failWith: HsmFailure | Error | undefined;
  corruptEncrypt = false;
  healthCalls = 0;

  async describeKey(label: string): Promise<HsmKeyInfo | undefined> {
    this.maybeFail();
    return this.keys.has(label) ? { aes256: true, canEncrypt: true, canDecrypt: true, canWrap: false, canUnwrap: false } : undefined;
  }

  async encrypt(label: string, plaintext: Buffer, aad: Buffer): Promise<GcmSealed> {
    this.maybeFail();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(label)!, iv).setAAD(aad);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    if (this.corruptEncrypt && ciphertext.length > 0) ciphertext[0] ^= 1;
    return { initializationVector: iv, ciphertext, authenticationTag: cipher.getAuthTag() };
  }

  async decrypt(label: string, sealed: GcmSealed, aad: Buffer): Promise<Buffer> {
    this.maybeFail();
    const decipher = createDecipheriv('aes-256-gcm', this.keys.get(label)!, sealed.initializationVector).setAAD(aad);
    decipher.setAuthTag(sealed.authenticationTag);
    try {
      return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
    } catch {
      throw new HsmFailure('AUTHENTICATION_FAILED', 'tag');
    }
  }

  async health(): Promise<EkmHealth> {
    this.healthCalls++;
    return { vendor: 'node', members: [{ id: 'software-1', model: 'node:crypto', healthStatus: 'ACTIVE' }] };
  }

  async close(): Promise<void> {}

  private maybeFail(): void {
    if (this.failWith) throw this.failWith;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'strongroom-xks-handler-'));
const auditPath = join(dir, 'audit.log');
const backend = new SoftwareBackend();
let audit: XksAuditLog;
let proxy: RunningXksProxy;
const internalErrors: unknown[] = [];

const config: XksProxyConfig = {
  host: '127.0.0.1',
  port: 0,
  region: 'eu-west-2',
  tls: undefined,
  pkcs11: { modulePath: 'unused', tokenLabel: 'unused', pinFile: 'unused', sessions: 1, acquireTimeoutMs: 1 },
  keyStores: [
    {
      uriPathPrefix: '/p',
      credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SecretBytes.from(Buffer.from(SECRET)) }],
      keys: new Map([['k1', { xksKeyId: 'k1', label: 'label-1', enabled: true }]]),
      allowedPrincipalArns: undefined,
    },
  ],
  auditLog: auditPath,
  ciphertextMetadata: Buffer.from('v1'),
  fleetSize: 3,
  healthCacheMs: 60_000,
};

const metadata = { awsPrincipalArn: 'arn:aws:iam::111122223333:role/app', kmsOperation: 'Encrypt', kmsRequestId: 'req-1', kmsKeyArn: 'arn:aws:kms:eu-west-2:111122223333:key/1' };

async function call(
  path: string,
  body: object,
  options: { signingDate?: Date; headers?: Record<string, string>; query?: Record<string, string> } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(proxy.url);
  const text = JSON.stringify(body);
  const request = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path,
    query: options.query,
    headers: { host: url.host, 'content-type': 'application/json', ...options.headers },
    body: text,
  });
  const signer = kmsSigner({ region: 'eu-west-2', service: 'kms-xks-proxy', credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET } });
  const signed = await signer.sign(request, { signingDate: options.signingDate });
  const query = options.query ? `?${new URLSearchParams(options.query).toString()}` : '';
  const response = await fetch(`${proxy.url}${path}${query}`, { method: 'POST', headers: signed.headers, body: text, signal: AbortSignal.timeout(5000) });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

const encryptBody = (plaintext: Buffer) => ({
  requestMetadata: metadata,
  plaintext: plaintext.toString('base64'),
  additionalAuthenticatedData: Buffer.from('context-hash').toString('base64'),
  encryptionAlgorithm: 'AES_GCM',
  ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
});

describe('XKS proxy handler (in-process, software stand-in for the HSM)', () => {
  before(async () => {
    audit = await XksAuditLog.open(auditPath);
    proxy = await startXksProxyServer({ config, backend, audit, onInternalError: (error) => internalErrors.push(error) });
  });
  after(async () => {
    await proxy.close();
    await audit.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('binds the configured ciphertextMetadata and the request AAD into GCM as the spec says', async () => {
    const plaintext = randomBytes(40);
    const { status, json } = await call('/p/kms/xks/v1/keys/k1/encrypt', encryptBody(plaintext));
    assert.equal(status, 200);
    assert.equal(json.ciphertextMetadata, Buffer.from('v1').toString('base64'));
    const decipher = createDecipheriv('aes-256-gcm', backend.keys.get('label-1')!, Buffer.from(json.initializationVector as string, 'base64'));
    decipher.setAAD(gcmAad(Buffer.from('context-hash'), Buffer.from('v1')));
    decipher.setAuthTag(Buffer.from(json.authenticationTag as string, 'base64'));
    const opened = Buffer.concat([decipher.update(Buffer.from(json.ciphertext as string, 'base64')), decipher.final()]);
    assert.deepEqual(opened, plaintext);
  });

  it('accepts a signature 4 minutes old and refuses one 6 minutes old or 6 minutes ahead', async () => {
    const body = { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } };
    assert.equal((await call('/p/kms/xks/v1/health', body, { signingDate: new Date(Date.now() - 4 * 60_000) })).status, 200);
    for (const offset of [-6 * 60_000, 6 * 60_000]) {
      const { status, json } = await call('/p/kms/xks/v1/health', body, { signingDate: new Date(Date.now() + offset) });
      assert.equal(status, 401);
      assert.equal(json.errorName, 'AuthenticationFailedException');
      assert.match(json.errorMessage as string, /Signature (expired|not yet current)/);
    }
  });

  it('refuses a session token and a query string', async () => {
    const body = { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } };
    const token = await call('/p/kms/xks/v1/health', body, { headers: { 'x-amz-security-token': 'token' } });
    assert.deepEqual([token.status, token.json.errorName], [401, 'AuthenticationFailedException']);
    const query = await call('/p/kms/xks/v1/health', body, { query: { a: 'b' } });
    assert.deepEqual([query.status, query.json.errorName], [404, 'InvalidUriPathException']);
  });

  const failures: Array<[string, () => Error, number, string]> = [
    ['a busy HSM', () => new HsmFailure('BUSY', 'pool'), 429, 'ThrottlingException'],
    ['an unreachable HSM', () => new HsmFailure('UNAVAILABLE', 'gone'), 503, 'DependencyTimeoutException'],
    ['two keys with one label', () => new HsmFailure('KEY_AMBIGUOUS', 'two'), 400, 'InvalidStateException'],
    ['an unexpected fault', () => new Error('plaintext-like detail that must not leak'), 500, 'InternalException'],
  ];
  for (const [title, error, status, errorName] of failures) {
    it(`answers ${title} with ${errorName} ${status}`, async () => {
      backend.failWith = error();
      try {
        const { status: got, json } = await call('/p/kms/xks/v1/keys/k1/encrypt', encryptBody(Buffer.from('x')));
        assert.deepEqual([got, json.errorName], [status, errorName]);
        assert.doesNotMatch(JSON.stringify(json), /plaintext-like/);
      } finally {
        backend.failWith = undefined;
      }
    });
  }

  it('catches a corrupted HSM result with the self-check before returning it (InternalException)', async () => {
    backend.corruptEncrypt = true;
    try {
      const { status, json } = await call('/p/kms/xks/v1/keys/k1/encrypt', encryptBody(Buffer.from('sixteen bytes!!!')));
      assert.deepEqual([status, json.errorName], [500, 'InternalException']);
      assert.equal(json.ciphertext, undefined);
    } finally {
      backend.corruptEncrypt = false;
    }
  });

  it('reuses a deep health result within the cache window and reports the fleet', async () => {
    const before = backend.healthCalls;
    const body = { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } };
    const results = await Promise.all([call('/p/kms/xks/v1/health', body), call('/p/kms/xks/v1/health', body)]);
    assert.ok(backend.healthCalls - before <= 1);
    assert.deepEqual(results[0].json, {
      xksProxyFleetSize: 3,
      xksProxyVendor: 'Strongroom',
      xksProxyModel: 'strongroom xks-proxy',
      ekmVendor: 'node',
      ekmFleetDetails: [{ id: 'software-1', model: 'node:crypto', healthStatus: 'ACTIVE' }],
    });
  });

  it('answers health with a malformed body (ValidationException does not apply to it)', async () => {
    const { status } = await call('/p/kms/xks/v1/health', { requestMetadata: 'not an object' });
    assert.equal(status, 200);
  });

  it('fails closed when the audit log cannot be written: no result leaves', async () => {
    await audit.close();
    const { status, json } = await call('/p/kms/xks/v1/keys/k1/encrypt', encryptBody(Buffer.from('secret')));
    assert.deepEqual([status, json.errorName], [500, 'InternalException']);
    assert.equal(json.ciphertext, undefined);
    assert.ok(internalErrors.length > 0);
    // Every line written before then is whole JSON without the plaintext or AAD.
    const lines = readFileSync(auditPath, 'utf8').trim().split('\n');
    for (const line of lines) {
      const event = JSON.parse(line) as Record<string, unknown>;
      assert.equal(typeof event.requestId, 'string');
      assert.doesNotMatch(line, /Y29udGV4dC1oYXNo|context-hash/);
    }
  });
});
