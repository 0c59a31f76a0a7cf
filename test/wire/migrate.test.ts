/**
 * `strongroom migrate --from sqlite:DIR --to postgres://…` round trip: an embedded installation
 * with every kind of object (keys in every state with rotated versions, a rotation schedule,
 * aliases, tags, grants, a tagged user with a policy and an access key, a role and a session's
 * temporary credentials, an HSM cluster made by `strongroom hsm cluster create` over a real
 * SoftHSMv2 token with its sealed PIN, an AWS_CLOUDHSM key store with a key in it, rows for what
 * members owe and backups, the audit trail), moved into PostgreSQL: every table of the source
 * compared row for row with the target, then served from there: everything is as it was, old
 * ciphertexts decrypt (the HSM's too), the user's key and the session sign in, GetKeyLastUsage
 * answers as before, and the audit chain verifies.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConnectCustomKeyStoreCommand,
  CreateAliasCommand,
  CreateCustomKeyStoreCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeCustomKeyStoresCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyLastUsageCommand,
  GetKeyRotationStatusCommand,
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
import { decodeBatch, type BatchRow } from '../../src/storage/sqlite/audit-batches.ts';
import { SOFTHSM_MODULE, SoftHsm } from '../keystores/softhsm.ts';
import { adminCall } from '../support/admin-api.ts';
import { createKey } from '../support/kms-assertions.ts';
import { STRONGROOM_BIN, makeDataDir, removeDataDir, startServer, type RunningServer } from '../support/server.ts';
import { signedPost } from '../support/sigv4-signing.ts';
import { comparableRows, postgresRows, sqliteColumns, sqliteRows } from '../support/table-rows.ts';

const POSTGRES = process.env.STRONGROOM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `strongroom_migrate_${randomBytes(6).toString('hex')}`;
const target = `${POSTGRES}?schema=${schema}`;

const strongroom = (...args: string[]) =>
  spawnSync(process.execPath, [STRONGROOM_BIN, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });

const CRYPTO_USER_PIN = 'migrate-kmsuser-2468';
const CLUSTER = 'cluster-mmmmmmmmmmm';

/** STS AssumeRole over the query protocol, signed by the administrator: temporary (ASIA) credentials. */
async function assumeRole(server: RunningServer, roleArn: string): Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken: string }> {
  const body = new URLSearchParams({ Action: 'AssumeRole', Version: '2011-06-15', RoleArn: roleArn, RoleSessionName: 'moved' }).toString();
  const signed = await signedPost(server, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body, 'sts');
  const response = await fetch(server.endpoint, { method: 'POST', headers: signed.headers as Record<string, string>, body });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  const field = (name: string) => new RegExp(`<${name}>([^<]+)</${name}>`).exec(text)![1];
  return { accessKeyId: field('AccessKeyId'), secretAccessKey: field('SecretAccessKey'), sessionToken: field('SessionToken') };
}

/** Tables of the source's audit.db and where the migration puts them; batches are compared decoded. */
const AUDIT_TABLES: Record<string, string> = { meta: 'audit_meta', digests: 'audit_digests' };
/** The audit trail's probe row proves that a trail can write; the target has its own. */
const NOT_MIGRATED = new Set(['probe']);

describe('strongroom migrate: SQLite → PostgreSQL', { timeout: 240_000 }, () => {
  let source: string;
  let served: string;
  const before_: Record<string, unknown> = {};
  let ciphertext: Uint8Array;
  let user: { accessKeyId: string; secretAccessKey: string };
  let session: { accessKeyId: string; secretAccessKey: string; sessionToken: string };
  let hsmCiphertext: Uint8Array;
  let secrets: string;
  const keys: Record<string, string> = {};

  before(async () => {
    const client = new pg.Client({ connectionString: POSTGRES });
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.end();

    // An HSM cluster of one SoftHSMv2 token, made by the operator's command: its member row holds the sealed PIN.
    const token = SoftHsm.get().createToken('migrate-a', CRYPTO_USER_PIN);
    secrets = mkdtempSync(join(tmpdir(), 'strongroom-migrate-secrets-'));
    const secretFile = (name: string, value: string) => {
      writeFileSync(join(secrets, name), `${value}\n`, { mode: 0o600 });
      return join(secrets, name);
    };
    source = await makeDataDir();
    const cluster = strongroom('hsm', 'cluster', 'create', '--cluster-id', CLUSTER, '--member-name', token.label, '--module', SOFTHSM_MODULE,
      '--token-label', token.label, '--pin-file', secretFile('pin', token.pin), '--so-pin-file', secretFile('so', token.soPin), '--data-dir', source);
    assert.equal(cluster.status, 0, cluster.stderr);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'anchor.key', '-out', 'anchor.pem', '-days', '1', '-subj', '/CN=cluster-ca'], { cwd: secrets, stdio: 'ignore' });

    const server = await startServer({ dataDir: source, timeoutMs: 60_000 });
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
    await adminCall(server, 'TagUser', { UserName: 'app', Tags: [{ Key: 'cost-center', Value: 'cc-42' }] });
    await adminCall(server, 'PutRolePolicy', {
      RoleName: 'ops',
      PolicyName: 'use',
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] }),
    });
    session = await assumeRole(server, `arn:aws:iam::${account}:role/ops`);
    assert.match(session.accessKeyId, /^ASIA/);
    await kms.send(new EnableKeyRotationCommand({ KeyId: keys.rotated, RotationPeriodInDays: 90 }));
    before_.rotation = await kms.send(new GetKeyRotationStatusCommand({ KeyId: keys.rotated }));

    // A key inside an AWS_CLOUDHSM custom key store, generated in the token.
    const storeId = (
      await kms.send(new CreateCustomKeyStoreCommand({
        CustomKeyStoreName: 'moved-hsm',
        CloudHsmClusterId: CLUSTER,
        TrustAnchorCertificate: readFileSync(join(secrets, 'anchor.pem'), 'utf8'),
        KeyStorePassword: CRYPTO_USER_PIN,
      }))
    ).CustomKeyStoreId!;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    for (let attempt = 0; attempt < 600; attempt++) {
      const state = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId }))).CustomKeyStores![0].ConnectionState;
      if (state !== 'CONNECTING') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    keys.hsm = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }))).KeyMetadata!.KeyId!;
    hsmCiphertext = (await kms.send(new EncryptCommand({ KeyId: keys.hsm, Plaintext: Buffer.from('inside the token') }))).CiphertextBlob!;

    before_.lastUsage = (await kms.send(new GetKeyLastUsageCommand({ KeyId: keys.rotated }))).KeyLastUsage;
    before_.hsmLastUsage = (await kms.send(new GetKeyLastUsageCommand({ KeyId: keys.hsm }))).KeyLastUsage;
    assert.ok(before_.lastUsage && before_.hsmLastUsage);
    before_.keys = (await kms.send(new ListKeysCommand({}))).Keys!.map((key) => key.KeyId).sort();
    await server.stop();
    // Rows the API cannot make without live HSMs or proxies: a custom key store and an HSM cluster.
    const db = new Database(join(source, 'strongroom.db'));
    db.prepare(
      `INSERT INTO custom_key_stores (custom_key_store_id, name, type, created_at, connection_state, sealed_secret, xks_proxy)
       VALUES ('cks-0123456789abcdef0', 'moved-store', 'EXTERNAL_KEY_STORE', 1, 'DISCONNECTED', x'00', '{"connectivity":"PUBLIC_ENDPOINT"}')`,
    ).run();
    db.prepare(`INSERT INTO hsm_clusters (cluster_id, created_at, min_replicas, request_timeout_ms) VALUES ('cluster-abcdefghijk', 1, 1, 2000)`).run();
    // What only failures make: a member that owes an operation, and a managed backup file.
    db.prepare(
      `INSERT INTO hsm_members (cluster_id, name, config, sealed_pin, added_at)
       VALUES ('cluster-abcdefghijk', 'hsm-x', '{"kind":"agent","address":"127.0.0.1:1"}', randomblob(60), 2)`,
    ).run();
    db.prepare(`INSERT INTO hsm_owed_operations (cluster_id, member_name, object_id, operation, recorded_at) VALUES ('cluster-abcdefghijk', 'hsm-x', randomblob(28), 'destroy', 3)`).run();
    db.prepare(`INSERT INTO hsm_backups (cluster_id, path, created_at) VALUES ('cluster-abcdefghijk', '/var/backups/hsm-x.bin', 4)`).run();
    db.close();
  });

  after(async () => {
    await removeDataDir(source);
    if (served) await removeDataDir(served);
    if (secrets) rmSync(secrets, { recursive: true, force: true });
    const client = new pg.Client({ connectionString: POSTGRES });
    await client.connect();
    await client.query(`DROP SCHEMA ${schema} CASCADE`);
    await client.end();
  });

  it('copies every row, verifies the audit trail there, and refuses a second run into the now non-empty database', () => {
    const result = strongroom('migrate', '--from', `sqlite:${source}`, '--to', target);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /keys: 5 rows/);
    assert.match(result.stdout, /key_versions: 6 rows/);
    assert.match(result.stdout, /custom_key_stores: 2 rows/);
    assert.match(result.stdout, /hsm_clusters: 2 rows/);
    assert.match(result.stdout, /audit trail verified in PostgreSQL: \d+ events/);
    const again = strongroom('migrate', '--from', `sqlite:${source}`, '--to', target);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /not empty/);
  });

  it('the target holds every source table row for row, and as many audit events', async () => {
    const metadata = new Database(join(source, 'strongroom.db'), { readonly: true });
    const audit = new Database(join(source, 'audit.db'), { readonly: true });
    const client = new pg.Client({ connectionString: POSTGRES, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      const tablesOf = (db: Database.Database) =>
        (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((row) => row.name);
      // Every table of strongroom.db has its namesake in PostgreSQL, with the same rows.
      const metadataTables = tablesOf(metadata);
      for (const table of metadataTables) {
        const columns = sqliteColumns(metadata, table);
        assert.deepEqual(await postgresRows(client, table, columns), sqliteRows(metadata, table, columns), `table ${table}`);
      }
      // What the source holds, so the comparison above covers it.
      const count = (where: string, table: string) => (metadata.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).get() as { n: number }).n;
      assert.equal(count(`cluster_id = '${CLUSTER}' AND sealed_pin IS NOT NULL`, 'hsm_members'), 1, 'a member with its sealed PIN');
      assert.equal(count('1', 'hsm_owed_operations'), 1);
      assert.equal(count('1', 'hsm_backups'), 1);
      assert.equal(count("access_key_id LIKE 'ASIA%' AND session_token_hash IS NOT NULL AND expires_at IS NOT NULL", 'access_keys'), 1, 'a session credential');
      assert.equal(count("kind = 'user' AND name = 'app' AND tags LIKE '%cc-42%'", 'principals'), 1, 'principal tags');
      assert.equal(count('rotation_enabled = 1 AND rotation_period_days = 90 AND next_rotation_at IS NOT NULL', 'keys'), 1, 'a rotation schedule');
      assert.equal(count(`key_id = '${keys.hsm}' AND custom_key_store_id IS NOT NULL`, 'keys'), 1, 'a key in a custom key store');

      // audit.db: meta and digests as they are; batches decoded into per-event rows and their keys.
      const auditTables = tablesOf(audit);
      assert.deepEqual(auditTables.filter((table) => !(table in AUDIT_TABLES) && !NOT_MIGRATED.has(table)).sort(), ['batch_keys', 'batches']);
      for (const [from, to] of Object.entries(AUDIT_TABLES)) {
        const columns = sqliteColumns(audit, from);
        assert.deepEqual(await postgresRows(client, to, columns), sqliteRows(audit, from, columns), `table ${from}`);
      }
      const events = (audit.prepare('SELECT * FROM batches ORDER BY first_seq').all() as BatchRow[]).flatMap((row) => decodeBatch(row));
      const sourceCount = (audit.prepare('SELECT COALESCE(sum(last_seq - first_seq + 1), 0) AS n FROM batches').get() as { n: number }).n;
      const targetCount = Number((await client.query('SELECT count(*) AS n FROM audit_events')).rows[0].n);
      assert.equal(targetCount, sourceCount);
      assert.equal(events.length, sourceCount);
      const eventColumns = ['seq', 'time', 'text', 'hash', 'event_name', 'principal_arn', 'error_code', 'crypto_success'];
      assert.deepEqual(
        await postgresRows(client, 'audit_events', eventColumns),
        comparableRows(events.map((event) => [event.seq, event.time.getTime(), event.text, event.hash, event.eventName, event.principalArn ?? null, event.errorCode ?? null, event.cryptoSuccess])),
      );
      const eventKeys = events.flatMap((event) => [...new Set(event.keyIds)].map((keyId) => [keyId, event.cryptoSuccess, event.seq]));
      assert.ok(eventKeys.some(([keyId, success]) => keyId === keys.hsm && success === true));
      assert.deepEqual(await postgresRows(client, 'audit_event_keys', ['key_id', 'crypto_success', 'seq']), comparableRows(eventKeys));
      // batch_keys (key, success, batch) is an index of the same keys: every one is in the target.
      const batchKeys = new Set(eventKeys.map(([keyId, success]) => `${keyId}/${success ? 1 : 0}`));
      for (const row of audit.prepare('SELECT key_id, crypto_success FROM batch_keys').all() as { key_id: string; crypto_success: number }[]) {
        assert.ok(batchKeys.has(`${row.key_id}/${row.crypto_success}`), row.key_id);
      }
    } finally {
      metadata.close();
      audit.close();
      await client.end();
    }
  });

  it('served from PostgreSQL, the installation is the same one', async () => {
    served = await makeDataDir();
    mkdirSync(served, { recursive: true, mode: 0o700 });
    for (const file of ['root.key', 'credentials']) copyFileSync(join(source, file), join(served, file));
    const server = await startServer({ dataDir: served, args: ['--database', target], timeoutMs: 60_000 });
    try {
      const kms = server.kms();
      // First, before any new use: the audit trail's key index moved with the events.
      assert.deepEqual((await kms.send(new GetKeyLastUsageCommand({ KeyId: keys.rotated }))).KeyLastUsage, before_.lastUsage);
      assert.deepEqual((await kms.send(new GetKeyLastUsageCommand({ KeyId: keys.hsm }))).KeyLastUsage, before_.hsmLastUsage);
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
      const app = await adminCall<{ User: { Tags?: { Key: string; Value: string }[] } }>(server, 'GetUser', { UserName: 'app' });
      assert.deepEqual(app.User.Tags, [{ Key: 'cost-center', Value: 'cc-42' }]);
      // The role session's temporary credentials (token hash and expiry moved) still sign in.
      const asSession = new KMSClient({ endpoint: server.endpoint, region: server.region, credentials: session, maxAttempts: 1 });
      await asSession.send(new EncryptCommand({ KeyId: keys.rotated, Plaintext: Buffer.from('y') }));
      asSession.destroy();
      const rotation = await kms.send(new GetKeyRotationStatusCommand({ KeyId: keys.rotated }));
      assert.deepEqual(
        [rotation.KeyRotationEnabled, rotation.RotationPeriodInDays, rotation.NextRotationDate?.getTime()],
        [true, 90, (before_.rotation as typeof rotation).NextRotationDate?.getTime()],
      );
      // The HSM key: its store reconnects from the moved rows (sealed password, cluster, member).
      assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: hsmCiphertext }))).Plaintext!).toString(), 'inside the token');
    } finally {
      await server.stop();
    }
    const verified = strongroom('audit', 'verify', '--data-dir', served, '--database', target);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
  });
});
