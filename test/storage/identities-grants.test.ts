import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  ADMINISTRATOR_ACCESS_POLICY,
  ADMINISTRATOR_ACCESS_POLICY_NAME,
  SQLITE_MIGRATIONS,
} from '../../src/storage/sqlite/schema.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { forEachBackend, type TestDatabase, testKeyRecord } from './backends.ts';
import {
  StoreConflictError,
  StoreKeyNotFoundError,
  StoreLimitError,
  type AccessKeyRecord,
  type GrantRecord,
  type KeyRecord,
  type MetadataStore,
  type PrincipalRecord,
} from '../../src/storage/types.ts';

const T0 = new Date('2025-01-01T00:00:00Z');
const HOUR_MS = 60 * 60 * 1000;
const ACCOUNT = '111122223333';
const at = (ms: number) => new Date(T0.getTime() + ms);

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const uniqueId = (prefix: string) => prefix + [...randomBytes(17)].map((byte) => BASE32[byte & 31]).join('');

function userRecord(name: string, overrides: Partial<PrincipalRecord> = {}): PrincipalRecord {
  return {
    arn: `arn:aws:iam::${ACCOUNT}:user/${name}`,
    kind: 'user',
    name,
    principalId: uniqueId('AIDA'),
    createdAt: T0,
    trustPolicy: undefined,
    maxSessionDurationSeconds: undefined,
    tags: [],
    ...overrides,
  };
}

function roleRecord(name: string, overrides: Partial<PrincipalRecord> = {}): PrincipalRecord {
  return {
    arn: `arn:aws:iam::${ACCOUNT}:role/${name}`,
    kind: 'role',
    name,
    principalId: uniqueId('AROA'),
    createdAt: T0,
    trustPolicy: '{"Version":"2012-10-17","Statement":[]}',
    maxSessionDurationSeconds: 3600,
    tags: [],
    ...overrides,
  };
}

function accessKeyRecord(principalArn: string, overrides: Partial<AccessKeyRecord> = {}): AccessKeyRecord {
  return {
    accessKeyId: uniqueId('AKIA').slice(0, 20),
    principalArn,
    sealedSecret: randomBytes(60),
    status: 'Active',
    createdAt: T0,
    lastUsedAt: undefined,
    sessionTokenHash: undefined,
    expiresAt: undefined,
    ...overrides,
  };
}

/** Temporary credentials of a role session. */
function sessionKey(role: string, session: string, expiresAt: Date, account = ACCOUNT): AccessKeyRecord {
  return accessKeyRecord(`arn:aws:sts::${account}:assumed-role/${role}/${session}`, {
    accessKeyId: uniqueId('ASIA').slice(0, 20),
    sessionTokenHash: randomBytes(32),
    expiresAt,
  });
}

function grantRecord(keyId: string, overrides: Partial<GrantRecord> = {}): GrantRecord {
  return {
    grantId: randomBytes(32).toString('hex'),
    keyId,
    name: undefined,
    granteePrincipal: `arn:aws:iam::${ACCOUNT}:role/app`,
    retiringPrincipal: undefined,
    operations: ['Decrypt'],
    constraints: undefined,
    issuingAccount: ACCOUNT,
    createdAt: T0,
    ...overrides,
  };
}

async function createKey(store: MetadataStore, overrides: Partial<KeyRecord> = {}): Promise<string> {
  const key: KeyRecord = testKeyRecord(overrides);
  const version = {
    keyId: key.keyId,
    version: 1,
    keyMaterialId: randomBytes(32).toString('hex'),
    sealedMaterial: randomBytes(60),
    createdAt: T0,
  };
  await store.createKey(key, version, []);
  return key.keyId;
}

/**
 * The read cache reuses its freshness check until the next process.nextTick callback runs, and a
 * chain of awaits on settled promises never lets one run. A real request arrives through I/O,
 * after it: so does the next step of a test that waits here.
 */
const nextRequest = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Every page of a paged list, as arrays of `pick(item)`. */
async function allPages<T, R>(
  list: (after: string | undefined) => Promise<{ items: T[]; nextAfter?: string }>,
  pick: (item: T) => R,
): Promise<R[][]> {
  const pages: R[][] = [];
  let after: string | undefined;
  do {
    const page = await list(after);
    pages.push(page.items.map(pick));
    after = page.nextAfter;
  } while (after !== undefined);
  return pages;
}

forEachBackend('MetadataStore: access keys, principals, identity policies and grants', (backend) => {
  let db: TestDatabase;
  let store: MetadataStore;

  beforeEach(async () => {
    db = await backend.create();
    store = await db.openMetadataStore();
  });

  afterEach(async () => {
    await store.close().catch(() => {});
    await db.drop();
  });

  describe('access keys', () => {
    const user = `arn:aws:iam::${ACCOUNT}:user/alice`;

    test('long-term and temporary keys round-trip, optional fields as undefined', async () => {
      const longTerm = accessKeyRecord(user);
      const temporary = { ...sessionKey('ops', 'deploy', at(HOUR_MS)), lastUsedAt: at(1000) };
      await store.putAccessKey(longTerm);
      await store.putAccessKey(temporary);
      assert.deepEqual(await store.getAccessKey(longTerm.accessKeyId), longTerm);
      assert.deepEqual(await store.getAccessKey(temporary.accessKeyId), temporary);
    });

    test('listAccessKeys lists every key oldest first, or those of exactly one principal', async () => {
      const other = `${user}2`;
      const second = accessKeyRecord(user, { createdAt: at(2000) });
      const first = accessKeyRecord(other, { createdAt: at(1000) });
      const third = accessKeyRecord(user, { createdAt: at(3000) });
      for (const key of [second, first, third]) await store.putAccessKey(key);
      const ids = (keys: AccessKeyRecord[]) => keys.map((key) => key.accessKeyId);
      assert.deepEqual(ids(await store.listAccessKeys()), ids([first, second, third]));
      assert.deepEqual(ids(await store.listAccessKeys(user)), ids([second, third]));
      assert.deepEqual(ids(await store.listAccessKeys(other)), ids([first]));
      assert.deepEqual(await store.listAccessKeys(`arn:aws:iam::${ACCOUNT}:user/nobody`), []);
    });

    test('updateAccessKeyStatus changes the status a cached read sees; false for an unknown key', async () => {
      const key = accessKeyRecord(user);
      await store.putAccessKey(key);
      assert.equal((await store.getAccessKey(key.accessKeyId))?.status, 'Active');
      assert.equal(await store.updateAccessKeyStatus(key.accessKeyId, 'Inactive'), true);
      assert.equal((await store.getAccessKey(key.accessKeyId))?.status, 'Inactive');
      assert.equal(await store.updateAccessKeyStatus('AKIANOSUCHKEY0000000', 'Inactive'), false);
    });

    test('deleteAccessKey removes the key once', async () => {
      const key = accessKeyRecord(user);
      const kept = accessKeyRecord(user);
      await store.putAccessKey(key);
      await store.putAccessKey(kept);
      assert.ok(await store.getAccessKey(key.accessKeyId));
      assert.equal(await store.deleteAccessKey(key.accessKeyId), true);
      assert.equal(await store.getAccessKey(key.accessKeyId), undefined);
      assert.equal(await store.deleteAccessKey(key.accessKeyId), false);
      assert.ok(await store.getAccessKey(kept.accessKeyId));
    });

    test('touchAccessKey writes lastUsedAt only when it is unset or older than staleBefore', async () => {
      const key = accessKeyRecord(user);
      await store.putAccessKey(key);
      const lastUsed = async () => (await store.getAccessKey(key.accessKeyId))?.lastUsedAt;
      assert.equal(await lastUsed(), undefined);

      await store.touchAccessKey(key.accessKeyId, at(0), at(-HOUR_MS));
      assert.deepEqual(await lastUsed(), at(0), 'unset: written');
      await store.touchAccessKey(key.accessKeyId, at(10 * 60_000), at(10 * 60_000 - HOUR_MS));
      assert.deepEqual(await lastUsed(), at(0), 'recent: kept');
      await store.touchAccessKey(key.accessKeyId, at(HOUR_MS), at(0));
      assert.deepEqual(await lastUsed(), at(0), 'exactly at staleBefore: not stale yet');
      await store.touchAccessKey(key.accessKeyId, at(HOUR_MS + 1), at(1));
      assert.deepEqual(await lastUsed(), at(HOUR_MS + 1), 'older than staleBefore: written');

      await store.touchAccessKey('AKIANOSUCHKEY0000000', at(0), at(0)); // no error, no row
      assert.equal(await store.getAccessKey('AKIANOSUCHKEY0000000'), undefined);
    });

    test('deleteExpiredSessions deletes temporary credentials expired at or before now, only', async () => {
      const now = at(HOUR_MS);
      const expired = sessionKey('ops', 'a', at(HOUR_MS - 1));
      const expiringNow = sessionKey('ops', 'b', now);
      const live = sessionKey('ops', 'c', at(HOUR_MS + 1));
      const longTerm = accessKeyRecord(user);
      for (const key of [expired, expiringNow, live, longTerm]) await store.putAccessKey(key);
      assert.ok(await store.getAccessKey(expired.accessKeyId));

      assert.equal(await store.deleteExpiredSessions(now), 2);
      assert.equal(await store.getAccessKey(expired.accessKeyId), undefined);
      assert.equal(await store.getAccessKey(expiringNow.accessKeyId), undefined);
      assert.ok(await store.getAccessKey(live.accessKeyId));
      assert.ok(await store.getAccessKey(longTerm.accessKeyId));
      assert.equal(await store.deleteExpiredSessions(now), 0);
    });
  });

  describe('principals', () => {
    test('users and roles round-trip; optional fields as undefined; tags in key order', async () => {
      const user = userRecord('alice');
      const role = roleRecord('ops', {
        tags: [
          { tagKey: 'team', tagValue: 'payments' },
          { tagKey: 'env', tagValue: 'prod' },
        ],
      });
      await store.createPrincipal(user);
      await store.createPrincipal(role);
      assert.deepEqual(await store.getPrincipal(user.arn), user);
      assert.deepEqual(await store.getPrincipal(role.arn), {
        ...role,
        tags: [
          { tagKey: 'env', tagValue: 'prod' },
          { tagKey: 'team', tagValue: 'payments' },
        ],
      });
      assert.equal(await store.getPrincipal(`arn:aws:iam::${ACCOUNT}:user/nobody`), undefined);
    });

    test('a taken ARN is a StoreConflictError and leaves the first principal as it was', async () => {
      const first = userRecord('alice');
      await store.createPrincipal(first);
      await assert.rejects(
        store.createPrincipal(userRecord('alice', { createdAt: at(1000), tags: [{ tagKey: 'a', tagValue: '1' }] })),
        StoreConflictError,
      );
      assert.deepEqual(await store.getPrincipal(first.arn), first);
    });

    test('a taken principal id is a StoreConflictError', async () => {
      const first = userRecord('alice');
      await store.createPrincipal(first);
      await assert.rejects(store.createPrincipal(userRecord('bob', { principalId: first.principalId })), StoreConflictError);
      assert.equal(await store.getPrincipal(userRecord('bob').arn), undefined);
    });

    test('listPrincipals pages one kind in name order', async () => {
      for (const name of ['erin', 'alice', 'dave', 'bob', 'carol']) await store.createPrincipal(userRecord(name));
      for (const name of ['ops', 'app']) await store.createPrincipal(roleRecord(name));

      const users = await allPages(
        (after) => store.listPrincipals('user', 2, after),
        (principal) => principal.name,
      );
      assert.deepEqual(users, [['alice', 'bob'], ['carol', 'dave'], ['erin']]);
      const roles = await store.listPrincipals('role', 2);
      assert.deepEqual(
        roles.items.map((principal) => principal.name),
        ['app', 'ops'],
      );
      assert.equal(roles.nextAfter, undefined, 'no marker when the last page is exactly full');
      assert.equal(roles.items[1].kind, 'role');
      assert.deepEqual(await store.listPrincipals('user', 5, 'erin'), { items: [], nextAfter: undefined });
    });

    test('updatePrincipal replaces only the fields given; false for an unknown principal', async () => {
      const role = roleRecord('ops', { tags: [{ tagKey: 'a', tagValue: '1' }] });
      await store.createPrincipal(role);
      assert.ok(await store.getPrincipal(role.arn)); // cached: the update must be seen

      assert.equal(await store.updatePrincipal(role.arn, { trustPolicy: '{"new":true}' }), true);
      assert.deepEqual(await store.getPrincipal(role.arn), { ...role, trustPolicy: '{"new":true}' });

      const tags = [
        { tagKey: 'z', tagValue: '26' },
        { tagKey: 'b', tagValue: '2' },
      ];
      assert.equal(await store.updatePrincipal(role.arn, { tags, maxSessionDurationSeconds: 7200 }), true);
      assert.deepEqual(await store.getPrincipal(role.arn), {
        ...role,
        trustPolicy: '{"new":true}',
        maxSessionDurationSeconds: 7200,
        tags: [tags[1], tags[0]],
      });

      assert.equal(await store.updatePrincipal(role.arn, {}), true, 'an empty patch still answers existence');
      const missing = `arn:aws:iam::${ACCOUNT}:role/nobody`;
      assert.equal(await store.updatePrincipal(missing, { tags: [] }), false);
      assert.equal(await store.updatePrincipal(missing, {}), false);
    });

    test('deletePrincipal removes a user with its identity policies, and nothing of others', async () => {
      const alice = userRecord('alice');
      const bob = userRecord('bob');
      await store.createPrincipal(alice);
      await store.createPrincipal(bob);
      for (const principal of [alice, bob]) {
        await store.putIdentityPolicy({ principalArn: principal.arn, policyName: 'p1', document: '{}' });
        await store.putIdentityPolicy({ principalArn: principal.arn, policyName: 'p2', document: '{}' });
      }
      const bobsKey = accessKeyRecord(bob.arn);
      await store.putAccessKey(bobsKey);
      assert.equal((await store.listIdentityPolicies(alice.arn)).length, 2);

      assert.equal(await store.deletePrincipal(alice.arn), true);
      assert.equal(await store.getPrincipal(alice.arn), undefined);
      assert.deepEqual(await store.listIdentityPolicies(alice.arn), []);
      assert.equal(await db.countRows('identity_policies', 'principal_arn = ?', alice.arn), 0);
      assert.equal(await store.deletePrincipal(alice.arn), false);

      assert.deepEqual(await store.getPrincipal(bob.arn), bob);
      assert.equal((await store.listIdentityPolicies(bob.arn)).length, 2);
      assert.ok(await store.getAccessKey(bobsKey.accessKeyId));
    });

    test("deletePrincipal removes a role's sessions and no one else's credentials", async () => {
      const ops = roleRecord('ops');
      await store.createPrincipal(ops);
      await store.createPrincipal(roleRecord('ops-admin'));
      const sessions = [sessionKey('ops', 'deploy', at(HOUR_MS)), sessionKey('ops', 'ci-job', at(HOUR_MS))];
      // Names that share or sort next to the prefix, another account's role of the same name,
      // and a user: none of them is a session of this role.
      const others = [
        sessionKey('ops-admin', 'deploy', at(HOUR_MS)),
        sessionKey('ops.x', 'deploy', at(HOUR_MS)),
        sessionKey('ops0', 'deploy', at(HOUR_MS)),
        sessionKey('opsz', 'deploy', at(HOUR_MS)),
        sessionKey('ops', 'deploy', at(HOUR_MS), '444455556666'),
        accessKeyRecord(`arn:aws:iam::${ACCOUNT}:user/ops`),
      ];
      for (const key of [...sessions, ...others]) await store.putAccessKey(key);
      for (const key of sessions) assert.ok(await store.getAccessKey(key.accessKeyId)); // cached

      assert.equal(await store.deletePrincipal(ops.arn), true);
      assert.equal(await store.getPrincipal(ops.arn), undefined);
      for (const key of sessions) assert.equal(await store.getAccessKey(key.accessKeyId), undefined);
      for (const key of others) assert.ok(await store.getAccessKey(key.accessKeyId), key.principalArn);
    });

    test("deletePrincipal of a role with a path removes the sessions of the role's name", async () => {
      const role = roleRecord('ops', { arn: `arn:aws:iam::${ACCOUNT}:role/team/ops` });
      await store.createPrincipal(role);
      const session = sessionKey('ops', 'deploy', at(HOUR_MS));
      const other = sessionKey('team', 'deploy', at(HOUR_MS));
      await store.putAccessKey(session);
      await store.putAccessKey(other);
      assert.equal(await store.deletePrincipal(role.arn), true);
      assert.equal(await store.getAccessKey(session.accessKeyId), undefined);
      assert.ok(await store.getAccessKey(other.accessKeyId));
    });
  });

  describe('identity policies', () => {
    const alice = userRecord('alice');

    beforeEach(async () => {
      await store.createPrincipal(alice);
    });

    test('put, get and list in policy-name order; a put with a taken name replaces', async () => {
      await store.putIdentityPolicy({ principalArn: alice.arn, policyName: 'write', document: '{"v":1}' });
      await store.putIdentityPolicy({ principalArn: alice.arn, policyName: 'read', document: '{"v":2}' });
      assert.deepEqual(await store.getIdentityPolicy(alice.arn, 'write'), {
        principalArn: alice.arn,
        policyName: 'write',
        document: '{"v":1}',
      });
      assert.equal(await store.getIdentityPolicy(alice.arn, 'nothing'), undefined);
      assert.deepEqual(
        (await store.listIdentityPolicies(alice.arn)).map((policy) => policy.policyName),
        ['read', 'write'],
      );

      await store.putIdentityPolicy({ principalArn: alice.arn, policyName: 'write', document: '{"v":3}' });
      assert.equal((await store.getIdentityPolicy(alice.arn, 'write'))?.document, '{"v":3}');
      assert.deepEqual(
        (await store.listIdentityPolicies(alice.arn)).map((policy) => [policy.policyName, policy.document]),
        [
          ['read', '{"v":2}'],
          ['write', '{"v":3}'],
        ],
      );
    });

    test('a new policy beyond maxPerPrincipal is a StoreLimitError and is not written', async () => {
      await store.putIdentityPolicy({ principalArn: alice.arn, policyName: 'a', document: '{}' }, 2);
      await store.putIdentityPolicy({ principalArn: alice.arn, policyName: 'b', document: '{}' }, 2);
      await assert.rejects(
        store.putIdentityPolicy({ principalArn: alice.arn, policyName: 'c', document: '{}' }, 2),
        StoreLimitError,
      );
      assert.equal(await store.getIdentityPolicy(alice.arn, 'c'), undefined);
      assert.equal(await db.countRows('identity_policies', 'principal_arn = ?', alice.arn), 2);
      // Replacing one at the limit adds nothing, so it is allowed.
      await store.putIdentityPolicy({ principalArn: alice.arn, policyName: 'b', document: '{"v":2}' }, 2);
      assert.equal((await store.getIdentityPolicy(alice.arn, 'b'))?.document, '{"v":2}');
    });

    test('a policy for a principal that does not exist is refused', async () => {
      const missing = `arn:aws:iam::${ACCOUNT}:user/nobody`;
      await assert.rejects(store.putIdentityPolicy({ principalArn: missing, policyName: 'a', document: '{}' }));
      assert.equal(await db.countRows('identity_policies', 'principal_arn = ?', missing), 0);
    });

    test('deleteIdentityPolicy removes one policy once', async () => {
      await store.putIdentityPolicy({ principalArn: alice.arn, policyName: 'a', document: '{}' });
      await store.putIdentityPolicy({ principalArn: alice.arn, policyName: 'b', document: '{}' });
      assert.equal((await store.listIdentityPolicies(alice.arn)).length, 2);
      assert.equal(await store.deleteIdentityPolicy(alice.arn, 'a'), true);
      assert.equal(await store.deleteIdentityPolicy(alice.arn, 'a'), false);
      assert.deepEqual(
        (await store.listIdentityPolicies(alice.arn)).map((policy) => policy.policyName),
        ['b'],
      );
    });
  });

  describe('grants', () => {
    test('round-trip with every field, and with optional fields as undefined', async () => {
      const keyId = await createKey(store);
      const full = grantRecord(keyId, {
        name: 'app-decrypt',
        retiringPrincipal: `arn:aws:iam::${ACCOUNT}:role/admin`,
        operations: ['Decrypt', 'GenerateDataKey', 'RetireGrant'],
        constraints: { encryptionContextSubset: { tenant: 'a', stage: 'prod' } },
        createdAt: at(5000),
      });
      const minimal = grantRecord(keyId);
      const equals = grantRecord(keyId, { constraints: { encryptionContextEquals: { tenant: 'b' } } });
      for (const grant of [full, minimal, equals]) await store.createGrant(grant);
      assert.deepEqual(await store.getGrant(full.grantId), full);
      assert.deepEqual(await store.getGrant(minimal.grantId), minimal);
      assert.deepEqual(await store.getGrant(equals.grantId), equals);
      assert.equal(await store.getGrant('0'.repeat(64)), undefined);
    });

    test('a taken grant id is a StoreConflictError', async () => {
      const keyId = await createKey(store);
      const grant = grantRecord(keyId);
      await store.createGrant(grant);
      await assert.rejects(store.createGrant({ ...grant, name: 'again' }), StoreConflictError);
      assert.deepEqual(await store.getGrant(grant.grantId), grant);
    });

    test('a grant for a key that does not exist is a StoreKeyNotFoundError', async () => {
      const grant = grantRecord(randomUUID());
      await assert.rejects(store.createGrant(grant, 10), StoreKeyNotFoundError);
      assert.equal(await store.getGrant(grant.grantId), undefined);
      assert.equal(await db.countRows('grants', 'grant_id = ?', grant.grantId), 0);
    });

    test('a grant beyond maxPerKey is a StoreLimitError and is not written', async () => {
      const full = await createKey(store);
      const other = await createKey(store);
      await store.createGrant(grantRecord(full), 2);
      await store.createGrant(grantRecord(full), 2);
      const third = grantRecord(full);
      await assert.rejects(store.createGrant(third, 2), StoreLimitError);
      assert.equal(await store.getGrant(third.grantId), undefined);
      assert.equal(await db.countRows('grants', 'key_id = ?', full), 2);
      await store.createGrant(grantRecord(other), 2); // the limit is per key
      assert.equal((await store.grantsForKey(other)).length, 1);
    });

    test("grantsForKey answers one key's grants, oldest first", async () => {
      const keyId = await createKey(store);
      const otherKey = await createKey(store);
      const grants = [grantRecord(keyId), grantRecord(keyId), grantRecord(keyId)];
      await store.createGrant(grants[0]);
      await store.createGrant(grantRecord(otherKey));
      await store.createGrant(grants[1]);
      await store.createGrant(grants[2]);
      assert.deepEqual(await store.grantsForKey(keyId), grants);
      assert.deepEqual(await store.grantsForKey(randomUUID()), []);
    });

    test("listGrants pages a key's grants oldest first, optionally filtered", async () => {
      const keyId = await createKey(store);
      const otherKey = await createKey(store);
      const alice = `arn:aws:iam::${ACCOUNT}:user/alice`;
      const bob = `arn:aws:iam::${ACCOUNT}:user/bob`;
      const grants: GrantRecord[] = [];
      for (let index = 0; index < 7; index++) {
        const grant = grantRecord(keyId, { granteePrincipal: index % 2 === 0 ? alice : bob });
        grants.push(grant);
        await store.createGrant(grant);
        await store.createGrant(grantRecord(otherKey, { granteePrincipal: alice }));
      }
      const id = (grant: GrantRecord) => grant.grantId;

      const all = await allPages((after) => store.listGrants(keyId, 3, after), id);
      assert.deepEqual(all, [grants.slice(0, 3).map(id), grants.slice(3, 6).map(id), [grants[6].grantId]]);

      const alices = await allPages((after) => store.listGrants(keyId, 2, after, { granteePrincipal: alice }), id);
      assert.deepEqual(alices, [
        [grants[0], grants[2]].map(id),
        [grants[4], grants[6]].map(id),
      ]);

      const one = await store.listGrants(keyId, 10, undefined, { grantId: grants[3].grantId });
      assert.deepEqual(one, { items: [grants[3]], nextAfter: undefined });
      const mismatch = await store.listGrants(keyId, 10, undefined, { grantId: grants[3].grantId, granteePrincipal: alice });
      assert.deepEqual(mismatch.items, []);
      const otherKeysGrant = (await store.grantsForKey(otherKey))[0].grantId;
      assert.deepEqual((await store.listGrants(keyId, 10, undefined, { grantId: otherKeysGrant })).items, []);
    });

    test('listGrants does not skip a grant created after a marker was issued', async () => {
      const keyId = await createKey(store);
      const [a, b, c] = [grantRecord(keyId), grantRecord(keyId), grantRecord(keyId)];
      for (const grant of [a, b, c]) await store.createGrant(grant);
      const first = await store.listGrants(keyId, 2);
      assert.deepEqual(first.items, [a, b]);
      await store.deleteGrant(b.grantId);
      await store.deleteGrant(c.grantId);
      const late = grantRecord(keyId);
      await store.createGrant(late);
      assert.deepEqual((await store.listGrants(keyId, 2, first.nextAfter)).items, [late]);
    });

    test('listRetirableGrants pages the grants naming a retiring principal across keys', async () => {
      const first = await createKey(store);
      const second = await createKey(store);
      const admin = `arn:aws:iam::${ACCOUNT}:role/admin`;
      const retirable: string[] = [];
      for (let index = 0; index < 5; index++) {
        const grant = grantRecord(index % 2 === 0 ? first : second, { retiringPrincipal: admin });
        retirable.push(grant.grantId);
        await store.createGrant(grant);
        await store.createGrant(grantRecord(first, { retiringPrincipal: `arn:aws:iam::${ACCOUNT}:role/other` }));
        await store.createGrant(grantRecord(second));
      }
      const pages = await allPages(
        (after) => store.listRetirableGrants(admin, 2, after),
        (grant) => grant.grantId,
      );
      assert.deepEqual(pages, [retirable.slice(0, 2), retirable.slice(2, 4), retirable.slice(4)]);
      assert.deepEqual(await store.listRetirableGrants(`arn:aws:iam::${ACCOUNT}:role/nobody`, 10), {
        items: [],
        nextAfter: undefined,
      });
    });

    test('deleteGrant removes one grant once', async () => {
      const keyId = await createKey(store);
      const [gone, kept] = [grantRecord(keyId), grantRecord(keyId)];
      await store.createGrant(gone);
      await store.createGrant(kept);
      assert.equal((await store.grantsForKey(keyId)).length, 2);
      assert.equal(await store.deleteGrant(gone.grantId), true);
      assert.equal(await store.deleteGrant(gone.grantId), false);
      assert.equal(await store.getGrant(gone.grantId), undefined);
      assert.deepEqual(await store.grantsForKey(keyId), [kept]);
    });

    test("destroyKey and destroyKeyIfDue take the key's grants with it, and no other key's", async () => {
      const destroyed = await createKey(store);
      const due = await createKey(store, { state: 'PendingDeletion', deletionDate: at(0), pendingWindowInDays: 7 });
      const kept = await createKey(store);
      for (const keyId of [destroyed, due, kept]) {
        await store.createGrant(grantRecord(keyId, { retiringPrincipal: `arn:aws:iam::${ACCOUNT}:role/admin` }));
      }
      assert.equal((await store.grantsForKey(destroyed)).length, 1);
      assert.equal((await store.grantsForKey(due)).length, 1);

      await store.destroyKey(destroyed);
      assert.equal(await store.destroyKeyIfDue(due, at(0)), true);

      for (const keyId of [destroyed, due]) {
        assert.deepEqual(await store.grantsForKey(keyId), []);
        assert.equal(await db.countRows('grants', 'key_id = ?', keyId), 0);
      }
      assert.equal((await store.grantsForKey(kept)).length, 1);
      assert.deepEqual(
        (await store.listRetirableGrants(`arn:aws:iam::${ACCOUNT}:role/admin`, 10)).items.map((grant) => grant.keyId),
        [kept],
      );
    });
  });

  describe('several connections', () => {
    test("another connection's (another node's) writes are seen by this one's next read", async () => {
      const role = roleRecord('ops');
      await store.createPrincipal(role);
      const keyId = await createKey(store);
      const other = await db.openMetadataStore();
      try {
        // Read once first: a store with a cache (SQLite's) now holds these answers.
        assert.deepEqual((await store.getPrincipal(role.arn))?.tags, []);
        assert.deepEqual(await store.listIdentityPolicies(role.arn), []);
        assert.deepEqual(await store.grantsForKey(keyId), []);

        await nextRequest();
        await other.updatePrincipal(role.arn, { tags: [{ tagKey: 'team', tagValue: 'ops' }] });
        await other.putIdentityPolicy({ principalArn: role.arn, policyName: 'p', document: '{}' });
        const grant = grantRecord(keyId);
        await other.createGrant(grant);
        await nextRequest();

        assert.deepEqual((await store.getPrincipal(role.arn))?.tags, [{ tagKey: 'team', tagValue: 'ops' }]);
        assert.deepEqual(
          (await store.listIdentityPolicies(role.arn)).map((policy) => policy.policyName),
          ['p'],
        );
        assert.deepEqual(await store.grantsForKey(keyId), [grant]);

        await nextRequest();
        await other.deleteGrant(grant.grantId);
        await other.deleteIdentityPolicy(role.arn, 'p');
        await other.deletePrincipal(role.arn);
        await nextRequest();

        assert.deepEqual(await store.grantsForKey(keyId), []);
        assert.deepEqual(await store.listIdentityPolicies(role.arn), []);
        assert.equal(await store.getPrincipal(role.arn), undefined);
      } finally {
        await other.close();
      }
    });

    test("a use recorded by another connection (another node) is seen by this one's next read", async () => {
      const key = accessKeyRecord(`arn:aws:iam::${ACCOUNT}:user/alice`);
      await store.putAccessKey(key);
      const other = await db.openMetadataStore();
      try {
        assert.equal((await store.getAccessKey(key.accessKeyId))?.lastUsedAt, undefined);
        await nextRequest();
        await other.touchAccessKey(key.accessKeyId, at(HOUR_MS), at(0));
        await nextRequest();
        assert.deepEqual((await store.getAccessKey(key.accessKeyId))?.lastUsedAt, at(HOUR_MS));
        // Not stale: nothing is written.
        await other.touchAccessKey(key.accessKeyId, at(HOUR_MS + 1), at(0));
        await nextRequest();
        assert.deepEqual((await store.getAccessKey(key.accessKeyId))?.lastUsedAt, at(HOUR_MS));
      } finally {
        await other.close();
      }
    });
  });
});

describe('SqliteMetadataStore only: the read cache and migration 2', () => {
  let dir: string;
  let path: string;
  let store: SqliteMetadataStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strongroom-sqlite-'));
    path = join(dir, 'strongroom.db');
    store = new SqliteMetadataStore(path);
  });

  afterEach(async () => {
    await store.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  describe('read cache', () => {
    test('cached principals, policy lists and grant lists are shared and frozen throughout', async () => {
      const role = roleRecord('ops', { tags: [{ tagKey: 'a', tagValue: '1' }] });
      await store.createPrincipal(role);
      await store.putIdentityPolicy({ principalArn: role.arn, policyName: 'p', document: '{}' });
      const keyId = await createKey(store);
      await store.createGrant(grantRecord(keyId, { constraints: { encryptionContextEquals: { a: '1' } } }));

      const principal = await store.getPrincipal(role.arn);
      assert.equal(await store.getPrincipal(role.arn), principal);
      assert.throws(() => principal!.tags.push({ tagKey: 'b', tagValue: '2' }), TypeError);
      assert.throws(() => Object.assign(principal!.tags[0], { tagValue: 'x' }), TypeError);

      const policies = await store.listIdentityPolicies(role.arn);
      assert.equal(await store.listIdentityPolicies(role.arn), policies);
      assert.throws(() => policies.pop(), TypeError);
      assert.throws(() => Object.assign(policies[0], { document: 'x' }), TypeError);

      const grants = await store.grantsForKey(keyId);
      assert.equal(await store.grantsForKey(keyId), grants);
      assert.throws(() => grants[0].operations.push('Encrypt'), TypeError);
      assert.throws(() => Object.assign(grants[0].constraints!.encryptionContextEquals!, { a: '2' }), TypeError);
    });

    test("a use recorded by another connection is seen, and an unrecorded one costs no one's cache", async () => {
      const key = accessKeyRecord(`arn:aws:iam::${ACCOUNT}:user/alice`);
      await store.putAccessKey(key);
      const other = new SqliteMetadataStore(path);
      try {
        const cached = await store.getAccessKey(key.accessKeyId);
        await nextRequest();
        await other.touchAccessKey(key.accessKeyId, at(HOUR_MS), at(0));
        await nextRequest();
        const touched = await store.getAccessKey(key.accessKeyId);
        assert.deepEqual(touched?.lastUsedAt, at(HOUR_MS));
        assert.notEqual(touched, cached);

        // Not stale: nothing is written, so nothing is invalidated anywhere.
        await other.touchAccessKey(key.accessKeyId, at(HOUR_MS + 1), at(0));
        await store.touchAccessKey(key.accessKeyId, at(HOUR_MS + 1), at(0));
        await nextRequest();
        assert.equal(await store.getAccessKey(key.accessKeyId), touched);
      } finally {
        await other.close();
      }
    });
  });

  describe('migration 2', () => {
    test('a version-1 database keeps its IAM users working: each becomes a principal with AdministratorAccess', async () => {
      await store.close();
      const oldPath = join(dir, 'version-1.db');
      const db = new Database(oldPath);
      db.exec(SQLITE_MIGRATIONS[0]);
      db.pragma('user_version = 1');
      const insert = db.prepare(
        'INSERT INTO access_keys (access_key_id, principal_arn, sealed_secret, status, created_at) VALUES (?, ?, ?, ?, ?)',
      );
      const admin = `arn:aws:iam::${ACCOUNT}:user/admin`;
      const alice = `arn:aws:iam::${ACCOUNT}:user/alice`;
      const notUsers = [
        `arn:aws:iam::${ACCOUNT}:role/ops`,
        `arn:aws:sts::${ACCOUNT}:assumed-role/ops/session`,
        `arn:aws:iam::${ACCOUNT}:root`,
        'arn:aws:iam::1234:user/short-account',
        `arn:aws:iam::${ACCOUNT}:user/`,
      ];
      insert.run('AKIAADMIN00000000002', admin, randomBytes(60), 'Active', at(2000).getTime());
      insert.run('AKIAADMIN00000000001', admin, randomBytes(60), 'Inactive', at(1000).getTime());
      insert.run('AKIAALICE00000000001', alice, randomBytes(60), 'Active', at(3000).getTime());
      for (const [index, arn] of notUsers.entries()) {
        insert.run(`AKIAOTHER0000000000${index}`, arn, randomBytes(60), 'Active', T0.getTime());
      }
      db.close();

      store = new SqliteMetadataStore(oldPath);
      const upgraded = new Database(oldPath, { readonly: true });
      try {
        assert.equal(upgraded.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
      } finally {
        upgraded.close();
      }

      const adminPrincipal = await store.getPrincipal(admin);
      const alicePrincipal = await store.getPrincipal(alice);
      assert.deepEqual(adminPrincipal, {
        arn: admin,
        kind: 'user',
        name: 'admin',
        principalId: adminPrincipal?.principalId,
        createdAt: at(1000), // its oldest access key's
        trustPolicy: undefined,
        maxSessionDurationSeconds: undefined,
        tags: [],
      });
      assert.equal(alicePrincipal?.name, 'alice');
      assert.deepEqual(alicePrincipal?.createdAt, at(3000));
      for (const principal of [adminPrincipal, alicePrincipal]) {
        assert.match(principal!.principalId, /^AIDA[A-Z2-7]{17}$/);
      }
      assert.notEqual(adminPrincipal?.principalId, alicePrincipal?.principalId);
      for (const arn of notUsers) assert.equal(await store.getPrincipal(arn), undefined, arn);
      assert.deepEqual(
        (await store.listPrincipals('user', 10)).items.map((principal) => principal.arn),
        [admin, alice],
      );

      for (const arn of [admin, alice]) {
        assert.deepEqual(await store.listIdentityPolicies(arn), [
          { principalArn: arn, policyName: ADMINISTRATOR_ACCESS_POLICY_NAME, document: ADMINISTRATOR_ACCESS_POLICY },
        ]);
      }
      assert.equal(ADMINISTRATOR_ACCESS_POLICY_NAME, 'AdministratorAccess');
      assert.deepEqual(JSON.parse(ADMINISTRATOR_ACCESS_POLICY), {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
      });

      // The access keys are untouched, with the new columns unset.
      const keys = await store.listAccessKeys(admin);
      assert.deepEqual(
        keys.map((key) => [key.accessKeyId, key.status, key.lastUsedAt, key.sessionTokenHash, key.expiresAt]),
        [
          ['AKIAADMIN00000000001', 'Inactive', undefined, undefined, undefined],
          ['AKIAADMIN00000000002', 'Active', undefined, undefined, undefined],
        ],
      );
      assert.equal((await store.listAccessKeys()).length, 3 + notUsers.length);
    });
  });
});
