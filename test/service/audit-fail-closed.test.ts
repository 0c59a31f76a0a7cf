/**
 * Fail closed: while the audit trail cannot make events durable, nothing changes state and no
 * result leaves the server. The trail is replaced by one whose writes fail (the layer boundary
 * this test is about); the real trail's own failure modes are tested in audit-store.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DescribeKeyCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import pino from 'pino';
import { newAccessKey, storeAccessKey } from '../../src/service/access-keys.ts';
import type { AuditTrail, ServiceContext } from '../../src/service/context.ts';
import { buildRequestEvent } from '../../src/service/audit-events.ts';
import { invokeOperation } from '../../src/service/operations.ts';
import { createKmsHandler } from '../../src/transports/kms-json/handler.ts';
import { SigV4Verifier } from '../../src/transports/kms-json/sigv4.ts';
import { Harness } from '../support/service-harness.ts';

const broken = new Error('disk I/O error');

function failingTrail(real: AuditTrail, failing: { probe: boolean; record: boolean }): AuditTrail {
  return {
    probe: () => (failing.probe ? Promise.reject(broken) : real.probe()),
    record: (entry) => (failing.record ? Promise.reject(broken) : real.record(entry)),
    lastCryptoUse: (keyId) => real.lastCryptoUse(keyId),
    trackingStart: () => real.trackingStart(),
  };
}

describe('audit trail: fail closed', () => {
  let dataDir: string;
  let h: Harness;
  let keyId: string;
  let server: Server;
  let kms: KMSClient;
  const failing = { probe: false, record: false };
  let context: ServiceContext;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strongroom-fail-closed-'));
    h = await Harness.open(dataDir);
    keyId = await h.createKey();
    context = { ...h.instance.context, audit: failingTrail(h.instance.context.audit, failing) };
    const accessKey = newAccessKey();
    await storeAccessKey(context.store, context.sealer, accessKey, h.principalArn, h.clock);
    const credentials = { accessKeyId: accessKey.accessKeyId, secretAccessKey: accessKey.secretAccessKey.exposeSecretBytes().toString('utf8') };
    const handler = createKmsHandler({
      context,
      verifier: new SigV4Verifier({
        region: 'us-east-1',
        service: 'kms',
        requiredSignedHeaders: ['x-amz-target'],
        // The harness's clock is fixed in the past; SigV4 checks against real time.
        now: () => Date.now(),
        lookup: (id) => (id === credentials.accessKeyId ? { secretAccessKey: Buffer.from(credentials.secretAccessKey) } : undefined),
      }),
      authenticate: async () => ({ principalArn: h.principalArn }),
      logger: pino({ level: 'silent' }),
      audit: { record: async (request) => context.audit.record(await buildRequestEvent(context, request, { encryptionContextValues: false })) },
    });
    server = createServer(handler);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    kms = new KMSClient({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: 'us-east-1',
      credentials,
      maxAttempts: 1,
    });
  });

  after(async () => {
    kms.destroy();
    await new Promise((done) => server.close(done));
    await h.instance.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('an operation that changes state does not run while the probe fails', async () => {
    failing.probe = true;
    try {
      await assert.rejects(invokeOperation('DisableKey', context, { KeyId: keyId }, h.caller()), broken);
      await assert.rejects(invokeOperation('ScheduleKeyDeletion', context, { KeyId: keyId, PendingWindowInDays: 7 }, h.caller()), broken);
    } finally {
      failing.probe = false;
    }
    assert.equal((await h.describe(keyId)).KeyState, 'Enabled');
  });

  test('over the wire: a 500 and no result when the event cannot be written, service resumes after', async () => {
    failing.record = true;
    try {
      await assert.rejects(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })), (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
        assert.equal(error.name, 'KMSInternalException');
        assert.equal(error.$metadata?.httpStatusCode, 500);
        return true;
      });
      await assert.rejects(kms.send(new DescribeKeyCommand({ KeyId: keyId })), { name: 'KMSInternalException' });
    } finally {
      failing.record = false;
    }
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
    assert.ok(CiphertextBlob && CiphertextBlob.length > 0);
  });
});
