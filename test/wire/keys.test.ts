import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  type CreateKeyCommandInput,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  type KeyMetadata,
  KMSClient,
  ListKeyPoliciesCommand,
  ListKeyRotationsCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UpdateKeyDescriptionCommand,
} from '@aws-sdk/client-kms';
import {
  assertKmsError,
  createKey as createKeyWith,
  type ExpectedError,
  recordedError,
} from '../support/kms-assertions.ts';
import { type RunningServer, removeDataDir, startServer } from '../support/server.ts';
import { assertEnumViolation } from '../support/wire-errors.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UNKNOWN_KEY_ID = '00000000-0000-4000-8000-000000000000';
const plaintext = new TextEncoder().encode('wire test plaintext');

function assertNear(actual: Date | undefined, expectedMs: number, toleranceMs: number, what: string): void {
  assert.ok(actual instanceof Date, `${what} is a Date`);
  const difference = Math.abs(actual.getTime() - expectedMs);
  assert.ok(difference <= toleranceMs, `${what} ${actual.toISOString()} is within ${toleranceMs} ms of ${new Date(expectedMs).toISOString()}`);
}

let server: RunningServer;
let kms: KMSClient;
let region: string;
let accountId: string;

const keyArnOf = (keyId: string) => `arn:aws:kms:${region}:${accountId}:key/${keyId}`;
const aliasArnOf = (aliasName: string) => `arn:aws:kms:${region}:${accountId}:${aliasName}`;

const createKey = (input?: CreateKeyCommandInput): Promise<KeyMetadata> => createKeyWith(kms, input);

async function describeKey(keyId: string): Promise<KeyMetadata> {
  const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
  assert.ok(KeyMetadata);
  return KeyMetadata;
}

let aliasCounter = 0;
const uniqueAlias = (stem: string) => `alias/keys-test-${stem}-${process.pid}-${++aliasCounter}`;

before(async () => {
  server = await startServer();
  kms = server.kms();
  region = server.region;
  const first = await createKey({ Description: 'finds the account id' });
  accountId = first.AWSAccountId as string;
});

after(async () => {
  await server?.stop();
  if (server) await removeDataDir(server.dataDir);
});

describe('CreateKey', () => {
  it('gives a key created with no parameters AWS defaults', async () => {
    const startedAt = Date.now();
    const metadata = await createKey();
    assert.match(metadata.KeyId as string, UUID);
    assert.match(metadata.AWSAccountId as string, /^\d{12}$/);
    assert.equal(metadata.Arn, `arn:aws:kms:${region}:${metadata.AWSAccountId}:key/${metadata.KeyId}`);
    assert.equal(metadata.KeySpec, 'SYMMETRIC_DEFAULT');
    assert.equal(metadata.CustomerMasterKeySpec, 'SYMMETRIC_DEFAULT');
    assert.equal(metadata.KeyUsage, 'ENCRYPT_DECRYPT');
    assert.equal(metadata.Origin, 'AWS_KMS');
    assert.equal(metadata.KeyManager, 'CUSTOMER');
    assert.equal(metadata.KeyState, 'Enabled');
    assert.equal(metadata.Enabled, true);
    assert.equal(metadata.MultiRegion, false);
    assert.deepEqual(metadata.EncryptionAlgorithms, ['SYMMETRIC_DEFAULT']);
    assert.match(metadata.CurrentKeyMaterialId as string, /^[0-9a-f]{64}$/);
    assert.equal(metadata.DeletionDate, undefined);
    assertNear(metadata.CreationDate, startedAt, 60_000, 'CreationDate');
  });

  it('answers with the same metadata DescribeKey then returns', async () => {
    const created = await createKey({ Description: 'same both ways' });
    assert.deepEqual(await describeKey(created.KeyId as string), created);
  });

  it('gives every key its own id and key material id', async () => {
    const [first, second] = await Promise.all([createKey(), createKey()]);
    assert.notEqual(first.KeyId, second.KeyId);
    assert.notEqual(first.CurrentKeyMaterialId, second.CurrentKeyMaterialId);
  });

  it('keeps the Description given', async () => {
    const metadata = await createKey({ Description: 'payments ledger key' });
    assert.equal(metadata.Description, 'payments ledger key');
    assert.equal((await describeKey(metadata.KeyId as string)).Description, 'payments ledger key');
  });

  it('accepts a Description of exactly 8192 characters', async () => {
    const description = 'd'.repeat(8192);
    const metadata = await createKey({ Description: description });
    assert.equal((await describeKey(metadata.KeyId as string)).Description, description);
  });

  it('rejects a Description of 8193 characters with the validation form', async () => {
    const description = 'd'.repeat(8193);
    await assertKmsError(kms.send(new CreateKeyCommand({ Description: description })), {
      name: 'ValidationException',
      message: `1 validation error detected: Value '${description}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192`,
    });
  });

  it('puts the Tags given on the key', async () => {
    const metadata = await createKey({
      Tags: [
        { TagKey: 'team', TagValue: 'payments' },
        { TagKey: 'env', TagValue: 'prod' },
      ],
    });
    const { Tags } = await kms.send(new ListResourceTagsCommand({ KeyId: metadata.KeyId }));
    assert.deepEqual(
      [...(Tags ?? [])].sort((a, b) => (a.TagKey as string).localeCompare(b.TagKey as string)),
      [
        { TagKey: 'env', TagValue: 'prod' },
        { TagKey: 'team', TagValue: 'payments' },
      ],
    );
  });

  it('stores the Policy given and GetKeyPolicy returns it verbatim', async () => {
    const policy = `{\n  "Version": "2012-10-17",\n  "Statement": [{"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::${accountId}:root"}, "Action": "kms:*", "Resource": "*"}]\n}`;
    const metadata = await createKey({ Policy: policy });
    const { Policy } = await kms.send(new GetKeyPolicyCommand({ KeyId: metadata.KeyId, PolicyName: 'default' }));
    assert.equal(Policy, policy);
  });

  it('accepts BypassPolicyLockoutSafetyCheck', async () => {
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:Encrypt', Resource: '*' }],
    });
    const metadata = await createKey({ Policy: policy, BypassPolicyLockoutSafetyCheck: true });
    assert.equal(metadata.KeyState, 'Enabled');
  });

  it('rejects KeyUsage SIGN_VERIFY for a SYMMETRIC_DEFAULT key', async () => {
    await assertKmsError(kms.send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'SIGN_VERIFY' })), {
      name: 'ValidationException',
    });
  });

  it('rejects KeyUsage SIGN_VERIFY when KeySpec defaults to SYMMETRIC_DEFAULT', async () => {
    await assertKmsError(kms.send(new CreateKeyCommand({ KeyUsage: 'SIGN_VERIFY' })), { name: 'ValidationException' });
  });

  describe('rejects an enum value outside the model with the "1 validation error detected" form', () => {
    const cases: { title: string; input: Record<string, string>; message: string }[] = [
      {
        title: "KeyUsage 'RANDOM' (recorded against AWS)",
        input: { KeySpec: 'HMAC_256', KeyUsage: 'RANDOM' },
        message: recordedError('test_hmac_create_key_invalid_operations', 'create-hmac-key-invalid-key-usage').message,
      },
      {
        title: "KeySpec 'HMAC_random' (recorded against AWS)",
        input: { KeySpec: 'HMAC_random', KeyUsage: 'GENERATE_VERIFY_MAC' },
        message: recordedError('test_hmac_create_key_invalid_operations', 'create-hmac-key-invalid-spec').message,
      },
      {
        title: "Origin 'NOWHERE'",
        input: { Origin: 'NOWHERE' },
        message:
          "1 validation error detected: Value 'NOWHERE' at 'origin' failed to satisfy constraint: Member must satisfy enum value set: [AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE]",
      },
    ];
    for (const { title, input, message } of cases) {
      it(title, async () => {
        await assert.rejects(kms.send(new CreateKeyCommand(input as CreateKeyCommandInput)), (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(error.name, 'ValidationException');
          assert.equal(error.$metadata?.httpStatusCode, 400);
          assertEnumViolation(error.message, message);
          return true;
        });
      });
    }
  });

  describe('rejects a malformed key policy with MalformedPolicyDocumentException', () => {
    const cases: { title: string; policy: string }[] = [
      { title: 'text that is not JSON', policy: '{"Version": "2012-10-17", "Statement": [' },
      { title: 'a JSON array', policy: '[]' },
      { title: 'a policy without a Statement', policy: '{"Version": "2012-10-17"}' },
      {
        title: 'a statement without an Effect',
        policy: '{"Version": "2012-10-17", "Statement": [{"Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}',
      },
      {
        title: 'a statement whose Effect is neither Allow nor Deny',
        policy: '{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}',
      },
    ];
    for (const { title, policy } of cases) {
      it(title, async () => {
        await assertKmsError(kms.send(new CreateKeyCommand({ Policy: policy })), { name: 'MalformedPolicyDocumentException' });
      });
    }
  });
});

describe('DescribeKey', () => {
  let key: KeyMetadata;
  let aliasName: string;

  before(async () => {
    key = await createKey({ Description: 'described four ways' });
    aliasName = uniqueAlias('describe');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
  });

  const forms: { title: string; keyIdParameter: () => string }[] = [
    { title: 'its key id', keyIdParameter: () => key.KeyId as string },
    { title: 'its key ARN', keyIdParameter: () => key.Arn as string },
    { title: 'an alias name', keyIdParameter: () => aliasName },
    { title: 'an alias ARN', keyIdParameter: () => aliasArnOf(aliasName) },
  ];
  for (const { title, keyIdParameter } of forms) {
    it(`finds a key by ${title}`, async () => {
      const metadata = await describeKey(keyIdParameter());
      assert.equal(metadata.KeyId, key.KeyId);
      assert.equal(metadata.Arn, key.Arn);
      assert.equal(metadata.Description, 'described four ways');
    });
  }

  const failures: { title: string; keyIdParameter: () => string; expected: () => ExpectedError }[] = [
    {
      title: 'an unknown key id',
      keyIdParameter: () => UNKNOWN_KEY_ID,
      expected: () => ({ name: 'NotFoundException', message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist` }),
    },
    {
      title: 'an unknown key ARN',
      keyIdParameter: () => keyArnOf(UNKNOWN_KEY_ID),
      expected: () => ({ name: 'NotFoundException', message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist` }),
    },
    {
      title: "a key id that is not a UUID ('fake-key-id', recorded against AWS)",
      keyIdParameter: () => 'fake-key-id',
      expected: () => recordedError('test_get_key_invalid_uuid', 'describe-key-with-invalid-uuid'),
    },
    {
      title: 'a UUID without its dashes (recorded against AWS)',
      keyIdParameter: () => '134f2428cec14b25a1ae9048164dba47',
      expected: () => recordedError('test_get_key_invalid_uuid', 'describe-key-with-invalid-uuid-2'),
    },
    {
      title: 'the ARN of an existing key in another Region (recorded against AWS)',
      keyIdParameter: () => (key.Arn as string).replace(`:kms:${region}:`, ':kms:eu-west-3:'),
      expected: () => ({ name: 'NotFoundException', message: 'Invalid arn eu-west-3' }),
    },
    {
      title: 'an unknown alias name',
      keyIdParameter: () => 'alias/keys-test-never-created',
      expected: () => ({
        name: 'NotFoundException',
        message: `Alias ${aliasArnOf('alias/keys-test-never-created')} is not found.`,
      }),
    },
    {
      title: 'an unknown alias ARN',
      keyIdParameter: () => aliasArnOf('alias/keys-test-never-created'),
      expected: () => ({
        name: 'NotFoundException',
        message: `Alias ${aliasArnOf('alias/keys-test-never-created')} is not found.`,
      }),
    },
  ];
  for (const { title, keyIdParameter, expected } of failures) {
    it(`answers NotFoundException for ${title}`, async () => {
      await assertKmsError(kms.send(new DescribeKeyCommand({ KeyId: keyIdParameter() })), expected());
    });
  }
});

describe('ListKeys', () => {
  const created: string[] = [];
  const PAGE = 3;

  before(async () => {
    // At least 4 full pages of our own keys, whatever the other tests created.
    for (let index = 0; index < PAGE * 4 + 1; index++) created.push((await createKey()).KeyId as string);
  });

  it('pages through every key exactly once with Limit and Marker', async () => {
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await kms.send(new ListKeysCommand({ Limit: PAGE, Marker: marker }));
      pages++;
      const keys = page.Keys ?? [];
      assert.ok(keys.length <= PAGE, `a page holds at most ${PAGE} keys`);
      for (const entry of keys) {
        assert.equal(entry.KeyArn, keyArnOf(entry.KeyId as string));
        seen.push(entry.KeyId as string);
      }
      if (!page.Truncated) {
        assert.equal(page.NextMarker, undefined, 'the last page has no NextMarker');
        break;
      }
      assert.equal(keys.length, PAGE, 'a truncated page is full');
      assert.ok(page.NextMarker, 'a truncated page has a NextMarker');
      marker = page.NextMarker;
      assert.ok(pages < 1000, 'pagination ends');
    }
    assert.ok(pages > 4, `more than 4 pages (${pages})`);
    assert.equal(new Set(seen).size, seen.length, 'no key is listed twice');
    for (const keyId of created) assert.ok(seen.includes(keyId), `${keyId} is listed`);
    const everything = await kms.send(new ListKeysCommand({ Limit: 1000 }));
    assert.equal(everything.Truncated, false);
    assert.deepEqual(new Set(seen), new Set(everything.Keys?.map((entry) => entry.KeyId)));
  });

  it('lists a key created after a page was read on a later page', async () => {
    const first = await kms.send(new ListKeysCommand({ Limit: 1 }));
    assert.equal(first.Truncated, true);
    const late = (await createKey()).KeyId as string;
    const seen: string[] = (first.Keys ?? []).map((entry) => entry.KeyId as string);
    let marker = first.NextMarker;
    while (marker) {
      const page = await kms.send(new ListKeysCommand({ Limit: 100, Marker: marker }));
      seen.push(...(page.Keys ?? []).map((entry) => entry.KeyId as string));
      marker = page.Truncated ? page.NextMarker : undefined;
    }
    assert.ok(seen.includes(late));
  });

  it('answers InvalidMarkerException for a Marker it did not issue', async () => {
    await assertKmsError(kms.send(new ListKeysCommand({ Marker: 'garbage' })), { name: 'InvalidMarkerException' });
  });

  const limits: { limit: number; message: string }[] = [
    {
      limit: 0,
      message: "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    },
    {
      limit: 1001,
      message: "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000",
    },
  ];
  for (const { limit, message } of limits) {
    it(`rejects Limit ${limit} with the validation form`, async () => {
      await assertKmsError(kms.send(new ListKeysCommand({ Limit: limit })), { name: 'ValidationException', message });
    });
  }
});

describe('EnableKey and DisableKey', () => {
  it('disabling a key shows Disabled in DescribeKey, and enabling shows Enabled again', async () => {
    const key = await createKey();
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    const disabled = await describeKey(key.KeyId as string);
    assert.equal(disabled.KeyState, 'Disabled');
    assert.equal(disabled.Enabled, false);
    await kms.send(new EnableKeyCommand({ KeyId: key.Arn }));
    const enabled = await describeKey(key.KeyId as string);
    assert.equal(enabled.KeyState, 'Enabled');
    assert.equal(enabled.Enabled, true);
  });

  it('disabling a disabled key succeeds and leaves it Disabled', async () => {
    const key = await createKey();
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    assert.equal((await describeKey(key.KeyId as string)).KeyState, 'Disabled');
  });

  it('enabling an enabled key succeeds and leaves it Enabled', async () => {
    const key = await createKey();
    await kms.send(new EnableKeyCommand({ KeyId: key.KeyId }));
    assert.equal((await describeKey(key.KeyId as string)).KeyState, 'Enabled');
  });

  it('Encrypt with a disabled key answers DisabledException "<arn> is disabled."', async () => {
    const key = await createKey();
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    await assertKmsError(kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext })), {
      name: 'DisabledException',
      message: `${key.Arn} is disabled.`,
    });
  });

  it('Encrypt works again once the key is re-enabled', async () => {
    const key = await createKey();
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    await kms.send(new EnableKeyCommand({ KeyId: key.KeyId }));
    const { KeyId } = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext }));
    assert.equal(KeyId, key.Arn);
  });

  for (const Command of [EnableKeyCommand, DisableKeyCommand]) {
    it(`${Command.name.replace('Command', '')} of an unknown key answers NotFoundException`, async () => {
      await assertKmsError(kms.send(new Command({ KeyId: UNKNOWN_KEY_ID })), {
        name: 'NotFoundException',
        message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist`,
      });
    });
  }
});

describe('UpdateKeyDescription', () => {
  it('replaces the description DescribeKey shows', async () => {
    const key = await createKey({ Description: 'before' });
    await kms.send(new UpdateKeyDescriptionCommand({ KeyId: key.KeyId, Description: 'after' }));
    assert.equal((await describeKey(key.KeyId as string)).Description, 'after');
  });

  it('accepts a key ARN and an empty description', async () => {
    const key = await createKey({ Description: 'to be cleared' });
    await kms.send(new UpdateKeyDescriptionCommand({ KeyId: key.Arn, Description: '' }));
    assert.equal((await describeKey(key.KeyId as string)).Description, '');
  });

  it('updates a disabled key', async () => {
    const key = await createKey();
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    await kms.send(new UpdateKeyDescriptionCommand({ KeyId: key.KeyId, Description: 'still manageable' }));
    assert.equal((await describeKey(key.KeyId as string)).Description, 'still manageable');
  });

  it('rejects a description of 8193 characters with the validation form', async () => {
    const key = await createKey();
    const description = 'u'.repeat(8193);
    await assertKmsError(kms.send(new UpdateKeyDescriptionCommand({ KeyId: key.KeyId, Description: description })), {
      name: 'ValidationException',
      message: `1 validation error detected: Value '${description}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192`,
    });
  });

  it('answers NotFoundException for an unknown key', async () => {
    await assertKmsError(kms.send(new UpdateKeyDescriptionCommand({ KeyId: UNKNOWN_KEY_ID, Description: 'x' })), {
      name: 'NotFoundException',
      message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist`,
    });
  });
});

describe('ScheduleKeyDeletion', () => {
  it('schedules deletion in 30 days by default', async () => {
    const key = await createKey();
    const startedAt = Date.now();
    const scheduled = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId }));
    assert.equal(scheduled.KeyId, key.Arn);
    assert.equal(scheduled.KeyState, 'PendingDeletion');
    assert.equal(scheduled.PendingWindowInDays, 30);
    assertNear(scheduled.DeletionDate, startedAt + 30 * DAY_MS, 60 * 60 * 1000, 'DeletionDate');
  });

  for (const days of [7, 30]) {
    it(`accepts PendingWindowInDays ${days} and sets DeletionDate about ${days} days ahead`, async () => {
      const key = await createKey();
      const startedAt = Date.now();
      const scheduled = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.Arn, PendingWindowInDays: days }));
      assert.equal(scheduled.PendingWindowInDays, days);
      assertNear(scheduled.DeletionDate, startedAt + days * DAY_MS, 60 * 60 * 1000, 'DeletionDate');
    });
  }

  const windows: { days: number; message: string }[] = [
    {
      days: 6,
      message: "1 validation error detected: Value '6' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to 7",
    },
    {
      days: 31,
      message: "1 validation error detected: Value '31' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to 30",
    },
  ];
  for (const { days, message } of windows) {
    it(`rejects PendingWindowInDays ${days} with ValidationException and leaves the key Enabled`, async () => {
      const key = await createKey();
      await assertKmsError(kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: days })), {
        name: 'ValidationException',
        message,
      });
      assert.equal((await describeKey(key.KeyId as string)).KeyState, 'Enabled');
    });
  }

  it('DescribeKey shows PendingDeletion, Enabled false and the DeletionDate', async () => {
    const key = await createKey();
    const scheduled = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    const metadata = await describeKey(key.KeyId as string);
    assert.equal(metadata.KeyState, 'PendingDeletion');
    assert.equal(metadata.Enabled, false);
    assert.deepEqual(metadata.DeletionDate, scheduled.DeletionDate);
  });

  it('schedules a disabled key too', async () => {
    const key = await createKey();
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    const scheduled = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    assert.equal(scheduled.KeyState, 'PendingDeletion');
  });

  describe('a key pending deletion refuses use with KMSInvalidStateException "<arn> is pending deletion."', () => {
    let key: KeyMetadata;
    before(async () => {
      key = await createKey();
      await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    });

    const calls: { title: string; call: () => Promise<unknown> }[] = [
      { title: 'Encrypt', call: () => kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext })) },
      { title: 'EnableKey', call: () => kms.send(new EnableKeyCommand({ KeyId: key.KeyId })) },
      { title: 'DisableKey', call: () => kms.send(new DisableKeyCommand({ KeyId: key.KeyId })) },
      {
        title: 'UpdateKeyDescription',
        call: () => kms.send(new UpdateKeyDescriptionCommand({ KeyId: key.KeyId, Description: 'x' })),
      },
      {
        title: 'ScheduleKeyDeletion a second time',
        call: () => kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 })),
      },
    ];
    for (const { title, call } of calls) {
      it(title, async () => {
        await assertKmsError(call(), { name: 'KMSInvalidStateException', message: `${key.Arn} is pending deletion.` });
      });
    }

    it('and stays PendingDeletion after all of them', async () => {
      assert.equal((await describeKey(key.KeyId as string)).KeyState, 'PendingDeletion');
    });
  });

  it('answers NotFoundException for an unknown key', async () => {
    await assertKmsError(kms.send(new ScheduleKeyDeletionCommand({ KeyId: UNKNOWN_KEY_ID })), {
      name: 'NotFoundException',
      message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist`,
    });
  });
});

describe('CancelKeyDeletion', () => {
  it('cancelling deletion leaves the key Disabled without a DeletionDate', async () => {
    const key = await createKey();
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    const cancelled = await kms.send(new CancelKeyDeletionCommand({ KeyId: key.KeyId }));
    assert.equal(cancelled.KeyId, key.Arn);
    const metadata = await describeKey(key.KeyId as string);
    assert.equal(metadata.KeyState, 'Disabled');
    assert.equal(metadata.Enabled, false);
    assert.equal(metadata.DeletionDate, undefined);
  });

  it('a cancelled key encrypts again once enabled', async () => {
    const key = await createKey();
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    await kms.send(new CancelKeyDeletionCommand({ KeyId: key.Arn }));
    await assertKmsError(kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext })), {
      name: 'DisabledException',
      message: `${key.Arn} is disabled.`,
    });
    await kms.send(new EnableKeyCommand({ KeyId: key.KeyId }));
    const { KeyId } = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext }));
    assert.equal(KeyId, key.Arn);
  });

  it('a cancelled key can be scheduled for deletion again', async () => {
    const key = await createKey();
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    await kms.send(new CancelKeyDeletionCommand({ KeyId: key.KeyId }));
    const again = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 8 }));
    assert.equal(again.PendingWindowInDays, 8);
  });

  const notPending: { title: string; prepare: (keyId: string) => Promise<unknown> }[] = [
    { title: 'an Enabled key', prepare: async () => undefined },
    { title: 'a Disabled key', prepare: (keyId) => kms.send(new DisableKeyCommand({ KeyId: keyId })) },
  ];
  for (const { title, prepare } of notPending) {
    it(`cancelling deletion of ${title} answers KMSInvalidStateException`, async () => {
      const key = await createKey();
      await prepare(key.KeyId as string);
      const stateBefore = (await describeKey(key.KeyId as string)).KeyState;
      await assertKmsError(kms.send(new CancelKeyDeletionCommand({ KeyId: key.KeyId })), {
        name: 'KMSInvalidStateException',
      });
      assert.equal((await describeKey(key.KeyId as string)).KeyState, stateBefore);
    });
  }

  it('answers NotFoundException for an unknown key', async () => {
    await assertKmsError(kms.send(new CancelKeyDeletionCommand({ KeyId: UNKNOWN_KEY_ID })), {
      name: 'NotFoundException',
      message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist`,
    });
  });
});

describe('operations that take only a key id or key ARN reject an alias with NotFoundException', () => {
  let key: KeyMetadata;
  let aliasName: string;

  before(async () => {
    key = await createKey({ Description: 'behind an alias' });
    aliasName = uniqueAlias('key-only');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
  });

  const operations: { title: string; call: (keyId: string) => Promise<unknown> }[] = [
    { title: 'EnableKey', call: (keyId) => kms.send(new EnableKeyCommand({ KeyId: keyId })) },
    { title: 'DisableKey', call: (keyId) => kms.send(new DisableKeyCommand({ KeyId: keyId })) },
    {
      title: 'UpdateKeyDescription',
      call: (keyId) => kms.send(new UpdateKeyDescriptionCommand({ KeyId: keyId, Description: 'changed' })),
    },
    {
      title: 'ScheduleKeyDeletion',
      call: (keyId) => kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })),
    },
    { title: 'CancelKeyDeletion', call: (keyId) => kms.send(new CancelKeyDeletionCommand({ KeyId: keyId })) },
    { title: 'GetKeyPolicy', call: (keyId) => kms.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' })) },
    {
      title: 'PutKeyPolicy',
      call: (keyId) =>
        kms.send(
          new PutKeyPolicyCommand({
            KeyId: keyId,
            PolicyName: 'default',
            Policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}',
          }),
        ),
    },
    { title: 'ListKeyPolicies', call: (keyId) => kms.send(new ListKeyPoliciesCommand({ KeyId: keyId })) },
    {
      title: 'TagResource',
      call: (keyId) => kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'k', TagValue: 'v' }] })),
    },
    { title: 'ListResourceTags', call: (keyId) => kms.send(new ListResourceTagsCommand({ KeyId: keyId })) },
    { title: 'EnableKeyRotation', call: (keyId) => kms.send(new EnableKeyRotationCommand({ KeyId: keyId })) },
    { title: 'GetKeyRotationStatus', call: (keyId) => kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId })) },
    { title: 'RotateKeyOnDemand', call: (keyId) => kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId })) },
    { title: 'ListKeyRotations', call: (keyId) => kms.send(new ListKeyRotationsCommand({ KeyId: keyId })) },
  ];
  for (const { title, call } of operations) {
    it(`${title} given an alias name`, async () => {
      await assertKmsError(call(aliasName), { name: 'NotFoundException' });
    });
    it(`${title} given an alias ARN`, async () => {
      await assertKmsError(call(aliasArnOf(aliasName)), { name: 'NotFoundException' });
    });
  }

  it('and none of them changed the key behind the alias', async () => {
    const metadata = await describeKey(key.KeyId as string);
    assert.equal(metadata.KeyState, 'Enabled');
    assert.equal(metadata.Description, 'behind an alias');
    assert.deepEqual((await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags, []);
    assert.equal((await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }))).KeyRotationEnabled, false);
    assert.equal((await describeKey(key.KeyId as string)).CurrentKeyMaterialId, key.CurrentKeyMaterialId);
  });
});
