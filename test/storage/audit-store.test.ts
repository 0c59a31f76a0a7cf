import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ZERO_HASH, chainHash } from '../../src/crypto/audit-chain.ts';
import { digestSealer } from '../../src/service/audit/digests.ts';
import { publicKeyIdOf } from '../../src/service/audit/signing-key.ts';
import { verifyStore } from '../../src/service/audit/verify.ts';
import type { AuditEntryInput, AuditStore, DigestRequest, DigestSealer } from '../../src/storage/audit-types.ts';
import { AUDIT_MIGRATIONS } from '../../src/storage/sqlite/audit-schema.ts';
import { SqliteAuditStore } from '../../src/storage/sqlite/audit-store.ts';
import { forEachBackend, type AuditOptions, type TestDatabase } from './backends.ts';

const T0 = new Date('2026-01-01T00:00:00Z');

function entry(n: number, overrides: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return {
    text: JSON.stringify({ eventID: `event-${n}`, eventName: 'Encrypt', n }),
    time: new Date(T0.getTime() + n * 1000),
    eventName: 'Encrypt',
    principalArn: 'arn:aws:iam::111122223333:user/alice',
    keyIds: ['key-a'],
    cryptoSuccess: true,
    ...overrides,
  };
}

/** A stand-in sealer: records what it was asked, signs nothing. */
function recordingSealer(): { seal: DigestSealer; requests: DigestRequest[] } {
  const requests: DigestRequest[] = [];
  return {
    requests,
    seal: (request) => {
      requests.push(request);
      return { text: JSON.stringify({ seq: request.seq, lastSeq: request.lastSeq }), signature: Buffer.alloc(64) };
    },
  };
}

const realKey = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, publicKeyId: publicKeyIdOf(publicKey) };
};

forEachBackend('AuditStore', (backend) => {
  let db: TestDatabase;
  const open: AuditStore[] = [];

  async function openStore(options: AuditOptions = {}): Promise<AuditStore> {
    const store = await db.openAuditStore(options);
    open.push(store);
    return store;
  }

  beforeEach(async () => {
    db = await backend.create();
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close().catch(() => {});
    await db.drop();
  });

  test('chains each event to the one before it, seq from 1 with no gaps', async () => {
    const store = await openStore();
    const { seal } = recordingSealer();
    const first = await store.append([entry(1), entry(2)], seal);
    const second = await store.append([entry(3)], seal);
    assert.deepEqual([first.firstSeq, first.lastSeq, second.firstSeq, second.lastSeq], [1, 2, 3, 3]);
    const events = await store.readEvents(1, 100);
    assert.deepEqual(events.map((event) => event.seq), [1, 2, 3]);
    let previous = ZERO_HASH;
    for (const event of events) {
      assert.deepEqual(event.hash, chainHash(previous, event.text));
      previous = event.hash;
    }
    assert.equal(events[0].text, entry(1).text);
    assert.deepEqual(events[0].time, entry(1).time);
  });

  test('writes a digest in the same transaction every N events', async () => {
    const store = await openStore({ digestEveryEvents: 4 });
    const { seal, requests } = recordingSealer();
    const result = await store.append(Array.from({ length: 10 }, (_, i) => entry(i + 1)), seal);
    assert.equal(result.digestsWritten, 2);
    assert.equal(result.sealedUpTo, 8);
    assert.deepEqual(
      requests.map((r) => [r.seq, r.lastSeq, r.eventCount]),
      [
        [1, 4, 4],
        [2, 8, 4],
      ],
    );
    assert.equal(requests[0].previousText, undefined);
    assert.equal(requests[1].previousText, JSON.stringify({ seq: 1, lastSeq: 4 }));
    const events = await store.readEvents(1, 100);
    assert.deepEqual(requests[1].lastHash, events[7].hash);
    await store.append([entry(11), entry(12)], seal);
    const digests = await store.readDigests(1, 100);
    assert.deepEqual(
      digests.map((d) => [d.seq, d.lastSeq]),
      [
        [1, 4],
        [2, 8],
        [3, 12],
      ],
    );
    assert.deepEqual(await store.tail(), { lastSeq: 12, lastDigestSeq: 3 });
  });

  test('writes a digest once the interval has passed since the last one, and only with new events', async () => {
    let now = T0.getTime();
    const store = await openStore({ digestIntervalMs: 60_000, now: () => new Date(now) });
    const { seal, requests } = recordingSealer();
    await store.append([entry(1), entry(2), entry(3)], seal);
    assert.equal(requests.length, 0, 'the trail began just now');
    now += 59_999;
    assert.equal((await store.append([], seal)).digestsWritten, 0);
    now += 1;
    const due = await store.append([], seal);
    assert.equal(due.digestsWritten, 1);
    assert.deepEqual([requests[0].lastSeq, requests[0].eventCount], [3, 3]);
    assert.deepEqual(requests[0].time, new Date(now));
    now += 120_000;
    assert.equal((await store.append([], seal)).digestsWritten, 0, 'nothing new to seal');
    // The first event after a quiet interval is sealed in its own transaction.
    assert.equal((await store.append([entry(4)], seal)).digestsWritten, 1);
    now += 1_000;
    assert.equal((await store.append([entry(5)], seal)).digestsWritten, 0);
    assert.equal((await store.readDigests(1, 10)).length, 2);
  });

  test('a failing sealer rolls the whole append back', async () => {
    const store = await openStore({ digestEveryEvents: 2 });
    const failing: DigestSealer = () => {
      throw new Error('no signer');
    };
    await assert.rejects(store.append([entry(1), entry(2), entry(3)], failing), /no signer/);
    assert.deepEqual(await store.tail(), { lastSeq: 0, lastDigestSeq: 0 });
    await store.append([entry(1)], recordingSealer().seal);
    assert.equal((await store.readEvents(1, 10))[0].seq, 1);
  });

  test('refuses a malformed entry before writing anything', async () => {
    const store = await openStore();
    await assert.rejects(store.append([entry(1), { ...entry(2), time: new Date(Number.NaN) }], recordingSealer().seal), TypeError);
    assert.equal((await store.tail()).lastSeq, 0);
  });

  test('probe rejects once the store is closed', async () => {
    const store = await openStore();
    await store.close();
    await assert.rejects(store.probe());
    await assert.rejects(store.append([entry(1)], recordingSealer().seal));
  });

  test('two connections appending in turn make one gap-free chain that verifies', async () => {
    const key = realKey();
    const seal = digestSealer(key);
    const a = await openStore({ digestEveryEvents: 7 });
    const b = await openStore({ digestEveryEvents: 7 });
    let n = 0;
    for (let round = 0; round < 20; round++) {
      const batch = (size: number) => Array.from({ length: size }, () => entry(++n));
      await Promise.all([a.append(batch(1 + (round % 3)), seal), b.append(batch(2 + (round % 4)), seal)]);
    }
    const result = await verifyStore(a, key.publicKey, { digestEveryEvents: 7 });
    assert.deepEqual(result, { ok: true, events: n, digests: Math.floor(n / 7), eventsAfterLastDigest: n % 7 });
  });

  test('queries by time, principal, key, event name and error, both directions', async () => {
    const store = await openStore();
    const { seal } = recordingSealer();
    await store.append(
      [
        entry(1),
        entry(2, { eventName: 'Decrypt', principalArn: 'arn:aws:iam::111122223333:user/bob', keyIds: ['key-b'] }),
        entry(3, { eventName: 'ReEncrypt', keyIds: ['key-a', 'key-b'] }),
        entry(4, { eventName: 'Decrypt', keyIds: ['key-b'], errorCode: 'AccessDeniedException', cryptoSuccess: false }),
        entry(5, { eventName: 'CreateKey', keyIds: ['key-c'], cryptoSuccess: false }),
        entry(6, { eventName: 'ListKeys', principalArn: undefined, keyIds: [], cryptoSuccess: false, errorCode: 'UnrecognizedClientException' }),
      ],
      seal,
    );
    const seqs = async (query: Parameters<typeof store.query>[0]) => (await store.query(query)).map((event) => event.seq);
    assert.deepEqual(await seqs({ limit: 10 }), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(await seqs({ limit: 2, order: 'desc' }), [6, 5]);
    assert.deepEqual(await seqs({ limit: 2, order: 'desc', beforeSeq: 5 }), [4, 3]);
    assert.deepEqual(await seqs({ limit: 2, afterSeq: 2 }), [3, 4]);
    assert.deepEqual(await seqs({ limit: 10, keyId: 'key-b' }), [2, 3, 4]);
    assert.deepEqual(await seqs({ limit: 10, principalArn: 'arn:aws:iam::111122223333:user/bob' }), [2]);
    assert.deepEqual(await seqs({ limit: 10, eventName: 'Decrypt' }), [2, 4]);
    assert.deepEqual(await seqs({ limit: 10, onlyErrors: true }), [4, 6]);
    assert.deepEqual(await seqs({ limit: 10, errorCode: 'AccessDeniedException' }), [4]);
    assert.deepEqual(await seqs({ limit: 10, from: entry(2).time, to: entry(4).time }), [2, 3]);
    assert.deepEqual(await seqs({ limit: 10, keyId: 'key-b', eventName: 'Decrypt', onlyErrors: true }), [4]);
    const [row] = await store.query({ limit: 1, eventName: 'ListKeys' });
    assert.equal(row.principalArn, undefined);
    assert.equal(row.errorCode, 'UnrecognizedClientException');
    assert.equal(row.cryptoSuccess, false);
  });

  test('query, readEvents and lastCryptoUse over many appends agree with filtering every event', async () => {
    const store = await openStore();
    const { seal } = recordingSealer();
    const principals = ['arn:aws:iam::111122223333:user/alice', 'arn:aws:iam::111122223333:user/bob', undefined];
    const names = ['Encrypt', 'Decrypt', 'ReEncrypt', 'DescribeKey'];
    const all: (AuditEntryInput & { seq: number })[] = [];
    const varied = (n: number): AuditEntryInput => {
      const failed = n % 7 === 0;
      const eventName = names[n % names.length];
      return entry(n, {
        eventName,
        // Times are not monotonic in seq: a batch's events can come from requests that started out of order.
        time: new Date(T0.getTime() + n * 1000 + ((n * 7919) % 5) * 3000),
        principalArn: principals[n % 3],
        keyIds: eventName === 'ReEncrypt' ? [`key-${n % 5}`, `key-${(n + 1) % 5}`] : n % 11 === 0 ? [] : [`key-${n % 5}`],
        errorCode: failed ? (n % 2 ? 'AccessDeniedException' : 'NotFoundException') : undefined,
        cryptoSuccess: !failed && eventName !== 'DescribeKey',
      });
    };
    // 150 appends of 1–7 events, then one of 600 (more than one stored batch), then 20 more.
    const sizes = [...Array.from({ length: 150 }, (_, i) => 1 + ((i * 5) % 7)), 600, ...Array.from({ length: 20 }, () => 3)];
    for (const size of sizes) {
      const entries = Array.from({ length: size }, (_, index) => varied(all.length + 1 + index));
      await store.append(entries, seal);
      entries.forEach((input) => all.push({ ...input, seq: all.length + 1 }));
    }
    const total = all.length;
    const read = await store.readEvents(1, total + 10);
    assert.deepEqual(read.map((event) => event.seq), all.map((event) => event.seq));
    assert.deepEqual(read.map((event) => event.text), all.map((event) => event.text));
    assert.deepEqual((await store.readEvents(400, 5)).map((event) => event.seq), [400, 401, 402, 403, 404]);
    assert.deepEqual((await store.readEvents(400, 50, 402)).map((event) => event.seq), [400, 401, 402]);
    assert.deepEqual(await store.readEvents(total + 1, 5), []);

    type Query = Parameters<typeof store.query>[0];
    const expected = (query: Query) => {
      const matching = all.filter(
        (event) =>
          (query.from === undefined || event.time >= query.from) &&
          (query.to === undefined || event.time < query.to) &&
          (query.principalArn === undefined || event.principalArn === query.principalArn) &&
          (query.eventName === undefined || event.eventName === query.eventName) &&
          (query.errorCode === undefined || event.errorCode === query.errorCode) &&
          (!query.onlyErrors || event.errorCode !== undefined) &&
          (query.keyId === undefined || event.keyIds.includes(query.keyId)) &&
          (query.afterSeq === undefined || event.seq > query.afterSeq) &&
          (query.beforeSeq === undefined || event.seq < query.beforeSeq),
      );
      if (query.order === 'desc') matching.reverse();
      return matching.slice(0, query.limit).map((event) => event.seq);
    };
    const queries: Query[] = [
      { limit: 5000 },
      { limit: 7, order: 'desc' },
      { limit: 5000, keyId: 'key-3' },
      { limit: 40, keyId: 'key-3', order: 'desc', beforeSeq: 700 },
      { limit: 5000, onlyErrors: true },
      { limit: 5000, errorCode: 'NotFoundException', order: 'desc' },
      { limit: 5000, principalArn: principals[1], eventName: 'Decrypt' },
      { limit: 5000, from: new Date(T0.getTime() + 200_000), to: new Date(T0.getTime() + 900_000) },
      { limit: 30, from: new Date(T0.getTime() + 200_000), order: 'desc', afterSeq: 150 },
      { limit: 5000, keyId: 'key-1', onlyErrors: true, afterSeq: 100, beforeSeq: 1000 },
      { limit: 5000, keyId: 'no-such-key' },
    ];
    for (const query of queries) assert.deepEqual((await store.query(query)).map((event) => event.seq), expected(query), JSON.stringify(query));
    for (const keyId of ['key-0', 'key-1', 'key-2', 'key-3', 'key-4']) {
      const last = all.filter((event) => event.cryptoSuccess && event.keyIds.includes(keyId)).at(-1);
      assert.equal((await store.lastCryptoUse(keyId))?.seq, last?.seq, keyId);
    }
  });

  test('lastCryptoUse is the latest successful cryptographic event naming the key', async () => {
    const store = await openStore();
    const { seal } = recordingSealer();
    await store.append([entry(1), entry(2, { keyIds: ['key-b'] })], seal);
    await store.append(
      [
        entry(3, { eventName: 'ReEncrypt', keyIds: ['key-b', 'key-a'] }),
        entry(4, { eventName: 'Decrypt', keyIds: ['key-a'], errorCode: 'InvalidCiphertextException', cryptoSuccess: false }),
        entry(5, { eventName: 'DescribeKey', keyIds: ['key-a'], cryptoSuccess: false }),
      ],
      seal,
    );
    assert.equal((await store.lastCryptoUse('key-a'))?.seq, 3);
    assert.equal((await store.lastCryptoUse('key-b'))?.seq, 3);
    assert.equal((await store.lastCryptoUse('key-b'))?.eventName, 'ReEncrypt');
    assert.equal(await store.lastCryptoUse('key-c'), undefined);
  });

  test('keeps the trail start time and the first event time', async () => {
    const store = await openStore({ now: () => T0 });
    assert.deepEqual(await store.startTime(), T0);
    assert.equal(await store.firstEventTime(), undefined);
    await store.append([entry(5), entry(6)], recordingSealer().seal);
    assert.deepEqual(await store.firstEventTime(), entry(5).time);
    const later = await openStore({ now: () => new Date(T0.getTime() + 10_000) });
    assert.deepEqual(await later.startTime(), T0, 'fixed at creation');
  });

  test('meta values are insert-if-absent', async () => {
    const a = await openStore();
    const b = await openStore();
    assert.equal(await a.getMeta('x'), undefined);
    assert.equal(await a.putMetaIfAbsent('x', 'first'), 'first');
    assert.equal(await b.putMetaIfAbsent('x', 'second'), 'first');
  });
});

describe('SqliteAuditStore only: the file, its WAL flush, locking and processes', () => {
  let dir: string;
  let path: string;
  const open: SqliteAuditStore[] = [];

  function openStore(options: ConstructorParameters<typeof SqliteAuditStore>[1] = {}): SqliteAuditStore {
    const store = new SqliteAuditStore(path, options);
    open.push(store);
    return store;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strongroom-audit-store-'));
    path = join(dir, 'audit.db');
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  test('creates audit.db 0600 in WAL mode at the current schema version', async () => {
    openStore();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('user_version', { simple: true }), AUDIT_MIGRATIONS.length);
    } finally {
      db.close();
    }
  });

  test('a failed fsync of the WAL fails that write and every later one on the store: it fails closed until reopened', async () => {
    const store = openStore();
    const { seal } = recordingSealer();
    await store.append([entry(1)], seal);
    // The descriptor append() fsyncs replaced by one that cannot be (as a disk error would make it fail).
    const internals = store as unknown as { walFd: number };
    const realFd = internals.walFd;
    assert.equal(typeof realFd, 'number', 'the WAL is open for syncing after the first commit');
    internals.walFd = 1_000_000;
    await assert.rejects(store.append([entry(2)], seal), /the audit trail could not be synced to disk: EBADF/);
    internals.walFd = realFd;
    await assert.rejects(store.append([entry(3)], seal), /could not be synced/, 'nothing is acknowledged after a failed fsync');
    await assert.rejects(store.probe(), /could not be synced/);
    assert.equal((await store.tail()).lastSeq, 2, 'entry 3 was refused before it was written');
    // Reopened (a restart), the trail goes on: event 2 is there, committed though never acknowledged.
    const reopened = openStore();
    await reopened.append([entry(3)], seal);
    assert.deepEqual((await reopened.readEvents(1, 10)).map((event) => event.seq), [1, 2, 3]);
  });

  test('probe commits a write, and fails when the database is locked by another writer', async () => {
    const store = openStore({ busyTimeoutMs: 50 });
    await store.probe();
    const other = new Database(path);
    try {
      other.exec('BEGIN IMMEDIATE');
      await assert.rejects(store.probe(), (error: { code?: string }) => error.code === 'SQLITE_BUSY');
      await assert.rejects(store.append([entry(1)], recordingSealer().seal), (error: { code?: string }) => error.code === 'SQLITE_BUSY');
      other.exec('ROLLBACK');
    } finally {
      other.close();
    }
    await store.probe();
    await store.append([entry(1)], recordingSealer().seal);
    const db = new Database(path, { readonly: true });
    try {
      assert.equal((db.prepare('SELECT writes FROM probe').get() as { writes: number }).writes, 2);
    } finally {
      db.close();
    }
  });

  test('two processes appending concurrently make one gap-free chain that verifies', async () => {
    const key = realKey();
    const pem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    openStore(); // schema and start time first, as a server start does
    const runs = await runChildren([0, 1].map((child) => appenderScript(path, pem, child, 200)));
    for (const run of runs) assert.equal(run.code, 0, run.stderr);
    const store = openStore();
    const result = await verifyStore(store, key.publicKey, { digestEveryEvents: 5 });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.events, 2 * 200 * 3);
    // Both processes' events are in the chain, interleaved.
    const names = (await store.readEvents(1, 1000)).map((event) => (JSON.parse(event.text) as { child: number }).child);
    const switches = names.filter((name, i) => i > 0 && name !== names[i - 1]).length;
    assert.ok(switches > 1, `the two processes took turns (${switches} switches)`);
  });

  test('a process killed while appending leaves a committed prefix that verifies, with every acknowledged event', async () => {
    const key = realKey();
    const pem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    openStore();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', appenderScript(path, pem, 0, 1_000_000)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let acknowledged = 0;
    let buffered = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() as string;
        for (const line of lines) acknowledged = Math.max(acknowledged, Number(line));
        if (acknowledged >= 300) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => resolve());
      child.on('error', reject);
    });
    await new Promise((resolve) => (child.exitCode === null && child.signalCode === null ? child.once('exit', resolve) : resolve(null)));
    assert.equal(child.signalCode, 'SIGKILL');
    const store = openStore();
    const result = await verifyStore(store, key.publicKey, { digestEveryEvents: 5 });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.ok(result.events >= acknowledged, `${result.events} events on disk, ${acknowledged} acknowledged`);
    // And the trail carries on from there.
    await store.append([entry(1)], digestSealer(key));
    assert.equal((await verifyStore(store, key.publicKey, { digestEveryEvents: 5 })).ok, true);
  });

  test('a read-only store reads an existing trail and writes nothing', async () => {
    const writer = openStore();
    await writer.append([entry(1)], recordingSealer().seal);
    const reader = openStore({ readonly: true });
    assert.equal((await reader.readEvents(1, 10)).length, 1);
    await assert.rejects(reader.probe());
    assert.throws(() => new SqliteAuditStore(join(dir, 'absent.db'), { readonly: true }));
  });
});

/** A child process that appends `batches` batches of 1-5 events through its own connection. */
function appenderScript(dbPath: string, privateKeyPem: string, child: number, batches: number): string {
  const module = (relative: string) => JSON.stringify(new URL(relative, import.meta.url).href);
  return `
    import { createPrivateKey, createPublicKey } from 'node:crypto';
    import { SqliteAuditStore } from ${module('../../src/storage/sqlite/audit-store.ts')};
    import { digestSealer } from ${module('../../src/service/audit/digests.ts')};
    import { publicKeyIdOf } from ${module('../../src/service/audit/signing-key.ts')};
    const privateKey = createPrivateKey(${JSON.stringify(privateKeyPem)});
    const seal = digestSealer({ privateKey, publicKeyId: publicKeyIdOf(createPublicKey(privateKey)) });
    const store = new SqliteAuditStore(${JSON.stringify(dbPath)}, { digestEveryEvents: 5 });
    if (${batches} <= 1000) {
      // Both children start appending together: wait for the parent's go.
      process.stdout.write('ready\\n');
      await new Promise((resolve) => process.stdin.once('data', resolve));
      process.stdin.pause();
    }
    let n = 0;
    for (let batch = 0; batch < ${batches}; batch++) {
      const size = ${batches > 1000 ? '1 + (batch % 5)' : '3'};
      const entries = Array.from({ length: size }, () => ({
        text: JSON.stringify({ child: ${child}, n: ++n }),
        time: new Date(),
        eventName: 'Encrypt',
        keyIds: ['key'],
        cryptoSuccess: true,
      }));
      const result = await store.append(entries, seal);
      process.stdout.write(result.lastSeq + '\\n');
      // Leave the lock free for a moment, as a server does between batches: SQLite's busy
      // handler retries on a sleep, so a writer that never lets go starves the other.
      if (${batches} <= 1000) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await store.close();
  `;
}

/** Runs appender children together: each says ready, then all are told to go at once. */
function runChildren(scripts: string[]): Promise<{ code: number | null; stderr: string }[]> {
  const children = scripts.map((script) =>
    spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] }),
  );
  let ready = 0;
  return Promise.all(
    children.map(
      (child) =>
        new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
          let stderr = '';
          child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
          child.stdout.setEncoding('utf8').once('data', () => {
            if (++ready === children.length) for (const each of children) each.stdin.end('go\n');
          });
          child.stdout.resume();
          child.on('error', reject);
          child.on('exit', (code) => resolve({ code, stderr }));
        }),
    ),
  );
}
