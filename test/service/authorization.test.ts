/**
 * Access control through the service: every operation asks for a decision, AWS's denial wording,
 * delegation to identity policies, condition keys filled from the request, and the key policy
 * safety checks. Grants have their own file (grants.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import type { EncryptResponse, GenerateMacResponse, SignResponse } from '@aws-sdk/client-kms';
import { isKmsError } from '../../src/service/errors.ts';
import { OPERATIONS } from '../../src/service/operations.ts';
import { Harness, PLAINTEXT } from '../support/service-harness.ts';

const allow = (action: string | string[], extra: object = {}) => ({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: action, Resource: '*', ...extra }],
});

async function deniedWith(promise: Promise<unknown>): Promise<string> {
  let message = '';
  await assert.rejects(promise, (error) => {
    assert.ok(isKmsError(error), `expected a KmsError, got ${String(error)}`);
    assert.equal(error.errorName, 'AccessDeniedException', error.message);
    message = error.message;
    return true;
  });
  return message;
}

describe('every KMS operation answers to policy', () => {
  let dataDir: string;
  let h: Harness;
  let nobody: string;
  const keys: Record<string, string> = {};
  let ciphertext: Uint8Array;
  let signature: Uint8Array;
  let mac: Uint8Array;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strongroom-authz-'));
    h = await Harness.open(dataDir);
    nobody = await h.addUser('nobody');
    keys.symmetric = await h.createKey();
    keys.rsa = await h.createKey({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
    keys.hmac = await h.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    keys.ecdh = await h.createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' });
    await h.call('CreateAlias', { AliasName: 'alias/authz', TargetKeyId: keys.symmetric });
    ciphertext = await h.encrypt(keys.symmetric);
    signature = (await h.call<SignResponse>('Sign', { KeyId: keys.rsa, Message: PLAINTEXT, SigningAlgorithm: 'RSASSA_PSS_SHA_256' })).Signature!;
    mac = (await h.call<GenerateMacResponse>('GenerateMac', { KeyId: keys.hmac, Message: PLAINTEXT, MacAlgorithm: 'HMAC_SHA_256' })).Mac!;
  });

  after(async () => {
    await h.instance.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  // A valid request for each operation; a principal with no policy must be denied every one.
  const inputs = (): Record<string, object> => ({
    CancelKeyDeletion: { KeyId: keys.symmetric },
    CreateAlias: { AliasName: 'alias/other', TargetKeyId: keys.symmetric },
    CreateKey: {},
    Decrypt: { CiphertextBlob: ciphertext },
    DeleteAlias: { AliasName: 'alias/authz' },
    DeriveSharedSecret: { KeyId: keys.ecdh, KeyAgreementAlgorithm: 'ECDH', PublicKey: Buffer.alloc(91) },
    DescribeKey: { KeyId: keys.symmetric },
    DisableKey: { KeyId: keys.symmetric },
    DisableKeyRotation: { KeyId: keys.symmetric },
    EnableKey: { KeyId: keys.symmetric },
    EnableKeyRotation: { KeyId: keys.symmetric },
    Encrypt: { KeyId: keys.symmetric, Plaintext: PLAINTEXT },
    GenerateDataKey: { KeyId: keys.symmetric, KeySpec: 'AES_256' },
    GenerateDataKeyPair: { KeyId: keys.symmetric, KeyPairSpec: 'ECC_NIST_P256' },
    GenerateDataKeyPairWithoutPlaintext: { KeyId: keys.symmetric, KeyPairSpec: 'ECC_NIST_P256' },
    GenerateDataKeyWithoutPlaintext: { KeyId: keys.symmetric, KeySpec: 'AES_256' },
    GenerateMac: { KeyId: keys.hmac, Message: PLAINTEXT, MacAlgorithm: 'HMAC_SHA_256' },
    GenerateRandom: { NumberOfBytes: 16 },
    GetKeyLastUsage: { KeyId: keys.symmetric },
    GetKeyPolicy: { KeyId: keys.symmetric },
    GetPublicKey: { KeyId: keys.rsa },
    GetKeyRotationStatus: { KeyId: keys.symmetric },
    ListAliases: {},
    ListKeyPolicies: { KeyId: keys.symmetric },
    ListKeyRotations: { KeyId: keys.symmetric },
    ListKeys: {},
    ListResourceTags: { KeyId: keys.symmetric },
    PutKeyPolicy: { KeyId: keys.symmetric, Policy: allow('kms:*', { Principal: '*' }) },
    ReEncrypt: { CiphertextBlob: ciphertext, DestinationKeyId: keys.symmetric },
    RotateKeyOnDemand: { KeyId: keys.symmetric },
    ScheduleKeyDeletion: { KeyId: keys.symmetric, PendingWindowInDays: 7 },
    Sign: { KeyId: keys.rsa, Message: PLAINTEXT, SigningAlgorithm: 'RSASSA_PSS_SHA_256' },
    TagResource: { KeyId: keys.symmetric, Tags: [{ TagKey: 'a', TagValue: 'b' }] },
    UntagResource: { KeyId: keys.symmetric, TagKeys: ['a'] },
    UpdateAlias: { AliasName: 'alias/authz', TargetKeyId: keys.symmetric },
    UpdateKeyDescription: { KeyId: keys.symmetric, Description: 'x' },
    Verify: { KeyId: keys.rsa, Message: PLAINTEXT, Signature: signature, SigningAlgorithm: 'RSASSA_PSS_SHA_256' },
    VerifyMac: { KeyId: keys.hmac, Message: PLAINTEXT, MacAlgorithm: 'HMAC_SHA_256', Mac: mac },
    CreateGrant: { KeyId: keys.symmetric, GranteePrincipal: nobody, Operations: ['Decrypt'] },
    ListGrants: { KeyId: keys.symmetric },
    RevokeGrant: { KeyId: keys.symmetric, GrantId: 'a'.repeat(64) },
    ListRetirableGrants: { RetiringPrincipal: nobody },
    CreateCustomKeyStore: {
      CustomKeyStoreName: 'store',
      CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
      XksProxyUriEndpoint: 'https://xks.example',
      XksProxyUriPath: '/kms/xks/v1',
      XksProxyConnectivity: 'PUBLIC_ENDPOINT',
      XksProxyAuthenticationCredential: { AccessKeyId: 'A'.repeat(20), RawSecretAccessKey: 'a'.repeat(43) },
    },
    DescribeCustomKeyStores: {},
    ConnectCustomKeyStore: { CustomKeyStoreId: 'cks-0123456789abcdef0' },
    DisconnectCustomKeyStore: { CustomKeyStoreId: 'cks-0123456789abcdef0' },
    UpdateCustomKeyStore: { CustomKeyStoreId: 'cks-0123456789abcdef0', NewCustomKeyStoreName: 'x' },
    DeleteCustomKeyStore: { CustomKeyStoreId: 'cks-0123456789abcdef0' },
  });

  test('the table covers every operation but RetireGrant, which AWS decides by the grant itself', () => {
    const covered = new Set(Object.keys(inputs()));
    const missing = [...OPERATIONS.keys()].filter((name) => !covered.has(name) && name !== 'RetireGrant');
    assert.deepEqual(missing, []);
  });

  test('a principal with no policy is denied every operation, in AWS words, and nothing changes', async () => {
    for (const [operation, input] of Object.entries(inputs())) {
      if (input && 'Policy' in input) (input as { Policy: unknown }).Policy = JSON.stringify((input as { Policy: unknown }).Policy);
      const message = await deniedWith(h.call(operation, input, nobody));
      assert.match(message, new RegExp(`^User: ${nobody} is not authorized to perform: kms:`), operation);
      assert.match(message, /because no (resource|identity)-based policy allows the kms:\w+ action$/, operation);
    }
    // The key is untouched: still enabled, not scheduled, alias still there.
    const metadata = await h.describe(keys.symmetric);
    assert.equal(metadata.KeyState, 'Enabled');
    assert.equal(metadata.Description, '');
  });

  test('a key that does not exist is NotFoundException before any decision, as AWS answers in its own account', async () => {
    await h.expectError('DescribeKey', { KeyId: '00000000-0000-4000-8000-000000000000' }, 'NotFoundException', nobody);
  });
});

describe('decisions', () => {
  let dataDir: string;
  let h: Harness;
  let keyId: string;
  let keyArn: string;
  let accountId: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strongroom-authz-'));
    h = await Harness.open(dataDir);
    accountId = h.instance.context.accountId;
    keyId = await h.createKey();
    keyArn = (await h.describe(keyId)).Arn!;
  });

  afterEach(async () => {
    await h.instance.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const encrypt = (as: string, input: object = {}) =>
    h.call<EncryptResponse>('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT, ...input }, as);

  test('the default key policy delegates to identity policies: an identity allow suffices', async () => {
    const app = await h.addUser('app', { use: allow(['kms:Encrypt', 'kms:Decrypt']) });
    const { CiphertextBlob } = await encrypt(app);
    await h.call('Decrypt', { CiphertextBlob }, app);
    const message = await deniedWith(h.call('DisableKey', { KeyId: keyId }, app));
    assert.equal(
      message,
      `User: ${app} is not authorized to perform: kms:DisableKey on resource: ${keyArn} because no identity-based policy allows the kms:DisableKey action`,
    );
  });

  test('a key policy that does not delegate ignores identity policies: "no resource-based policy allows"', async () => {
    const app = await h.addUser('app', { use: allow('kms:*') });
    const admin = h.principalArn;
    await h.call('PutKeyPolicy', {
      KeyId: keyId,
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Sid: 'AdminOnly', Effect: 'Allow', Principal: { AWS: admin }, Action: 'kms:*', Resource: '*' }],
      }),
    });
    const message = await deniedWith(encrypt(app));
    assert.equal(
      message,
      `User: ${app} is not authorized to perform: kms:Encrypt on resource: ${keyArn} because no resource-based policy allows the kms:Encrypt action`,
    );
    await encrypt(admin);
  });

  test('a key policy naming the principal allows it without any identity policy', async () => {
    const app = await h.addUser('app');
    await deniedWith(encrypt(app));
    await h.call('PutKeyPolicy', {
      KeyId: keyId,
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'kms:*', Resource: '*' },
          { Sid: 'App', Effect: 'Allow', Principal: { AWS: app }, Action: 'kms:Encrypt', Resource: '*' },
        ],
      }),
    });
    await encrypt(app);
  });

  test('an explicit deny wins over any allow, worded by where it is', async () => {
    const app = await h.addUser('app', {
      use: allow('kms:*'),
      fence: { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'kms:ScheduleKeyDeletion', Resource: '*' }] },
    });
    await encrypt(app);
    const message = await deniedWith(h.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 }, app));
    assert.equal(
      message,
      `User: ${app} is not authorized to perform: kms:ScheduleKeyDeletion on resource: ${keyArn} with an explicit deny in an identity-based policy`,
    );
    await h.call('PutKeyPolicy', {
      KeyId: keyId,
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'kms:*', Resource: '*' },
          { Sid: 'NoApp', Effect: 'Deny', Principal: { AWS: app }, Action: 'kms:Encrypt', Resource: '*' },
        ],
      }),
    });
    assert.match(await deniedWith(encrypt(app)), /with an explicit deny in a resource-based policy$/);
  });

  test('GrantTokens are checked on every operation that takes them', async () => {
    await h.expectError('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT, GrantTokens: ['not-a-token'] }, 'InvalidGrantTokenException');
    await h.expectError('DescribeKey', { KeyId: keyId, GrantTokens: ['not-a-token'] }, 'InvalidGrantTokenException');
  });

  test('a removed identity policy stops allowing at once', async () => {
    const app = await h.addUser('app', { use: allow('kms:Encrypt') });
    await encrypt(app);
    await h.instance.store.deleteIdentityPolicy(app, 'use');
    await deniedWith(encrypt(app));
  });

  test('kms:EncryptionContext:<key> and kms:EncryptionContextKeys come from the request', async () => {
    const app = await h.addUser('app', {
      use: allow(['kms:Encrypt', 'kms:Decrypt'], {
        Condition: {
          StringEquals: { 'kms:EncryptionContext:tenant': 'blue' },
          'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['tenant', 'purpose'] },
        },
      }),
    });
    const { CiphertextBlob } = await encrypt(app, { EncryptionContext: { tenant: 'blue', purpose: 'x' } });
    await h.call('Decrypt', { CiphertextBlob, EncryptionContext: { tenant: 'blue', purpose: 'x' } }, app);
    await deniedWith(encrypt(app, { EncryptionContext: { tenant: 'green' } }));
    await deniedWith(encrypt(app, { EncryptionContext: { tenant: 'blue', extra: 'y' } }));
    await deniedWith(encrypt(app));
  });

  test('the denial never carries an encryption-context value', async () => {
    const app = await h.addUser('app', {
      use: allow('kms:Encrypt', { Condition: { StringEquals: { 'kms:EncryptionContext:tenant': 'blue' } } }),
    });
    const message = await deniedWith(encrypt(app, { EncryptionContext: { tenant: 'correct-horse-battery-staple' } }));
    assert.doesNotMatch(message, /correct-horse/);
  });

  test('kms:RequestAlias, kms:ResourceAliases, aws:ResourceTag and aws:PrincipalTag', async () => {
    await h.call('CreateAlias', { AliasName: 'alias/payments', TargetKeyId: keyId });
    await h.call('TagResource', { KeyId: keyId, Tags: [{ TagKey: 'team', TagValue: 'payments' }] });
    const byAlias = await h.addUser('by-alias', {
      p: allow('kms:Encrypt', { Condition: { StringEquals: { 'kms:RequestAlias': 'alias/payments' } } }),
    });
    await encrypt(byAlias, { KeyId: 'alias/payments' });
    await deniedWith(encrypt(byAlias));

    const byKeyAlias = await h.addUser('by-key-alias', {
      p: allow('kms:Encrypt', { Condition: { 'ForAnyValue:StringLike': { 'kms:ResourceAliases': 'alias/pay*' } } }),
    });
    await encrypt(byKeyAlias);

    const byTags = await h.addUser('by-tags', {
      q: allow('kms:Encrypt', { Condition: { StringEquals: { 'aws:PrincipalTag/team': 'payments', 'aws:ResourceTag/team': 'payments' } } }),
    }, { team: 'payments' });
    await encrypt(byTags);
    const otherTeam = await h.addUser('other-team', {
      q: allow('kms:Encrypt', { Condition: { StringEquals: { 'aws:PrincipalTag/team': 'payments' } } }),
    }, { team: 'search' });
    await deniedWith(encrypt(otherTeam));
  });

  test('algorithm and source condition keys', async () => {
    const signingKey = await h.createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    const signer = await h.addUser('signer', {
      p: allow('kms:Sign', { Condition: { StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'DIGEST' } } }),
      q: allow('kms:Encrypt', { Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } }),
    });
    await h.call('Sign', { KeyId: signingKey, Message: Buffer.alloc(32), MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }, signer);
    await deniedWith(h.call('Sign', { KeyId: signingKey, Message: PLAINTEXT, SigningAlgorithm: 'ECDSA_SHA_256' }, signer));
    // The harness calls from 127.0.0.1.
    await deniedWith(encrypt(signer));
  });

  test('kms:ScheduleKeyDeletionPendingWindowInDays bounds the window a principal may choose', async () => {
    const app = await h.addUser('app', {
      p: allow('kms:ScheduleKeyDeletion', { Condition: { NumericGreaterThanEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 30 } } }),
    });
    await deniedWith(h.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 }, app));
    await h.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 30 }, app);
  });

  test('account-wide operations are decided by identity policies alone, on resource "*"', async () => {
    const app = await h.addUser('app', { p: allow('kms:CreateKey', { Condition: { StringEquals: { 'kms:KeySpec': 'HMAC_256' } } }) });
    assert.equal(
      await deniedWith(h.call('CreateKey', {}, app)),
      `User: ${app} is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action`,
    );
    await h.call('CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }, app);
  });

  test('PutKeyPolicy runs the lockout safety check unless bypassed', async () => {
    const lockout = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'kms:Encrypt', Resource: '*' }],
    });
    await assert.rejects(h.call('PutKeyPolicy', { KeyId: keyId, Policy: lockout }), {
      name: 'MalformedPolicyDocumentException',
      message: 'The new key policy will not allow you to update the key policy in the future.',
    });
    await h.call('PutKeyPolicy', { KeyId: keyId, Policy: lockout, BypassPolicyLockoutSafetyCheck: true });
    await deniedWith(h.call('PutKeyPolicy', { KeyId: keyId, Policy: lockout }));
  });

  test('CreateKey runs the same check against the policy it is given', async () => {
    const foreign = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:root' }, Action: 'kms:*', Resource: '*' }],
    });
    await h.expectError('CreateKey', { Policy: foreign }, 'MalformedPolicyDocumentException');
    await h.createKey({ Policy: foreign, BypassPolicyLockoutSafetyCheck: true });
  });

  test('a policy naming a user of this account that does not exist is refused', async () => {
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:user/ghost` }, Action: 'kms:Encrypt', Resource: '*' },
      ],
    });
    await assert.rejects(h.call('PutKeyPolicy', { KeyId: keyId, Policy: policy }), {
      name: 'MalformedPolicyDocumentException',
      message: 'Policy contains a statement with one or more invalid principals.',
    });
  });

  test('a policy over 32 KB is refused and malformed documents name the problem', async () => {
    await h.expectError('PutKeyPolicy', { KeyId: keyId, Policy: JSON.stringify({ Statement: [], pad: 'x'.repeat(33_000) }) }, 'LimitExceededException');
    await assert.rejects(
      h.call('PutKeyPolicy', { KeyId: keyId, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] }) }),
      { name: 'MalformedPolicyDocumentException', message: 'Statement 0 must have a Principal or NotPrincipal.' },
    );
  });
});
