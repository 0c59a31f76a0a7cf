/**
 * oweDestroys (journal.ts): a key's deletion records that every member owes the destroy of its
 * objects, over whatever each owed for them; withdrawn (the deletion was cancelled), each member
 * owes what it did before, unless the entry changed in between.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { MemoryJournal, oweDestroys, type OwedOperation } from '../../src/keystores/pkcs11/cluster/journal.ts';

const cases: {
  title: string;
  before: OwedOperation | undefined;
  meanwhile?: (journal: MemoryJournal, objectId: Buffer) => Promise<void>;
  after: OwedOperation | undefined;
}[] = [
  { title: 'a member that owed nothing owes nothing again', before: undefined, after: undefined },
  { title: 'a member that owed the create (down when the key was made) owes it again', before: 'create', after: 'create' },
  {
    // An earlier run of this deletion recorded the destroys and stopped before the key's row went: the key lives on.
    title: 'a member that owed a destroy already (an earlier, unfinished attempt) owes the create, never the destroy of a live key',
    before: 'destroy',
    after: 'create',
  },
  {
    title: 'a member whose re-synchronisation carried out the destroy in between owes the create',
    before: undefined,
    meanwhile: (journal, objectId) => journal.settle('m', objectId),
    after: 'create',
  },
  {
    title: 'a create recorded in between stands',
    before: undefined,
    meanwhile: (journal, objectId) => journal.owe('m', objectId, 'create'),
    after: 'create',
  },
];

for (const { title, before, meanwhile, after } of cases) {
  test(`withdrawn destroys: ${title}`, async () => {
    const journal = new MemoryJournal();
    const [objectId, other] = [randomBytes(28), randomBytes(28)];
    if (before) await journal.owe('m', objectId, before);
    await journal.owe('m', other, 'create'); // another key's entry, untouched throughout
    const owed = await oweDestroys(journal, ['m'], [objectId]);
    assert.deepEqual((await journal.owed('m')).find((entry) => entry.objectId.equals(objectId))?.operation, 'destroy');
    await meanwhile?.(journal, objectId);
    await owed.withdraw();
    const entries = await journal.owed('m');
    assert.equal(entries.find((entry) => entry.objectId.equals(objectId))?.operation, after);
    assert.equal(entries.find((entry) => entry.objectId.equals(other))?.operation, 'create');
  });
}
