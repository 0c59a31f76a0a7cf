import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CreateKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  ScheduleKeyDeletionCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

/**
 * With several worker processes, every process caches lookups. State that guards security must
 * still be seen by every process's very next request: each client here is a fresh connection,
 * so the requests spread over both workers.
 */
describe('a server with two worker processes', () => {
  let server: RunningServer;
  let keyId: string;
  const freshClients = (count: number): KMSClient[] =>
    Array.from({ length: count }, () => server.kms({ requestHandler: { httpAgent: { keepAlive: false } } as never }));

  const encryptFromEveryWorker = async () =>
    Promise.allSettled(
      freshClients(16).map((kms) => kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }))),
    );

  before(async () => {
    server = await startServer({ args: ['--workers', '2'] });
    const created = await server.kms().send(new CreateKeyCommand({}));
    keyId = created.KeyMetadata?.KeyId as string;
    // Warm every worker's cache with the enabled key.
    for (const result of await encryptFromEveryWorker()) assert.equal(result.status, 'fulfilled');
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  it('refuses a just-disabled key on every worker at once, and accepts it again once enabled', async () => {
    await server.kms().send(new DisableKeyCommand({ KeyId: keyId }));
    const refused = await encryptFromEveryWorker();
    for (const result of refused) {
      assert.equal(result.status, 'rejected');
      assert.equal((result as PromiseRejectedResult).reason.name, 'DisabledException');
    }
    await server.kms().send(new EnableKeyCommand({ KeyId: keyId }));
    for (const result of await encryptFromEveryWorker()) assert.equal(result.status, 'fulfilled');
  });

  it('refuses a key scheduled for deletion on every worker at once', async () => {
    await server.kms().send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    for (const result of await encryptFromEveryWorker()) {
      assert.equal(result.status, 'rejected');
      assert.equal((result as PromiseRejectedResult).reason.name, 'KMSInvalidStateException');
    }
  });
});
