/**
 * /readyz of a node on PostgreSQL while its database cannot be reached: a real `strongroom serve`
 * whose --database points at a loopback relay to the test PostgreSQL, which the test cuts (every
 * connection dropped, new ones refused) and restores on the same port.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CreateKeyCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';
import { createTestSchema, dropTestSchema } from '../support/postgres-schema.ts';

const POSTGRES = process.env.STRONGROOM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `strongroom_ready_${randomBytes(6).toString('hex')}`;
/** Trust authentication ignores it; it must never appear in the server's output. */
const PASSWORD_CANARY = 'pw-canary-5d1e';

/** A TCP relay to PostgreSQL on a port of its own, which can be cut and restored. */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = createConnection(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((done) => server.listen(this.port, '127.0.0.1', () => done()));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Drops every connection and refuses new ones: the database is unreachable. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = new Promise<void>((done) => server?.close(() => done()) ?? done());
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

async function readyz(base: string): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> {
  const response = await fetch(`${base}/readyz`);
  return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, string> } };
}

/** Polls (the report is cached for 1 s) until the readiness status is `status`, for up to 30 s. */
async function readyzUntil(base: string, status: number) {
  let report = await readyz(base);
  for (let attempt = 0; attempt < 120 && report.status !== status; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    report = await readyz(base);
  }
  return report;
}

describe('readiness of a node on PostgreSQL', { timeout: 120_000 }, () => {
  const target = new URL(POSTGRES);
  const relay = new Relay({ host: target.hostname, port: Number(target.port || 5432) });
  let server: RunningServer;

  before(async () => {
    await createTestSchema(POSTGRES, schema);
    await relay.open();
    const viaRelay = new URL(POSTGRES);
    viaRelay.port = String(relay.port);
    viaRelay.password = PASSWORD_CANARY;
    viaRelay.searchParams.set('schema', schema);
    // The URL (with its password) in the environment, as docs/configuration.md advises.
    server = await startServer({ env: { STRONGROOM_DATABASE: viaRelay.toString() }, timeoutMs: 60_000 });
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
    await relay.cut();
    await dropTestSchema(POSTGRES, schema);
  });

  it('is 503 naming metadataStore (and the audit trail on the same database) while PostgreSQL is unreachable, and ready again after', async () => {
    assert.deepEqual(await readyz(server.endpoint), {
      status: 200,
      body: { status: 'ready', checks: { metadataStore: 'ok', rootKey: 'ok', auditTrail: 'ok', hsmClusters: 'ok' } },
    });

    await relay.cut();
    const failing = await readyzUntil(server.endpoint, 503);
    assert.equal(failing.status, 503);
    assert.deepEqual(failing.body, { status: 'not ready', checks: { metadataStore: 'failing', rootKey: 'ok', auditTrail: 'failing', hsmClusters: 'ok' } });

    await relay.open();
    assert.equal((await readyzUntil(server.endpoint, 200)).status, 200);
    // And it serves again: the pool replaced the connections that were cut.
    const kms = server.kms();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('after the outage') }));
    assert.ok(!server.output().includes(PASSWORD_CANARY), 'the password never reaches the log');
  });
});
