/**
 * Grants through the service: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant and
 * RevokeGrant, and what a grant lets its grantee do. The grantees are users with no identity
 * policy, so under the default key policy only a grant can let them in.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type {
  CreateGrantResponse,
  DecryptResponse,
  EncryptResponse,
  ListGrantsResponse,
} from '@aws-sdk/client-kms';
import type { Caller } from '../../src/service/context.ts';
import { isKmsError, type KmsErrorName } from '../../src/service/errors.ts';
import { checkGrantTokens, grantIdOfToken, newGrantToken } from '../../src/service/grant-tokens.ts';
import { invokeOperation } from '../../src/service/operations.ts';
import { MAX_GRANTS_PER_KEY } from '../../src/service/operations/grants.ts';
import { newPrincipalId } from '../../src/service/principals.ts';
import { StoreLimitError, type GrantRecord, type MetadataStore } from '../../src/storage/types.ts';
import { Harness, PLAINTEXT, T0 } from '../support/service-harness.ts';

const GRANT_ID = /^[0-9a-f]{64}$/;

describe('grant tokens', () => {
  const grantId = 'ab'.repeat(32);

  test('a token names its grant, and every token is new', () => {
    const first = newGrantToken(grantId);
    const second = newGrantToken(grantId);
    assert.notEqual(first, second);
    assert.equal(grantIdOfToken(first), grantId);
    assert.equal(grantIdOfToken(second), grantId);
    assert.doesNotThrow(() => checkGrantTokens([first, second]));
    assert.doesNotThrow(() => checkGrantTokens(undefined));
    assert.doesNotThrow(() => checkGrantTokens([]));
  });

  test('anything else is not a token: InvalidGrantTokenException', () => {
    const token = newGrantToken(grantId);
    const bytes = Buffer.from(token, 'base64url');
    const withVersion = (version: number) => Buffer.concat([Buffer.of(version), bytes.subarray(1)]).toString('base64url');
    const bad = [
      '',
      'not-a-token',
      token.slice(0, -1),
      `${token}A`,
      withVersion(2),
      // Same bytes, the spare bits of the last character set: not the canonical spelling.
      token.slice(0, -1) + String.fromCharCode(token.charCodeAt(token.length - 1) ^ 1),
      Buffer.from(token, 'base64url').toString('base64'),
    ];
    for (const candidate of bad) {
      if (candidate === token) continue;
      assert.equal(grantIdOfToken(candidate), undefined, candidate);
      assert.throws(
        () => checkGrantTokens([token, candidate]),
        (error) => isKmsError(error) && error.errorName === 'InvalidGrantTokenException',
      );
    }
  });
});

describe('grants', () => {
  let dataDir: string;
  let h: Harness;
  let accountId: string;
  let keyId: string;
  let keyArn: string;
  let grantee: string;
  let other: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strongroom-grants-'));
    h = await Harness.open(dataDir);
    accountId = h.instance.context.accountId;
    keyId = await h.createKey();
    keyArn = (await h.describe(keyId)).Arn!;
    grantee = await h.addUser('grantee');
    other = await h.addUser('other');
  });

  afterEach(async () => {
    await h.instance.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const createGrant = (input: object, as?: string) =>
    h.call<CreateGrantResponse>('CreateGrant', { KeyId: keyId, GranteePrincipal: grantee, ...input }, as);

  const encryptAs = (as: string, encryptionContext?: Record<string, string>) =>
    h.call<EncryptResponse>('Encrypt', { KeyId: keyId, Plaintext: PLAINTEXT, EncryptionContext: encryptionContext }, as);

  const listGrants = (input: object = {}) => h.call<ListGrantsResponse>('ListGrants', { KeyId: keyId, ...input });

  async function expectError(promise: Promise<unknown>, errorName: KmsErrorName, message?: string | RegExp): Promise<void> {
    await assert.rejects(promise, (error) => {
      assert.ok(isKmsError(error), `expected a KmsError, got ${String(error)}`);
      assert.equal(error.errorName, errorName, error.message);
      if (typeof message === 'string') assert.equal(error.message, message);
      else if (message) assert.match(error.message, message);
      return true;
    });
  }

  const denied = (promise: Promise<unknown>) => expectError(promise, 'AccessDeniedException');

  describe('what a grant allows', () => {
    test('the grantee may use exactly the granted operations, from the moment CreateGrant returns', async () => {
      await denied(h.call('DescribeKey', { KeyId: keyId }, grantee));
      await denied(encryptAs(grantee));

      const { GrantId, GrantToken } = await createGrant({ Operations: ['DescribeKey', 'Encrypt', 'Decrypt'] });
      assert.match(GrantId!, GRANT_ID);
      assert.equal(grantIdOfToken(GrantToken!), GrantId);

      assert.equal((await h.call<{ KeyMetadata: { KeyId: string } }>('DescribeKey', { KeyId: keyId }, grantee)).KeyMetadata.KeyId, keyId);
      const { CiphertextBlob } = await encryptAs(grantee);
      const decrypted = await h.call<DecryptResponse>('Decrypt', { CiphertextBlob }, grantee);
      assert.deepEqual(new Uint8Array(decrypted.Plaintext!), PLAINTEXT);

      // Outside the grant: denied, in AWS words.
      await expectError(
        h.call('GenerateDataKey', { KeyId: keyId, KeySpec: 'AES_256' }, grantee),
        'AccessDeniedException',
        `User: ${grantee} is not authorized to perform: kms:GenerateDataKey on resource: ${keyArn} because no identity-based policy allows the kms:GenerateDataKey action`,
      );
      await denied(h.call('DisableKey', { KeyId: keyId }, grantee));
      await denied(h.call('ListGrants', { KeyId: keyId }, grantee));
      // Another principal gets nothing from it.
      await denied(encryptAs(other));
    });

    test('a grant to a role covers its sessions', async () => {
      const role = `arn:aws:iam::${accountId}:role/worker`;
      await h.instance.store.createPrincipal({
        arn: role,
        kind: 'role',
        name: 'worker',
        principalId: newPrincipalId('role'),
        createdAt: h.clock,
        trustPolicy: JSON.stringify({ Version: '2012-10-17', Statement: [] }),
        tags: [],
      });
      const session = `arn:aws:sts::${accountId}:assumed-role/worker/job-1`;
      await denied(encryptAs(session));
      await createGrant({ GranteePrincipal: role, Operations: ['Encrypt'] });
      await encryptAs(session);
    });

    test('EncryptionContextEquals allows exactly that context', async () => {
      await createGrant({ Operations: ['Encrypt', 'Decrypt'], Constraints: { EncryptionContextEquals: { app: 'ledger' } } });
      const { CiphertextBlob } = await encryptAs(grantee, { app: 'ledger' });
      await h.call('Decrypt', { CiphertextBlob, EncryptionContext: { app: 'ledger' } }, grantee);
      await denied(encryptAs(grantee));
      await denied(encryptAs(grantee, { app: 'other' }));
      await denied(encryptAs(grantee, { app: 'ledger', extra: 'pair' }));
      await denied(encryptAs(grantee, { App: 'ledger' }));
    });

    test('EncryptionContextSubset allows contexts that include its pairs', async () => {
      await createGrant({ Operations: ['Encrypt'], Constraints: { EncryptionContextSubset: { app: 'ledger' } } });
      await encryptAs(grantee, { app: 'ledger' });
      await encryptAs(grantee, { app: 'ledger', extra: 'pair' });
      await denied(encryptAs(grantee));
      await denied(encryptAs(grantee, { app: 'other', extra: 'pair' }));
    });

    test('an encryption context constraint does not apply to DescribeKey (GrantConstraints)', async () => {
      await createGrant({ Operations: ['DescribeKey', 'Encrypt'], Constraints: { EncryptionContextEquals: { app: 'ledger' } } });
      await h.call('DescribeKey', { KeyId: keyId }, grantee);
      await denied(encryptAs(grantee));
    });

    test('after RetireGrant or RevokeGrant the grantee is denied at once', async () => {
      const byToken = await createGrant({ Operations: ['Encrypt'] });
      await encryptAs(grantee);
      await h.call('RetireGrant', { GrantToken: byToken.GrantToken });
      await denied(encryptAs(grantee));

      const byId = await createGrant({ Operations: ['Encrypt'] });
      await encryptAs(grantee);
      await h.call('RetireGrant', { KeyId: keyArn, GrantId: byId.GrantId });
      await denied(encryptAs(grantee));

      const revoked = await createGrant({ Operations: ['Encrypt'] });
      await encryptAs(grantee);
      await h.call('RevokeGrant', { KeyId: keyId, GrantId: revoked.GrantId });
      await denied(encryptAs(grantee));

      assert.deepEqual((await listGrants()).Grants, []);
    });

    test('a grant with CreateGrant lets its grantee create grants no broader than itself', async () => {
      await createGrant({
        Operations: ['Encrypt', 'Decrypt', 'CreateGrant'],
        Constraints: { EncryptionContextSubset: { app: 'ledger' } },
      });
      // Fewer operations and a stricter constraint: allowed.
      const child = await createGrant(
        { GranteePrincipal: other, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { app: 'ledger', tier: 'gold' } } },
        grantee,
      );
      assert.match(child.GrantId!, GRANT_ID);
      await createGrant(
        { GranteePrincipal: other, Operations: ['Encrypt'], Constraints: { EncryptionContextEquals: { app: 'ledger' } } },
        grantee,
      );
      // An operation the grant lacks: denied.
      await expectError(
        createGrant({ GranteePrincipal: other, Operations: ['GenerateDataKey'], Constraints: { EncryptionContextSubset: { app: 'ledger' } } }, grantee),
        'AccessDeniedException',
        `User: ${grantee} is not authorized to perform: kms:CreateGrant on resource: ${keyArn} because no resource-based policy allows the kms:CreateGrant action`,
      );
      // A looser constraint, or none: denied.
      await denied(createGrant({ GranteePrincipal: other, Operations: ['Decrypt'] }, grantee));
      await denied(createGrant({ GranteePrincipal: other, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { tier: 'gold' } } }, grantee));
      assert.equal((await listGrants()).Grants!.length, 3);
    });

    test('a grant under EncryptionContextEquals admits only children with the same Equals constraint', async () => {
      await createGrant({ Operations: ['Decrypt', 'CreateGrant'], Constraints: { EncryptionContextEquals: { app: 'ledger' } } });
      await createGrant({ GranteePrincipal: other, Operations: ['Decrypt'], Constraints: { EncryptionContextEquals: { app: 'ledger' } } }, grantee);
      await denied(createGrant({ GranteePrincipal: other, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { app: 'ledger' } } }, grantee));
    });

    test('a principal allowed by policy may create any grant, and its decision is recorded', async () => {
      const caller: Caller = h.caller();
      await invokeOperation(
        'CreateGrant',
        h.instance.context,
        { KeyId: keyId, GranteePrincipal: grantee, Operations: ['Encrypt'] },
        caller,
      );
      assert.deepEqual(caller.decisions, [{ action: 'kms:CreateGrant', resource: keyArn, allowed: true }]);
    });
  });

  describe('CreateGrant', () => {
    test('Name makes retries idempotent: same parameters, same grant, new token', async () => {
      const input = {
        Name: 'app-grant',
        Operations: ['Encrypt', 'Decrypt'],
        RetiringPrincipal: other,
        Constraints: { EncryptionContextSubset: { app: 'ledger', env: 'prod' } },
      };
      const first = await createGrant(input);
      const again = await createGrant({
        ...input,
        Operations: ['Decrypt', 'Encrypt'],
        Constraints: { EncryptionContextSubset: { env: 'prod', app: 'ledger' } },
      });
      assert.equal(again.GrantId, first.GrantId);
      assert.notEqual(again.GrantToken, first.GrantToken);
      assert.equal(grantIdOfToken(again.GrantToken!), first.GrantId);
      assert.equal((await listGrants()).Grants!.length, 1);

      // Different parameters under the same name: a new grant.
      const broader = await createGrant({ ...input, Operations: ['Encrypt', 'Decrypt', 'DescribeKey'] });
      assert.notEqual(broader.GrantId, first.GrantId);
      const equals = await createGrant({ ...input, Constraints: { EncryptionContextEquals: { app: 'ledger', env: 'prod' } } });
      assert.notEqual(equals.GrantId, first.GrantId);
      // The same name on another key: that key's own grant.
      const otherKey = await h.createKey();
      const elsewhere = await createGrant({ ...input, KeyId: otherKey });
      assert.notEqual(elsewhere.GrantId, first.GrantId);
      assert.equal((await listGrants()).Grants!.length, 3);
      // Without a Name every request makes a grant.
      const unnamed = { Operations: ['Encrypt'] };
      assert.notEqual((await createGrant(unnamed)).GrantId, (await createGrant(unnamed)).GrantId);
    });

    test('operations must exist, be supported by the key, and not be CreateGrant alone', async () => {
      await expectError(createGrant({ Operations: ['Sign'] }), 'ValidationException', /Grant operations \[Sign\] are not valid/);
      await expectError(createGrant({ Operations: ['Encrypt', 'GenerateMac'] }), 'ValidationException');
      await expectError(createGrant({ Operations: ['Fly'] }), 'ValidationException', /at 'operations\.1\.member' failed to satisfy constraint: Member must satisfy enum value set/);
      await expectError(createGrant({ Operations: [] }), 'ValidationException');
      await expectError(createGrant({ Operations: ['CreateGrant'] }), 'ValidationException', 'Grants must not contain only the CreateGrant operation.');

      const signing = await h.createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
      await expectError(createGrant({ KeyId: signing, Operations: ['GenerateDataKey'] }), 'ValidationException');
      await createGrant({ KeyId: signing, Operations: ['Sign', 'Verify', 'GetPublicKey', 'DescribeKey'] });
      const hmac = await h.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
      await createGrant({ KeyId: hmac, Operations: ['GenerateMac', 'VerifyMac'] });
      await expectError(createGrant({ KeyId: hmac, Operations: ['GetPublicKey'] }), 'ValidationException');
      const agreement = await h.createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' });
      await createGrant({ KeyId: agreement, Operations: ['DeriveSharedSecret', 'GetPublicKey'] });
      const rsa = await h.createKey({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' });
      await createGrant({ KeyId: rsa, Operations: ['Encrypt', 'Decrypt', 'ReEncryptFrom', 'GetPublicKey'] });
      await expectError(createGrant({ KeyId: rsa, Operations: ['GenerateDataKey'] }), 'ValidationException');
    });

    test('encryption context constraints: one kind, at most 8 pairs, symmetric encryption keys only', async () => {
      await expectError(
        createGrant({ Operations: ['Encrypt'], Constraints: { EncryptionContextEquals: { a: '1' }, EncryptionContextSubset: {} } }),
        'ValidationException',
        'More than one constraint supplied',
      );
      const nine = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'v']));
      await expectError(createGrant({ Operations: ['Encrypt'], Constraints: { EncryptionContextSubset: nine } }), 'ValidationException');
      await expectError(
        createGrant({ Operations: ['Encrypt'], Constraints: { EncryptionContextSubset: { a: 'x'.repeat(385) } } }),
        'ValidationException',
      );
      const rsa = await h.createKey({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' });
      await expectError(
        createGrant({ KeyId: rsa, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { a: '1' } } }),
        'ValidationException',
      );
      await expectError(
        createGrant({ Operations: ['Encrypt'], Constraints: { SourceArn: `arn:aws:s3:::bucket` } }),
        'UnsupportedOperationException',
      );
      // A constraint may sit beside DescribeKey and RetireGrant.
      await createGrant({ Operations: ['Decrypt', 'DescribeKey', 'RetireGrant'], Constraints: { EncryptionContextEquals: {} } });
    });

    test('principals must be principal ARNs, and ones of this account must exist', async () => {
      await expectError(createGrant({ Operations: ['Encrypt'], GranteePrincipal: 'bob' }), 'ValidationException');
      await expectError(
        createGrant({ Operations: ['Encrypt'], GranteePrincipal: `arn:aws:s3:::bucket` }),
        'ValidationException',
      );
      await expectError(createGrant({ Operations: ['Encrypt'], RetiringPrincipal: 'not an arn' }), 'ValidationException');
      await expectError(
        createGrant({ Operations: ['Encrypt'], GranteePrincipal: `arn:aws:iam::${accountId}:user/ghost` }),
        'InvalidArnException',
      );
      await expectError(
        createGrant({ Operations: ['Encrypt'], RetiringPrincipal: `arn:aws:sts::${accountId}:assumed-role/ghost/s` }),
        'InvalidArnException',
      );
      await expectError(createGrant({ Operations: ['Encrypt'], GranteePrincipal: undefined }), 'ValidationException');
      await expectError(
        createGrant({ Operations: ['Encrypt'], GranteePrincipal: undefined, GranteeServicePrincipal: 'rds.amazonaws.com' }),
        'UnsupportedOperationException',
      );
      // The account root, and principals of other accounts, are accepted as they are.
      await createGrant({ Operations: ['Encrypt'], GranteePrincipal: `arn:aws:iam::${accountId}:root` });
      await createGrant({ Operations: ['Encrypt'], GranteePrincipal: 'arn:aws:iam::111122223333:role/partner' });
      await createGrant({ Operations: ['Encrypt'], RetiringPrincipal: 'arn:aws:sts::111122223333:assumed-role/partner/s' });
    });

    test('KeyId: key id or key ARN, never an alias; the key must exist and not be pending deletion', async () => {
      await h.call('CreateAlias', { AliasName: 'alias/granted', TargetKeyId: keyId });
      await expectError(
        createGrant({ KeyId: 'alias/granted', Operations: ['Encrypt'] }),
        'InvalidArnException',
        'Key Aliases are not supported for this operation.',
      );
      await expectError(
        createGrant({ KeyId: `arn:aws:kms:us-east-1:${accountId}:alias/granted`, Operations: ['Encrypt'] }),
        'InvalidArnException',
      );
      await createGrant({ KeyId: keyArn, Operations: ['Encrypt'] });
      await expectError(
        createGrant({ KeyId: '00000000-0000-4000-8000-000000000000', Operations: ['Encrypt'] }),
        'NotFoundException',
      );

      await h.call('DisableKey', { KeyId: keyId });
      await createGrant({ Operations: ['Encrypt'] });
      await h.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
      await expectError(createGrant({ Operations: ['Encrypt'] }), 'KMSInvalidStateException', `${keyArn} is pending deletion.`);
      // Listing, retiring and revoking work in any state.
      const grants = (await listGrants()).Grants!;
      assert.equal(grants.length, 2);
      await h.call('RevokeGrant', { KeyId: keyId, GrantId: grants[0].GrantId });
      await h.call('RetireGrant', { KeyId: keyId, GrantId: grants[1].GrantId });
    });

    test('DryRun checks everything and creates nothing', async () => {
      await expectError(createGrant({ Operations: ['Encrypt'], DryRun: true }), 'DryRunOperationException');
      await expectError(createGrant({ Operations: ['Sign'], DryRun: true }), 'ValidationException');
      await denied(createGrant({ Operations: ['Encrypt'], DryRun: true }, other));
      assert.deepEqual((await listGrants()).Grants, []);
    });

    test('GrantTokens must be well-formed', async () => {
      const { GrantToken } = await createGrant({ Operations: ['Encrypt'] });
      await createGrant({ Operations: ['Decrypt'], GrantTokens: [GrantToken] });
      await expectError(createGrant({ Operations: ['Decrypt'], GrantTokens: ['garbage'] }), 'InvalidGrantTokenException');
      await expectError(createGrant({ Operations: ['Decrypt'], GrantTokens: [GrantToken, `${GrantToken}x`] }), 'InvalidGrantTokenException');
      // A retired grant's token is still well-formed.
      await h.call('RetireGrant', { GrantToken });
      await createGrant({ Operations: ['Decrypt'], GrantTokens: [GrantToken] });
    });

    test(`at most ${MAX_GRANTS_PER_KEY} grants per key: LimitExceededException`, async () => {
      const store = h.instance.store;
      const full = Object.create(store, {
        createGrant: {
          value: async () => {
            throw new StoreLimitError('too many grants for this key');
          },
        },
      }) as MetadataStore;
      const context = { ...h.instance.context, store: full };
      const input = { KeyId: keyId, GranteePrincipal: grantee, Operations: ['Encrypt'] };
      await expectError(invokeOperation('CreateGrant', context, input, h.caller()), 'LimitExceededException');

      // DryRun answers the limit too, from the key's grants.
      const one = (await store.grantsForKey(keyId))[0];
      const many = Object.create(store, {
        grantsForKey: { value: async () => new Array<GrantRecord>(MAX_GRANTS_PER_KEY).fill(one) },
      }) as MetadataStore;
      await expectError(
        invokeOperation('CreateGrant', { ...h.instance.context, store: many }, { ...input, DryRun: true }, h.caller()),
        'LimitExceededException',
      );
      assert.deepEqual((await listGrants()).Grants, []);
    });
  });

  describe('ListGrants', () => {
    test('entries as AWS shapes them, paged, and filtered', async () => {
      const named = await createGrant({
        Name: 'first',
        Operations: ['Encrypt', 'Decrypt'],
        RetiringPrincipal: other,
        Constraints: { EncryptionContextEquals: { app: 'ledger' } },
      });
      const ids = [named.GrantId!];
      for (let i = 0; i < 4; i++) ids.push((await createGrant({ GranteePrincipal: i % 2 ? grantee : other, Operations: ['DescribeKey'] })).GrantId!);

      const all = await listGrants();
      assert.equal(all.Truncated, false);
      assert.equal(all.NextMarker, undefined);
      assert.deepEqual(all.Grants!.map((grant) => grant.GrantId), ids);
      assert.deepEqual(all.Grants![0], {
        KeyId: keyArn,
        GrantId: named.GrantId,
        Name: 'first',
        CreationDate: T0,
        GranteePrincipal: grantee,
        RetiringPrincipal: other,
        IssuingAccount: `arn:aws:iam::${accountId}:root`,
        Operations: ['Encrypt', 'Decrypt'],
        Constraints: { EncryptionContextEquals: { app: 'ledger' } },
      });
      assert.deepEqual(Object.keys(all.Grants![1]).sort(), ['CreationDate', 'GrantId', 'GranteePrincipal', 'IssuingAccount', 'KeyId', 'Operations']);

      const seen: string[] = [];
      let marker: string | undefined;
      let pages = 0;
      do {
        const page = await listGrants({ Limit: 2, Marker: marker });
        pages++;
        seen.push(...page.Grants!.map((grant) => grant.GrantId!));
        assert.equal(page.Truncated, page.NextMarker !== undefined);
        marker = page.NextMarker;
      } while (marker !== undefined);
      assert.equal(pages, 3);
      assert.deepEqual(seen, ids);

      assert.deepEqual((await listGrants({ GrantId: ids[2] })).Grants!.map((grant) => grant.GrantId), [ids[2]]);
      assert.deepEqual((await listGrants({ GrantId: 'f'.repeat(64) })).Grants, []);
      assert.deepEqual(
        (await listGrants({ GranteePrincipal: grantee })).Grants!.map((grant) => grant.GrantId),
        [ids[0], ids[2], ids[4]],
      );
      // Grants of another key are not listed.
      const otherKey = await h.createKey();
      assert.deepEqual((await listGrants({ KeyId: otherKey })).Grants, []);
    });

    test('bad input: marker, limit, grant id, alias', async () => {
      await expectError(listGrants({ Marker: 'garbage' }), 'InvalidMarkerException');
      await expectError(listGrants({ Limit: 101 }), 'ValidationException');
      await expectError(listGrants({ GrantId: 'not-a-grant-id' }), 'InvalidGrantIdException');
      await h.call('CreateAlias', { AliasName: 'alias/listed', TargetKeyId: keyId });
      await expectError(listGrants({ KeyId: 'alias/listed' }), 'InvalidArnException');
      await expectError(listGrants({ KeyId: '00000000-0000-4000-8000-000000000000' }), 'NotFoundException');
    });
  });

  describe('ListRetirableGrants', () => {
    test('lists the grants naming a retiring principal, across keys, for principals IAM allows', async () => {
      const otherKey = await h.createKey();
      const expected = [
        (await createGrant({ Operations: ['Encrypt'], RetiringPrincipal: other })).GrantId,
        (await createGrant({ KeyId: otherKey, Operations: ['Decrypt'], RetiringPrincipal: other })).GrantId,
        (await createGrant({ Operations: ['DescribeKey'], RetiringPrincipal: other })).GrantId,
      ];
      await createGrant({ Operations: ['Encrypt'], RetiringPrincipal: grantee });
      await createGrant({ Operations: ['Encrypt'] });

      const all = await h.call<ListGrantsResponse>('ListRetirableGrants', { RetiringPrincipal: other });
      assert.deepEqual(all.Grants!.map((grant) => grant.GrantId), expected);
      assert.equal(all.Grants![1].KeyId, (await h.describe(otherKey)).Arn);
      assert.equal(all.Truncated, false);

      const first = await h.call<ListGrantsResponse>('ListRetirableGrants', { RetiringPrincipal: other, Limit: 2 });
      assert.equal(first.Truncated, true);
      const rest = await h.call<ListGrantsResponse>('ListRetirableGrants', { RetiringPrincipal: other, Marker: first.NextMarker });
      assert.deepEqual([...first.Grants!, ...rest.Grants!].map((grant) => grant.GrantId), expected);

      // kms:ListRetirableGrants is an IAM permission: the retiring principal itself has none here.
      await expectError(
        h.call('ListRetirableGrants', { RetiringPrincipal: other }, other),
        'AccessDeniedException',
        `User: ${other} is not authorized to perform: kms:ListRetirableGrants on resource: * because no identity-based policy allows the kms:ListRetirableGrants action`,
      );
      const auditor = await h.addUser('auditor', {
        list: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:ListRetirableGrants', Resource: '*' }] },
      });
      assert.equal((await h.call<ListGrantsResponse>('ListRetirableGrants', { RetiringPrincipal: other }, auditor)).Grants!.length, 3);

      await expectError(h.call('ListRetirableGrants', {}), 'ValidationException');
      await expectError(h.call('ListRetirableGrants', { RetiringPrincipal: 'bob' }), 'ValidationException');
      await expectError(h.call('ListRetirableGrants', { RetiringPrincipal: other, Marker: 'x' }), 'InvalidMarkerException');
    });
  });

  describe('RetireGrant', () => {
    const retire = (grant: CreateGrantResponse, as?: string) => h.call('RetireGrant', { GrantToken: grant.GrantToken }, as);

    test('the retiring principal may retire, with no policy at all', async () => {
      const grant = await createGrant({ Operations: ['Encrypt'], RetiringPrincipal: other });
      await retire(grant, other);
      assert.deepEqual((await listGrants()).Grants, []);
    });

    test('the grantee may retire only when the grant includes RetireGrant', async () => {
      const without = await createGrant({ Operations: ['Encrypt'] });
      await expectError(
        retire(without, grantee),
        'AccessDeniedException',
        `User: ${grantee} is not authorized to perform: kms:RetireGrant on resource: ${keyArn} because no identity-based policy allows the kms:RetireGrant action`,
      );
      const withRetire = await createGrant({ Operations: ['Encrypt', 'RetireGrant'] });
      await h.call('RetireGrant', { KeyId: keyId, GrantId: withRetire.GrantId }, grantee);
      assert.deepEqual((await listGrants()).Grants!.map((grant) => grant.GrantId), [without.GrantId]);
    });

    test('others may not; the issuing account may, through principals IAM allows kms:RetireGrant', async () => {
      const grant = await createGrant({ Operations: ['Encrypt'], RetiringPrincipal: other });
      await denied(retire(grant, grantee));
      const stranger = await h.addUser('stranger');
      await denied(retire(grant, stranger));
      const cleaner = await h.addUser('cleaner', {
        retire: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:RetireGrant', Resource: '*' }] },
      });
      const caller: Caller = h.caller(cleaner);
      await invokeOperation('RetireGrant', h.instance.context, { GrantToken: grant.GrantToken }, caller);
      assert.deepEqual(caller.decisions, [{ action: 'kms:RetireGrant', resource: keyArn, allowed: true }]);
      // The administrator (AdministratorAccess) likewise.
      await retire(await createGrant({ Operations: ['Encrypt'] }));
      assert.deepEqual((await listGrants()).Grants, []);
    });

    test('a grant retirable by an account: its principals with kms:RetireGrant in IAM', async () => {
      const grant = await createGrant({ Operations: ['Encrypt'], RetiringPrincipal: `arn:aws:iam::${accountId}:root` });
      await denied(retire(grant, other));
      await retire(grant);
    });

    test('an IAM deny of kms:RetireGrant wins over the grant', async () => {
      const fenced = await h.addUser('fenced', {
        fence: { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'kms:RetireGrant', Resource: '*' }] },
      });
      const grant = await createGrant({ GranteePrincipal: fenced, Operations: ['Encrypt', 'RetireGrant'], RetiringPrincipal: fenced });
      const caller: Caller = h.caller(fenced);
      await expectError(
        invokeOperation('RetireGrant', h.instance.context, { GrantToken: grant.GrantToken }, caller),
        'AccessDeniedException',
        `User: ${fenced} is not authorized to perform: kms:RetireGrant on resource: ${keyArn} with an explicit deny in an identity-based policy`,
      );
      assert.deepEqual(caller.decisions, [{ action: 'kms:RetireGrant', resource: keyArn, allowed: false }]);
      assert.equal((await listGrants()).Grants!.length, 1);
    });

    test('identifying the grant: a token, or key and grant id together', async () => {
      const grant = await createGrant({ Operations: ['Encrypt'] });
      const otherKey = await h.createKey();
      await expectError(h.call('RetireGrant', { KeyId: keyId }), 'ValidationException', 'Grant token OR (grant ID, key ID) must be specified');
      await expectError(h.call('RetireGrant', { GrantId: grant.GrantId }), 'ValidationException');
      await expectError(h.call('RetireGrant', {}), 'ValidationException');
      await expectError(h.call('RetireGrant', { GrantToken: 'garbage' }), 'InvalidGrantTokenException');
      await expectError(h.call('RetireGrant', { KeyId: keyId, GrantId: 'xyz' }), 'InvalidGrantIdException');
      await expectError(h.call('RetireGrant', { KeyId: keyId, GrantId: 'e'.repeat(64) }), 'NotFoundException');
      await expectError(h.call('RetireGrant', { KeyId: otherKey, GrantId: grant.GrantId }), 'NotFoundException');
      await expectError(h.call('RetireGrant', { KeyId: 'alias/x', GrantId: grant.GrantId }), 'InvalidArnException');
      await expectError(h.call('RetireGrant', { GrantToken: grant.GrantToken, DryRun: true }), 'DryRunOperationException');
      assert.equal((await listGrants()).Grants!.length, 1);
      await h.call('RetireGrant', { GrantToken: grant.GrantToken, KeyId: keyArn });
      // Gone: the token now names nothing.
      await expectError(h.call('RetireGrant', { GrantToken: grant.GrantToken }), 'NotFoundException');
    });
  });

  describe('RevokeGrant', () => {
    test('needs kms:RevokeGrant on the key, and the grant on that key', async () => {
      const grant = await createGrant({ Operations: ['Encrypt', 'RetireGrant'], RetiringPrincipal: grantee });
      // Being grantee and retiring principal does not let one revoke.
      await expectError(
        h.call('RevokeGrant', { KeyId: keyId, GrantId: grant.GrantId }, grantee),
        'AccessDeniedException',
        `User: ${grantee} is not authorized to perform: kms:RevokeGrant on resource: ${keyArn} because no identity-based policy allows the kms:RevokeGrant action`,
      );
      const otherKey = await h.createKey();
      await expectError(h.call('RevokeGrant', { KeyId: otherKey, GrantId: grant.GrantId }), 'NotFoundException');
      await expectError(h.call('RevokeGrant', { KeyId: keyId, GrantId: 'e'.repeat(64) }), 'NotFoundException');
      await expectError(h.call('RevokeGrant', { KeyId: keyId, GrantId: 'short' }), 'InvalidGrantIdException');
      await expectError(h.call('RevokeGrant', { KeyId: 'alias/x', GrantId: grant.GrantId }), 'InvalidArnException');
      await expectError(h.call('RevokeGrant', { KeyId: keyId, GrantId: grant.GrantId, DryRun: true }), 'DryRunOperationException');
      assert.equal((await listGrants()).Grants!.length, 1);
      await h.call('RevokeGrant', { KeyId: keyArn, GrantId: grant.GrantId });
      assert.deepEqual((await listGrants()).Grants, []);
      await expectError(h.call('RevokeGrant', { KeyId: keyId, GrantId: grant.GrantId }), 'NotFoundException');
    });
  });
});
