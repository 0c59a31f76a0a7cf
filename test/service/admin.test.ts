/**
 * The identity administration API through the service: IAM's operations, shapes, errors and
 * quotas; every operation asking for `iam:<Operation>`; secrets shown once; ExplainRequest.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN_OPERATIONS, invokeAdminOperation, type AdminOperation } from '../../src/service/admin/index.ts';
import type { Caller } from '../../src/service/context.ts';
import { isKmsError, type KmsErrorName } from '../../src/service/errors.ts';
import { Harness, T0 } from '../support/service-harness.ts';

const allow = (action: string | string[], resource: string | string[] = '*', extra: object = {}) => ({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: action, Resource: resource, ...extra }],
});

const trustPolicy = (accountId: string) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'sts:AssumeRole' }],
  });

/** A KmsError of this name; returns its message. */
async function failsWith(call: Promise<unknown>, errorName: KmsErrorName): Promise<string> {
  let message = '';
  await assert.rejects(call, (error) => {
    assert.ok(isKmsError(error), `expected a KmsError, got ${String(error)}`);
    assert.equal(error.errorName, errorName, error.message);
    message = error.message;
    return true;
  });
  return message;
}

describe('identity administration API', () => {
  let dataDir: string;
  let h: Harness;
  let account: string;
  let last: Caller;

  /** Calls as the administrator, or `as` another principal; the caller is kept in `last`. */
  const call = <T = Record<string, any>>(operation: string, input: object, as?: string): Promise<T> => {
    last = h.caller(as);
    return invokeAdminOperation(operation, h.instance.context, input, last) as Promise<T>;
  };
  const userArn = (name: string) => `arn:aws:iam::${account}:user/${name}`;
  const roleArn = (name: string) => `arn:aws:iam::${account}:role/${name}`;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strongroom-admin-'));
    h = await Harness.open(dataDir);
    account = h.instance.context.accountId;
  });

  after(async () => {
    await h.instance.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  describe('users', () => {
    test('CreateUser answers IAM\'s User shape, with its tags in key order', async () => {
      const { User } = await call('CreateUser', { UserName: 'alice', Tags: [{ Key: 'team', Value: 'b' }, { Key: 'Env', Value: 'prod' }] });
      assert.deepEqual({ ...User, UserId: undefined }, {
        Path: '/',
        UserName: 'alice',
        UserId: undefined,
        Arn: userArn('alice'),
        CreateDate: T0,
        Tags: [{ Key: 'Env', Value: 'prod' }, { Key: 'team', Value: 'b' }],
      });
      assert.match(User.UserId, /^AIDA[A-Z2-7]{17}$/);
      const { User: got } = await call('GetUser', { UserName: 'alice' });
      assert.deepEqual(got, User);
    });

    test('GetUser without a name answers the calling user', async () => {
      const { User } = await call('GetUser', {});
      assert.equal(User.Arn, h.principalArn);
      assert.equal(User.UserName, 'admin');
    });

    test('a user name taken, ignoring case, is EntityAlreadyExistsException', async () => {
      await call('CreateUser', { UserName: 'carol' });
      assert.equal(await failsWith(call('CreateUser', { UserName: 'carol' }), 'EntityAlreadyExistsException'), 'User with name carol already exists.');
      assert.equal(await failsWith(call('CreateUser', { UserName: 'Carol' }), 'EntityAlreadyExistsException'), 'User with name Carol already exists.');
    });

    test('an unknown user is NoSuchEntityException in IAM\'s words', async () => {
      assert.equal(await failsWith(call('GetUser', { UserName: 'nobody-here' }), 'NoSuchEntityException'), 'The user with name nobody-here cannot be found.');
      await failsWith(call('DeleteUser', { UserName: 'nobody-here' }), 'NoSuchEntityException');
    });

    test('names are checked against IAM\'s pattern and lengths, every violation at once', async () => {
      const message = await failsWith(call('CreateUser', { UserName: 'bad name!' }), 'ValidationException');
      assert.equal(
        message,
        "1 validation error detected: Value 'bad name!' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+",
      );
      const two = await failsWith(call('CreateUser', { UserName: 'x'.repeat(65) + '/' }), 'ValidationException');
      assert.match(two, /^2 validation errors detected: .*length less than or equal to 64.*regular expression/);
      assert.equal(
        await failsWith(call('CreateUser', {}), 'ValidationException'),
        "1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null",
      );
    });

    test('a member of the wrong JSON type is SerializationException; unknown members are ignored', async () => {
      assert.equal(await failsWith(call('CreateUser', { UserName: 5 }), 'SerializationException'), "Expected a string at 'userName'");
      await failsWith(call('CreateUser', []), 'SerializationException');
      const { User } = await call('CreateUser', { UserName: 'extra', Path: '/ignored/', Surprise: true });
      assert.equal(User.Path, '/');
    });

    test('ListUsers pages by MaxItems and an opaque Marker, without tags', async () => {
      const seen: string[] = [];
      let marker: string | undefined;
      let pages = 0;
      do {
        const page = await call('ListUsers', { MaxItems: 2, ...(marker ? { Marker: marker } : {}) });
        assert.ok(page.Users.length <= 2);
        for (const user of page.Users) {
          assert.equal(user.Tags, undefined);
          seen.push(user.UserName);
        }
        assert.equal(page.IsTruncated, page.Marker !== undefined);
        marker = page.Marker;
        pages++;
      } while (marker);
      assert.ok(pages >= 2);
      assert.deepEqual(seen, [...seen].sort());
      for (const name of ['admin', 'alice', 'carol', 'extra']) assert.ok(seen.includes(name), name);
      await failsWith(call('ListUsers', { Marker: 'not-ours' }), 'ValidationException');
      await failsWith(call('ListUsers', { MaxItems: 0 }), 'ValidationException');
    });

    test('TagUser merges ignoring case, UntagUser removes; aws: keys, duplicates and the 50-tag quota are refused', async () => {
      await call('CreateUser', { UserName: 'tagged' });
      await call('TagUser', { UserName: 'tagged', Tags: [{ Key: 'env', Value: 'dev' }, { Key: 'a', Value: '1' }] });
      await call('TagUser', { UserName: 'tagged', Tags: [{ Key: 'ENV', Value: 'prod' }] });
      assert.deepEqual((await call('GetUser', { UserName: 'tagged' })).User.Tags, [
        { Key: 'ENV', Value: 'prod' },
        { Key: 'a', Value: '1' },
      ]);
      await call('UntagUser', { UserName: 'tagged', TagKeys: ['env', 'missing'] });
      assert.deepEqual((await call('GetUser', { UserName: 'tagged' })).User.Tags, [{ Key: 'a', Value: '1' }]);

      await failsWith(call('TagUser', { UserName: 'tagged', Tags: [{ Key: 'aws:x', Value: 'y' }] }), 'ValidationException');
      await failsWith(call('TagUser', { UserName: 'tagged', Tags: [{ Key: 'k', Value: '1' }, { Key: 'K', Value: '2' }] }), 'ValidationException');
      const fifty = Array.from({ length: 50 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
      assert.match(await failsWith(call('TagUser', { UserName: 'tagged', Tags: [...fifty, { Key: 'one-more', Value: 'v' }] }), 'ValidationException'), /length less than or equal to 50/);
      assert.equal(await failsWith(call('TagUser', { UserName: 'tagged', Tags: fifty }), 'LimitExceededException'), 'Cannot exceed quota for TagsPerUser: 50');
    });

    test('a tag value is never echoed in an error', async () => {
      const message = await failsWith(call('TagUser', { UserName: 'tagged', Tags: [{ Key: 'k', Value: 'secret<value>' }] }), 'ValidationException');
      assert.doesNotMatch(message, /secret/);
      assert.match(message, /Value at 'tags.1.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern/);
    });

    test('DeleteUser is refused while the user has access keys or policies (DeleteConflictException), then succeeds', async () => {
      await call('CreateUser', { UserName: 'leaving' });
      await call('PutUserPolicy', { UserName: 'leaving', PolicyName: 'p', PolicyDocument: JSON.stringify(allow('kms:Encrypt')) });
      const { AccessKey } = await call('CreateAccessKey', { UserName: 'leaving' });
      assert.equal(await failsWith(call('DeleteUser', { UserName: 'leaving' }), 'DeleteConflictException'), 'Cannot delete entity, must delete access keys first.');
      await call('DeleteAccessKey', { UserName: 'leaving', AccessKeyId: AccessKey.AccessKeyId });
      assert.equal(await failsWith(call('DeleteUser', { UserName: 'leaving' }), 'DeleteConflictException'), 'Cannot delete entity, must delete policies first.');
      await call('DeleteUserPolicy', { UserName: 'leaving', PolicyName: 'p' });
      assert.deepEqual(await call('DeleteUser', { UserName: 'leaving' }), {});
      await failsWith(call('GetUser', { UserName: 'leaving' }), 'NoSuchEntityException');
    });
  });

  describe('roles', () => {
    test('CreateRole keeps the trust policy and defaults MaxSessionDuration to 3600', async () => {
      const document = trustPolicy(account);
      const { Role } = await call('CreateRole', { RoleName: 'deployer', AssumeRolePolicyDocument: document });
      assert.equal(Role.Arn, roleArn('deployer'));
      assert.match(Role.RoleId, /^AROA[A-Z2-7]{17}$/);
      assert.equal(Role.AssumeRolePolicyDocument, document);
      assert.equal(Role.MaxSessionDuration, 3600);
      assert.deepEqual((await call('GetRole', { RoleName: 'deployer' })).Role, Role);
      const { Roles } = await call('ListRoles', {});
      assert.deepEqual(Roles.map((role: { RoleName: string }) => role.RoleName), ['deployer']);
      await failsWith(call('CreateRole', { RoleName: 'DEPLOYER', AssumeRolePolicyDocument: document }), 'EntityAlreadyExistsException');
    });

    test('MaxSessionDuration must be 3600..43200', async () => {
      const document = trustPolicy(account);
      assert.equal(
        await failsWith(call('CreateRole', { RoleName: 'short', AssumeRolePolicyDocument: document, MaxSessionDuration: 60 }), 'ValidationException'),
        "1 validation error detected: Value '60' at 'maxSessionDuration' failed to satisfy constraint: Member must have value greater than or equal to 3600",
      );
      await failsWith(call('CreateRole', { RoleName: 'long', AssumeRolePolicyDocument: document, MaxSessionDuration: 43_201 }), 'ValidationException');
      const { Role } = await call('CreateRole', { RoleName: 'long', AssumeRolePolicyDocument: document, MaxSessionDuration: 43_200 });
      assert.equal(Role.MaxSessionDuration, 43_200);
    });

    test('a trust policy needs a Principal, may not have a Resource, and is at most 2,048 characters', async () => {
      const noPrincipal = JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole' }] });
      assert.match(
        await failsWith(call('CreateRole', { RoleName: 'r1', AssumeRolePolicyDocument: noPrincipal }), 'MalformedPolicyDocumentException'),
        /must have a Principal or NotPrincipal/,
      );
      const withResource = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 'sts:AssumeRole', Resource: '*' }] });
      assert.equal(
        await failsWith(call('CreateRole', { RoleName: 'r1', AssumeRolePolicyDocument: withResource }), 'MalformedPolicyDocumentException'),
        'Has prohibited field Resource.',
      );
      const statement = { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' };
      const big = JSON.stringify({ Statement: Array.from({ length: 30 }, (_, i) => ({ Sid: `S${i}`, ...statement })) });
      assert.equal(
        await failsWith(call('CreateRole', { RoleName: 'r1', AssumeRolePolicyDocument: big }), 'LimitExceededException'),
        'Cannot exceed quota for ACLSizePerRole: 2048',
      );
      await failsWith(call('GetRole', { RoleName: 'r1' }), 'NoSuchEntityException');
    });

    test('UpdateAssumeRolePolicy replaces the trust policy, checked the same way', async () => {
      const next = JSON.stringify({ Statement: { Effect: 'Allow', Principal: { AWS: userArn('alice') }, Action: 'sts:AssumeRole' } });
      assert.deepEqual(await call('UpdateAssumeRolePolicy', { RoleName: 'deployer', PolicyDocument: next }), {});
      assert.equal((await call('GetRole', { RoleName: 'deployer' })).Role.AssumeRolePolicyDocument, next);
      await failsWith(call('UpdateAssumeRolePolicy', { RoleName: 'deployer', PolicyDocument: '{' }), 'MalformedPolicyDocumentException');
      await failsWith(call('UpdateAssumeRolePolicy', { RoleName: 'ghost', PolicyDocument: next }), 'NoSuchEntityException');
    });

    test('DeleteRole is refused while the role has policies', async () => {
      await call('CreateRole', { RoleName: 'temp', AssumeRolePolicyDocument: trustPolicy(account) });
      await call('PutRolePolicy', { RoleName: 'temp', PolicyName: 'p', PolicyDocument: JSON.stringify(allow('kms:*')) });
      assert.equal(await failsWith(call('DeleteRole', { RoleName: 'temp' }), 'DeleteConflictException'), 'Cannot delete entity, must delete policies first.');
      await call('DeleteRolePolicy', { RoleName: 'temp', PolicyName: 'p' });
      await call('DeleteRole', { RoleName: 'temp' });
      assert.equal(await failsWith(call('GetRole', { RoleName: 'temp' }), 'NoSuchEntityException'), 'The role with name temp cannot be found.');
    });
  });

  describe('inline policies', () => {
    for (const kind of ['User', 'Role'] as const) {
      test(`Put/Get/List/Delete${kind}Policy`, async () => {
        const target = kind === 'User' ? { UserName: 'alice' } : { RoleName: 'deployer' };
        const document = JSON.stringify(allow('kms:Encrypt'), null, 2);
        assert.deepEqual(await call(`Put${kind}Policy`, { ...target, PolicyName: 'b-encrypt', PolicyDocument: document }), {});
        await call(`Put${kind}Policy`, { ...target, PolicyName: 'a-decrypt', PolicyDocument: JSON.stringify(allow('kms:Decrypt')) });
        assert.deepEqual(await call(`Get${kind}Policy`, { ...target, PolicyName: 'b-encrypt' }), {
          ...target,
          PolicyName: 'b-encrypt',
          PolicyDocument: document,
        });
        assert.deepEqual(await call(`List${kind}Policies`, target), { PolicyNames: ['a-decrypt', 'b-encrypt'], IsTruncated: false });
        const first = await call(`List${kind}Policies`, { ...target, MaxItems: 1 });
        assert.deepEqual(first.PolicyNames, ['a-decrypt']);
        assert.equal(first.IsTruncated, true);
        assert.deepEqual((await call(`List${kind}Policies`, { ...target, Marker: first.Marker })).PolicyNames, ['b-encrypt']);
        await call(`Delete${kind}Policy`, { ...target, PolicyName: 'a-decrypt' });
        assert.equal(
          await failsWith(call(`Get${kind}Policy`, { ...target, PolicyName: 'a-decrypt' }), 'NoSuchEntityException'),
          `The ${kind.toLowerCase()} policy with name a-decrypt cannot be found.`,
        );
        await failsWith(call(`Delete${kind}Policy`, { ...target, PolicyName: 'a-decrypt' }), 'NoSuchEntityException');
        await call(`Delete${kind}Policy`, { ...target, PolicyName: 'b-encrypt' });
      });
    }

    test('an identity policy naming a Principal is malformed, and its text is not echoed', async () => {
      const document = JSON.stringify({ Statement: [{ Sid: 'Secret-ish', Effect: 'Allow', Principal: '*', Action: 'kms:Encrypt', Resource: '*' }] });
      const message = await failsWith(call('PutUserPolicy', { UserName: 'alice', PolicyName: 'p', PolicyDocument: document }), 'MalformedPolicyDocumentException');
      assert.match(message, /cannot name a Principal/);
      assert.doesNotMatch(message, /Secret-ish/);
      await failsWith(call('PutUserPolicy', { UserName: 'ghost', PolicyName: 'p', PolicyDocument: JSON.stringify(allow('kms:*')) }), 'NoSuchEntityException');
      await failsWith(call('PutUserPolicy', { UserName: 'alice', PolicyName: 'bad name', PolicyDocument: JSON.stringify(allow('kms:*')) }), 'ValidationException');
    });

    test('inline policies of a user are limited to 2,048 characters in all, of a role to 10,240 (whitespace not counted)', async () => {
      // A document of exactly `size` characters minified, padded with whitespace that does not count.
      const sized = (size: number) => {
        const base = JSON.stringify(allow('kms:Encrypt', '*', { Sid: '' }));
        const text = JSON.stringify(allow('kms:Encrypt', '*', { Sid: 'x'.repeat(size - base.length) }));
        assert.equal(text.length, size);
        return text.replace(/,/g, ',    ');
      };
      await call('CreateUser', { UserName: 'sized' });
      await call('PutUserPolicy', { UserName: 'sized', PolicyName: 'one', PolicyDocument: sized(1000) });
      await call('PutUserPolicy', { UserName: 'sized', PolicyName: 'two', PolicyDocument: sized(1000) });
      // Replacing a policy counts its new size only.
      await call('PutUserPolicy', { UserName: 'sized', PolicyName: 'two', PolicyDocument: sized(1048) });
      assert.equal(
        await failsWith(call('PutUserPolicy', { UserName: 'sized', PolicyName: 'three', PolicyDocument: sized(200) }), 'LimitExceededException'),
        'Maximum policy size of 2048 bytes exceeded for user sized',
      );
      await call('CreateRole', { RoleName: 'sized', AssumeRolePolicyDocument: trustPolicy(account) });
      for (let i = 0; i < 10; i++) await call('PutRolePolicy', { RoleName: 'sized', PolicyName: `p${i}`, PolicyDocument: sized(1024) });
      assert.equal(
        await failsWith(call('PutRolePolicy', { RoleName: 'sized', PolicyName: 'p10', PolicyDocument: sized(200) }), 'LimitExceededException'),
        'Maximum policy size of 10240 bytes exceeded for role sized',
      );
    });
  });

  describe('access keys', () => {
    test('CreateAccessKey shows the secret once; ListAccessKeys never does', async () => {
      await call('CreateUser', { UserName: 'keyed' });
      const { AccessKey } = await call('CreateAccessKey', { UserName: 'keyed' });
      assert.equal(AccessKey.UserName, 'keyed');
      assert.match(AccessKey.AccessKeyId, /^AKIA[A-Z2-7]{16}$/);
      assert.equal(AccessKey.Status, 'Active');
      assert.match(AccessKey.SecretAccessKey, /^[A-Za-z0-9+/]{40}$/);
      assert.deepEqual(AccessKey.CreateDate, T0);
      // The stored key signs with that secret.
      const resolved = await h.instance.accessKeys.resolve(AccessKey.AccessKeyId);
      assert.equal(resolved?.secretAccessKey.toString('utf8'), AccessKey.SecretAccessKey);
      assert.equal(resolved?.principalArn, userArn('keyed'));

      const listed = await call('ListAccessKeys', { UserName: 'keyed' });
      assert.deepEqual(listed, {
        AccessKeyMetadata: [{ UserName: 'keyed', AccessKeyId: AccessKey.AccessKeyId, Status: 'Active', CreateDate: T0 }],
        IsTruncated: false,
      });
      const text = JSON.stringify(listed);
      assert.ok(!text.includes(AccessKey.SecretAccessKey) && !text.includes('Secret'));
      const lastUsed = await call('GetAccessKeyLastUsed', { AccessKeyId: AccessKey.AccessKeyId });
      assert.deepEqual(lastUsed, { UserName: 'keyed', AccessKeyLastUsed: { ServiceName: 'N/A', Region: 'N/A' } });
    });

    test('a user has at most two access keys (LimitExceededException)', async () => {
      await call('CreateAccessKey', { UserName: 'keyed' });
      assert.equal(await failsWith(call('CreateAccessKey', { UserName: 'keyed' }), 'LimitExceededException'), 'Cannot exceed quota for AccessKeysPerUser: 2');
    });

    test('UpdateAccessKey deactivates and reactivates; DeleteAccessKey removes; another user\'s key is NoSuchEntityException', async () => {
      const [first] = (await call('ListAccessKeys', { UserName: 'keyed' })).AccessKeyMetadata;
      const id = first.AccessKeyId;
      await call('UpdateAccessKey', { UserName: 'keyed', AccessKeyId: id, Status: 'Inactive' });
      assert.equal(await h.instance.accessKeys.resolve(id), undefined);
      assert.equal((await call('ListAccessKeys', { UserName: 'keyed' })).AccessKeyMetadata[0].Status, 'Inactive');
      await call('UpdateAccessKey', { UserName: 'keyed', AccessKeyId: id, Status: 'Active' });
      assert.ok(await h.instance.accessKeys.resolve(id));
      assert.match(await failsWith(call('UpdateAccessKey', { UserName: 'keyed', AccessKeyId: id, Status: 'Off' }), 'ValidationException'), /enum value set: \[Active, Inactive\]/);
      assert.equal(
        await failsWith(call('DeleteAccessKey', { UserName: 'alice', AccessKeyId: id }), 'NoSuchEntityException'),
        `The Access Key with id ${id} cannot be found.`,
      );
      await call('DeleteAccessKey', { UserName: 'keyed', AccessKeyId: id });
      assert.equal(await h.instance.accessKeys.resolve(id), undefined);
      assert.equal((await call('ListAccessKeys', { UserName: 'keyed' })).AccessKeyMetadata.length, 1);
      await failsWith(call('GetAccessKeyLastUsed', { AccessKeyId: id }), 'NoSuchEntityException');
    });

    test('without UserName, access-key operations act on the calling user, and a role session must name one', async () => {
      const arn = await h.addUser('selfserve', {
        self: allow(['iam:CreateAccessKey', 'iam:ListAccessKeys', 'iam:UpdateAccessKey', 'iam:DeleteAccessKey'], userArn('selfserve')),
      });
      const { AccessKey } = await call('CreateAccessKey', {}, arn);
      assert.equal(AccessKey.UserName, 'selfserve');
      assert.equal((await call('ListAccessKeys', {}, arn)).AccessKeyMetadata[0].AccessKeyId, AccessKey.AccessKeyId);
      // IAM lets a caller deactivate the key it signs with.
      await call('UpdateAccessKey', { AccessKeyId: AccessKey.AccessKeyId, Status: 'Inactive' }, arn);
      await call('DeleteAccessKey', { AccessKeyId: AccessKey.AccessKeyId }, arn);
      // ...but not someone else's.
      await failsWith(call('CreateAccessKey', { UserName: 'alice' }, arn), 'AccessDeniedException');
      assert.equal(
        await failsWith(call('CreateAccessKey', {}, `arn:aws:sts::${account}:assumed-role/deployer/s1`), 'ValidationException'),
        'Must specify userName when calling with non-User credentials',
      );
    });

    test('GetAccessKeyLastUsed reports a use once the key has signed a request', async () => {
      const { AccessKey } = await call('CreateAccessKey', { UserName: 'alice' });
      await h.instance.accessKeys.authenticate(AccessKey.AccessKeyId, undefined, h.clock);
      const { AccessKeyLastUsed } = await call('GetAccessKeyLastUsed', { AccessKeyId: AccessKey.AccessKeyId });
      assert.deepEqual(AccessKeyLastUsed, { LastUsedDate: T0, ServiceName: 'kms', Region: 'us-east-1' });
    });
  });

  describe('authorization', () => {
    test('a user with no policy is denied iam:CreateUser in AWS\'s words', async () => {
      const nobody = await h.addUser('nobody');
      const message = await failsWith(call('CreateUser', { UserName: 'eve' }, nobody), 'AccessDeniedException');
      assert.equal(
        message,
        `User: ${nobody} is not authorized to perform: iam:CreateUser on resource: ${userArn('eve')} because no identity-based policy allows the iam:CreateUser action`,
      );
      assert.deepEqual(last.decisions, [{ action: 'iam:CreateUser', resource: userArn('eve'), allowed: false }]);
      await failsWith(call('GetUser', { UserName: 'eve' }), 'NoSuchEntityException');
    });

    test('a policy allowing iam:CreateUser lets the user create users; tags at creation need iam:TagUser too', async () => {
      const creator = await h.addUser('creator', { create: allow('iam:CreateUser', `arn:aws:iam::${account}:user/team-*`) });
      const { User } = await call('CreateUser', { UserName: 'team-one' }, creator);
      assert.equal(User.Arn, userArn('team-one'));
      assert.deepEqual(last.decisions, [{ action: 'iam:CreateUser', resource: userArn('team-one'), allowed: true }]);
      await failsWith(call('CreateUser', { UserName: 'outsider' }, creator), 'AccessDeniedException');
      await failsWith(call('CreateUser', { UserName: 'team-two', Tags: [{ Key: 'k', Value: 'v' }] }, creator), 'AccessDeniedException');
      assert.equal(last.decisions[1].action, 'iam:TagUser');
      await failsWith(call('GetUser', { UserName: 'team-two' }), 'NoSuchEntityException');
    });

    test('an explicit deny wins over AdministratorAccess-like allows', async () => {
      const guarded = await h.addUser('guarded', {
        all: allow('iam:*'),
        deny: { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'iam:DeleteUser', Resource: userArn('admin') }] },
      });
      assert.match(await failsWith(call('DeleteUser', { UserName: 'admin' }, guarded), 'AccessDeniedException'), /with an explicit deny in an identity-based policy$/);
    });

    test('every admin operation asks for a decision first and is denied to a principal with no policy', async () => {
      const nobody = userArn('nobody');
      const inputs: Record<string, object> = {
        CreateUser: { UserName: 'x' },
        GetUser: { UserName: 'alice' },
        ListUsers: {},
        DeleteUser: { UserName: 'alice' },
        TagUser: { UserName: 'alice', Tags: [{ Key: 'k', Value: 'v' }] },
        UntagUser: { UserName: 'alice', TagKeys: ['k'] },
        CreateRole: { RoleName: 'x', AssumeRolePolicyDocument: trustPolicy(account) },
        GetRole: { RoleName: 'deployer' },
        ListRoles: {},
        DeleteRole: { RoleName: 'deployer' },
        UpdateAssumeRolePolicy: { RoleName: 'deployer', PolicyDocument: trustPolicy(account) },
        TagRole: { RoleName: 'deployer', Tags: [{ Key: 'k', Value: 'v' }] },
        UntagRole: { RoleName: 'deployer', TagKeys: ['k'] },
        PutUserPolicy: { UserName: 'alice', PolicyName: 'p', PolicyDocument: JSON.stringify(allow('*')) },
        GetUserPolicy: { UserName: 'alice', PolicyName: 'p' },
        ListUserPolicies: { UserName: 'alice' },
        DeleteUserPolicy: { UserName: 'alice', PolicyName: 'p' },
        PutRolePolicy: { RoleName: 'deployer', PolicyName: 'p', PolicyDocument: JSON.stringify(allow('*')) },
        GetRolePolicy: { RoleName: 'deployer', PolicyName: 'p' },
        ListRolePolicies: { RoleName: 'deployer' },
        DeleteRolePolicy: { RoleName: 'deployer', PolicyName: 'p' },
        CreateAccessKey: { UserName: 'alice' },
        ListAccessKeys: { UserName: 'alice' },
        UpdateAccessKey: { UserName: 'alice', AccessKeyId: 'AKIAAAAAAAAAAAAAAAAA', Status: 'Inactive' },
        DeleteAccessKey: { UserName: 'alice', AccessKeyId: 'AKIAAAAAAAAAAAAAAAAA' },
        GetAccessKeyLastUsed: { AccessKeyId: 'AKIAAAAAAAAAAAAAAAAA' },
        ExplainRequest: { PrincipalArn: userArn('alice'), Action: 'kms:Encrypt' },
      };
      const expectedAction = (operation: string) => (operation === 'ExplainRequest' ? 'iam:SimulatePrincipalPolicy' : `iam:${operation}`);
      for (const operation of ADMIN_OPERATIONS.keys()) {
        if (operation === 'GetCallerIdentity') continue;
        assert.ok(inputs[operation], `a test input for ${operation}`);
        const message = await failsWith(call(operation, inputs[operation], nobody), 'AccessDeniedException');
        assert.match(message, new RegExp(`not authorized to perform: ${expectedAction(operation)} on resource: `), operation);
        assert.equal(last.decisions.length, 1, operation);
        assert.equal(last.decisions[0].allowed, false, operation);
      }
      assert.equal(Object.keys(inputs).length, ADMIN_OPERATIONS.size - 1, 'no stale inputs');
    });

    test('an operation that returns without a decision has its answer withheld', async () => {
      const operations = ADMIN_OPERATIONS as Map<string, AdminOperation>;
      operations.set('Unchecked', async () => ({ leaked: true }));
      try {
        await assert.rejects(call('Unchecked', {}), /returned without a policy decision/);
      } finally {
        operations.delete('Unchecked');
      }
      await failsWith(call('NoSuchOperation', {}), 'UnknownOperationException');
    });
  });

  describe('GetCallerIdentity', () => {
    test('answers Account, Arn and UserId, needing no permission', async () => {
      const nobody = userArn('nobody');
      const identity = await call('GetCallerIdentity', {}, nobody);
      const { User } = await call('GetUser', { UserName: 'nobody' });
      assert.deepEqual(identity, { UserId: User.UserId, Account: account, Arn: nobody });
      const session = `arn:aws:sts::${account}:assumed-role/deployer/build-7`;
      const role = (await call('GetRole', { RoleName: 'deployer' })).Role;
      assert.deepEqual(await call('GetCallerIdentity', {}, session), { UserId: `${role.RoleId}:build-7`, Account: account, Arn: session });
      assert.deepEqual(last.decisions, [{ action: 'sts:GetCallerIdentity', resource: '*', allowed: true }]);
    });
  });

  describe('ExplainRequest', () => {
    let keyId: string;
    let analyst: string;

    before(async () => {
      keyId = await h.createKey();
      await h.call('CreateAlias', { AliasName: 'alias/explained', TargetKeyId: keyId });
      analyst = await h.addUser('analyst', {
        encrypt: { Version: '2012-10-17', Statement: [{ Sid: 'EncryptAnything', Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' }] },
        fence: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'NoTenantB',
              Effect: 'Deny',
              Action: 'kms:Encrypt',
              Resource: '*',
              Condition: { StringEquals: { 'kms:EncryptionContext:tenant': 'tenant-b-secret' } },
            },
          ],
        },
      });
    });

    test('names the statements that allowed the request', async () => {
      const explained = await call('ExplainRequest', { PrincipalArn: analyst, Action: 'kms:Encrypt', KeyId: 'alias/explained' });
      assert.equal(explained.Decision, 'allowed');
      assert.equal(explained.Resource, `arn:aws:kms:us-east-1:${account}:key/${keyId}`);
      assert.ok(
        explained.MatchedStatements.some((s: { Sid?: string; Effect: string; SourcePolicyId: string }) =>
          s.Sid === 'EncryptAnything' && s.Effect === 'Allow' && s.SourcePolicyId.includes('"encrypt"'),
        ),
        JSON.stringify(explained.MatchedStatements),
      );
      assert.ok(explained.Reasons.some((reason: string) => reason.includes('EncryptAnything')));
      assert.deepEqual(last.decisions, [{ action: 'iam:SimulatePrincipalPolicy', resource: analyst, allowed: true }]);
    });

    test('names the deny and never echoes encryption-context values', async () => {
      const explained = await call('ExplainRequest', {
        PrincipalArn: analyst,
        Action: 'kms:Encrypt',
        KeyId: keyId,
        EncryptionContext: { tenant: 'tenant-b-secret' },
      });
      assert.equal(explained.Decision, 'explicitDeny');
      assert.deepEqual(explained.MatchedStatements.map((s: { Sid?: string }) => s.Sid), ['NoTenantB']);
      assert.doesNotMatch(JSON.stringify(explained), /tenant-b-secret/);
    });

    test('an action no policy allows is an implicit deny, with AWS\'s answer among the reasons', async () => {
      const explained = await call('ExplainRequest', { PrincipalArn: analyst, Action: 'kms:Decrypt', KeyId: keyId });
      assert.equal(explained.Decision, 'implicitDeny');
      assert.deepEqual(explained.MatchedStatements, []);
      assert.ok(explained.Reasons.some((reason: string) => reason.startsWith(`AWS would answer: User: ${analyst} is not authorized to perform: kms:Decrypt`)));
    });

    test('ContextEntries fill condition keys; a Resource stands in when there is no key', async () => {
      const sourced = await h.addUser('sourced', {
        office: allow('iam:GetUser', '*', { Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } }),
      });
      const inside = await call('ExplainRequest', {
        PrincipalArn: sourced,
        Action: 'iam:GetUser',
        Resource: userArn('alice'),
        ContextEntries: [{ Key: 'aws:SourceIp', Values: ['10.1.2.3'] }],
      });
      assert.equal(inside.Decision, 'allowed');
      assert.equal(inside.Resource, userArn('alice'));
      const outside = await call('ExplainRequest', { PrincipalArn: sourced, Action: 'iam:GetUser', Resource: userArn('alice') });
      assert.equal(outside.Decision, 'implicitDeny');
      assert.ok(outside.Reasons.some((reason: string) => /IpAddress on aws:SourceIp was not met/.test(reason)));
    });

    test('an unknown principal, a foreign ARN and KeyId with Resource are refused', async () => {
      assert.equal(
        await failsWith(call('ExplainRequest', { PrincipalArn: userArn('ghost'), Action: 'kms:Encrypt' }), 'NoSuchEntityException'),
        'The user with name ghost cannot be found.',
      );
      await failsWith(call('ExplainRequest', { PrincipalArn: 'arn:aws:iam::111122223333:user/x', Action: 'kms:Encrypt' }), 'ValidationException');
      await failsWith(call('ExplainRequest', { PrincipalArn: analyst, Action: 'kms:Encrypt', KeyId: keyId, Resource: '*' }), 'ValidationException');
      await failsWith(call('ExplainRequest', { PrincipalArn: analyst, Action: 'kms:*' }), 'ValidationException');
      await failsWith(call('ExplainRequest', { PrincipalArn: analyst, Action: 'kms:Encrypt', KeyId: 'alias/none' }), 'NotFoundException');
    });

    test('is itself authorized as iam:SimulatePrincipalPolicy on the principal', async () => {
      const message = await failsWith(call('ExplainRequest', { PrincipalArn: analyst, Action: 'kms:Encrypt' }, analyst), 'AccessDeniedException');
      assert.equal(
        message,
        `User: ${analyst} is not authorized to perform: iam:SimulatePrincipalPolicy on resource: ${analyst} because no identity-based policy allows the iam:SimulatePrincipalPolicy action`,
      );
    });
  });
});
