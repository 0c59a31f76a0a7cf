/**
 * `serve --log-requests`: one JSON line per request (pino) that names the request by the id the
 * client saw (x-amzn-RequestId), with nothing of what the request carried: no plaintext, no
 * encryption-context value, no key material, no secret.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateKeyCommand, DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

describe('serve --log-requests', () => {
  let server: RunningServer;

  before(async () => {
    server = await startServer({ args: ['--log-requests', '--log-level', 'info'] });
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  it('logs each request as JSON with its request id and outcome, and nothing the request carried', async () => {
    const kms = server.kms();
    const plaintext = 'access-log-canary-plaintext-5b1e';
    const contextValue = 'access-log-canary-context-93d2';
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const encrypted = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(plaintext), EncryptionContext: { purpose: contextValue } }));
    const refused = await kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob })).catch((error: Error & { $metadata?: { requestId?: string } }) => error);
    assert.equal((refused as Error).name, 'InvalidCiphertextException');

    const lines = () =>
      server
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((entry) => entry.msg === 'request');
    let entries = lines();
    for (let attempt = 0; attempt < 50 && entries.length < 3; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      entries = lines();
    }
    const byId = new Map(entries.map((entry) => [entry.requestId, entry]));
    const ok = byId.get(encrypted.$metadata.requestId);
    assert.ok(ok, `a line for the Encrypt's request id ${encrypted.$metadata.requestId}`);
    assert.equal(ok.operation, 'Encrypt');
    assert.equal(ok.outcome, 'ok');
    assert.equal(ok.status, 200);
    assert.equal(typeof ok.durationMs, 'number');
    const failed = byId.get((refused as { $metadata?: { requestId?: string } }).$metadata?.requestId);
    assert.ok(failed, 'a line for the refused Decrypt');
    assert.equal(failed.outcome, 'InvalidCiphertextException');
    assert.equal(failed.status, 400);

    const output = server.output();
    for (const canary of [plaintext, Buffer.from(plaintext).toString('base64'), contextValue, Buffer.from(encrypted.CiphertextBlob!).toString('base64')]) {
      assert.ok(!output.includes(canary), 'nothing the request carried reaches the log');
    }
  });
});
