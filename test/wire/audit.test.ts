/**
 * The audit trail end to end: one event per request (allowed, denied, failed), the canary scan
 * (no plaintext, context value, data key or secret anywhere in the trail, the logs or error
 * bodies), GetKeyLastUsage, `strongroom audit` commands, and a SIGKILL under load that loses no
 * acknowledged event. Fail-closed is tested at the service and transport (test/service/audit-fail-closed.test.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  CreateAliasCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GetKeyLastUsageCommand,
  KMSClient,
  PutKeyPolicyCommand,
} from '@aws-sdk/client-kms';
import { adminCall, adminRequest } from '../support/admin-api.ts';
import { assertKmsError, createKey } from '../support/kms-assertions.ts';
import { STRONGROOM_BIN, type RunningServer, removeDataDir, startServer } from '../support/server.ts';

const run = promisify(execFile);

const strongroom = (args: string[]) => run(process.execPath, [STRONGROOM_BIN, ...args], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });

async function exportedEvents(dataDir: string): Promise<Record<string, unknown>[]> {
  const { stdout } = await strongroom(['audit', 'export', '--data-dir', dataDir]);
  return stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.type === 'event')
    .map((line) => line.event as Record<string, unknown>);
}

describe('audit trail', () => {
  let server: RunningServer;
  let kms: KMSClient;

  before(async () => {
    server = await startServer({ args: ['--log-level', 'debug'] });
    kms = server.kms();
  });

  after(async () => {
    await server?.stop();
    await removeDataDir(server?.dataDir);
  });

  it('records one CloudTrail-shaped event per request, allowed, denied and failed, and verifies', async () => {
    const key = await createKey(kms);
    const encrypted = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('x'), EncryptionContext: { tenant: 'blue' } }));
    const encryptId = encrypted.$metadata.requestId;
    await assertKmsError(kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from('garbage') })), { name: 'InvalidCiphertextException' });
    const stranger = new KMSClient({
      endpoint: server.endpoint,
      region: server.region,
      credentials: { accessKeyId: 'AKIAAAAAAAAAAAAAAAAA', secretAccessKey: 'x'.repeat(40) },
      maxAttempts: 1,
    });
    await assertKmsError(stranger.send(new DescribeKeyCommand({ KeyId: key.KeyId })), { name: 'UnrecognizedClientException' });
    stranger.destroy();

    const events = await exportedEvents(server.dataDir);
    const encryptEvent = events.find((event) => event.requestID === encryptId) as Record<string, any>;
    assert.ok(encryptEvent, 'the Encrypt request has its event');
    assert.equal(encryptEvent.eventName, 'Encrypt');
    assert.equal(encryptEvent.eventSource, 'kms.amazonaws.com');
    assert.equal(encryptEvent.readOnly, true);
    assert.equal(encryptEvent.userIdentity.type, 'IAMUser');
    assert.equal(encryptEvent.userIdentity.arn, `arn:aws:iam::${key.AWSAccountId}:user/admin`);
    assert.deepEqual(encryptEvent.requestParameters.encryptionContext, { tenant: '[REDACTED]' });
    assert.deepEqual(encryptEvent.resources, [{ accountId: key.AWSAccountId, type: 'AWS::KMS::Key', ARN: key.Arn }]);
    assert.ok(events.some((event) => event.errorCode === 'InvalidCiphertextException'));
    assert.ok(events.some((event) => event.errorCode === 'UnrecognizedClientException' && (event.userIdentity as any).type === 'Unknown'));

    const { stdout } = await strongroom(['audit', 'verify', '--data-dir', server.dataDir]);
    assert.match(stdout, /intact/i);
  });

  it('GetKeyLastUsage reports the last cryptographic use from the trail', async () => {
    const key = await createKey(kms);
    const before = await kms.send(new GetKeyLastUsageCommand({ KeyId: key.KeyId }));
    assert.equal(before.KeyLastUsage, undefined);
    assert.equal(before.TrackingStartDate?.getTime(), key.CreationDate?.getTime());
    await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }));
    const signed = await kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: 'AES_256' }));
    const after = await kms.send(new GetKeyLastUsageCommand({ KeyId: key.KeyId }));
    assert.equal(after.KeyLastUsage?.Operation, 'GenerateDataKey');
    const events = await exportedEvents(server.dataDir);
    const event = events.find((candidate) => candidate.requestID === signed.$metadata.requestId);
    assert.equal(after.KeyLastUsage?.CloudTrailEventId, event?.eventID);
  });

  it('canary: no plaintext, context value, data key, policy text or secret reaches the trail, the logs or an error', async () => {
    const canaries = {
      plaintext: 'CANARY-PLAINTEXT-6b1f0c9e',
      contextValue: 'CANARY-CONTEXT-VALUE-2d7a',
      policyValue: 'CANARY-POLICY-VALUE-91ce',
    };
    const key = await createKey(kms);
    const errorBodies: string[] = [];
    const encrypted = await kms.send(
      new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from(canaries.plaintext), EncryptionContext: { purpose: canaries.contextValue } }),
    );
    await kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: { purpose: canaries.contextValue } }));
    try {
      await kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: { purpose: `${canaries.contextValue}-wrong` } }));
    } catch (error) {
      errorBodies.push(JSON.stringify(error), String((error as Error).message));
    }
    const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: 'AES_256', EncryptionContext: { purpose: canaries.contextValue } }));
    const secrets: Buffer[] = [Buffer.from(dataKey.Plaintext!)];
    await kms.send(
      new PutKeyPolicyCommand({
        KeyId: key.KeyId,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${key.AWSAccountId}:root` }, Action: 'kms:*', Resource: '*' },
            { Sid: 'Ctx', Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*', Condition: { StringEquals: { 'kms:EncryptionContext:purpose': canaries.policyValue } } },
          ],
        }),
      }),
    );
    await adminCall(server, 'CreateUser', { UserName: 'canary' });
    const { AccessKey } = await adminCall<{ AccessKey: { SecretAccessKey: string } }>(server, 'CreateAccessKey', { UserName: 'canary' });
    secrets.push(Buffer.from(AccessKey.SecretAccessKey));
    const refused = await adminRequest(server, 'PutUserPolicy', { UserName: 'canary', PolicyName: 'p', PolicyDocument: `{"bad": "${canaries.policyValue}"` });
    errorBodies.push(JSON.stringify(refused.body));
    const adminSecret = Buffer.from(server.credentials.secretAccessKey);
    secrets.push(adminSecret);

    // Everything the server wrote: the exported trail, the audit database itself, every log line.
    const { stdout: exported } = await strongroom(['audit', 'export', '--data-dir', server.dataDir]);
    const auditDb = await readFile(join(server.dataDir, 'audit.db'));
    const walPath = join(server.dataDir, 'audit.db-wal');
    const auditWal = (await stat(walPath).catch(() => undefined)) ? await readFile(walPath) : Buffer.alloc(0);
    const haystacks: [string, Buffer][] = [
      ['exported trail', Buffer.from(exported)],
      ['audit.db', auditDb],
      ['audit.db-wal', auditWal],
      ['server output', Buffer.from(server.output())],
      ['error bodies', Buffer.from(errorBodies.join('\n'))],
    ];
    const needles: [string, Buffer][] = [
      ...Object.entries(canaries).map(([name, value]) => [name, Buffer.from(value)] as [string, Buffer]),
      ...secrets.flatMap((secret, i) => [
        [`secret ${i} (raw)`, secret],
        [`secret ${i} (base64)`, Buffer.from(secret.toString('base64'))],
        [`secret ${i} (hex)`, Buffer.from(secret.toString('hex'))],
      ] as [string, Buffer][]),
    ];
    for (const [haystackName, haystack] of haystacks) {
      for (const [needleName, needle] of needles) {
        // The exported trail and audit files must hold none; the admin secret appears only in the
        // credentials file, which is not scanned here.
        assert.equal(haystack.indexOf(needle), -1, `${needleName} found in ${haystackName}`);
      }
    }
    assert.ok((await readdir(server.dataDir)).includes('audit.db'));
  });

  it('`audit query` filters by event name, principal, key and errors; `audit tail` shows the latest', async () => {
    const key = await createKey(kms);
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/audit-query', TargetKeyId: key.KeyId }));
    await assertKmsError(kms.send(new DisableKeyCommand({ KeyId: '00000000-0000-4000-8000-000000000000' })), { name: 'NotFoundException' });
    const byName = await strongroom(['audit', 'query', '--data-dir', server.dataDir, '--event', 'CreateAlias']);
    const named = byName.stdout.trim().split('\n').map((line) => JSON.parse(line));
    assert.ok(named.length >= 1 && named.every((event) => event.eventName === 'CreateAlias'));
    const byKey = await strongroom(['audit', 'query', '--data-dir', server.dataDir, '--key', key.KeyId as string]);
    assert.ok(byKey.stdout.trim().split('\n').map((line) => JSON.parse(line)).some((event) => event.eventName === 'CreateAlias'));
    const errors = await strongroom(['audit', 'query', '--data-dir', server.dataDir, '--errors']);
    assert.ok(errors.stdout.trim().split('\n').map((line) => JSON.parse(line)).every((event) => typeof event.errorCode === 'string'));
    const tail = await strongroom(['audit', 'tail', '--data-dir', server.dataDir, '-n', '2']);
    assert.equal(tail.stdout.trim().split('\n').length, 2);
  });
});

describe('audit trail: several worker processes, one writer', () => {
  it('records every worker\'s requests in one chain that verifies', async () => {
    const server = await startServer({ args: ['--workers', '2'] });
    try {
      const kms = server.kms();
      const key = await createKey(kms);
      const requestIds = await Promise.all(
        Array.from({ length: 200 }, async () => (await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('w') }))).$metadata.requestId),
      );
      const recorded = new Set((await exportedEvents(server.dataDir)).map((event) => event.requestID));
      assert.deepEqual(requestIds.filter((id) => !recorded.has(id)), []);
      const { stdout } = await strongroom(['audit', 'verify', '--data-dir', server.dataDir]);
      assert.match(stdout, /intact/i);
    } finally {
      await server.stop();
      await removeDataDir(server.dataDir);
    }
  });
});

describe('audit trail: SIGKILL under load', () => {
  it('loses no event of a request that got a response, and the chain verifies', async () => {
    const server = await startServer();
    try {
      const kms = server.kms();
      const key = await createKey(kms);
      const acknowledged: string[] = [];
      let stop = false;
      const worker = async (n: number) => {
        for (let i = 0; !stop; i++) {
          try {
            const response =
              i % 5 === 4
                ? await kms.send(new CreateAliasCommand({ AliasName: `alias/crash-${n}-${i}`, TargetKeyId: key.KeyId }))
                : await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('load') }));
            acknowledged.push(response.$metadata.requestId as string);
          } catch {
            return; // the server died under this request
          }
        }
      };
      const workers = Array.from({ length: 16 }, (_, n) => worker(n));
      // Kill once the load is well under way (on a slow or busy machine that takes longer).
      for (const started = Date.now(); acknowledged.length < 100 && Date.now() - started < 30_000; ) {
        await new Promise((done) => setTimeout(done, 50));
      }
      await server.kill();
      stop = true;
      await Promise.all(workers);
      assert.ok(acknowledged.length > 50, `only ${acknowledged.length} requests acknowledged`);

      const { stdout } = await strongroom(['audit', 'verify', '--data-dir', server.dataDir]);
      assert.match(stdout, /intact/i);
      const recorded = new Set((await exportedEvents(server.dataDir)).map((event) => event.requestID));
      const missing = acknowledged.filter((requestId) => !recorded.has(requestId));
      assert.deepEqual(missing, [], `${missing.length} acknowledged requests have no event`);
    } finally {
      await removeDataDir(server.dataDir);
    }
  });
});

