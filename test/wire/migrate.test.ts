/**
 * `strongroom migrate --from sqlite:DIR --to postgres://…` round trip: an embedded installation
 * with every kind of object (keys in every state with rotated versions, aliases, tags, grants, a
 * user with a policy and an access key, a role, a custom key store row, an HSM cluster row, the
 * audit trail), moved into PostgreSQL and served from there: everything is as it was, old
 * ciphertexts decrypt, the user's key signs in, and the audit chain verifies.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
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
  ListGrantsCommand,
  ListKeysCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
} from '@aws-sdk/client-kms';
import Database from 'better-sqlite3';
import pg from 'pg';
import { adminCall } from '../support/admin-api.ts';
import { createKey } from '../support/kms-assertions.ts';
import { STRONGROOM_BIN, makeDataDir, removeDataDir, startServer } from '../support/server.ts';

const POSTGRES = process.env.STRONGROOM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `strongroom_migrate_${randomBytes(6).toString('hex')}`;
const target = `${POSTGRES}?schema=${schema}`;

const strongroom = (...args: string[]) =>
  spawnSync(process.execPath, [STRONGROOM_BIN, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });

describe('strongroom migrate: SQLite → PostgreSQL', { timeout: 240_000 }, () => {
  let source: string;
  let served: string;
  const before_: Record<string, unknown> = {};
  let ciphertext: Uint8Array;
  let user: { accessKeyId: string; secretAccessKey: string };
  const keys: Record<string, string> = {};

  before(async () => {
    const client = new pg.Client({ connectionString: POSTGRES });
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.end();

    source = await makeDataDir();
    const server = await startServer({ dataDir: source });
    const kms = server.kms();
    keys.rotated = (await createKey(kms)).KeyId!;
    ciphertext = (await kms.send(new EncryptCommand({ KeyId: keys.rotated, Plaintext: Buffer.from('before the move') }))).CiphertextBlob!;
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keys.rotated }));
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/moved', TargetKeyId: keys.rotated }));
    await kms.send(new TagResourceCommand({ KeyId: keys.rotated, Tags: [{ TagKey: 'team', TagValue: 'blue' }] }));
    keys.disabled = (await createKey(kms)).KeyId!;
    await kms.send(new DisableKeyCommand({ KeyId: keys.disabled }));
    keys.pending = (await createKey(kms)).KeyId!;
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keys.pending, PendingWindowInDays: 7 }));
    keys.signing = (await createKey(kms, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' })).KeyId!;
    const account = /:(\d{12}):/.exec((await kms.send(new DescribeKeyCommand({ KeyId: keys.rotated }))).KeyMetadata!.Arn!)![1];
    await adminCall(server, 'CreateUser', { UserName: 'app' });
    await adminCall(server, 'PutUserPolicy', {
      UserName: 'app',
      PolicyName: 'use',
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] }),
    });
    const created = await adminCall<{ AccessKey: { AccessKeyId: string; SecretAccessKey: string } }>(server, 'CreateAccessKey', { UserName: 'app' });
    user = { accessKeyId: created.AccessKey.AccessKeyId, secretAccessKey: created.AccessKey.SecretAccessKey };
    await adminCall(server, 'CreateRole', {
      RoleName: 'ops',
      AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' }] }),
    });
    await kms.send(new CreateGrantCommand({ KeyId: keys.rotated, GranteePrincipal: `arn:aws:iam::${account}:user/app`, Operations: ['Decrypt'], Name: 'reader' }));
    before_.keys = (await kms.send(new ListKeysCommand({}))).Keys!.map((key) => key.KeyId).sort();
    await server.stop();
    // Rows the API cannot make without live HSMs or proxies: a custom key store and an HSM cluster.
    const db = new Database(join(source, 'strongroom.db'));
    db.prepare(
      `INSERT INTO custom_key_stores (custom_key_store_id, name, type, created_at, connection_state, sealed_secret, xks_proxy)
       VALUES ('cks-0123456789abcdef0', 'moved-store', 'EXTERNAL_KEY_STORE', 1, 'DISCONNECTED', x'00', '{"connectivity":"PUBLIC_ENDPOINT"}')`,
    ).run();
    db.prepare(`INSERT INTO hsm_clusters (cluster_id, created_at, min_replicas, request_timeout_ms) VALUES ('cluster-abcdefghijk', 1, 1, 2000)`).run();
    db.close();
  });

  after(async () => {
    await removeDataDir(source);
    if (served) await removeDataDir(served);
    const client = new pg.Client({ connectionString: POSTGRES });
    await client.connect();
    await client.query(`DROP SCHEMA ${schema} CASCADE`);
    await client.end();
  });

  it('copies every row, verifies the audit trail there, and refuses a second run into the now non-empty database', () => {
    const result = strongroom('migrate', '--from', `sqlite:${source}`, '--to', target);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /keys: 4 rows/);
    assert.match(result.stdout, /key_versions: 5 rows/);
    assert.match(result.stdout, /custom_key_stores: 1 rows/);
    assert.match(result.stdout, /hsm_clusters: 1 rows/);
    assert.match(result.stdout, /audit trail verified in PostgreSQL: \d+ events/);
    const again = strongroom('migrate', '--from', `sqlite:${source}`, '--to', target);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /not empty/);
  });

  it('served from PostgreSQL, the installation is the same one', async () => {
    served = await makeDataDir();
    mkdirSync(served, { recursive: true, mode: 0o700 });
    for (const file of ['root.key', 'credentials']) copyFileSync(join(source, file), join(served, file));
    const server = await startServer({ dataDir: served, args: ['--database', target], timeoutMs: 60_000 });
    try {
      const kms = server.kms();
      assert.deepEqual((await kms.send(new ListKeysCommand({}))).Keys!.map((key) => key.KeyId).sort(), before_.keys);
      const state = async (keyId: string) => (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState;
      assert.deepEqual(
        [await state(keys.rotated), await state(keys.disabled), await state(keys.pending), await state(keys.signing)],
        ['Enabled', 'Disabled', 'PendingDeletion', 'Enabled'],
      );
      assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: ciphertext }))).Plaintext!).toString(), 'before the move');
      assert.equal((await kms.send(new ListKeyRotationsCommand({ KeyId: keys.rotated }))).Rotations!.length, 1);
      assert.equal((await kms.send(new ListAliasesCommand({}))).Aliases!.find((alias) => alias.AliasName === 'alias/moved')?.TargetKeyId, keys.rotated);
      assert.deepEqual((await kms.send(new ListResourceTagsCommand({ KeyId: keys.rotated }))).Tags, [{ TagKey: 'team', TagValue: 'blue' }]);
      assert.equal((await kms.send(new ListGrantsCommand({ KeyId: keys.rotated }))).Grants![0].Name, 'reader');
      // The user's access key (its secret sealed under the same root key) still signs in.
      const asUser = new KMSClient({ endpoint: server.endpoint, region: server.region, credentials: user, maxAttempts: 1 });
      await asUser.send(new EncryptCommand({ KeyId: 'alias/moved', Plaintext: Buffer.from('x') }));
      asUser.destroy();
      const roles = await adminCall<{ Roles: { RoleName: string }[] }>(server, 'ListRoles', {});
      assert.deepEqual(roles.Roles.map((role) => role.RoleName), ['ops']);
    } finally {
      await server.stop();
    }
    const verified = strongroom('audit', 'verify', '--data-dir', served, '--database', target);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
  });
});
