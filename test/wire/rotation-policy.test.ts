import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  type CreateKeyCommandInput,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  type KeyMetadata,
  KMSClient,
  ListKeyPoliciesCommand,
  ListKeyRotationsCommand,
  PutKeyPolicyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import {
  assertKmsError,
  assertNear,
  createKey as createKeyWith,
  listAllPages,
  recordedError,
} from '../support/kms-assertions.ts';
import { type RunningServer, removeDataDir, startServer } from '../support/server.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
const UNKNOWN_KEY_ID = '00000000-0000-4000-8000-000000000000';
const plaintext = new TextEncoder().encode('rotation keeps old ciphertext readable');

let server: RunningServer;
let kms: KMSClient;
let region: string;
let accountId: string;

const keyArnOf = (keyId: string) => `arn:aws:kms:${region}:${accountId}:key/${keyId}`;

const createKey = (input?: CreateKeyCommandInput): Promise<KeyMetadata> => createKeyWith(kms, input);

async function currentMaterialId(keyId: string): Promise<string> {
  const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
  assert.match(KeyMetadata?.CurrentKeyMaterialId as string, /^[0-9a-f]{64}$/);
  return KeyMetadata?.CurrentKeyMaterialId as string;
}

before(async () => {
  server = await startServer();
  kms = server.kms();
  region = server.region;
  accountId = (await createKey()).AWSAccountId as string;
});

after(async () => {
  await server?.stop();
  if (server) await removeDataDir(server.dataDir);
});

describe('EnableKeyRotation and GetKeyRotationStatus', () => {
  it('a new key has rotation off and reports only KeyRotationEnabled false', async () => {
    const key = await createKey();
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    assert.equal(status.KeyRotationEnabled, false);
    assert.equal(status.KeyId, key.Arn);
    assert.equal(status.RotationPeriodInDays, undefined);
    assert.equal(status.NextRotationDate, undefined);
  });

  it('enables rotation with a 365-day period by default', async () => {
    const key = await createKey();
    const startedAt = Date.now();
    await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId }));
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.Arn }));
    assert.equal(status.KeyRotationEnabled, true);
    assert.equal(status.KeyId, key.Arn);
    assert.equal(status.RotationPeriodInDays, 365);
    assertNear(status.NextRotationDate, startedAt + 365 * DAY_MS, HOUR_MS, 'NextRotationDate');
  });

  for (const days of [90, 180, 2560]) {
    it(`accepts RotationPeriodInDays ${days} and schedules the next rotation ${days} days ahead`, async () => {
      const key = await createKey();
      const startedAt = Date.now();
      await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId, RotationPeriodInDays: days }));
      const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
      assert.equal(status.KeyRotationEnabled, true);
      assert.equal(status.RotationPeriodInDays, days);
      assertNear(status.NextRotationDate, startedAt + days * DAY_MS, HOUR_MS, 'NextRotationDate');
    });
  }

  it('enabling again with another period replaces the period', async () => {
    const key = await createKey();
    await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId, RotationPeriodInDays: 90 }));
    await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId, RotationPeriodInDays: 400 }));
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    assert.equal(status.RotationPeriodInDays, 400);
  });

  const periods: { days: number; message: string }[] = [
    {
      days: 89,
      message: "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90",
    },
    {
      days: 2561,
      message: "1 validation error detected: Value '2561' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to 2560",
    },
  ];
  for (const { days, message } of periods) {
    it(`rejects RotationPeriodInDays ${days} with the validation form and leaves rotation off`, async () => {
      const key = await createKey();
      await assertKmsError(kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId, RotationPeriodInDays: days })), {
        name: 'ValidationException',
        message,
      });
      assert.equal((await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }))).KeyRotationEnabled, false);
    });
  }

  it('after DisableKeyRotation only KeyRotationEnabled false is reported', async () => {
    const key = await createKey();
    await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId, RotationPeriodInDays: 120 }));
    await kms.send(new DisableKeyRotationCommand({ KeyId: key.KeyId }));
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    assert.equal(status.KeyRotationEnabled, false);
    assert.equal(status.KeyId, key.Arn);
    assert.equal(status.RotationPeriodInDays, undefined);
    assert.equal(status.NextRotationDate, undefined);
  });

  // KMS API reference, GetKeyRotationStatus: "Disabled: The key rotation status does not change
  // when you disable a KMS key."
  it('disabling a key leaves its rotation status as it was', async () => {
    const key = await createKey();
    await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId, RotationPeriodInDays: 200 }));
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    assert.equal(status.KeyId, key.Arn);
    assert.equal(status.KeyRotationEnabled, true);
    assert.equal(status.RotationPeriodInDays, 200);
  });

  // KMS API reference, GetKeyRotationStatus: "Pending deletion: While a KMS key is pending
  // deletion, its key rotation status is false [...]. If you cancel the deletion, the original key
  // rotation status returns to true."
  it('a key pending deletion reports rotation off', async () => {
    const key = await createKey();
    await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    assert.equal(status.KeyId, key.Arn);
    assert.equal(status.KeyRotationEnabled, false);
  });

  it('cancelling deletion restores the rotation status the key had', async () => {
    const key = await createKey();
    await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId, RotationPeriodInDays: 100 }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    await kms.send(new CancelKeyDeletionCommand({ KeyId: key.KeyId }));
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    assert.equal(status.KeyRotationEnabled, true);
    assert.equal(status.RotationPeriodInDays, 100);
  });

  for (const Command of [EnableKeyRotationCommand, DisableKeyRotationCommand]) {
    const operation = Command.name.replace('Command', '');
    it(`${operation} on a disabled key answers DisabledException "<arn> is disabled."`, async () => {
      const key = await createKey();
      await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
      await assertKmsError(kms.send(new Command({ KeyId: key.KeyId })), {
        name: 'DisabledException',
        message: `${key.Arn} is disabled.`,
      });
    });

    it(`${operation} on a key pending deletion answers KMSInvalidStateException`, async () => {
      const key = await createKey();
      await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
      await assertKmsError(kms.send(new Command({ KeyId: key.KeyId })), {
        name: 'KMSInvalidStateException',
        message: `${key.Arn} is pending deletion.`,
      });
    });
  }

  for (const Command of [EnableKeyRotationCommand, DisableKeyRotationCommand, GetKeyRotationStatusCommand]) {
    it(`${Command.name.replace('Command', '')} on an unknown key answers NotFoundException`, async () => {
      await assertKmsError(kms.send(new Command({ KeyId: UNKNOWN_KEY_ID })), {
        name: 'NotFoundException',
        message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist`,
      });
    });
  }
});

describe('RotateKeyOnDemand', () => {
  it('gives the key new current key material and answers with its ARN', async () => {
    const key = await createKey();
    const rotated = await kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
    assert.equal(rotated.KeyId, key.Arn);
    const after = await currentMaterialId(key.KeyId as string);
    assert.notEqual(after, key.CurrentKeyMaterialId);
  });

  it('old ciphertext still decrypts, and Decrypt tells which key material each used', async () => {
    const key = await createKey();
    const before = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext }));
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: key.Arn }));
    const newMaterialId = await currentMaterialId(key.KeyId as string);
    const after = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext }));
    assert.notDeepEqual(after.CiphertextBlob, before.CiphertextBlob);

    const oldDecrypted = await kms.send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob }));
    assert.deepEqual(oldDecrypted.Plaintext, plaintext);
    assert.equal(oldDecrypted.KeyId, key.Arn);
    assert.equal(oldDecrypted.KeyMaterialId, key.CurrentKeyMaterialId);

    const newDecrypted = await kms.send(new DecryptCommand({ CiphertextBlob: after.CiphertextBlob, KeyId: key.KeyId }));
    assert.deepEqual(newDecrypted.Plaintext, plaintext);
    assert.equal(newDecrypted.KeyMaterialId, newMaterialId);
  });

  it('leaves the automatic rotation schedule as it was', async () => {
    const key = await createKey();
    await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId }));
    const before = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
    const after = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    assert.equal(after.KeyRotationEnabled, true);
    assert.equal(after.RotationPeriodInDays, 365);
    assert.deepEqual(after.NextRotationDate, before.NextRotationDate);
  });

  it('leaves automatic rotation off when it was off', async () => {
    const key = await createKey();
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    assert.equal(status.KeyRotationEnabled, false);
    assert.equal(status.NextRotationDate, undefined);
  });

  it('a disabled key answers DisabledException (recorded against AWS)', async () => {
    const key = await createKey();
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    await assertKmsError(
      kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId })),
      recordedError('test_rotate_key_on_demand_raises_error_given_key_is_disabled', 'error-response', key.Arn as string),
    );
  });

  it('a key pending deletion answers KMSInvalidStateException', async () => {
    const key = await createKey();
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    await assertKmsError(kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId })), {
      name: 'KMSInvalidStateException',
      message: `${key.Arn} is pending deletion.`,
    });
  });

  it('an unknown key answers NotFoundException (recorded against AWS)', async () => {
    await assertKmsError(
      kms.send(new RotateKeyOnDemandCommand({ KeyId: UNKNOWN_KEY_ID })),
      recordedError('test_rotate_key_on_demand_raises_error_given_key_that_does_not_exist', 'error-response', keyArnOf(UNKNOWN_KEY_ID)),
    );
  });

  it('the 26th on-demand rotation answers LimitExceededException (recorded against AWS)', async () => {
    const key = await createKey();
    for (let rotation = 1; rotation <= 25; rotation++) {
      await kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
    }
    const materialAfter25 = await currentMaterialId(key.KeyId as string);
    await assertKmsError(
      kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId })),
      recordedError('test_key_rotations_limits', 'error-response', key.Arn as string),
    );
    assert.equal(await currentMaterialId(key.KeyId as string), materialAfter25, 'the refused rotation changed nothing');
  });
});

describe('ListKeyRotations', () => {
  let key: KeyMetadata;
  /** Key material ids in the order the rotations made them. */
  const rotatedMaterialIds: string[] = [];
  let rotationsStartedAt: number;

  before(async () => {
    key = await createKey();
    rotationsStartedAt = Date.now();
    for (let rotation = 0; rotation < 3; rotation++) {
      await kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
      rotatedMaterialIds.push(await currentMaterialId(key.KeyId as string));
    }
  });

  it('a key never rotated lists no rotations', async () => {
    const fresh = await createKey();
    const page = await kms.send(new ListKeyRotationsCommand({ KeyId: fresh.KeyId }));
    assert.deepEqual(page.Rotations, []);
    assert.equal(page.Truncated, false);
  });

  it('lists each on-demand rotation with its type, date and key material id', async () => {
    const page = await kms.send(new ListKeyRotationsCommand({ KeyId: key.Arn }));
    assert.equal(page.Truncated, false);
    const rotations = page.Rotations ?? [];
    assert.equal(rotations.length, 3);
    assert.deepEqual(new Set(rotations.map((rotation) => rotation.KeyMaterialId)), new Set(rotatedMaterialIds));
    for (const rotation of rotations) {
      assert.equal(rotation.KeyId, key.Arn);
      assert.equal(rotation.RotationType, 'ON_DEMAND');
      assertNear(rotation.RotationDate, rotationsStartedAt, 5 * 60_000, 'RotationDate');
    }
    const current = rotations.find((rotation) => rotation.KeyMaterialId === rotatedMaterialIds[2]);
    assert.equal(current?.KeyMaterialState, 'CURRENT');
  });

  it('pages through the rotations one at a time with Limit 1', async () => {
    const { items: seen, pages } = await listAllPages(
      (marker) => kms.send(new ListKeyRotationsCommand({ KeyId: key.KeyId, Limit: 1, Marker: marker })),
      (page) => page.Rotations,
      { limit: 1, maxPages: 100 },
    );
    assert.equal(pages, 3);
    assert.deepEqual(
      seen.map((rotation) => rotation.KeyMaterialId).sort(),
      [...rotatedMaterialIds].sort(),
    );
  });

  it('IncludeKeyMaterial ALL_KEY_MATERIAL adds the key material the key was created with', async () => {
    const page = await kms.send(new ListKeyRotationsCommand({ KeyId: key.KeyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }));
    const materialIds = (page.Rotations ?? []).map((rotation) => rotation.KeyMaterialId);
    assert.deepEqual(new Set(materialIds), new Set([key.CurrentKeyMaterialId, ...rotatedMaterialIds]));
  });

  it('answers InvalidMarkerException for a Marker it did not issue', async () => {
    await assertKmsError(kms.send(new ListKeyRotationsCommand({ KeyId: key.KeyId, Marker: 'garbage' })), {
      name: 'InvalidMarkerException',
    });
  });

  it('answers NotFoundException for an unknown key', async () => {
    await assertKmsError(kms.send(new ListKeyRotationsCommand({ KeyId: UNKNOWN_KEY_ID })), {
      name: 'NotFoundException',
      message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist`,
    });
  });
});

describe('GetKeyPolicy, PutKeyPolicy and ListKeyPolicies', () => {
  const policyFor = (sid: string) =>
    `{\n  "Version" : "2012-10-17",\n  "Id" : "${sid}",\n  "Statement" : [ {\n    "Sid" : "${sid}",\n    "Effect" : "Allow",\n    "Principal" : { "AWS" : "arn:aws:iam::${accountId}:root" },\n    "Action" : "kms:*",\n    "Resource" : "*"\n  } ]\n}`;

  it("a key created without a policy gets AWS's default key policy", async () => {
    const key = await createKey();
    const { Policy, PolicyName } = await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: 'default' }));
    assert.equal(PolicyName, 'default');
    assert.deepEqual(JSON.parse(Policy as string), {
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [
        {
          Sid: 'Enable IAM User Permissions',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${accountId}:root` },
          Action: 'kms:*',
          Resource: '*',
        },
      ],
    });
  });

  it('GetKeyPolicy without a PolicyName returns the default policy', async () => {
    const key = await createKey();
    const named = await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: 'default' }));
    const unnamed = await kms.send(new GetKeyPolicyCommand({ KeyId: key.Arn }));
    assert.equal(unnamed.Policy, named.Policy);
    assert.equal(unnamed.PolicyName, 'default');
  });

  it('PutKeyPolicy stores a policy that GetKeyPolicy returns verbatim', async () => {
    const key = await createKey();
    const policy = policyFor('replaced');
    await kms.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: 'default', Policy: policy }));
    const { Policy } = await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: 'default' }));
    assert.equal(Policy, policy);
  });

  it('PutKeyPolicy without a PolicyName replaces the default policy', async () => {
    const key = await createKey();
    const policy = policyFor('unnamed-put');
    await kms.send(new PutKeyPolicyCommand({ KeyId: key.Arn, Policy: policy }));
    assert.equal((await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId }))).Policy, policy);
  });

  it('PutKeyPolicy accepts BypassPolicyLockoutSafetyCheck', async () => {
    const key = await createKey();
    const policy = policyFor('bypass');
    await kms.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, Policy: policy, BypassPolicyLockoutSafetyCheck: true }));
    assert.equal((await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId }))).Policy, policy);
  });

  it('PutKeyPolicy works on a disabled key', async () => {
    const key = await createKey();
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    const policy = policyFor('disabled');
    await kms.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, Policy: policy }));
    assert.equal((await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId }))).Policy, policy);
  });

  describe('PutKeyPolicy rejects a malformed policy with MalformedPolicyDocumentException and keeps the old one', () => {
    const cases: { title: string; policy: string }[] = [
      { title: 'text that is not JSON', policy: '{"Version": "2012-10-17", "Statement": [' },
      { title: 'a JSON string', policy: '"kms:*"' },
      { title: 'a policy without a Statement', policy: '{"Version": "2012-10-17"}' },
      { title: 'an empty Statement list', policy: '{"Version": "2012-10-17", "Statement": []}' },
      {
        title: 'a statement without an Action',
        policy: '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Resource": "*"}]}',
      },
      {
        title: 'a statement without a Principal',
        policy: '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}',
      },
    ];
    for (const { title, policy } of cases) {
      it(title, async () => {
        const key = await createKey();
        const before = (await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId }))).Policy;
        await assertKmsError(kms.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: 'default', Policy: policy })), {
          name: 'MalformedPolicyDocumentException',
        });
        assert.equal((await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId }))).Policy, before);
      });
    }
  });

  it('PutKeyPolicy with a PolicyName other than default is refused and the policy is unchanged', async () => {
    const key = await createKey();
    const before = (await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId }))).Policy;
    await assertKmsError(
      kms.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: 'other', Policy: policyFor('other') })),
      { name: ['NotFoundException', 'ValidationException'] },
    );
    assert.equal((await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId }))).Policy, before);
  });

  it('GetKeyPolicy with a PolicyName other than default is refused', async () => {
    const key = await createKey();
    await assertKmsError(kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: 'other' })), {
      name: ['NotFoundException', 'ValidationException'],
    });
  });

  it('PutKeyPolicy on a key pending deletion answers KMSInvalidStateException', async () => {
    const key = await createKey();
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    await assertKmsError(kms.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, Policy: policyFor('late') })), {
      name: 'KMSInvalidStateException',
      message: `${key.Arn} is pending deletion.`,
    });
  });

  it('ListKeyPolicies answers ["default"]', async () => {
    const key = await createKey();
    const listed = await kms.send(new ListKeyPoliciesCommand({ KeyId: key.KeyId }));
    assert.deepEqual(listed.PolicyNames, ['default']);
    assert.equal(listed.Truncated, false);
  });

  it('ListKeyPolicies accepts a key ARN', async () => {
    const key = await createKey();
    assert.deepEqual((await kms.send(new ListKeyPoliciesCommand({ KeyId: key.Arn }))).PolicyNames, ['default']);
  });

  it('GetKeyPolicy and ListKeyPolicies reject an alias with NotFoundException', async () => {
    const key = await createKey();
    const aliasName = `alias/policy-${Date.now()}`;
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
    await assertKmsError(kms.send(new GetKeyPolicyCommand({ KeyId: aliasName })), { name: 'NotFoundException' });
    await assertKmsError(kms.send(new ListKeyPoliciesCommand({ KeyId: aliasName })), { name: 'NotFoundException' });
  });

  const unknownKeyCalls: { title: string; call: () => Promise<unknown> }[] = [
    { title: 'GetKeyPolicy', call: () => kms.send(new GetKeyPolicyCommand({ KeyId: UNKNOWN_KEY_ID })) },
    { title: 'PutKeyPolicy', call: () => kms.send(new PutKeyPolicyCommand({ KeyId: UNKNOWN_KEY_ID, Policy: policyFor('x') })) },
    { title: 'ListKeyPolicies', call: () => kms.send(new ListKeyPoliciesCommand({ KeyId: UNKNOWN_KEY_ID })) },
  ];
  for (const { title, call } of unknownKeyCalls) {
    it(`${title} on an unknown key answers NotFoundException`, async () => {
      await assertKmsError(call(), { name: 'NotFoundException', message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist` });
    });
  }
});
