/** Assertions and small helpers shared by the wire tests that drive a server with @aws-sdk/client-kms. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CreateKeyCommand, type CreateKeyCommandInput, type KeyMetadata, type KMSClient } from '@aws-sdk/client-kms';

/** LocalStack's recordings against real AWS KMS (Apache-2.0, see test/reference/NOTICE). */
const snapshot = JSON.parse(
  readFileSync(new URL('../reference/localstack-kms.snapshot.json', import.meta.url), 'utf8'),
) as Record<string, { 'recorded-content': Record<string, unknown> }>;

/** One recording of one LocalStack test, as AWS answered it. */
export function recorded<T>(testId: string, recording: string): T {
  const entry = snapshot[`tests/aws/services/kms/test_kms.py::TestKMS::${testId}`];
  assert.ok(entry, `snapshot has ${testId}`);
  return entry['recorded-content'][recording] as T;
}

/** The error AWS answered in one recording, with LocalStack's `<key-arn>` placeholder filled in. */
export function recordedError(testId: string, recording: string, keyArn = ''): { name: string; message: string } {
  const { Error } = recorded<{ Error: { Code: string; Message: string } }>(testId, recording);
  return { name: Error.Code, message: Error.Message.replaceAll('<key-arn>', keyArn) };
}

export interface ExpectedError {
  /** The error's name, or the names of which any will do. */
  name: string | string[];
  /** Exact text where AWS's wording is known; a pattern where only its form is. */
  message?: string | RegExp;
  status?: number;
}

export async function assertKmsError(call: Promise<unknown>, expected: ExpectedError): Promise<void> {
  await assert.rejects(call, (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
    if (Array.isArray(expected.name)) {
      assert.ok(expected.name.includes(error.name), `${error.name}: ${error.message} (expected ${expected.name.join(' or ')})`);
    } else {
      assert.equal(error.name, expected.name, `${error.name}: ${error.message}`);
    }
    assert.equal(error.$metadata?.httpStatusCode, expected.status ?? 400);
    if (typeof expected.message === 'string') assert.equal(error.message, expected.message);
    else if (expected.message) assert.match(error.message, expected.message);
    return true;
  });
}

export function assertNear(actual: Date | undefined, expectedMs: number, toleranceMs: number, what: string): void {
  assert.ok(actual instanceof Date, `${what} is a Date`);
  assert.ok(Math.abs(actual.getTime() - expectedMs) <= toleranceMs, `${what} ${actual.toISOString()} is near ${new Date(expectedMs).toISOString()}`);
}

export async function createKey(kms: KMSClient, input: CreateKeyCommandInput = {}): Promise<KeyMetadata> {
  const { KeyMetadata } = await kms.send(new CreateKeyCommand(input));
  assert.ok(KeyMetadata?.KeyId);
  return KeyMetadata;
}

/**
 * Every page of a Marker-paged List operation, checking the Truncated/NextMarker contract on the
 * way: no page holds more than `limit` items, a truncated page has a NextMarker, the last has none,
 * and there are fewer than `maxPages` pages.
 */
export async function listAllPages<Page extends { Truncated?: boolean; NextMarker?: string }, Item>(
  listPage: (marker: string | undefined) => Promise<Page>,
  itemsOf: (page: Page) => Item[] | undefined,
  options: { limit?: number; maxPages: number },
): Promise<{ items: Item[]; pages: number }> {
  const items: Item[] = [];
  let marker: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await listPage(marker);
    pages++;
    const pageItems = itemsOf(page) ?? [];
    if (options.limit !== undefined) assert.ok(pageItems.length <= options.limit);
    items.push(...pageItems);
    if (!page.Truncated) {
      assert.equal(page.NextMarker, undefined, 'the last page has no NextMarker');
      return { items, pages };
    }
    assert.ok(page.NextMarker, 'a truncated page has a NextMarker');
    marker = page.NextMarker;
    assert.ok(pages < options.maxPages, 'pagination ends');
  }
}
