/** Temporary credentials: AssumeRole's rules, session tokens, expiry and what a session may do. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { EncryptResponse } from '@aws-sdk/client-kms';
import { isKmsError } from '../../src/service/errors.ts';
import { newPrincipalId } from '../../src/service/principals.ts';
import { assumeRole, getCallerIdentity } from '../../src/service/sessions.ts';
import { DAY_MS, Harness, PLAINTEXT } from '../support/service-harness.ts';

const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

describe('AssumeRole and session credentials', () => {
  let dataDir: string;
  let h: Harness;
  let roleArn: string;
  let keyId: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strongroom-sessions-'));
    h = await Harness.open(dataDir);
    const { store, context } = h.instance;
    roleArn = `arn:aws:iam::${context.accountId}:role/worker`;
    await store.createPrincipal({
      arn: roleArn,
      kind: 'role',
      name: 'worker',
      principalId: newPrincipalId('role'),
      createdAt: h.clock,
      tags: [],
      maxSessionDurationSeconds: 7200,
      trustPolicy: policy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${context.accountId}:root` }, Action: 'sts:AssumeRole' }),
    });
    await store.putIdentityPolicy({ principalArn: roleArn, policyName: 'encrypt', document: policy({ Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' }) });
    keyId = await h.createKey();
  });

  afterEach(async () => {
    await h.instance.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const assume = (input: object, as = h.principalArn) =>
    assumeRole(h.instance.context, h.caller(as), { RoleArn: roleArn, RoleSessionName: 'job-1', ...input });

  async function rejects(promise: Promise<unknown>, errorName: string): Promise<void> {
    await assert.rejects(promise, (error) => {
      assert.ok(isKmsError(error), String(error));
      assert.equal(error.errorName, errorName, error.message);
      return true;
    });
  }

  test('a session acts as the assumed-role ARN with the role\'s identity policies', async () => {
    const { Credentials, AssumedRoleUser } = await assume({});
    assert.equal(AssumedRoleUser.Arn, `arn:aws:sts::${h.instance.context.accountId}:assumed-role/worker/job-1`);
    assert.match(AssumedRoleUser.AssumedRoleId, /^AROA[A-Z2-7]{17}:job-1$/);
    assert.match(Credentials.AccessKeyId, /^ASIA[A-Z2-7]{16}$/);
    assert.equal(Credentials.Expiration.getTime(), h.clock.getTime() + 3600_000);

    const resolver = h.instance.accessKeys;
    const authenticated = await resolver.authenticate(Credentials.AccessKeyId, Credentials.SessionToken, h.clock);
    assert.deepEqual(authenticated, { principalArn: AssumedRoleUser.Arn });
    await h.call<EncryptResponse>('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT }, AssumedRoleUser.Arn);
    await h.expectError('DescribeKey', { KeyId: keyId }, 'AccessDeniedException', AssumedRoleUser.Arn);

    const identity = await getCallerIdentity(h.instance.context, { ...h.caller(AssumedRoleUser.Arn), accessKeyId: Credentials.AccessKeyId });
    assert.equal(identity.Arn, AssumedRoleUser.Arn);
    assert.equal(identity.UserId, AssumedRoleUser.AssumedRoleId);
  });

  test('the session token must match, and credentials stop at expiry', async () => {
    const { Credentials } = await assume({ DurationSeconds: 900 });
    const resolver = h.instance.accessKeys;
    assert.deepEqual(await resolver.authenticate(Credentials.AccessKeyId, undefined, h.clock), { problem: 'unrecognized' });
    assert.deepEqual(await resolver.authenticate(Credentials.AccessKeyId, `${Credentials.SessionToken}x`, h.clock), {
      problem: 'unrecognized',
    });
    const justBefore = new Date(Credentials.Expiration.getTime() - 1);
    assert.ok('principalArn' in (await resolver.authenticate(Credentials.AccessKeyId, Credentials.SessionToken, justBefore)));
    assert.deepEqual(await resolver.authenticate(Credentials.AccessKeyId, Credentials.SessionToken, Credentials.Expiration), {
      problem: 'expired',
    });
    // The scheduler clears expired sessions.
    h.advanceTo(1);
    assert.equal((await h.runScheduler()).expiredSessions, 1);
    assert.deepEqual(await resolver.authenticate(Credentials.AccessKeyId, Credentials.SessionToken, h.clock), { problem: 'unrecognized' });
  });

  test('a long-term access key presented with a session token is not a credential', async () => {
    const [adminKey] = await h.instance.store.listAccessKeys(h.principalArn);
    if (adminKey) {
      assert.deepEqual(await h.instance.accessKeys.authenticate(adminKey.accessKeyId, 'token', h.clock), { problem: 'unrecognized' });
    }
  });

  test('DurationSeconds within 900 s and the role\'s maximum; one hour at most when chained', async () => {
    await rejects(assume({ DurationSeconds: 899 }), 'ValidationException');
    await rejects(assume({ DurationSeconds: 7201 }), 'ValidationException');
    const { AssumedRoleUser } = await assume({ DurationSeconds: 7200 });
    // A session of the role assuming the role again (its trust policy delegates to the account,
    // and the role has no sts:AssumeRole permission): denied; with it, chained to one hour.
    await rejects(assume({}, AssumedRoleUser.Arn), 'AccessDeniedException');
    await h.instance.store.putIdentityPolicy({ principalArn: roleArn, policyName: 'chain', document: policy({ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: roleArn }) });
    await rejects(assume({ DurationSeconds: 3601 }, AssumedRoleUser.Arn), 'ValidationException');
    await assume({ DurationSeconds: 3600 }, AssumedRoleUser.Arn);
  });

  test('who may assume: the trust policy decides, an unknown role looks the same as a forbidden one', async () => {
    const outsider = await h.addUser('outsider');
    await rejects(assume({}, outsider), 'AccessDeniedException');
    const ghost = assumeRole(h.instance.context, h.caller(), { RoleArn: `arn:aws:iam::${h.instance.context.accountId}:role/ghost`, RoleSessionName: 'x1' });
    await rejects(ghost, 'AccessDeniedException');
  });

  test('session policies and tags are refused rather than ignored', async () => {
    await rejects(assume({ Policy: policy({ Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' }) }), 'ValidationException');
    await rejects(assume({ Tags: [{ Key: 'a', Value: 'b' }] }), 'ValidationException');
    await rejects(assume({ RoleSessionName: 'a' }), 'ValidationException');
  });

  test('deleting the role ends its sessions at once', async () => {
    const { Credentials } = await assume({});
    await h.instance.store.deleteIdentityPolicy(roleArn, 'encrypt');
    await h.instance.store.deletePrincipal(roleArn);
    assert.deepEqual(await h.instance.accessKeys.authenticate(Credentials.AccessKeyId, Credentials.SessionToken, h.clock), {
      problem: 'unrecognized',
    });
    void DAY_MS;
  });
});
