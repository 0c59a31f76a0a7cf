/**
 * Sets up bench/authz.sh's two access-control cases on a running Strongroom (fresh data dir),
 * as an operator would: users, tags, identity policies, roles and access keys through the admin
 * API (`X-Amz-Target: StrongroomAdmin.<Op>`, SigV4-signed with the administrator's credentials),
 * keys and grants through @aws-sdk/client-kms. Starts no server itself.
 *
 *   node --import tsx bench/prepare-authz.ts --endpoint http://127.0.0.1:18373 \
 *     --credentials <dataDir>/credentials --out-dir <dir>
 *
 * The cases (both Encrypt of 32 bytes with the same encryption context, ENCRYPTION_CONTEXT):
 *
 * - allow-all: user `bench-open` with one identity policy `{"Effect":"Allow","Action":"*",
 *   "Resource":"*"}`, on a key with the default key policy (root delegation). The cheapest way
 *   through the evaluator: one key-policy statement, one identity statement, no conditions.
 * - realistic: user `bench-app`, tagged team=payments and cost-center, with two identity policies
 *   modelled on the AWS documentation's examples (an allow of Encrypt/Decrypt/GenerateDataKey* on
 *   the key's ARN with conditions on kms:EncryptionContext:*, kms:EncryptionContextKeys,
 *   kms:CallerAccount, aws:PrincipalTag/team and aws:ResourceTag/team; and guardrail denies, one
 *   with NotResource and one with NotAction), on a key with an eight-statement key policy shaped
 *   like the console's default plus the aws/ebs managed key's (root delegation, key
 *   administrators, key users and grant attachment restricted by kms:ViaService /
 *   kms:GrantIsForAWSResource, an EBS-style statement for every principal of the account with
 *   kms:CallerAccount and kms:ViaService, account-wide metadata access, and two Denys with
 *   conditions), three tags, and three grants to other principals. Encrypt is allowed by the
 *   root delegation plus the identity allow; every other statement is evaluated and does not
 *   apply, and the grants are never needed.
 *
 * Writes in --out-dir, for each case: `<case>.credentials` (that user's access key, AWS
 * shared-credentials format, mode 0600) and `<case>.state.json` (a bench/prepare.ts state file:
 * the key, a 32-byte ciphertext made by that user with the SDK, and the encryption context);
 * plus `explain.json`, StrongroomAdmin.ExplainRequest's answer for each case's Encrypt, and
 * `policies.json`, every document it installed. Before it finishes it checks, with each user's
 * own credentials, that Encrypt is allowed and that the realistic user's policies do deny what
 * they should (another key, a missing or wrong encryption context, ScheduleKeyDeletion).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CreateGrantCommand,
  CreateKeyCommand,
  EncryptCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { adminCall as callAdmin } from '../test/support/admin-api.ts';
import { parseCredentialsFile } from '../test/support/server.ts';

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Both cases send it; the realistic policies test it. */
export const ENCRYPTION_CONTEXT: Record<string, string> = {
  app: 'payments-api',
  tenant: 'tenant-0042',
  purpose: 'card-token',
};

const { values: args } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    credentials: { type: 'string' },
    'out-dir': { type: 'string' },
    region: { type: 'string', default: 'us-east-1' },
  },
});
for (const name of ['endpoint', 'credentials', 'out-dir'] as const) {
  if (!args[name]) {
    process.stderr.write(`prepare-authz: --${name} is required\n`);
    process.exit(2);
  }
}
const endpoint = args.endpoint as string;
const region = args.region as string;
const outDir = args['out-dir'] as string;
const adminCredentials = parseCredentialsFile(readFileSync(args.credentials as string, 'utf8'));

/** A call to the admin API (StrongroomAdmin.<Operation>), signed as the administrator. */
const adminCall = <T = Record<string, unknown>>(operation: string, input: object) =>
  callAdmin<T>({ endpoint, region, credentials: adminCredentials }, operation, input);

const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

const kms = (credentials: Credentials) => new KMSClient({ endpoint, region, credentials, maxAttempts: 1 });

/** Expects the SDK call to fail with AccessDeniedException. */
async function expectDenied(what: string, call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (error) {
    if ((error as Error).name === 'AccessDeniedException') return;
    throw new Error(`${what}: expected AccessDeniedException, got ${(error as Error).name}: ${(error as Error).message}`);
  }
  throw new Error(`${what}: expected AccessDeniedException, but it was allowed`);
}

async function createUser(userName: string, tags: Record<string, string> = {}): Promise<string> {
  const Tags = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
  const { User } = await adminCall<{ User: { Arn: string } }>('CreateUser', { UserName: userName, ...(Tags.length ? { Tags } : {}) });
  return User.Arn;
}

async function createRole(roleName: string, trustedPrincipal: string): Promise<string> {
  const { Role } = await adminCall<{ Role: { Arn: string } }>('CreateRole', {
    RoleName: roleName,
    AssumeRolePolicyDocument: policy({ Effect: 'Allow', Principal: { AWS: trustedPrincipal }, Action: 'sts:AssumeRole' }),
  });
  return Role.Arn;
}

async function createAccessKey(userName: string): Promise<Credentials> {
  const { AccessKey } = await adminCall<{ AccessKey: { AccessKeyId: string; SecretAccessKey: string } }>('CreateAccessKey', {
    UserName: userName,
  });
  return { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey };
}

function writeCredentials(name: string, credentials: Credentials): void {
  writeFileSync(
    join(outDir, `${name}.credentials`),
    `[default]\naws_access_key_id = ${credentials.accessKeyId}\naws_secret_access_key = ${credentials.secretAccessKey}\n`,
    { mode: 0o600 },
  );
}

async function encrypt32(credentials: Credentials, keyId: string): Promise<string> {
  const client = kms(credentials);
  try {
    const { CiphertextBlob } = await client.send(
      new EncryptCommand({ KeyId: keyId, Plaintext: randomBytes(32), EncryptionContext: ENCRYPTION_CONTEXT }),
    );
    if (!CiphertextBlob) throw new Error('Encrypt returned no CiphertextBlob');
    return Buffer.from(CiphertextBlob).toString('base64');
  } finally {
    client.destroy();
  }
}

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
mkdirSync(outDir, { recursive: true, mode: 0o700 });
const admin = kms(adminCredentials);
const installed: Record<string, unknown> = {};

// --- allow-all ----------------------------------------------------------------------------------
const openKey = await admin.send(new CreateKeyCommand({ Description: 'strongroom bench authz allow-all (default key policy)' }));
const openKeyId = openKey.KeyMetadata?.KeyId as string;
const openKeyArn = openKey.KeyMetadata?.Arn as string;
const accountId = openKey.KeyMetadata?.AWSAccountId as string;
const keyRegion = openKeyArn.split(':')[3];
const root = `arn:aws:iam::${accountId}:root`;
const openArn = await createUser('bench-open');
const allowEverything = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });
await adminCall('PutUserPolicy', { UserName: 'bench-open', PolicyName: 'allow-everything', PolicyDocument: allowEverything });
installed['allow-all'] = { user: openArn, identityPolicies: { 'allow-everything': JSON.parse(allowEverything) }, keyPolicy: 'default (root delegation)' };

// --- realistic: the principals the key policy and the grants name --------------------------------
const appArn = await createUser('bench-app', { team: 'payments', 'cost-center': 'cc-1234' });
const keyAdminArn = await createUser('bench-keyadmin', { team: 'security' });
const batchArn = await createUser('bench-batch', { team: 'payments' });
const reportingArn = await createUser('bench-reporting', { team: 'finance' });
const appRoleArn = await createRole('bench-app-role', appArn);
const keyAdminRoleArn = await createRole('bench-key-admin-role', root);

const sameServices = (...services: string[]) => services.map((service) => `${service}.${keyRegion}.amazonaws.com`);
// Shaped like the console's default key policy (key administrators, key users, persistent
// resources) and the aws/ebs AWS managed key's (via-service use for the account, metadata access),
// with two common Denys: no use without the application's encryption context, nobody from outside
// the account. Key users are restricted to use through S3 and Secrets Manager, as the docs'
// kms:ViaService example does; direct API calls from bench-app do not match them.
const keyPolicy = JSON.stringify({
  Version: '2012-10-17',
  Id: 'key-consolepolicy-3',
  Statement: [
    { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: root }, Action: 'kms:*', Resource: '*' },
    {
      Sid: 'Allow access for Key Administrators',
      Effect: 'Allow',
      Principal: { AWS: [keyAdminArn, keyAdminRoleArn] },
      Action: [
        'kms:Create*', 'kms:Describe*', 'kms:Enable*', 'kms:List*', 'kms:Put*', 'kms:Update*', 'kms:Revoke*',
        'kms:Disable*', 'kms:Get*', 'kms:Delete*', 'kms:TagResource', 'kms:UntagResource', 'kms:ScheduleKeyDeletion',
        'kms:CancelKeyDeletion', 'kms:RotateKeyOnDemand',
      ],
      Resource: '*',
    },
    {
      Sid: 'Allow use of the key',
      Effect: 'Allow',
      Principal: { AWS: [appRoleArn, appArn] },
      Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey'],
      Resource: '*',
      Condition: { StringEquals: { 'kms:ViaService': sameServices('s3', 'secretsmanager') } },
    },
    {
      Sid: 'Allow attachment of persistent resources',
      Effect: 'Allow',
      Principal: { AWS: [appRoleArn, appArn] },
      Action: ['kms:CreateGrant', 'kms:ListGrants', 'kms:RevokeGrant'],
      Resource: '*',
      Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    },
    {
      Sid: 'Allow access through EBS for all principals in the account that are authorized to use EBS',
      Effect: 'Allow',
      Principal: { AWS: '*' },
      Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:CreateGrant', 'kms:DescribeKey'],
      Resource: '*',
      Condition: { StringEquals: { 'kms:CallerAccount': accountId, 'kms:ViaService': sameServices('ec2') } },
    },
    {
      Sid: 'Allow direct access to key metadata to the account',
      Effect: 'Allow',
      Principal: { AWS: root },
      Action: ['kms:Describe*', 'kms:Get*', 'kms:List*', 'kms:RevokeGrant'],
      Resource: '*',
    },
    {
      Sid: 'Deny use without the application encryption context',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'],
      Resource: '*',
      Condition: { Null: { 'kms:EncryptionContext:app': 'true' } },
    },
    {
      Sid: 'Deny access from outside the account',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 'kms:*',
      Resource: '*',
      Condition: { StringNotEquals: { 'kms:CallerAccount': accountId } },
    },
  ],
});
const appKey = await admin.send(
  new CreateKeyCommand({
    Description: 'strongroom bench authz realistic (payments data key)',
    Policy: keyPolicy,
    Tags: [
      { TagKey: 'team', TagValue: 'payments' },
      { TagKey: 'env', TagValue: 'prod' },
      { TagKey: 'cost-center', TagValue: 'cc-1234' },
    ],
  }),
);
const appKeyId = appKey.KeyMetadata?.KeyId as string;
const appKeyArn = appKey.KeyMetadata?.Arn as string;

// The documentation's examples: kms:EncryptionContext:<key> and kms:EncryptionContextKeys
// ("kms:EncryptionContext:context-key", "kms:EncryptionContextKeys" condition keys), ABAC on
// principal and resource tags ("Use ABAC for AWS KMS"; policy variables are not substituted here,
// so both tags are compared with a literal), kms:CallerAccount; then guardrails: an explicit deny
// of key destruction, a NotResource deny of cryptographic use of any other key, and a NotAction
// deny outside the approved regions.
const usePolicy = policy(
  {
    Sid: 'AllowPaymentsKeyUseWithContext',
    Effect: 'Allow',
    Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey*'],
    Resource: appKeyArn,
    Condition: {
      StringEquals: {
        'kms:EncryptionContext:app': 'payments-api',
        'kms:CallerAccount': accountId,
        'aws:PrincipalTag/team': 'payments',
        'aws:ResourceTag/team': 'payments',
      },
      StringLike: { 'kms:EncryptionContext:tenant': 'tenant-*' },
      'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['app', 'tenant', 'purpose', 'request-id'] },
    },
  },
  { Sid: 'AllowReadKeyMetadata', Effect: 'Allow', Action: ['kms:DescribeKey', 'kms:ListAliases', 'kms:ListKeys'], Resource: '*' },
);
const guardrails = policy(
  {
    Sid: 'DenyKeyDestructionAndPolicyChanges',
    Effect: 'Deny',
    Action: ['kms:ScheduleKeyDeletion', 'kms:DisableKey', 'kms:DeleteImportedKeyMaterial', 'kms:PutKeyPolicy'],
    Resource: '*',
  },
  {
    Sid: 'DenyCryptographicUseOfOtherKeys',
    Effect: 'Deny',
    Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'],
    NotResource: [appKeyArn],
  },
  {
    Sid: 'DenyOutsideApprovedRegions',
    Effect: 'Deny',
    NotAction: ['iam:*', 'sts:*'],
    Resource: '*',
    Condition: { StringNotEquals: { 'aws:RequestedRegion': [keyRegion, 'eu-west-1'] } },
  },
);
await adminCall('PutUserPolicy', { UserName: 'bench-app', PolicyName: 'payments-kms-use', PolicyDocument: usePolicy });
await adminCall('PutUserPolicy', { UserName: 'bench-app', PolicyName: 'guardrails', PolicyDocument: guardrails });

// Grants to other principals: present on the key, never needed by bench-app's Encrypt (a policy
// allows it, so the grant path is not taken).
await admin.send(
  new CreateGrantCommand({
    KeyId: appKeyId,
    GranteePrincipal: appRoleArn,
    Operations: ['Encrypt', 'Decrypt', 'GenerateDataKey'],
    Constraints: { EncryptionContextSubset: { app: 'payments-api' } },
    Name: 'payments-role',
  }),
);
await admin.send(
  new CreateGrantCommand({
    KeyId: appKeyId,
    GranteePrincipal: batchArn,
    RetiringPrincipal: keyAdminArn,
    Operations: ['Decrypt'],
    Constraints: { EncryptionContextEquals: { app: 'payments-api', purpose: 'settlement' } },
    Name: 'nightly-settlement',
  }),
);
await admin.send(new CreateGrantCommand({ KeyId: appKeyId, GranteePrincipal: reportingArn, Operations: ['Decrypt', 'DescribeKey'], Name: 'reporting' }));
admin.destroy();
installed.realistic = {
  user: appArn,
  userTags: { team: 'payments', 'cost-center': 'cc-1234' },
  identityPolicies: { 'payments-kms-use': JSON.parse(usePolicy), guardrails: JSON.parse(guardrails) },
  keyPolicy: JSON.parse(keyPolicy),
  keyTags: { team: 'payments', env: 'prod', 'cost-center': 'cc-1234' },
  grants: 3,
};

// --- access keys, state files, checks ----------------------------------------------------------
const cases = {
  'allow-all': { user: 'bench-open', arn: openArn, keyId: openKeyId, credentials: await createAccessKey('bench-open') },
  realistic: { user: 'bench-app', arn: appArn, keyId: appKeyId, credentials: await createAccessKey('bench-app') },
};
for (const [name, c] of Object.entries(cases)) {
  writeCredentials(name, c.credentials);
  const ciphertext32 = await encrypt32(c.credentials, c.keyId);
  writeFileSync(join(outDir, `${name}.state.json`), JSON.stringify({ keyId: c.keyId, ciphertext32, encryptionContext: ENCRYPTION_CONTEXT }));
}

// The realistic user's policies must bite, or the case measures nothing.
const app = kms(cases.realistic.credentials);
try {
  const plaintext = randomBytes(32);
  await expectDenied('bench-app Encrypt with the allow-all key', app.send(new EncryptCommand({ KeyId: openKeyId, Plaintext: plaintext, EncryptionContext: ENCRYPTION_CONTEXT })));
  await expectDenied('bench-app Encrypt without encryption context', app.send(new EncryptCommand({ KeyId: appKeyId, Plaintext: plaintext })));
  await expectDenied(
    'bench-app Encrypt with another app in the encryption context',
    app.send(new EncryptCommand({ KeyId: appKeyId, Plaintext: plaintext, EncryptionContext: { ...ENCRYPTION_CONTEXT, app: 'ledger' } })),
  );
  await expectDenied('bench-app ScheduleKeyDeletion', app.send(new ScheduleKeyDeletionCommand({ KeyId: appKeyId, PendingWindowInDays: 7 })));
} finally {
  app.destroy();
}

const explained: Record<string, unknown> = {};
for (const [name, c] of Object.entries(cases)) {
  explained[name] = await adminCall('ExplainRequest', {
    PrincipalArn: c.arn,
    Action: 'kms:Encrypt',
    KeyId: c.keyId,
    EncryptionContext: ENCRYPTION_CONTEXT,
  });
  const decision = (explained[name] as { Decision: string }).Decision;
  if (decision !== 'allowed') throw new Error(`ExplainRequest for ${name}: ${decision}`);
}
writeFileSync(join(outDir, 'explain.json'), JSON.stringify(explained, null, 2));
writeFileSync(join(outDir, 'policies.json'), JSON.stringify(installed, null, 2));
process.stdout.write(
  `prepared authz cases: allow-all (${openArn}, key ${openKeyId}), realistic (${appArn}, key ${appKeyId}); ` +
    'denials checked, ExplainRequest allowed both\n',
);
