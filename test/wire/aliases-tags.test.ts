import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type AliasListEntry,
  CreateAliasCommand,
  CreateKeyCommand,
  type CreateKeyCommandInput,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  type KeyMetadata,
  KMSClient,
  ListAliasesCommand,
  type ListAliasesCommandInput,
  ListResourceTagsCommand,
  ScheduleKeyDeletionCommand,
  type Tag,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import {
  assertKmsError,
  assertNear,
  createKey as createKeyWith,
  type ExpectedError,
  listAllPages,
  recorded,
  recordedError,
} from '../support/kms-assertions.ts';
import { type RunningServer, removeDataDir, startServer } from '../support/server.ts';

const UNKNOWN_KEY_ID = '00000000-0000-4000-8000-000000000000';
const plaintext = new TextEncoder().encode('aliases and tags');
const byTagKey = (a: Tag, b: Tag) => ((a.TagKey as string) < (b.TagKey as string) ? -1 : 1);

let server: RunningServer;
let kms: KMSClient;
let region: string;
let accountId: string;

const keyArnOf = (keyId: string) => `arn:aws:kms:${region}:${accountId}:key/${keyId}`;
const aliasArnOf = (aliasName: string) => `arn:aws:kms:${region}:${accountId}:${aliasName}`;

let aliasCounter = 0;
const uniqueAlias = (stem: string) => `alias/wire-${stem}-${++aliasCounter}`;

const createKey = (input?: CreateKeyCommandInput): Promise<KeyMetadata> => createKeyWith(kms, input);

/** Every page of ListAliases for `input`, checking the Truncated/NextMarker contract on the way. */
async function listAllAliases(input: ListAliasesCommandInput): Promise<{ aliases: AliasListEntry[]; pages: number }> {
  const { items, pages } = await listAllPages(
    (marker) => kms.send(new ListAliasesCommand({ ...input, Marker: marker })),
    (page) => page.Aliases,
    { limit: input.Limit, maxPages: 1000 },
  );
  return { aliases: items, pages };
}

async function aliasEntry(aliasName: string): Promise<AliasListEntry | undefined> {
  const { aliases } = await listAllAliases({ Limit: 100 });
  return aliases.find((alias) => alias.AliasName === aliasName);
}

async function tagsOf(keyId: string): Promise<Tag[]> {
  const { Tags, Truncated } = await kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
  assert.equal(Truncated, false);
  return [...(Tags ?? [])].sort(byTagKey);
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

describe('CreateAlias', () => {
  it('an alias is listed with its name, alias ARN, target key id and dates', async () => {
    const key = await createKey();
    const aliasName = uniqueAlias('listed');
    const startedAt = Date.now();
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
    const entry = await aliasEntry(aliasName);
    assert.ok(entry, `${aliasName} is listed`);
    assert.equal(entry.AliasArn, aliasArnOf(aliasName));
    assert.equal(entry.TargetKeyId, key.KeyId, 'TargetKeyId is the key id, not its ARN');
    assertNear(entry.CreationDate, startedAt, 60_000, 'CreationDate');
    assertNear(entry.LastUpdatedDate, startedAt, 60_000, 'LastUpdatedDate');
  });

  it('accepts a key ARN as TargetKeyId', async () => {
    const key = await createKey();
    const aliasName = uniqueAlias('by-arn');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.Arn }));
    assert.equal((await aliasEntry(aliasName))?.TargetKeyId, key.KeyId);
  });

  it('points an alias at a disabled key', async () => {
    const key = await createKey();
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    const aliasName = uniqueAlias('disabled-target');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
    const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: aliasName }));
    assert.equal(KeyMetadata?.KeyId, key.KeyId);
  });

  it('Encrypt through an alias uses the key it names', async () => {
    const key = await createKey();
    const aliasName = uniqueAlias('encrypt');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
    const encrypted = await kms.send(new EncryptCommand({ KeyId: aliasName, Plaintext: plaintext }));
    assert.equal(encrypted.KeyId, key.Arn);
    const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, KeyId: aliasArnOf(aliasName) }));
    assert.deepEqual(decrypted.Plaintext, plaintext);
  });

  it('answers AlreadyExistsException for a name already in use, and the alias keeps its target', async () => {
    const [first, second] = [await createKey(), await createKey()];
    const aliasName = uniqueAlias('duplicate');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: first.KeyId }));
    await assertKmsError(kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: second.KeyId })), {
      name: 'AlreadyExistsException',
      message: `An alias with the name ${aliasArnOf(aliasName)} already exists`,
    });
    assert.equal((await aliasEntry(aliasName))?.TargetKeyId, first.KeyId);
  });

  it('answers NotFoundException for an unknown target key', async () => {
    await assertKmsError(kms.send(new CreateAliasCommand({ AliasName: uniqueAlias('nowhere'), TargetKeyId: UNKNOWN_KEY_ID })), {
      name: 'NotFoundException',
      message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist`,
    });
  });

  it('answers NotFoundException for an alias as TargetKeyId', async () => {
    const key = await createKey();
    const aliasName = uniqueAlias('first-hop');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
    await assertKmsError(kms.send(new CreateAliasCommand({ AliasName: uniqueAlias('second-hop'), TargetKeyId: aliasName })), {
      name: 'NotFoundException',
    });
  });

  it('answers KMSInvalidStateException for a target key pending deletion', async () => {
    const key = await createKey();
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    const aliasName = uniqueAlias('doomed');
    await assertKmsError(kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId })), {
      name: 'KMSInvalidStateException',
      message: `${key.Arn} is pending deletion.`,
    });
    assert.equal(await aliasEntry(aliasName), undefined);
  });

  describe('rejects a bad alias name', () => {
    const prefixMessage = recordedError('test_create_alias', 'create_alias');
    const cases: { title: string; aliasName: string; expected: ExpectedError }[] = [
      {
        title: 'without the alias/ prefix (recorded against AWS)',
        aliasName: 'no-prefix',
        expected: prefixMessage,
      },
      {
        title: 'in the reserved alias/aws/ namespace',
        aliasName: 'alias/aws/s3-lookalike',
        expected: { name: 'InvalidAliasNameException' },
      },
      {
        title: 'with a space, outside the model pattern',
        aliasName: 'alias/has space',
        expected: {
          name: 'ValidationException',
          message:
            "1 validation error detected: Value 'alias/has space' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        },
      },
      {
        title: 'with a dot, outside the model pattern',
        aliasName: 'alias/my.key',
        expected: {
          name: 'ValidationException',
          message:
            "1 validation error detected: Value 'alias/my.key' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        },
      },
      {
        title: 'longer than 256 characters',
        aliasName: `alias/${'n'.repeat(251)}`,
        expected: {
          name: 'ValidationException',
          message: `1 validation error detected: Value 'alias/${'n'.repeat(251)}' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256`,
        },
      },
    ];
    for (const { title, aliasName, expected } of cases) {
      it(title, async () => {
        const key = await createKey();
        await assertKmsError(kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId })), expected);
      });
    }
  });
});

describe('UpdateAlias', () => {
  it('Encrypt through an alias after UpdateAlias uses the new key', async () => {
    const [oldKey, newKey] = [await createKey(), await createKey()];
    const aliasName = uniqueAlias('moved');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: oldKey.KeyId }));
    const before = await kms.send(new EncryptCommand({ KeyId: aliasName, Plaintext: plaintext }));
    assert.equal(before.KeyId, oldKey.Arn);

    await kms.send(new UpdateAliasCommand({ AliasName: aliasName, TargetKeyId: newKey.KeyId }));
    const after = await kms.send(new EncryptCommand({ KeyId: aliasName, Plaintext: plaintext }));
    assert.equal(after.KeyId, newKey.Arn);
    const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: after.CiphertextBlob }));
    assert.equal(decrypted.KeyId, newKey.Arn);
    // Ciphertext made through the alias before the move still names the old key.
    const old = await kms.send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob }));
    assert.equal(old.KeyId, oldKey.Arn);
    assert.deepEqual(old.Plaintext, plaintext);
  });

  it('changes TargetKeyId and LastUpdatedDate but not CreationDate', async () => {
    const [oldKey, newKey] = [await createKey(), await createKey()];
    const aliasName = uniqueAlias('dates');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: oldKey.KeyId }));
    const created = await aliasEntry(aliasName);
    await new Promise((done) => setTimeout(done, 1100));
    await kms.send(new UpdateAliasCommand({ AliasName: aliasName, TargetKeyId: newKey.Arn }));
    const updated = await aliasEntry(aliasName);
    assert.equal(updated?.TargetKeyId, newKey.KeyId);
    assert.deepEqual(updated?.CreationDate, created?.CreationDate);
    assert.ok((updated?.LastUpdatedDate as Date).getTime() > (created?.LastUpdatedDate as Date).getTime());
  });

  it('answers NotFoundException for an unknown alias', async () => {
    const key = await createKey();
    const aliasName = uniqueAlias('never-created');
    await assertKmsError(kms.send(new UpdateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId })), {
      name: 'NotFoundException',
      message: `Alias ${aliasArnOf(aliasName)} is not found.`,
    });
  });

  it('answers NotFoundException for an unknown target key', async () => {
    const key = await createKey();
    const aliasName = uniqueAlias('update-nowhere');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
    await assertKmsError(kms.send(new UpdateAliasCommand({ AliasName: aliasName, TargetKeyId: UNKNOWN_KEY_ID })), {
      name: 'NotFoundException',
      message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist`,
    });
    assert.equal((await aliasEntry(aliasName))?.TargetKeyId, key.KeyId);
  });

  it('answers KMSInvalidStateException for a target key pending deletion, and the alias keeps its target', async () => {
    const [current, doomed] = [await createKey(), await createKey()];
    const aliasName = uniqueAlias('update-doomed');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: current.KeyId }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: doomed.KeyId, PendingWindowInDays: 7 }));
    await assertKmsError(kms.send(new UpdateAliasCommand({ AliasName: aliasName, TargetKeyId: doomed.KeyId })), {
      name: 'KMSInvalidStateException',
      message: `${doomed.Arn} is pending deletion.`,
    });
    assert.equal((await aliasEntry(aliasName))?.TargetKeyId, current.KeyId);
  });

  it('rejects a name without the alias/ prefix (recorded against AWS)', async () => {
    const key = await createKey();
    await assertKmsError(
      kms.send(new UpdateAliasCommand({ AliasName: 'no-prefix', TargetKeyId: key.KeyId })),
      recordedError('test_create_alias', 'create_alias'),
    );
  });
});

describe('DeleteAlias', () => {
  it('a deleted alias is no longer listed nor resolves', async () => {
    const key = await createKey();
    const aliasName = uniqueAlias('deleted');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
    await kms.send(new DeleteAliasCommand({ AliasName: aliasName }));
    assert.equal(await aliasEntry(aliasName), undefined);
    await assertKmsError(kms.send(new DescribeKeyCommand({ KeyId: aliasName })), {
      name: 'NotFoundException',
      message: `Alias ${aliasArnOf(aliasName)} is not found.`,
    });
    const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }));
    assert.equal(KeyMetadata?.KeyState, 'Enabled', 'the key outlives its alias');
  });

  it('a deleted alias name can be used again', async () => {
    const [first, second] = [await createKey(), await createKey()];
    const aliasName = uniqueAlias('reused');
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: first.KeyId }));
    await kms.send(new DeleteAliasCommand({ AliasName: aliasName }));
    await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: second.KeyId }));
    assert.equal((await aliasEntry(aliasName))?.TargetKeyId, second.KeyId);
  });

  it('answers NotFoundException for an unknown alias', async () => {
    const aliasName = uniqueAlias('never-there');
    await assertKmsError(kms.send(new DeleteAliasCommand({ AliasName: aliasName })), {
      name: 'NotFoundException',
      message: `Alias ${aliasArnOf(aliasName)} is not found.`,
    });
  });

  it('rejects a name without the alias/ prefix (recorded against AWS)', async () => {
    await assertKmsError(kms.send(new DeleteAliasCommand({ AliasName: 'no-prefix' })), recordedError('test_create_alias', 'create_alias'));
  });
});

describe('ListAliases', () => {
  let crowded: KeyMetadata;
  let lonely: KeyMetadata;
  const crowdedAliases: string[] = [];
  let lonelyAlias: string;

  before(async () => {
    [crowded, lonely] = [await createKey(), await createKey()];
    for (let index = 0; index < 7; index++) {
      const aliasName = uniqueAlias(`page-${index}`);
      crowdedAliases.push(aliasName);
      await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: crowded.KeyId }));
    }
    lonelyAlias = uniqueAlias('lonely');
    await kms.send(new CreateAliasCommand({ AliasName: lonelyAlias, TargetKeyId: lonely.KeyId }));
  });

  const filters: { title: string; keyIdParameter: () => string }[] = [
    { title: 'key id', keyIdParameter: () => crowded.KeyId as string },
    { title: 'key ARN', keyIdParameter: () => crowded.Arn as string },
  ];
  for (const { title, keyIdParameter } of filters) {
    it(`a KeyId filter by ${title} lists only that key's aliases, over pages of Limit 2`, async () => {
      const { aliases, pages } = await listAllAliases({ KeyId: keyIdParameter(), Limit: 2 });
      assert.equal(pages, 4);
      assert.deepEqual(aliases.map((alias) => alias.AliasName).sort(), [...crowdedAliases].sort());
      for (const alias of aliases) {
        assert.equal(alias.TargetKeyId, crowded.KeyId);
        assert.equal(alias.AliasArn, aliasArnOf(alias.AliasName as string));
      }
    });
  }

  it('without a filter pages through every alias exactly once', async () => {
    const { aliases, pages } = await listAllAliases({ Limit: 3 });
    const names = aliases.map((alias) => alias.AliasName as string);
    assert.ok(pages >= 3, `${pages} pages`);
    assert.equal(new Set(names).size, names.length, 'no alias is listed twice');
    for (const aliasName of [...crowdedAliases, lonelyAlias]) assert.ok(names.includes(aliasName), `${aliasName} listed`);
    const whole = await kms.send(new ListAliasesCommand({ Limit: 100 }));
    assert.equal(whole.Truncated, false);
    assert.deepEqual(new Set(names), new Set(whole.Aliases?.map((alias) => alias.AliasName)));
  });

  it('a key without aliases lists none', async () => {
    const key = await createKey();
    const page = await kms.send(new ListAliasesCommand({ KeyId: key.KeyId }));
    assert.deepEqual(page.Aliases, []);
    assert.equal(page.Truncated, false);
  });

  it('answers NotFoundException for an unknown KeyId', async () => {
    await assertKmsError(kms.send(new ListAliasesCommand({ KeyId: UNKNOWN_KEY_ID })), {
      name: 'NotFoundException',
      message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist`,
    });
  });

  it('answers InvalidMarkerException for a Marker it did not issue', async () => {
    await assertKmsError(kms.send(new ListAliasesCommand({ Marker: 'garbage' })), { name: 'InvalidMarkerException' });
  });

  it('rejects Limit 101 (ListAliases allows 1 to 100)', async () => {
    await assertKmsError(kms.send(new ListAliasesCommand({ Limit: 101 })), { name: 'ValidationException', message: /'limit'/ });
  });
});

describe('TagResource, UntagResource and ListResourceTags', () => {
  it('tags given at CreateKey show up (recorded against AWS)', async () => {
    const expected = recorded<Tag[]>('test_create_key_with_tag_and_untag', 'list-resource-tags');
    const key = await createKey({ Tags: expected });
    assert.deepEqual(await tagsOf(key.KeyId as string), expected);
  });

  it('adds tags to a key and removes them all again (recorded against AWS)', async () => {
    const expected = recorded<Tag[]>('test_tag_existing_key_and_untag', 'list-resource-tags');
    const key = await createKey();
    assert.deepEqual(await tagsOf(key.KeyId as string), []);
    await kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: expected }));
    assert.deepEqual(await tagsOf(key.KeyId as string), expected);
    await kms.send(new UntagResourceCommand({ KeyId: key.Arn, TagKeys: expected.map((tag) => tag.TagKey as string) }));
    assert.deepEqual(await tagsOf(key.KeyId as string), recorded('test_tag_existing_key_and_untag', 'list-resource-tags-after-all-untagged'));
  });

  it('tagging an existing key overwrites its value and adds the new keys (recorded against AWS)', async () => {
    const initial = recorded<Tag[]>('test_update_and_add_tags_on_tagged_key', 'list-resource-tags');
    const key = await createKey({ Tags: initial });
    await kms.send(
      new TagResourceCommand({
        KeyId: key.KeyId,
        Tags: [
          { TagKey: 'tag2', TagValue: 'updated_value2' },
          { TagKey: 'tag4', TagValue: 'value4' },
          { TagKey: 'tag5', TagValue: 'value5' },
        ],
      }),
    );
    assert.deepEqual(await tagsOf(key.KeyId as string), recorded('test_update_and_add_tags_on_tagged_key', 'list-resource-tags-after-tags-updated'));
  });

  it('untagging some keys leaves the others (recorded against AWS)', async () => {
    const initial = recorded<Tag[]>('test_untag_key_partially', 'list-resource-tags');
    const key = await createKey({ Tags: initial });
    await kms.send(new UntagResourceCommand({ KeyId: key.KeyId, TagKeys: ['tag2'] }));
    assert.deepEqual(await tagsOf(key.KeyId as string), recorded('test_untag_key_partially', 'list-resource-tags-after-partially-untagged'));
  });

  it('untagging a tag key the key does not have succeeds and changes nothing', async () => {
    const key = await createKey({ Tags: [{ TagKey: 'kept', TagValue: 'v' }] });
    await kms.send(new UntagResourceCommand({ KeyId: key.KeyId, TagKeys: ['absent'] }));
    assert.deepEqual(await tagsOf(key.KeyId as string), [{ TagKey: 'kept', TagValue: 'v' }]);
  });

  it('an empty tag value is kept', async () => {
    const key = await createKey();
    await kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'empty', TagValue: '' }] }));
    assert.deepEqual(await tagsOf(key.KeyId as string), [{ TagKey: 'empty', TagValue: '' }]);
  });

  it('tags a disabled key', async () => {
    const key = await createKey();
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    await kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'k', TagValue: 'v' }] }));
    assert.deepEqual(await tagsOf(key.KeyId as string), [{ TagKey: 'k', TagValue: 'v' }]);
  });

  it('ListResourceTags pages through every tag exactly once with Limit', async () => {
    const tags = Array.from({ length: 7 }, (_, index) => ({ TagKey: `page-${index}`, TagValue: `value-${index}` }));
    const key = await createKey({ Tags: tags });
    const { items: seen, pages } = await listAllPages(
      (marker) => kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId, Limit: 2, Marker: marker })),
      (page) => page.Tags,
      { limit: 2, maxPages: 100 },
    );
    assert.equal(pages, 4);
    assert.deepEqual(seen.sort(byTagKey), tags);
  });

  it('ListResourceTags pages through tag keys outside the Basic Multilingual Plane exactly once', async () => {
    // U+FF21 sorts before U+1D400 by code point (and in UTF-8), but after it in UTF-16 code units.
    const tags = [
      { TagKey: '\uFF21', TagValue: 'fullwidth A' },
      { TagKey: '\u{1D400}', TagValue: 'mathematical bold A' },
      { TagKey: 'plain', TagValue: 'ascii' },
    ];
    const key = await createKey({ Tags: tags });
    const seen: string[] = [];
    let marker: string | undefined;
    for (let pages = 1; ; pages++) {
      const page = await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId, Limit: 1, Marker: marker }));
      seen.push(...(page.Tags ?? []).map((tag) => tag.TagKey as string));
      if (!page.Truncated) break;
      marker = page.NextMarker;
      assert.ok(pages < 10, 'pagination ends');
    }
    assert.deepEqual(seen.sort(), tags.map((tag) => tag.TagKey).sort());
  });

  it('ListResourceTags answers InvalidMarkerException for a Marker it did not issue', async () => {
    const key = await createKey();
    await assertKmsError(kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId, Marker: 'garbage' })), {
      name: 'InvalidMarkerException',
    });
  });

  it('ListResourceTags rejects Limit 51 (it allows 1 to 50)', async () => {
    const key = await createKey();
    await assertKmsError(kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId, Limit: 51 })), {
      name: 'ValidationException',
      message: /'limit'/,
    });
  });

  describe('rejects bad tags with TagException, at CreateKey and at TagResource alike', () => {
    const fiftyOne = Array.from({ length: 51 }, (_, index) => ({ TagKey: `tag-${index}`, TagValue: 'v' }));
    const cases: { title: string; tags: Tag[]; expected: ExpectedError }[] = [
      {
        title: 'a tag key beginning with aws: (recorded against AWS)',
        tags: [{ TagKey: 'aws:test', TagValue: 'v' }],
        expected: recordedError('test_create_key_with_invalid_tag_key[lowercase_prefix]', 'invalid-tag-key'),
      },
      {
        title: 'a tag key beginning with AWS: (recorded against AWS)',
        tags: [{ TagKey: 'AWS:test', TagValue: 'v' }],
        expected: recordedError('test_create_key_with_invalid_tag_key[uppercase_prefix]', 'invalid-tag-key'),
      },
      {
        title: 'the same tag key twice (recorded against AWS)',
        tags: [
          { TagKey: 'dup', TagValue: 'one' },
          { TagKey: 'dup', TagValue: 'two' },
        ],
        expected: recordedError('test_tag_key_with_duplicate_tag_keys_raises_error', 'duplicate-tag-keys'),
      },
      {
        title: '51 tags (recorded against AWS)',
        tags: fiftyOne,
        expected: recordedError('test_create_key_with_too_many_tags_raises_error', 'invalid-tag-key'),
      },
    ];
    for (const { title, tags, expected } of cases) {
      it(`CreateKey with ${title}`, async () => {
        await assertKmsError(kms.send(new CreateKeyCommand({ Tags: tags })), expected);
      });
      it(`TagResource with ${title}, leaving the key's tags as they were`, async () => {
        const key = await createKey({ Tags: [{ TagKey: 'before', TagValue: 'v' }] });
        await assertKmsError(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: tags })), expected);
        assert.deepEqual(await tagsOf(key.KeyId as string), [{ TagKey: 'before', TagValue: 'v' }]);
      });
    }
  });

  describe('rejects tags outside the model lengths with the validation form', () => {
    const cases: { title: string; tags: Tag[]; expected: ExpectedError }[] = [
      {
        title: 'a 129-character tag key (recorded against AWS)',
        tags: [{ TagKey: 'a'.repeat(129), TagValue: 'v' }],
        expected: recordedError('test_create_key_with_invalid_tag_key[too_long_key]', 'invalid-tag-key'),
      },
      {
        title: 'a 257-character tag value (recorded against AWS)',
        tags: [{ TagKey: 'key', TagValue: 'v'.repeat(257) }],
        expected: recordedError('test_key_with_long_tag_value_raises_error', 'too-long-tag-value'),
      },
    ];
    for (const { title, tags, expected } of cases) {
      it(`CreateKey with ${title}`, async () => {
        await assertKmsError(kms.send(new CreateKeyCommand({ Tags: tags })), expected);
      });
      it(`TagResource with ${title}`, async () => {
        const key = await createKey();
        await assertKmsError(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: tags })), expected);
      });
    }

    it('names the second tag tags.2.member.tagKey', async () => {
      const key = await createKey();
      const long = 'b'.repeat(129);
      await assertKmsError(
        kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'fine', TagValue: 'v' }, { TagKey: long, TagValue: 'v' }] })),
        {
          name: 'ValidationException',
          message: `1 validation error detected: Value '${long}' at 'tags.2.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128`,
        },
      );
    });
  });

  it('TagResource on a key pending deletion answers KMSInvalidStateException', async () => {
    const key = await createKey();
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    await assertKmsError(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'k', TagValue: 'v' }] })), {
      name: 'KMSInvalidStateException',
      message: `${key.Arn} is pending deletion.`,
    });
  });

  const unknownKeyCalls: { title: string; call: () => Promise<unknown> }[] = [
    { title: 'TagResource', call: () => kms.send(new TagResourceCommand({ KeyId: UNKNOWN_KEY_ID, Tags: [{ TagKey: 'k', TagValue: 'v' }] })) },
    { title: 'UntagResource', call: () => kms.send(new UntagResourceCommand({ KeyId: UNKNOWN_KEY_ID, TagKeys: ['k'] })) },
    { title: 'ListResourceTags', call: () => kms.send(new ListResourceTagsCommand({ KeyId: UNKNOWN_KEY_ID })) },
  ];
  for (const { title, call } of unknownKeyCalls) {
    it(`${title} on an unknown key answers NotFoundException`, async () => {
      await assertKmsError(call(), { name: 'NotFoundException', message: `Key '${keyArnOf(UNKNOWN_KEY_ID)}' does not exist` });
    });
  }
});
