/**
 * Several Strongroom nodes on one PostgreSQL (issue 8): real `strongroom serve` processes on
 * different ports sharing a database schema of their own, each with its own data directory
 * holding the same root key. What one node does, the others see at once where security depends
 * on it (disable, deletion, key and identity policies, grants, access keys, alias moves,
 * rotation); concurrent alias moves leave every node agreeing on one target; a node killed
 * mid-load loses no acknowledged request's audit event or ciphertext, the others keep serving,
 * and the one shared chain verifies.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  CreateAliasCommand,
  CreateGrantCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  KMSClient,
  ListAliasesCommand,
  PutKeyPolicyCommand,
  RevokeGrantCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { parseSymmetricCiphertextHeader } from '../../src/crypto/symmetric-ciphertext.ts';
import { adminCall } from '../support/admin-api.ts';
import { createKey } from '../support/kms-assertions.ts';
import { STRONGROOM_BIN, makeDataDir, removeDataDir, startServer, type RunningServer } from '../support/server.ts';
import { createTestSchema, dropTestSchema } from '../support/postgres-schema.ts';

const POSTGRES = process.env.STRONGROOM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `strongroom_nodes_${randomBytes(6).toString('hex')}`;
const databaseUrl = `${POSTGRES}?schema=${schema}`;

describe('several nodes on one PostgreSQL', { timeout: 240_000 }, () => {
  const nodes: RunningServer[] = [];
  const dataDirs: string[] = [];
  let a: KMSClient;
  let b: KMSClient;
  let c: KMSClient;
  let accountId: string;

  const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });
  const ALLOW_CRYPTO = policy({ Effect: 'Allow', Action: ['kms:Encrypt', 'kms:Decrypt'], Resource: '*' });
  const encrypt = (client: KMSClient, keyId: string) => client.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));

  /** A user made through node A's admin API, with a KMS client for it on node B. */
  async function userOnB(userName: string, policies: Record<string, string>) {
    await adminCall(nodes[0], 'CreateUser', { UserName: userName });
    for (const [PolicyName, PolicyDocument] of Object.entries(policies)) {
      await adminCall(nodes[0], 'PutUserPolicy', { UserName: userName, PolicyName, PolicyDocument });
    }
    const { AccessKey } = await adminCall<{ AccessKey: { AccessKeyId: string; SecretAccessKey: string } }>(nodes[0], 'CreateAccessKey', {
      UserName: userName,
    });
    const credentials = { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey };
    return { arn: `arn:aws:iam::${accountId}:user/${userName}`, accessKeyId: AccessKey.AccessKeyId, onB: nodes[1].kms({ credentials }) };
  }

  /** Node 1 makes the root key and the administrator; the others get copies, as an operator would deploy them. */
  async function startNode(index: number): Promise<RunningServer> {
    const dataDir = dataDirs[index] ?? (dataDirs[index] = await makeDataDir());
    if (index > 0) {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      for (const file of ['root.key', 'credentials']) copyFileSync(join(dataDirs[0], file), join(dataDir, file));
    }
    return startServer({ dataDir, args: ['--database', databaseUrl], timeoutMs: 60_000 });
  }

  before(async () => {
    await createTestSchema(POSTGRES, schema);
    for (let i = 0; i < 3; i++) nodes.push(await startNode(i));
    [a, b, c] = nodes.map((node) => node.kms());
    accountId = (await createKey(a)).AWSAccountId as string;
  });

  after(async () => {
    for (const node of nodes) await node.stop().catch(() => {});
    for (const dir of dataDirs) await removeDataDir(dir);
    await dropTestSchema(POSTGRES, schema);
  });

  it('a key created on node A works on B and C; disabled on A, B refuses it at once', async () => {
    const key = await createKey(a);
    const { CiphertextBlob } = await a.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('shared') }));
    assert.equal(Buffer.from((await b.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString(), 'shared');
    assert.equal(Buffer.from((await c.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString(), 'shared');
    await b.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('warm any cache') }));
    await a.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    await assert.rejects(b.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('x') })), { name: 'DisabledException' });
    await assert.rejects(c.send(new DecryptCommand({ CiphertextBlob })), { name: 'DisabledException' });
  });

  it('concurrent alias moves from two nodes leave one alias, and every node resolves it to the same key', async () => {
    const keys = [await createKey(a), await createKey(b)];
    await a.send(new CreateAliasCommand({ AliasName: 'alias/contended', TargetKeyId: keys[0].KeyId }));
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).send(new UpdateAliasCommand({ AliasName: 'alias/contended', TargetKeyId: keys[i % 2].KeyId })),
      ),
    );
    const targets = new Set<string>();
    for (const client of [a, b, c]) {
      const aliases = (await client.send(new ListAliasesCommand({}))).Aliases!.filter((alias) => alias.AliasName === 'alias/contended');
      assert.equal(aliases.length, 1);
      assert.ok(keys.some((key) => key.KeyId === aliases[0].TargetKeyId));
      targets.add(aliases[0].TargetKeyId!);
      // What each node resolves the alias to (DescribeKey, Encrypt) is that same key.
      targets.add((await client.send(new DescribeKeyCommand({ KeyId: 'alias/contended' }))).KeyMetadata!.KeyId!);
      targets.add((await encrypt(client, 'alias/contended')).KeyId!.split('/').pop()!);
    }
    assert.equal(targets.size, 1, `the nodes disagree on the alias's target: ${[...targets]}`);
  });

  // Each change below is made on node A after node B served the same caller and key, so that any
  // cache node B kept would still hold the old state: B must refuse (or follow) at once.

  it('PutKeyPolicy on A that denies a caller: B refuses that caller at once', async () => {
    const user = await userOnB('policy-denied', { crypto: ALLOW_CRYPTO });
    const key = await createKey(a);
    await encrypt(user.onB, key.KeyId!);
    const keyPolicy = policy(
      { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'kms:*', Resource: '*' },
      { Sid: 'Deny the user', Effect: 'Deny', Principal: { AWS: user.arn }, Action: 'kms:Encrypt', Resource: '*' },
    );
    await a.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: 'default', Policy: keyPolicy }));
    await assert.rejects(encrypt(user.onB, key.KeyId!), { name: 'AccessDeniedException' });
  });

  it('DeleteUserPolicy on A: B refuses what only that policy allowed, at once', async () => {
    const user = await userOnB('policy-detached', { crypto: ALLOW_CRYPTO });
    const key = await createKey(a);
    await encrypt(user.onB, key.KeyId!);
    await adminCall(nodes[0], 'DeleteUserPolicy', { UserName: 'policy-detached', PolicyName: 'crypto' });
    await assert.rejects(encrypt(user.onB, key.KeyId!), { name: 'AccessDeniedException' });
  });

  it('UpdateAccessKey Inactive on A: B rejects the signature at once', async () => {
    const user = await userOnB('key-deactivated', { crypto: ALLOW_CRYPTO });
    const key = await createKey(a);
    await encrypt(user.onB, key.KeyId!);
    await adminCall(nodes[0], 'UpdateAccessKey', { UserName: 'key-deactivated', AccessKeyId: user.accessKeyId, Status: 'Inactive' });
    await assert.rejects(encrypt(user.onB, key.KeyId!), { name: 'UnrecognizedClientException' });
  });

  it('RevokeGrant on A: the grantee is refused on B at once', async () => {
    const user = await userOnB('grantee', {});
    const key = await createKey(a);
    const { GrantId } = await a.send(new CreateGrantCommand({ KeyId: key.KeyId, GranteePrincipal: user.arn, Operations: ['Encrypt'] }));
    await encrypt(user.onB, key.KeyId!);
    await a.send(new RevokeGrantCommand({ KeyId: key.KeyId, GrantId }));
    await assert.rejects(encrypt(user.onB, key.KeyId!), { name: 'AccessDeniedException' });
  });

  it('ScheduleKeyDeletion on A: B refuses the key at once (KMSInvalidStateException)', async () => {
    const key = await createKey(a);
    const { CiphertextBlob } = await encrypt(b, key.KeyId!);
    await b.send(new DecryptCommand({ CiphertextBlob }));
    await a.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    await assert.rejects(encrypt(b, key.KeyId!), { name: 'KMSInvalidStateException' });
    await assert.rejects(b.send(new DecryptCommand({ CiphertextBlob })), { name: 'KMSInvalidStateException' });
  });

  it('UpdateAlias on A: Encrypt by the alias on B uses the new target at once', async () => {
    const [first, second] = [await createKey(a), await createKey(a)];
    await a.send(new CreateAliasCommand({ AliasName: 'alias/moving', TargetKeyId: first.KeyId }));
    assert.equal((await encrypt(b, 'alias/moving')).KeyId, first.Arn);
    await a.send(new UpdateAliasCommand({ AliasName: 'alias/moving', TargetKeyId: second.KeyId }));
    assert.equal((await encrypt(b, 'alias/moving')).KeyId, second.Arn);
  });

  it("RotateKeyOnDemand on A: B's next Encrypt uses the new version, and B decrypts both", async () => {
    const key = await createKey(a);
    const before = (await encrypt(b, key.KeyId!)).CiphertextBlob!;
    assert.equal(parseSymmetricCiphertextHeader(before).keyVersion, 1);
    await a.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
    const after = (await encrypt(b, key.KeyId!)).CiphertextBlob!;
    assert.equal(parseSymmetricCiphertextHeader(after).keyVersion, 2);
    for (const blob of [before, after]) await b.send(new DecryptCommand({ CiphertextBlob: blob }));
  });

  it('a node killed mid-load: the others keep serving, every acknowledged ciphertext decrypts, every acknowledged request has its event in the one verifying chain', async () => {
    const key = await createKey(a);
    const acknowledged: string[] = [];
    const ciphertexts: Uint8Array[] = [];
    let stop = false;
    const worker = async (client: KMSClient) => {
      while (!stop) {
        try {
          const response = await client.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('load') }));
          acknowledged.push(response.$metadata.requestId as string);
          ciphertexts.push(response.CiphertextBlob!);
        } catch {
          return; // its node died under this request
        }
      }
    };
    const workers = [a, a, b, b, c, c].map(worker);
    for (const started = Date.now(); acknowledged.length < 150 && Date.now() - started < 30_000; ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await nodes[1].kill();
    await new Promise((resolve) => setTimeout(resolve, 300));
    stop = true;
    await Promise.all(workers);
    assert.ok(acknowledged.length >= 150, `only ${acknowledged.length} acknowledged`);

    // The surviving nodes keep serving, and every acknowledged ciphertext (from any node, the
    // killed one's included) decrypts on them.
    for (const [i, CiphertextBlob] of ciphertexts.entries()) {
      const { Plaintext } = await (i % 2 ? a : c).send(new DecryptCommand({ CiphertextBlob }));
      assert.equal(Buffer.from(Plaintext!).toString(), 'load');
    }
    await encrypt(a, key.KeyId!);
    await encrypt(c, key.KeyId!);

    const audit = (...args: string[]) =>
      spawnSync(process.execPath, [STRONGROOM_BIN, 'audit', ...args, '--data-dir', dataDirs[0], '--database', databaseUrl], {
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
        timeout: 120_000,
      });
    const verified = audit('verify');
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /intact/);
    const exported = audit('export');
    assert.equal(exported.status, 0, exported.stderr);
    const recorded = new Set(
      exported.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { type: string; event?: { requestID?: string } })
        .filter((line) => line.type === 'event')
        .map((line) => line.event?.requestID),
    );
    const missing = acknowledged.filter((id) => !recorded.has(id));
    assert.deepEqual(missing, [], `${missing.length} acknowledged requests have no event`);
  });
});
