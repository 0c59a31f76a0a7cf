/**
 * The per-cluster HSM audit log (audit-file.ts) over two in-process SoftHSMv2 members: one line
 * per crypto operation per member with the mechanism, the CKA_ID and the KMS request id; never
 * plaintext, ciphertext or PINs; buffered, yet on disk within the flush interval and at close.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { hsmAuditFile } from '../../src/keystores/pkcs11/cluster/audit-file.ts';
import { HsmCluster } from '../../src/keystores/pkcs11/cluster/cluster.ts';
import { HsmClusterKeyStore } from '../../src/keystores/pkcs11/cluster/cluster-key-store.ts';
import { LocalHsmMember } from '../../src/keystores/pkcs11/cluster/local-member.ts';
import type { KeyStoreRequestInfo, KeyVersionHandle } from '../../src/keystores/types.ts';
import { SOFTHSM_MODULE, SoftHsm, type TestToken } from './softhsm.ts';

const hsm = SoftHsm.get();
const tokens = ['audit-one', 'audit-two'].map((label) => hsm.createToken(label));
const member = (token: TestToken) =>
  new LocalHsmMember({ name: token.label, modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: Buffer.from(token.pin), sessions: 2 });

interface AuditLine {
  time: string;
  clusterId: string;
  member: string;
  operation: string;
  mechanism?: string;
  objectId?: string;
  outcome: string;
  errorCode?: string;
  requestId?: string;
  kmsOperation?: string;
}

describe('the HSM audit log of a cluster', () => {
  const clusterId = `audit-${randomUuid()}`;
  const dir = mkdtempSync(join(tmpdir(), 'strongroom-hsm-audit-'));
  const path = join(dir, 'hsm-audit', `${clusterId}.jsonl`);
  let cluster: HsmCluster;
  let store: HsmClusterKeyStore;
  let audit: ReturnType<typeof hsmAuditFile>;
  const read = (): AuditLine[] =>
    readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as AuditLine);
  const request = (operation: string): KeyStoreRequestInfo => ({
    principalArn: 'arn:aws:iam::111122223333:user/auditor',
    operation,
    requestId: randomUuid(),
    keyArn: 'arn:aws:kms:us-east-1:111122223333:key/audit',
  });
  const newVersion = async (): Promise<KeyVersionHandle> => {
    const keyId = randomUuid();
    return { keyId, version: 1, sealedMaterial: await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT') };
  };

  before(async () => {
    audit = hsmAuditFile(path, clusterId);
    cluster = await HsmCluster.initialise(
      { clusterId, members: tokens.map(member), probeIntervalMs: 60_000, audit },
      new Map(tokens.map((token) => [token.label, SecretBytes.from(Buffer.from(token.soPin))])),
    );
    store = new HsmClusterKeyStore(cluster);
  });
  after(async () => {
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a created key is logged at once, one line per member that holds it; the file is 0600', async () => {
    const handle = await newVersion();
    const objectId = handle.sealedMaterial.subarray(6).toString('hex');
    const created = read().filter((line) => line.operation === 'create' && line.objectId === objectId);
    assert.deepEqual(created.map((line) => line.member).sort(), tokens.map((token) => token.label).sort());
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  test('each encrypt and decrypt is one line naming member, mechanism, CKA_ID and KMS request id, and no secret', async () => {
    const handle = await newVersion();
    const objectId = handle.sealedMaterial.subarray(6).toString('hex');
    const canary = `canary-plaintext-${randomUuid()}`;
    const requests: Array<{ info: KeyStoreRequestInfo; operation: string }> = [];
    const blobs: Buffer[] = [];
    for (let index = 0; index < 6; index++) {
      const encryptRequest = request('Encrypt');
      const blob = await store.encrypt(handle, Buffer.from(`${canary}-${index}`), { purpose: 'audit' }, encryptRequest);
      const decryptRequest = request('Decrypt');
      assert.equal((await store.decrypt(handle, blob, { purpose: 'audit' }, decryptRequest)).toString(), `${canary}-${index}`);
      requests.push({ info: encryptRequest, operation: 'encrypt' }, { info: decryptRequest, operation: 'decrypt' });
      blobs.push(blob);
    }
    // A decryption the caller got wrong is logged too, as the caller's error.
    const tampered = Buffer.from(blobs[0]!);
    tampered[tampered.length - 1]! ^= 1;
    const badRequest = request('Decrypt');
    await assert.rejects(store.decrypt(handle, tampered, { purpose: 'audit' }, badRequest), /decryption failed|InvalidCiphertext/i);
    audit.flush(); // what the cluster's close does; the interval is tested below

    const lines = read();
    for (const { info, operation } of requests) {
      const forRequest = lines.filter((line) => line.requestId === info.requestId);
      assert.equal(forRequest.length, 1, `one line for request ${info.requestId}`);
      const [line] = forRequest;
      assert.equal(line!.operation, operation);
      assert.equal(line!.kmsOperation, info.operation);
      assert.equal(line!.mechanism, 'CKM_AES_GCM');
      assert.equal(line!.objectId, objectId);
      assert.equal(line!.outcome, 'ok');
      assert.equal(line!.clusterId, clusterId);
      assert.ok(tokens.some((token) => token.label === line!.member));
      assert.ok(!Number.isNaN(Date.parse(line!.time)));
    }
    const members = new Set(lines.filter((line) => requests.some(({ info }) => info.requestId === line.requestId)).map((line) => line.member));
    assert.equal(members.size, 2, 'round robin: both members served, each logged its own operations');
    const bad = lines.filter((line) => line.requestId === badRequest.requestId);
    assert.deepEqual(bad.map((line) => [line.operation, line.outcome, line.errorCode]), [['decrypt', 'error', 'INVALID_CIPHERTEXT']]);

    const text = readFileSync(path, 'utf8');
    assert.ok(!text.includes('canary'), 'no plaintext');
    for (const blob of blobs) {
      for (const encoding of ['hex', 'base64'] as const) assert.ok(!text.includes(blob.subarray(-16).toString(encoding)), `no ciphertext (${encoding})`);
    }
    for (const token of tokens) assert.ok(!text.includes(token.pin) && !text.includes(token.soPin), 'no PIN');
  });

  test('crypto lines are buffered but reach the file within the flush interval, without a close', async () => {
    const handle = await newVersion();
    const info = request('Encrypt');
    await store.encrypt(handle, Buffer.from('buffered'), undefined, info);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(read().filter((line) => line.requestId === info.requestId).length, 1);
  });
});
