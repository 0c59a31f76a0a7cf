/**
 * The KMS side's XKS client (src/keystores/xks/xks-client.ts) against small in-process HTTPS
 * servers: redundant addresses, the 250 ms budget, and which failures move on to the next address.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { XksClient, XksProxyError } from '../../src/keystores/xks/xks-client.ts';
import { decodeXksBlob, encodeXksBlob, xksHeader } from '../../src/keystores/xks/xks-ciphertext.ts';

const dir = mkdtempSync(join(tmpdir(), 'strongroom-xks-client-'));
const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
const servers: Server[] = [];
let ca: Buffer;
let tls: { key: Buffer; cert: Buffer };

type Behaviour = 'ok' | 'hang' | 'proxy-error' | 'not-json';
const hits: Record<string, number> = {};

async function serve(name: string, behaviour: Behaviour): Promise<number> {
  const server = createServer(tls, (req, res) => {
    hits[name] = (hits[name] ?? 0) + 1;
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      if (behaviour === 'hang') return; // never answers
      if (behaviour === 'not-json') return void res.writeHead(200).end('<html>');
      if (behaviour === 'proxy-error') {
        return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"errorName":"ValidationException"}');
      }
      const signed = typeof req.headers.authorization === 'string' && req.headers.authorization.includes('/kms-xks-proxy/aws4_request');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ served: name, signed, host: req.headers.host, path: req.url, body: JSON.parse(body) }));
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const client = (ports: number[], timeoutMs?: number) =>
  new XksClient({
    hostname: 'xks.test',
    addresses: ports.map((port) => ({ host: '127.0.0.1', port })),
    uriPath: '/p/kms/xks/v1',
    accessKeyId: 'AKIDAKIDAKIDAKIDAKID',
    secretAccessKey: 'a'.repeat(43),
    region: 'us-east-1',
    ca,
    ...(timeoutMs ? { timeoutMs } : {}),
  });

describe('XKS client (KMS side)', () => {
  before(() => {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test-ca']);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=xks.test']);
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:xks.test\n');
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'server.ext']);
    ca = readFileSync(join(dir, 'ca.pem'));
    tls = { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) };
  });
  after(() => {
    for (const server of servers) server.close();
    for (const server of servers) server.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs with service kms-xks-proxy for the host name, posts JSON to the path, checks TLS against the host name', async () => {
    const port = await serve('plain', 'ok');
    const xks = client([port]);
    const answer = await xks.call('health', { requestMetadata: { kmsOperation: 'KmsHealthCheck' } });
    assert.equal(answer.signed, true);
    assert.equal(answer.host, 'xks.test');
    assert.equal(answer.path, '/p/kms/xks/v1/health');
    assert.deepEqual(answer.body, { requestMetadata: { kmsOperation: 'KmsHealthCheck' } });
    xks.close();
  });

  it('a refused address: the call goes to the next one, and later calls start there', async () => {
    const good = await serve('good', 'ok');
    const xks = client([1, good]);
    assert.equal((await xks.call('health', {})).served, 'good');
    const before = hits.good;
    assert.equal((await xks.call('health', {})).served, 'good');
    assert.equal(hits.good, before + 1);
    xks.close();
  });

  it('a hung address is given up within its share of 250 ms, and the next one answers', async () => {
    const hung = await serve('hung', 'hang');
    const good = await serve('good2', 'ok');
    const xks = client([hung, good]);
    const started = performance.now();
    assert.equal((await xks.call('health', {})).served, 'good2');
    const took = performance.now() - started;
    assert.ok(took < 400, `took ${took.toFixed(0)} ms`);
    assert.equal(hits.hung, 1);
    xks.close();
  });

  it('every address down or hung: unreachable, within the bound (twice the budget at most)', async () => {
    const hung = await serve('hung2', 'hang');
    const xks = client([hung, 1], 100);
    const started = performance.now();
    await assert.rejects(xks.call('health', {}), (error) => error instanceof XksProxyError && error.kind === 'unreachable');
    assert.ok(performance.now() - started < 300);
    xks.close();
  });

  it("the proxy's own error is final (no retry elsewhere); a response that is not JSON is invalid-response", async () => {
    const refusing = await serve('refusing', 'proxy-error');
    const other = await serve('other', 'ok');
    const xks = client([refusing, other]);
    await assert.rejects(xks.call('keys/k/encrypt', {}), (error) => error instanceof XksProxyError && error.kind === 'ValidationException' && error.status === 400);
    assert.equal(hits.other ?? 0, 0);
    const garbled = client([await serve('garbled', 'not-json')]);
    await assert.rejects(garbled.call('health', {}), (error) => error instanceof XksProxyError && error.kind === 'invalid-response');
    xks.close();
    garbled.close();
  });

  it('the v3 blob round-trips and refuses another key, version or a truncated blob', () => {
    const keyId = '0b7a2b7c-4d6e-4f10-8a2b-3c4d5e6f7a8b';
    const parts = {
      header: xksHeader(keyId, 2),
      iv: Buffer.alloc(12, 1),
      ciphertextMetadata: Buffer.from('key_version=1'),
      tag: Buffer.alloc(16, 2),
      ciphertext: Buffer.alloc(70, 3),
    };
    const blob = encodeXksBlob(parts);
    assert.deepEqual(decodeXksBlob(blob, keyId, 2), parts);
    assert.throws(() => decodeXksBlob(blob, keyId, 3));
    assert.throws(() => decodeXksBlob(blob, '1b7a2b7c-4d6e-4f10-8a2b-3c4d5e6f7a8b', 2));
    assert.throws(() => decodeXksBlob(blob.subarray(0, 40), keyId, 2));
  });
});
