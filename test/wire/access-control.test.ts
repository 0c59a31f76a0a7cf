/**
 * Access control end to end, through the real @aws-sdk/client-kms and the real AWS CLI: two
 * principals, allowed and denied by identity policies, an explicit deny, a grant and its
 * retirement, encryption-context conditions, and temporary credentials from `aws sts assume-role`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  CreateGrantCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  type KMSClient,
  RetireGrantCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { assertKmsError, createKey } from '../support/kms-assertions.ts';
import { type Credentials, type RunningServer, removeDataDir, startServer } from '../support/server.ts';
import { adminCall as callAdmin } from '../support/admin-api.ts';

const run = promisify(execFile);
const AWS_CLI = '/usr/bin/aws';

let server: RunningServer;
let admin: KMSClient;
let accountId: string;

/** A call to the admin API, signed as the administrator. */
const adminCall = <T = Record<string, unknown>>(operation: string, input: object) => callAdmin<T>(server, operation, input);

const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

async function userWithKey(userName: string, policies: Record<string, string>): Promise<{ arn: string; credentials: Credentials }> {
  await adminCall('CreateUser', { UserName: userName });
  for (const [PolicyName, PolicyDocument] of Object.entries(policies)) {
    await adminCall('PutUserPolicy', { UserName: userName, PolicyName, PolicyDocument });
  }
  const { AccessKey } = await adminCall<{ AccessKey: { AccessKeyId: string; SecretAccessKey: string } }>('CreateAccessKey', {
    UserName: userName,
  });
  return {
    arn: `arn:aws:iam::${accountId}:user/${userName}`,
    credentials: { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey },
  };
}

before(async () => {
  server = await startServer();
  admin = server.kms();
  accountId = (await createKey(admin)).AWSAccountId as string;
});

after(async () => {
  await server?.stop();
  await removeDataDir(server?.dataDir);
});

describe('two principals through the AWS SDK', () => {
  let keyId: string;
  let keyArn: string;
  let alice: { arn: string; client: KMSClient };
  let bob: { arn: string; client: KMSClient };

  before(async () => {
    const key = await createKey(admin);
    keyId = key.KeyId as string;
    keyArn = key.Arn as string;
    const aliceUser = await userWithKey('alice', {
      use: policy({
        Effect: 'Allow',
        Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ScheduleKeyDeletion', 'sts:AssumeRole'],
        Resource: '*',
        Condition: { StringEqualsIfExists: { 'kms:EncryptionContext:tenant': 'blue' } },
      }),
      fence: policy({ Effect: 'Deny', Action: 'kms:ScheduleKeyDeletion', Resource: '*' }),
    });
    const bobUser = await userWithKey('bob', {});
    alice = { arn: aliceUser.arn, client: server.kms({ credentials: aliceUser.credentials }) };
    bob = { arn: bobUser.arn, client: server.kms({ credentials: bobUser.credentials }) };
  });

  const encrypt = (client: KMSClient, context?: Record<string, string>) =>
    client.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('two principals'), EncryptionContext: context }));

  it('allows what an identity policy allows', async () => {
    const { CiphertextBlob } = await encrypt(alice.client, { tenant: 'blue' });
    const { Plaintext } = await alice.client.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { tenant: 'blue' } }));
    assert.equal(Buffer.from(Plaintext!).toString(), 'two principals');
  });

  it('denies what no policy allows, in AWS words', async () => {
    await assertKmsError(encrypt(bob.client), {
      name: 'AccessDeniedException',
      message: `User: ${bob.arn} is not authorized to perform: kms:Encrypt on resource: ${keyArn} because no identity-based policy allows the kms:Encrypt action`,
    });
  });

  it('denies by an explicit deny even where another statement allows', async () => {
    await assertKmsError(alice.client.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })), {
      name: 'AccessDeniedException',
      message: `User: ${alice.arn} is not authorized to perform: kms:ScheduleKeyDeletion on resource: ${keyArn} with an explicit deny in an identity-based policy`,
    });
  });

  it('holds encryption-context conditions', async () => {
    await assertKmsError(encrypt(alice.client, { tenant: 'green' }), { name: 'AccessDeniedException' });
  });

  it('allows by a grant at once, with its constraint, and denies again once it is retired', async () => {
    const { CiphertextBlob } = await encrypt(alice.client, { tenant: 'blue' });
    await assertKmsError(bob.client.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { tenant: 'blue' } })), {
      name: 'AccessDeniedException',
    });
    const grant = await admin.send(
      new CreateGrantCommand({
        KeyId: keyId,
        GranteePrincipal: bob.arn,
        RetiringPrincipal: bob.arn,
        Operations: ['Decrypt', 'DescribeKey'],
        Constraints: { EncryptionContextSubset: { tenant: 'blue' } },
      }),
    );
    const { Plaintext } = await bob.client.send(
      new DecryptCommand({ CiphertextBlob, EncryptionContext: { tenant: 'blue' }, GrantTokens: [grant.GrantToken!] }),
    );
    assert.equal(Buffer.from(Plaintext!).toString(), 'two principals');
    await bob.client.send(new DescribeKeyCommand({ KeyId: keyId }));
    await assertKmsError(encrypt(bob.client, { tenant: 'blue' }), { name: 'AccessDeniedException' });

    await bob.client.send(new RetireGrantCommand({ GrantToken: grant.GrantToken }));
    await assertKmsError(bob.client.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { tenant: 'blue' } })), {
      name: 'AccessDeniedException',
    });
  });

  describe('temporary credentials from the AWS CLI (aws sts assume-role)', () => {
    const cli = (args: string[], credentials: Credentials & { sessionToken?: string }) =>
      run(AWS_CLI, [...args, '--endpoint-url', server.endpoint, '--region', server.region, '--output', 'json'], {
        env: {
          PATH: process.env.PATH,
          HOME: server.dataDir,
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
          ...(credentials.sessionToken ? { AWS_SESSION_TOKEN: credentials.sessionToken } : {}),
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        timeout: 60_000,
      });

    it('issues credentials for a role whose trust policy names the caller, acting with the role policy', async () => {
      const roleName = 'encryptor';
      const roleArn = `arn:aws:iam::${accountId}:role/${roleName}`;
      const aliceKey = await userWithKey('carol', { assume: policy({ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: roleArn }) });
      await adminCall('CreateRole', {
        RoleName: roleName,
        AssumeRolePolicyDocument: policy({ Effect: 'Allow', Principal: { AWS: aliceKey.arn }, Action: 'sts:AssumeRole' }),
      });
      await adminCall('PutRolePolicy', {
        RoleName: roleName,
        PolicyName: 'encrypt',
        PolicyDocument: policy({ Effect: 'Allow', Action: 'kms:Encrypt', Resource: keyArn }),
      });

      const { stdout } = await cli(['sts', 'assume-role', '--role-arn', roleArn, '--role-session-name', 'nightly'], aliceKey.credentials);
      const assumed = JSON.parse(stdout) as {
        Credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: string };
        AssumedRoleUser: { Arn: string };
      };
      assert.match(assumed.Credentials.AccessKeyId, /^ASIA[A-Z2-7]{16}$/);
      assert.equal(assumed.AssumedRoleUser.Arn, `arn:aws:sts::${accountId}:assumed-role/${roleName}/nightly`);
      const expiresInMs = Date.parse(assumed.Credentials.Expiration) - Date.now();
      assert.ok(expiresInMs > 50 * 60_000 && expiresInMs <= 60 * 60_000, `expires in ${expiresInMs} ms`);

      const session = {
        accessKeyId: assumed.Credentials.AccessKeyId,
        secretAccessKey: assumed.Credentials.SecretAccessKey,
        sessionToken: assumed.Credentials.SessionToken,
      };
      const identity = JSON.parse((await cli(['sts', 'get-caller-identity'], session)).stdout) as { Arn: string; Account: string };
      assert.deepEqual([identity.Arn, identity.Account], [assumed.AssumedRoleUser.Arn, accountId]);

      const sessionClient = server.kms({ credentials: session });
      await encrypt(sessionClient);
      await assertKmsError(sessionClient.send(new DescribeKeyCommand({ KeyId: keyId })), {
        name: 'AccessDeniedException',
        message: `User: ${assumed.AssumedRoleUser.Arn} is not authorized to perform: kms:DescribeKey on resource: ${keyArn} because no identity-based policy allows the kms:DescribeKey action`,
      });
      // The session's key without its token, or with another token, is not a credential.
      await assertKmsError(encrypt(server.kms({ credentials: { ...session, sessionToken: undefined } })), {
        name: 'UnrecognizedClientException',
      });
      await assertKmsError(encrypt(server.kms({ credentials: { ...session, sessionToken: `${session.sessionToken.slice(0, -4)}AAAA` } })), {
        name: 'UnrecognizedClientException',
      });
    });

    it('refuses a caller the trust policy does not name, with STS\'s AccessDenied', async () => {
      const dave = await userWithKey('dave', { assume: policy({ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }) });
      await assert.rejects(
        cli(['sts', 'assume-role', '--role-arn', `arn:aws:iam::${accountId}:role/encryptor`, '--role-session-name', 'x1'], dave.credentials),
        (error: Error & { stderr?: string }) => {
          assert.match(error.stderr ?? '', /AccessDenied/);
          assert.match(error.stderr ?? '', /is not authorized to perform: sts:AssumeRole/);
          return true;
        },
      );
    });
  });
});
