/**
 * copyConverging (token-objects.ts): a copier whose object gave way to another's looks again
 * before it answers, since that other copy may have been withdrawn in the same moment.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copyConverging, type CopyOutcome } from '../../src/keystores/pkcs11/cluster/token-objects.ts';

async function run(outcomes: CopyOutcome[]): Promise<{ outcome: CopyOutcome; attempts: number }> {
  let attempts = 0;
  const outcome = await copyConverging(async () => outcomes[Math.min(attempts++, outcomes.length - 1)]!);
  return { outcome, attempts };
}

test('kept, exists and gone are answers at once', async () => {
  for (const answer of ['kept', 'exists', 'gone'] as const) assert.deepEqual(await run([answer]), { outcome: answer, attempts: 1 });
});

test('yielded: looked at again; the survivor still there is "exists", none there means copy again', async () => {
  assert.deepEqual(await run(['yielded', 'exists']), { outcome: 'exists', attempts: 2 });
  // The copy ours gave way to was withdrawn too (its copier died or gave up): this copier copies again and keeps it.
  assert.deepEqual(await run(['yielded', 'kept']), { outcome: 'kept', attempts: 2 });
});

test('withdrawn and yielded are retried a bounded number of times', async () => {
  assert.deepEqual(await run(['withdrawn']), { outcome: 'withdrawn', attempts: 8 });
  assert.deepEqual(await run(['yielded']), { outcome: 'yielded', attempts: 8 });
});
