/**
 * What an operator meets: /healthz, /readyz and /metrics on real `strongroom serve` processes
 * (one process and two workers), readiness failing while the audit trail cannot write, and a
 * graceful stop that lets a slow request finish.
 */
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { CreateKeyCommand, DecryptCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';
import { signedPost } from '../support/sigv4-signing.ts';

const PLAINTEXT_MARKER = 'operability-canary-7f3a';

/** `name{labels} value` from an exposition, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(server: RunningServer): Promise<string> {
  assert.ok(server.metricsEndpoint, 'the server printed its metrics address');
  const response = await fetch(`${server.metricsEndpoint}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return response.text();
}

async function readyz(base: string): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> {
  const response = await fetch(`${base}/readyz`);
  return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, string> } };
}

/** Holds the audit database's write lock from this process: the server's audit writes wait. */
function lockAuditTrail(dataDir: string): () => void {
  const db = new Database(join(dataDir, 'audit.db'));
  db.exec('BEGIN IMMEDIATE');
  return () => {
    db.exec('ROLLBACK');
    db.close();
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function createKey(kms: KMSClient): Promise<string> {
  return (await kms.send(new CreateKeyCommand({}))).KeyMetadata?.KeyId as string;
}

describe('operability: one server process with --metrics-port', () => {
  let server: RunningServer;
  let keyId: string;

  before(async () => {
    server = await startServer({ args: ['--metrics-port', '0'] });
    keyId = await createKey(server.kms());
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  it('answers /healthz and /readyz on the KMS port without a signature, naming each check', async () => {
    const health = await fetch(`${server.endpoint}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');
    const ready = await readyz(server.endpoint);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ready', checks: { metadataStore: 'ok', rootKey: 'ok', auditTrail: 'ok', hsmClusters: 'ok' } });
    // The metrics listener answers the probes too; /metrics itself is not on the KMS port.
    assert.equal((await readyz(server.metricsEndpoint as string)).status, 200);
    assert.equal((await fetch(`${server.metricsEndpoint}/healthz`)).status, 200);
    assert.equal((await fetch(`${server.endpoint}/metrics`)).status, 404);
  });

  it('counts requests by operation and outcome, with latency, audit commit and process metrics', async () => {
    const before = await scrape(server);
    const encryptOk = 'strongroom_requests_total{operation="Encrypt",outcome="ok"}';
    const decryptBad = 'strongroom_requests_total{operation="Decrypt",outcome="InvalidCiphertextException"}';
    const kms = server.kms();
    for (let i = 0; i < 3; i++) {
      await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(PLAINTEXT_MARKER), EncryptionContext: { purpose: PLAINTEXT_MARKER } }));
    }
    await assert.rejects(kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from('not a ciphertext at all, but long enough') })), {
      name: 'InvalidCiphertextException',
    });
    await fetch(`${server.endpoint}/healthz`);

    const text = await scrape(server);
    assert.equal((sample(text, encryptOk) ?? 0) - (sample(before, encryptOk) ?? 0), 3);
    assert.equal((sample(text, decryptBad) ?? 0) - (sample(before, decryptBad) ?? 0), 1);
    assert.equal(sample(text, 'strongroom_request_duration_seconds_count{operation="Encrypt"}'), sample(text, encryptOk));
    assert.ok(sample(text, 'strongroom_request_duration_seconds_bucket{le="+Inf",operation="Encrypt"}')! >= 3);
    assert.ok((sample(text, 'strongroom_request_duration_seconds_sum{operation="Encrypt"}') ?? 0) > 0);
    assert.ok((sample(text, 'strongroom_audit_commit_duration_seconds_count{outcome="ok"}') ?? 0) > 0);
    assert.ok((sample(text, 'strongroom_audit_events_committed_total') ?? 0) >= 5);
    // No custom key store here: the histogram is declared, its samples are asserted where calls go
    // through an HSM cluster (test/wire/cloudhsm-key-store.test.ts, the readiness test).
    assert.match(text, /^# TYPE strongroom_key_store_call_duration_seconds histogram$/m);
    assert.ok(!text.includes('strongroom_key_store_call_duration_seconds_count'));
    assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0);
    assert.equal(sample(text, 'strongroom_metrics_processes'), 1);
    // Probes are not traffic; nothing from a request's content reaches the exposition.
    assert.ok(!text.includes('healthz'));
    assert.ok(!text.includes(PLAINTEXT_MARKER));
    assert.ok(!text.includes(server.credentials.accessKeyId));
  });

  it('labels an operation it does not know "Unknown", so clients cannot mint series', async () => {
    const response = await fetch(server.endpoint, {
      method: 'POST',
      headers: { 'X-Amz-Target': 'TrentService.NoSuchOperation-xyz', 'Content-Type': 'application/x-amz-json-1.1' },
      body: '{}',
    });
    assert.equal(response.status, 400);
    const text = await scrape(server);
    assert.ok(!text.includes('NoSuchOperation'));
    assert.ok((sample(text, 'strongroom_requests_total{operation="Unknown",outcome="UnknownOperationException"}') ?? 0) >= 1);
  });

  it('reports not ready (503, the failing check named) while the audit trail cannot write, and ready again after', async () => {
    const unlock = lockAuditTrail(server.dataDir);
    let unlocked = false;
    try {
      await sleep(1100); // past the cached report
      const failing = await readyz(server.endpoint);
      assert.equal(failing.status, 503);
      assert.deepEqual(failing.body, { status: 'not ready', checks: { metadataStore: 'ok', rootKey: 'ok', auditTrail: 'failing', hsmClusters: 'ok' } });
      unlock();
      unlocked = true;
      let ready = failing;
      for (let attempt = 0; attempt < 40 && ready.status !== 200; attempt++) {
        await sleep(250);
        ready = await readyz(server.endpoint);
      }
      assert.equal(ready.status, 200);
    } finally {
      if (!unlocked) unlock();
    }
  });
});

describe('operability: metrics summed over two worker processes', () => {
  let server: RunningServer;
  let keyId: string;

  before(async () => {
    server = await startServer({ args: ['--workers', '2', '--metrics-port', '0'], timeoutMs: 60_000 });
    keyId = await createKey(server.kms());
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  it('counts every request whichever worker served it, and covers all three processes', async () => {
    const series = 'strongroom_requests_total{operation="Encrypt",outcome="ok"}';
    const before = sample(await scrape(server), series) ?? 0;
    // A fresh connection per request: the primary deals connections to the workers in turn.
    const count = 10;
    for (let i = 0; i < count; i++) {
      const kms = server.kms({ requestHandler: { httpAgent: { keepAlive: false } } as never });
      await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
    }
    const text = await scrape(server);
    assert.equal((sample(text, series) ?? 0) - before, count);
    assert.equal(sample(text, 'strongroom_metrics_processes'), 3);
    assert.equal(sample(text, 'strongroom_request_duration_seconds_count{operation="Encrypt"}'), sample(text, series));
    assert.equal(text.match(/^# TYPE strongroom_requests_total counter$/gm)?.length, 1);
  });
});

/**
 * An agent that reports when its socket has connected and sent the request: the request is then
 * in the server's hands.
 */
function trackingAgent(): { agent: Agent; sent: Promise<void> } {
  let markSent!: () => void;
  const sent = new Promise<void>((resolve) => (markSent = resolve));
  class TrackingAgent extends Agent {
    override createConnection(...args: Parameters<Agent['createConnection']>) {
      const socket = super.createConnection(...args) as Socket;
      socket.once('connect', () => setTimeout(markSent, 500));
      return socket;
    }
  }
  return { agent: new TrackingAgent({ keepAlive: true }), sent };
}

/** Polls until a new connection is refused (the listener closed); returns the last error's code. */
async function newConnectionRefused(endpoint: string): Promise<string | undefined> {
  for (let attempt = 0; attempt < 60; attempt++) {
    await sleep(100);
    const error = await fetch(`${endpoint}/healthz`, { headers: { connection: 'close' } }).then(
      () => undefined,
      (failure: { cause?: { code?: string } }) => failure,
    );
    if (error) return error.cause?.code;
  }
  return undefined;
}

/**
 * A signed Encrypt whose body is sent in two halves: the request is in flight (the server is
 * reading it) until `finish()` sends the rest.
 */
async function encryptInTwoHalves(server: RunningServer, keyId: string) {
  const url = new URL(server.endpoint);
  const body = JSON.stringify({ KeyId: keyId, Plaintext: Buffer.from('in flight').toString('base64') });
  const signed = await signedPost(server, { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.Encrypt' }, body);
  const request = httpRequest({
    hostname: url.hostname,
    port: url.port,
    method: 'POST',
    path: '/',
    headers: { ...signed.headers, 'content-length': String(Buffer.byteLength(body)) },
    agent: false,
  });
  const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
    request.on('response', (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    request.on('error', reject);
  });
  const half = Math.floor(body.length / 2);
  request.write(body.slice(0, half));
  await new Promise<void>((resolve) => request.once('socket', (socket) => socket.once('connect', () => resolve())));
  // On a loaded machine the server may take a moment to take the connection from its backlog.
  await sleep(700);
  return { reply, finish: () => request.end(body.slice(half)) };
}

describe('graceful stop', () => {
  it('one process: a request whose audit write is slow finishes after SIGTERM; new connections are refused; exit 0', async () => {
    const server = await startServer();
    try {
      const keyId = await createKey(server.kms());
      const unlock = lockAuditTrail(server.dataDir);
      let unlocked = false;
      try {
        const { agent, sent } = trackingAgent();
        const slow = server
          .kms({ requestHandler: { httpAgent: agent } as never })
          .send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('in flight') }));
        slow.catch(() => {});
        await sent;
        const exited = new Promise<number | null>((resolve) => server.process.once('exit', (code) => resolve(code)));
        server.process.kill('SIGTERM');
        assert.equal(await newConnectionRefused(server.endpoint), 'ECONNREFUSED');
        assert.equal(server.process.exitCode, null, 'still draining');
        unlock();
        unlocked = true;
        const result = await slow;
        assert.ok(result.CiphertextBlob && result.CiphertextBlob.length > 0);
        assert.equal(await exited, 0);
        agent.destroy();
      } finally {
        if (!unlocked) unlock();
      }
    } finally {
      await server.stop();
      await removeDataDir(server.dataDir);
    }
  });

  it('two workers: a request still uploading its body finishes after SIGTERM; new connections are refused; exit 0', async () => {
    const server = await startServer({ args: ['--workers', '2'], timeoutMs: 60_000 });
    try {
      const keyId = await createKey(server.kms());
      const { reply, finish } = await encryptInTwoHalves(server, keyId);
      const exited = new Promise<number | null>((resolve) => server.process.once('exit', (code) => resolve(code)));
      server.process.kill('SIGTERM');
      assert.equal(await newConnectionRefused(server.endpoint), 'ECONNREFUSED');
      assert.equal(server.process.exitCode, null, 'still draining');
      finish();
      const answer = await reply;
      assert.equal(answer.status, 200, answer.body);
      assert.ok((JSON.parse(answer.body) as { CiphertextBlob?: string }).CiphertextBlob);
      assert.equal(await exited, 0);
    } finally {
      await server.stop();
      await removeDataDir(server.dataDir);
    }
  });

  it('cuts off what is still in flight at --drain-timeout, and still exits 0', async () => {
    const server = await startServer({ args: ['--drain-timeout', '1'] });
    try {
      const keyId = await createKey(server.kms());
      const { reply } = await encryptInTwoHalves(server, keyId);
      reply.catch(() => {});
      const started = Date.now();
      const exited = new Promise<number | null>((resolve) => server.process.once('exit', (code) => resolve(code)));
      server.process.kill('SIGTERM');
      await assert.rejects(reply, { code: 'ECONNRESET' });
      assert.equal(await exited, 0);
      assert.ok(Date.now() - started < 8000, 'stopped within the drain timeout plus closing');
    } finally {
      await server.stop();
      await removeDataDir(server.dataDir);
    }
  });
});
