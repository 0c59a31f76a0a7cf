/**
 * `strongroom iam` and `strongroom policy explain` as a user runs them: child processes talking
 * SigV4 to a real server, whose users then call KMS with the real AWS SDK.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateKeyCommand, DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { removeDataDir, type RunningServer, startServer, STRONGROOM_BIN } from '../support/server.ts';
import { assertWireError, keepRawBodies } from '../support/wire-errors.ts';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  json: () => Record<string, any>;
}

/** Runs the CLI; AWS_* from the test's own environment never leak in. */
function strongroom(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AWS_') && value !== undefined) env[name] = value;
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [STRONGROOM_BIN, ...args], { env: { ...env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end(options.input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', fail);
    child.once('close', (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr, json: () => JSON.parse(stdout) });
    });
  });
}

describe('strongroom iam and policy explain against a running server', () => {
  let server: RunningServer;
  let scratch: string;
  let adminEnv: Record<string, string>;
  let accountId: string;
  let appArn: string;
  let appCredentials: { accessKeyId: string; secretAccessKey: string };
  let keyId: string;
  let app: KMSClient;

  /** As the administrator, through the environment the server's welcome text suggests. */
  const asAdmin = (...args: string[]) => strongroom(args, { env: adminEnv });

  const ok = (run: Run): Run => {
    assert.equal(run.status, 0, `exit ${run.status}: ${run.stderr}`);
    assert.equal(run.stderr, '');
    return run;
  };

  before(async () => {
    server = await startServer();
    scratch = await mkdtemp(join(tmpdir(), 'strongroom-iam-cli-'));
    adminEnv = {
      AWS_SHARED_CREDENTIALS_FILE: join(server.dataDir, 'credentials'),
      AWS_REGION: server.region,
      AWS_ENDPOINT_URL_KMS: server.endpoint,
    };
  });

  after(async () => {
    app?.destroy();
    await server.stop();
    await removeDataDir(server.dataDir);
    await rm(scratch, { recursive: true, force: true });
  });

  it('whoami names the administrator', async () => {
    const identity = ok(await asAdmin('iam', 'whoami')).json();
    accountId = identity.Account;
    assert.match(accountId, /^\d{12}$/);
    assert.equal(identity.Arn, `arn:aws:iam::${accountId}:user/admin`);
    assert.match(identity.UserId, /^AIDA/);
  });

  it('creates a user, gives it a policy from a file, and an access key shown once', async () => {
    const { User } = ok(await asAdmin('iam', 'create-user', 'app', '--tag', 'team=payments')).json();
    appArn = User.Arn;
    assert.equal(appArn, `arn:aws:iam::${accountId}:user/app`);
    assert.match(User.CreateDate, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(User.Tags, [{ Key: 'team', Value: 'payments' }]);

    const policyFile = join(scratch, 'encrypt.json');
    const policy = { Version: '2012-10-17', Statement: [{ Sid: 'EncryptAnything', Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' }] };
    await writeFile(policyFile, JSON.stringify(policy));
    ok(await asAdmin('iam', 'put-user-policy', 'app', 'encrypt-only', '--document', `@${policyFile}`));
    assert.deepEqual(ok(await asAdmin('iam', 'get-user-policy', 'app', 'encrypt-only')).json(), {
      UserName: 'app',
      PolicyName: 'encrypt-only',
      PolicyDocument: policy,
    });
    // The same from stdin.
    const describeOnly = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:DescribeKey', Resource: '*' }] };
    ok(await strongroom(['iam', 'put-user-policy', 'app', 'describe', '--document', '-'], { env: adminEnv, input: JSON.stringify(describeOnly) }));
    assert.deepEqual(ok(await asAdmin('iam', 'list-user-policies', 'app')).json(), { PolicyNames: ['describe', 'encrypt-only'] });

    const { AccessKey } = ok(await asAdmin('iam', 'create-access-key', 'app')).json();
    assert.match(AccessKey.AccessKeyId, /^AKIA/);
    assert.equal(AccessKey.SecretAccessKey.length, 40);
    appCredentials = { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey };
    const listed = ok(await asAdmin('iam', 'list-access-keys', 'app'));
    assert.ok(!listed.stdout.includes(AccessKey.SecretAccessKey), 'never the secret again');
    assert.deepEqual(listed.json().AccessKeyMetadata.map((key: { AccessKeyId: string; Status: string }) => [key.AccessKeyId, key.Status]), [
      [AccessKey.AccessKeyId, 'Active'],
    ]);
  });

  it("the new user's key works with the AWS SDK: Encrypt is allowed, CreateKey denied in AWS's words", async () => {
    const admin = server.kms();
    keyId = (await admin.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    app = new KMSClient({ endpoint: server.endpoint, region: server.region, credentials: appCredentials, maxAttempts: 1 });
    keepRawBodies(app);
    const encrypted = await app.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('hello') }));
    assert.ok(encrypted.CiphertextBlob && encrypted.CiphertextBlob.length > 0);
    await assertWireError(app.send(new CreateKeyCommand({})), {
      name: 'AccessDeniedException',
      message: `User: ${appArn} is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action`,
    });
    await assertWireError(app.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob })), { name: 'AccessDeniedException' });
  });

  it('policy explain shows the decision, the deciding statement and the reasons', async () => {
    const text = ok(await asAdmin('policy', 'explain', '--principal', appArn, '--action', 'kms:Encrypt', '--key', keyId)).stdout;
    assert.match(text, /^Decision: +allowed$/m);
    assert.match(text, new RegExp(`^Resource: +arn:aws:kms:${server.region}:${accountId}:key/${keyId}$`, 'm'));
    assert.match(text, /^ {2}Allow +identity policy "encrypt-only" of app, statement 0 \(Sid "EncryptAnything"\)$/m);
    assert.match(text, /^Reasons:\n {2}- /m);

    const denied = ok(
      await asAdmin('policy', 'explain', '--json', '--principal', appArn, '--action', 'kms:Decrypt', '--key', keyId, '--encryption-context', 'purpose=test'),
    ).json();
    assert.equal(denied.Decision, 'implicitDeny');
    assert.deepEqual(denied.MatchedStatements, []);
    assert.ok(denied.Reasons.some((reason: string) => reason.includes(`is not authorized to perform: kms:Decrypt`)));
    assert.ok(!JSON.stringify(denied).includes('purpose=test'));
  });

  it('service errors are `error: <ErrorName>: <message>` with exit 1; usage errors exit 2', async () => {
    const again = await asAdmin('iam', 'create-user', 'app');
    assert.equal(again.status, 1);
    assert.equal(again.stderr, 'error: EntityAlreadyExistsException: User with name app already exists.\n');
    assert.equal(again.stdout, '');

    // The new user signs its own requests; it may not list users.
    const asApp = await strongroom(['iam', 'list-users'], {
      env: { AWS_ACCESS_KEY_ID: appCredentials.accessKeyId, AWS_SECRET_ACCESS_KEY: appCredentials.secretAccessKey, AWS_ENDPOINT_URL_KMS: server.endpoint },
    });
    assert.equal(asApp.status, 1);
    assert.equal(
      asApp.stderr,
      `error: AccessDeniedException: User: ${appArn} is not authorized to perform: iam:ListUsers on resource: * because no identity-based policy allows the iam:ListUsers action\n`,
    );

    const usage = await asAdmin('iam', 'update-access-key', appCredentials.accessKeyId, '--status', 'Sleeping');
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /Allowed choices are Active, Inactive/);
    assert.equal((await asAdmin('iam', 'no-such-command')).status, 2);
  });

  it("without other credentials, the CLI uses the --data-dir's administrator credentials", async () => {
    const home = join(scratch, 'home');
    const identity = await strongroom(['iam', 'whoami', '--data-dir', server.dataDir, '--endpoint', server.endpoint], { env: { HOME: home } });
    assert.equal(ok(identity).json().Arn, `arn:aws:iam::${accountId}:user/admin`);
  });

  it('deactivating the key stops it at once', async () => {
    ok(await asAdmin('iam', 'update-access-key', appCredentials.accessKeyId, '--status', 'Inactive', '--user-name', 'app'));
    await assertWireError(app.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('hello') })), {
      name: 'UnrecognizedClientException',
    });
    ok(await asAdmin('iam', 'update-access-key', appCredentials.accessKeyId, '--status', 'Active', '--user-name', 'app'));
    await app.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('hello') }));
  });

  it('--local is refused while the server holds the data directory, naming its pid', async () => {
    const refused = await strongroom(['iam', '--local', '--data-dir', server.dataDir, 'list-users']);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, new RegExp(`^error: data directory .* is held by a running Strongroom server \\(pid ${server.process.pid}\\); .*--endpoint`));
    assert.equal(refused.stdout, '');
  });

  it('--local works on the data directory once the server has stopped', async () => {
    await server.stop();
    const { Users } = ok(await strongroom(['iam', '--local', '--data-dir', server.dataDir, 'list-users'])).json();
    assert.deepEqual(Users.map((user: { UserName: string }) => user.UserName), ['admin', 'app']);
    const explained = ok(
      await strongroom(['policy', 'explain', '--local', '--data-dir', server.dataDir, '--json', '--principal', appArn, '--action', 'kms:Encrypt', '--key', keyId]),
    ).json();
    assert.equal(explained.Decision, 'allowed');
    // The key policy's delegation to the account, then the identity policy that allows.
    assert.deepEqual(explained.MatchedStatements.map((statement: { Sid?: string }) => statement.Sid), ['Enable IAM User Permissions', 'EncryptAnything']);
  });
});
