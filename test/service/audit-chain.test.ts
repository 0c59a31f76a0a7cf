import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ZERO_HASH, chainHash } from '../../src/crypto/audit-chain.ts';
import { Sealer } from '../../src/crypto/seal.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import {
  AuditLog,
  AuditWriteError,
  InlineAuditWriter,
  auditPaths,
  digestSealer,
  exportLines,
  loadAuditSigningKey,
  loadOrCreateAuditSigningKey,
  newEd25519Pkcs8,
  openAuditLog,
  verifyExportFile,
  verifyStore,
  verifyTrail,
  type AuditSigningKey,
  type AuditWriter,
  type OpenAuditLogOptions,
} from '../../src/service/audit/index.ts';
import type { AuditEntryInput } from '../../src/storage/audit-types.ts';
import { type BatchRow, type StoredEvent, decodeBatch, encodeBatch } from '../../src/storage/sqlite/audit-batches.ts';
import { AUDIT_MIGRATIONS } from '../../src/storage/sqlite/audit-schema.ts';
import { SqliteAuditStore } from '../../src/storage/sqlite/audit-store.ts';

const T0 = new Date('2026-01-01T00:00:00Z');

let dir: string;
let rootKey: SecretBytes;
const logs: AuditLog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strongroom-audit-'));
  rootKey = SecretBytes.random(32);
});

afterEach(async () => {
  for (const log of logs.splice(0)) await log.close().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

function entry(n: number, overrides: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return {
    text: JSON.stringify({ eventVersion: '1.08', eventName: 'Encrypt', eventID: `event-${n}`, n }),
    time: new Date(T0.getTime() + n),
    eventName: 'Encrypt',
    principalArn: 'arn:aws:iam::111122223333:user/alice',
    keyIds: ['key-a'],
    cryptoSuccess: true,
    ...overrides,
  };
}

async function openLog(options: Partial<OpenAuditLogOptions> = {}) {
  const opened = await openAuditLog({ dataDir: dir, sealer: new Sealer(rootKey), mode: 'inline', digestCheckMs: 0, ...options });
  logs.push(opened.log);
  return opened;
}

/** A trail of `events` events with a digest every 10, closed; returns what verifying needs. */
async function makeTrail(events = 53): Promise<{ path: string; pem: string; key: AuditSigningKey }> {
  const { log, signingKey } = await openLog({ digestEveryEvents: 10 });
  await Promise.all(Array.from({ length: events }, (_, i) => log.record(entry(i + 1))));
  await log.close();
  return { path: auditPaths(dir).database, pem: signingKey.publicKeyPem, key: signingKey };
}

function tamper(path: string, change: (db: Database.Database) => void): void {
  const db = new Database(path);
  try {
    change(db);
  } finally {
    db.close();
  }
}

async function verifyFile(path: string, pem: string) {
  const store = new SqliteAuditStore(path, { readonly: true });
  try {
    return await verifyStore(store, pem, { digestEveryEvents: 10 });
  } finally {
    await store.close();
  }
}

async function exportToArray(path: string): Promise<string[]> {
  const store = new SqliteAuditStore(path, { readonly: true });
  try {
    const lines: string[] = [];
    for await (const line of exportLines(store, { pageSize: 7 })) lines.push(line);
    return lines;
  } finally {
    await store.close();
  }
}

/** Every stored event, decoded from audit.db's batch rows: what someone with the file sees. */
function storedEvents(db: Database.Database): StoredEvent[] {
  return (db.prepare('SELECT * FROM batches ORDER BY first_seq').all() as BatchRow[]).flatMap(decodeBatch);
}

/**
 * Rewrites audit.db's events as someone with write access to the file could: `change` edits the
 * decoded events (or returns others), which are stored again in well-formed batch rows, one per
 * run of consecutive seqs.
 */
function editEvents(db: Database.Database, change: (events: StoredEvent[]) => StoredEvent[] | void): void {
  const before = storedEvents(db);
  const events = [...(change(before) ?? before)].sort((a, b) => a.seq - b.seq);
  db.exec('DELETE FROM batches; DELETE FROM batch_keys');
  const insert = db.prepare(
    `INSERT INTO batches (first_seq, last_seq, min_time, max_time, errors, hashes, meta, texts)
     VALUES (@first_seq, @last_seq, @min_time, @max_time, @errors, @hashes, @meta, @texts)`,
  );
  for (let start = 0; start < events.length; ) {
    let end = start + 1;
    while (end < events.length && events[end].seq === events[end - 1].seq + 1) end++;
    const run = events.slice(start, end);
    insert.run(encodeBatch(run[0].seq, run, run.map((event) => event.hash)));
    start = end;
  }
}

const eventOf = (events: StoredEvent[], seq: number) => events.find((event) => event.seq === seq) as StoredEvent;
const forged = (seq: number, hash: Buffer): StoredEvent => ({ ...entry(seq), seq, hash, errorCode: undefined, keyIds: ['key-a'] });

function assertBroken(result: Awaited<ReturnType<typeof verifyTrail>>, error: string | RegExp): void {
  assert.equal(result.ok, false, `expected a break, got ${JSON.stringify(result)}`);
  if (typeof error === 'string') assert.equal(result.ok === false && result.error, error);
  else assert.match(result.ok === false ? result.error : '', error);
}

describe('audit signing key', () => {
  test('is made once, sealed, and its public key written to audit-public-key.pem', async () => {
    const store = new SqliteAuditStore(join(dir, 'audit.db'));
    try {
      const sealer = new Sealer(rootKey);
      assert.equal(await loadAuditSigningKey(store, sealer), undefined);
      const first = await loadOrCreateAuditSigningKey(store, sealer, join(dir, 'audit-public-key.pem'));
      const again = await loadOrCreateAuditSigningKey(store, sealer, join(dir, 'audit-public-key.pem'));
      assert.equal(again.publicKeyId, first.publicKeyId);
      assert.equal(readFileSync(join(dir, 'audit-public-key.pem'), 'utf8'), first.publicKeyPem);
      const spki = createPublicKey(first.publicKeyPem).export({ type: 'spki', format: 'der' });
      assert.equal(first.publicKeyId, createHash('sha256').update(spki).digest('hex'));
      // Made from a random seed in RFC 8410's PKCS#8, which is what node exports for such a key.
      assert.equal(first.privateKey.asymmetricKeyType, 'ed25519');
      const made = newEd25519Pkcs8();
      assert.deepEqual(createPrivateKey({ key: made, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'der' }), made);
      assert.notDeepEqual(newEd25519Pkcs8(), made);
      const signature = sign(null, Buffer.from('digest'), first.privateKey);
      assert.equal(verify(null, Buffer.from('digest'), createPublicKey(first.publicKeyPem), signature), true);
      // Stored sealed: the PKCS#8 bytes are not in the database.
      const pkcs8 = first.privateKey.export({ type: 'pkcs8', format: 'der' });
      const stored = Buffer.from((await store.getMeta('signing-key')) as string, 'base64');
      assert.equal(stored.includes(pkcs8.subarray(-32)), false);
      // Another root key cannot open it.
      await assert.rejects(loadAuditSigningKey(store, new Sealer(SecretBytes.random(32))), /unseal failed/);
    } finally {
      await store.close();
    }
  });

  test('is not silently replaced when a trail with digests has lost it', async () => {
    const { path } = await makeTrail(12);
    tamper(path, (db) => db.prepare("DELETE FROM meta WHERE name = 'signing-key'").run());
    await assert.rejects(openLog(), /signing key is missing from a trail that has digests/);
  });

  test('concurrent first starts end up with one key', async () => {
    const path = join(dir, 'audit.db');
    const stores = [new SqliteAuditStore(path), new SqliteAuditStore(path), new SqliteAuditStore(path)];
    try {
      const keys = await Promise.all(
        stores.map((store) => loadOrCreateAuditSigningKey(store, new Sealer(rootKey), join(dir, 'audit-public-key.pem'))),
      );
      assert.equal(new Set(keys.map((key) => key.publicKeyId)).size, 1);
      assert.equal(readFileSync(join(dir, 'audit-public-key.pem'), 'utf8'), keys[0].publicKeyPem);
    } finally {
      for (const store of stores) await store.close();
    }
  });
});

describe('audit chain and digests', () => {
  test('round trip: events chain, digests seal them in the documented format, the trail verifies', async () => {
    const { path, pem, key } = await makeTrail(53);
    const lines = await exportToArray(path);
    assert.equal(lines.length, 53 + 5);
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    // Digest lines follow the events they seal.
    assert.deepEqual(
      parsed.map((line, i) => (line.type === 'digest' ? i : -1)).filter((i) => i >= 0),
      [10, 21, 32, 43, 54],
    );
    let previousHash = ZERO_HASH;
    let previousDigestText: string | undefined;
    for (const [i, line] of lines.entries()) {
      const object = parsed[i];
      if (object.type === 'event') {
        const text = JSON.stringify(object.event);
        assert.equal(line, `{"type":"event","seq":${object.seq},"hash":"${object.hash}","event":${text}}`);
        previousHash = chainHash(previousHash, text);
        assert.equal(object.hash, previousHash.toString('hex'));
        continue;
      }
      const digest = object.digest as Record<string, unknown>;
      const text = JSON.stringify(digest);
      assert.deepEqual(Object.keys(digest), [
        'digestVersion',
        'seq',
        'lastSeq',
        'lastHash',
        'eventCount',
        'time',
        'previousDigestHash',
        'publicKeyId',
      ]);
      assert.equal(digest.lastHash, previousHash.toString('hex'));
      assert.equal(digest.eventCount, 10);
      assert.equal(digest.publicKeyId, key.publicKeyId);
      assert.equal(
        digest.previousDigestHash,
        previousDigestText === undefined ? '0'.repeat(64) : createHash('sha256').update(previousDigestText).digest('hex'),
      );
      assert.ok(verify(null, Buffer.from(text), key.publicKey, Buffer.from(object.signature as string, 'base64')));
      previousDigestText = text;
    }
    assert.deepEqual(await verifyFile(path, pem), { ok: true, events: 53, digests: 5, eventsAfterLastDigest: 3 });
  });

  test('an empty trail verifies', async () => {
    const { path, pem } = await makeTrail(0);
    assert.deepEqual(await verifyFile(path, pem), { ok: true, events: 0, digests: 0, eventsAfterLastDigest: 0 });
  });

  test('verification under another public key names the first digest', async () => {
    const { path } = await makeTrail(12);
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    assertBroken(await verifyFile(path, other), /^digest 1: made with key [0-9a-f]{64}, not the given public key [0-9a-f]{64}$/);
  });

  describe('tampering with audit.db is detected at the right position', () => {
    test("an event's text changed", async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) =>
        editEvents(db, (events) => {
          const event = eventOf(events, 17);
          event.text = event.text.replace('"n":17', '"n":71');
        }),
      );
      assertBroken(await verifyFile(path, pem), 'event 17: hash does not match');
    });

    test("an event's hash changed", async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) => editEvents(db, (events) => void (eventOf(events, 17).hash = randomBytes(32))));
      assertBroken(await verifyFile(path, pem), 'event 17: hash does not match');
    });

    test('an event removed from the middle', async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) => editEvents(db, (events) => events.filter((event) => event.seq !== 18)));
      assertBroken(await verifyFile(path, pem), 'event 18 missing (found 19)');
    });

    test('an event inserted in the middle', async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) =>
        editEvents(db, (events) => {
          for (const event of events) if (event.seq >= 25) event.seq++;
          const inserted = { ...forged(25, ZERO_HASH), text: entry(999).text };
          inserted.hash = chainHash(eventOf(events, 24).hash, inserted.text);
          return [...events, inserted];
        }),
      );
      assertBroken(await verifyFile(path, pem), 'event 26: hash does not match');
    });

    test('an event inserted and every later hash recomputed', async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) =>
        editEvents(db, (events) => {
          for (const event of events) if (event.seq >= 25) event.seq++;
          return rechain([...events, { ...forged(25, ZERO_HASH), text: entry(999).text }]);
        }),
      );
      assertBroken(await verifyFile(path, pem), 'digest 3: lastHash does not match event 30');
    });

    test('an event appended at the end without the chain', async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) => editEvents(db, (events) => [...events, forged(54, randomBytes(32))]));
      assertBroken(await verifyFile(path, pem), 'event 54: hash does not match');
    });

    test('two events swapped', async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) =>
        editEvents(db, (events) => {
          const [twelve, thirteen] = [eventOf(events, 12), eventOf(events, 13)];
          [twelve.seq, thirteen.seq] = [13, 12];
        }),
      );
      assertBroken(await verifyFile(path, pem), 'event 12: hash does not match');
    });

    test('the tail truncated past a digest', async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) => editEvents(db, (events) => events.filter((event) => event.seq <= 45)));
      assertBroken(await verifyFile(path, pem), 'trail ends at event 45 but digest 5 seals up to 50');
    });

    test("a batch row's texts cut short, so its events no longer decode", async () => {
      const { path, pem } = await makeTrail();
      let batch = { first_seq: 0, last_seq: 0 };
      tamper(path, (db) => {
        batch = db.prepare('SELECT first_seq, last_seq FROM batches WHERE first_seq <= 30 ORDER BY first_seq DESC LIMIT 1').get() as typeof batch;
        db.prepare('UPDATE batches SET texts = substr(texts, 2) WHERE first_seq = ?').run(batch.first_seq);
      });
      const result = await verifyFile(path, pem);
      assertBroken(result, `after event ${batch.first_seq - 1}: the batch of events ${batch.first_seq}–${batch.last_seq} is malformed (its texts are shorter than their lengths)`);
    });

    test("a batch row's meta made unreadable", async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) => db.prepare("UPDATE batches SET meta = '[' WHERE first_seq = (SELECT max(first_seq) FROM batches)").run());
      assertBroken(await verifyFile(path, pem), /: the batch of events \d+–53 is malformed \(its meta is not JSON\)$/);
    });

    test("a digest's text changed", async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) => db.prepare("UPDATE digests SET text = replace(text, '\"eventCount\":10', '\"eventCount\":11') WHERE seq = 2").run());
      assertBroken(await verifyFile(path, pem), 'digest 2: bad signature');
    });

    test("a digest's signature changed", async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) => db.prepare('UPDATE digests SET signature = randomblob(64) WHERE seq = 2').run());
      assertBroken(await verifyFile(path, pem), 'digest 2: bad signature');
    });

    test('a digest removed from the middle', async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) => db.prepare('DELETE FROM digests WHERE seq = 3').run());
      assertBroken(await verifyFile(path, pem), 'digest 3 missing (found 4)');
    });

    test('the last digest removed, leaving more unsealed events than the bound allows', async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) => db.prepare('DELETE FROM digests WHERE seq = 5').run());
      assertBroken(await verifyFile(path, pem), 'trail ends with 13 events after digest 4 and no digest (a digest is written every 10)');
    });

    test('digests swapped', async () => {
      const { path, pem } = await makeTrail();
      tamper(path, (db) =>
        db.exec('UPDATE digests SET seq = -1 WHERE seq = 2; UPDATE digests SET seq = 2 WHERE seq = 3; UPDATE digests SET seq = 3 WHERE seq = -1'),
      );
      assertBroken(await verifyFile(path, pem), 'digest 2 missing (found 3)');
    });
  });

  describe('a version 1 audit.db (a row per event) is upgraded in place', () => {
    /** Rewrites the trail at `path` as version 1 stored it, less the events `drop` names. */
    function downgradeToVersion1(path: string, drop: (seq: number) => boolean = () => false): void {
      const current = new Database(path, { readonly: true });
      const events = storedEvents(current);
      const meta = current.prepare('SELECT * FROM meta').all();
      const digests = current.prepare('SELECT * FROM digests').all();
      current.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
      const db = new Database(path);
      try {
        db.exec(AUDIT_MIGRATIONS[0] as string);
        db.pragma('user_version = 1');
        for (const row of meta) db.prepare('INSERT INTO meta (name, value) VALUES (@name, @value)').run(row);
        for (const row of digests) {
          db.prepare('INSERT INTO digests (seq, last_seq, time, text, signature) VALUES (@seq, @last_seq, @time, @text, @signature)').run(row);
        }
        const insert = db.prepare(
          'INSERT INTO events (seq, time, text, hash, event_name, principal_arn, error_code, crypto_success) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        );
        const insertKey = db.prepare('INSERT INTO event_keys (key_id, crypto_success, seq) VALUES (?, ?, ?)');
        for (const event of events.filter((event) => !drop(event.seq))) {
          const success = event.cryptoSuccess ? 1 : 0;
          insert.run(event.seq, event.time.getTime(), event.text, event.hash, event.eventName, event.principalArn ?? null, event.errorCode ?? null, success);
          for (const keyId of event.keyIds) insertKey.run(keyId, success, event.seq);
        }
      } finally {
        db.close();
      }
    }

    test('into batches that verify, query and answer GetKeyLastUsage as before', async () => {
      const { path, pem } = await makeTrail(600);
      const before = await exportToArray(path);
      downgradeToVersion1(path);
      const store = new SqliteAuditStore(path);
      try {
        assert.equal(((await store.readEvents(1, 1000)).at(-1) as { seq: number }).seq, 600);
        assert.equal((await store.lastCryptoUse('key-a'))?.seq, 600);
        assert.deepEqual((await store.query({ limit: 3, order: 'desc', keyId: 'key-a' })).map((event) => event.seq), [600, 599, 598]);
      } finally {
        await store.close();
      }
      tamper(path, (db) => {
        assert.equal(db.pragma('user_version', { simple: true }), AUDIT_MIGRATIONS.length);
        const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((row) => row.name);
        assert.deepEqual(tables, ['batch_keys', 'batches', 'digests', 'meta', 'probe']);
        // 600 events: batches of at most MAX_EVENTS_PER_BATCH.
        assert.deepEqual(db.prepare('SELECT first_seq, last_seq FROM batches ORDER BY first_seq').all(), [
          { first_seq: 1, last_seq: 256 },
          { first_seq: 257, last_seq: 512 },
          { first_seq: 513, last_seq: 600 },
        ]);
      });
      assert.deepEqual(await exportToArray(path), before, 'the same export, byte for byte');
      assert.deepEqual(await verifyFile(path, pem), { ok: true, events: 600, digests: 60, eventsAfterLastDigest: 0 });
    });

    test('keeping a gap an edit made, for verify to name', async () => {
      const { path, pem } = await makeTrail();
      downgradeToVersion1(path, (seq) => seq === 18);
      await new SqliteAuditStore(path).close();
      assertBroken(await verifyFile(path, pem), 'event 18 missing (found 19)');
    });
  });

  describe('tampering with an export file is detected at the right position', () => {
    async function exportFile(events = 53) {
      const { path, pem } = await makeTrail(events);
      const lines = await exportToArray(path);
      const file = join(dir, 'export.jsonl');
      const check = async (changed: string[], text = changed.map((line) => `${line}\n`).join('')) => {
        await writeFile(file, text);
        return verifyExportFile(file, pem, { digestEveryEvents: 10 });
      };
      return { lines, check, pem };
    }
    /** Index of the line of event `seq` (digest lines sit after every tenth event). */
    const eventIndex = (seq: number) => seq - 1 + Math.floor((seq - 1) / 10);

    test('the intact file verifies, with CRLF line ends too', async () => {
      const { lines, check } = await exportFile();
      assert.deepEqual(await check(lines), { ok: true, events: 53, digests: 5, eventsAfterLastDigest: 3 });
      assert.equal((await check(lines, lines.map((line) => `${line}\r\n`).join(''))).ok, true);
    });

    test('an edited event line', async () => {
      const { lines, check } = await exportFile();
      const changed = [...lines];
      changed[eventIndex(17)] = changed[eventIndex(17)].replace('"n":17', '"n":18');
      assertBroken(await check(changed), 'event 17: hash does not match');
    });

    test('a dropped event line', async () => {
      const { lines, check } = await exportFile();
      assertBroken(await check(lines.filter((_, i) => i !== eventIndex(18))), 'event 18 missing (found 19)');
    });

    test('swapped event lines', async () => {
      const { lines, check } = await exportFile();
      const changed = [...lines];
      [changed[eventIndex(17)], changed[eventIndex(18)]] = [changed[eventIndex(18)], changed[eventIndex(17)]];
      const result = await check(changed);
      assertBroken(result, 'event 17 missing (found 18)');
      assert.equal(result.ok === false && result.line, eventIndex(17) + 1);
    });

    test('an event line repeated', async () => {
      const { lines, check } = await exportFile();
      const changed = [...lines];
      changed.splice(eventIndex(18), 0, lines[eventIndex(17)]);
      assertBroken(await check(changed), 'event 17 repeated or out of order (expected 18)');
    });

    test('a dropped digest line', async () => {
      const { lines, check } = await exportFile();
      assertBroken(await check(lines.filter((_, i) => i !== eventIndex(20) + 1)), 'digest 2 missing (found 3)');
    });

    test('an edited digest line', async () => {
      const { lines, check } = await exportFile();
      const changed = [...lines];
      changed[eventIndex(20) + 1] = changed[eventIndex(20) + 1].replace('"lastSeq":20', '"lastSeq":19');
      assertBroken(await check(changed), 'digest 2: bad signature');
    });

    test('a digest line moved before the event it seals', async () => {
      const { lines, check } = await exportFile();
      const changed = [...lines];
      const [digest] = changed.splice(eventIndex(20) + 1, 1);
      changed.splice(eventIndex(20), 0, digest);
      assertBroken(await check(changed), 'digest 2 seals up to event 20 but follows event 19');
    });

    test('truncated in the middle of a line', async () => {
      const { lines, check } = await exportFile();
      const text = lines.map((line) => `${line}\n`).join('');
      const cut = text.indexOf('"event-30"');
      const result = await check([], text.slice(0, cut));
      assertBroken(result, `line ${eventIndex(30) + 1}: not an audit export line`);
    });

    test('events cut out before the last digest line', async () => {
      const { lines, check } = await exportFile(50);
      const changed = [...lines.slice(0, eventIndex(45) + 1), lines[lines.length - 1]];
      assertBroken(await check(changed), 'trail ends at event 45 but digest 5 seals up to 50');
      assertBroken(await check([...changed, ...lines.slice(eventIndex(46))]), 'digest 5 seals up to event 50 but follows event 45');
    });

    test('truncated at a line boundary after the last digest: verifies, reporting the unsealed events', async () => {
      // Documented limit: a cut among events no digest seals yet cannot be told from a trail ending there.
      const { lines, check } = await exportFile();
      assert.deepEqual(await check(lines.slice(0, -2)), { ok: true, events: 51, digests: 5, eventsAfterLastDigest: 1 });
    });

    test('a line that is not an export line', async () => {
      const { lines, check } = await exportFile();
      assertBroken(await check([...lines.slice(0, 3), '{"type":"event","seq":3}', ...lines.slice(3)]), 'line 4: not an audit export line');
    });
  });
});

describe('AuditLog', () => {
  for (const mode of ['inline', 'worker'] as const) {
    test(`group commit (${mode}): 500 concurrent records, one append transaction, a chain that verifies`, async () => {
      const { log, signingKey } = await openLog({ mode });
      await Promise.all(Array.from({ length: 500 }, (_, i) => log.record(entry(i + 1))));
      assert.deepEqual(log.stats, { commits: 1, events: 500, failures: 0 });
      assert.deepEqual(await verifyStore(log.store, signingKey.publicKeyPem), {
        ok: true,
        events: 500,
        digests: 0,
        eventsAfterLastDigest: 500,
      });
    });

    test(`records made while a batch commits go in the next batch (${mode})`, async () => {
      const { log, signingKey } = await openLog({ mode, digestEveryEvents: 100 });
      const all: Promise<void>[] = [];
      for (let turn = 0; turn < 50; turn++) {
        for (let i = 0; i < 10; i++) all.push(log.record(entry(turn * 10 + i)));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(all);
      assert.equal(log.stats.events, 500);
      assert.ok(log.stats.commits <= 50, `${log.stats.commits} commits`);
      const result = await verifyStore(log.store, signingKey.publicKeyPem, { digestEveryEvents: 100 });
      assert.deepEqual(result, { ok: true, events: 500, digests: 5, eventsAfterLastDigest: 0 });
    });

    test(`a locked database fails records and probes; after it is released, writing resumes (${mode})`, async () => {
      const { log, signingKey } = await openLog({ mode, busyTimeoutMs: 50 });
      await log.record(entry(1));
      const other = new Database(auditPaths(dir).database);
      try {
        other.exec('BEGIN IMMEDIATE');
        const failed = await Promise.allSettled([log.record(entry(2)), log.record(entry(3)), log.probe()]);
        for (const outcome of failed) {
          assert.equal(outcome.status, 'rejected');
          assert.ok(outcome.reason instanceof AuditWriteError);
          assert.equal((outcome.reason.cause as { code?: string }).code, 'SQLITE_BUSY');
        }
        await assert.rejects(log.probe(), AuditWriteError, 'every later batch tries again, and fails again');
        other.exec('ROLLBACK');
      } finally {
        other.close();
      }
      await log.probe();
      await log.record(entry(4));
      const texts = (await log.store.readEvents(1, 10)).map((event) => event.text);
      assert.deepEqual(texts, [entry(1).text, entry(4).text], 'the failed records are not in the trail');
      assert.equal((await verifyStore(log.store, signingKey.publicKeyPem)).ok, true);
    });
  }

  test('a failing writer rejects every record and probe of its batch; the next batch succeeds', async () => {
    const { log: opened, signingKey } = await openLog();
    await opened.close();
    const store = new SqliteAuditStore(auditPaths(dir).database);
    const inner = new InlineAuditWriter(store, digestSealer(signingKey));
    let failing = true;
    const writer: AuditWriter = {
      commit: (entries, probe) => (failing ? Promise.reject(new Error('disk full')) : inner.commit(entries, probe)),
      close: () => inner.close(),
    };
    const log = new AuditLog({ store, writer, digestCheckMs: 0 });
    logs.push(log);
    const outcomes = await Promise.allSettled([log.record(entry(1)), log.probe(), log.record(entry(2))]);
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status === 'rejected' && (outcome.reason as Error).message),
      Array(3).fill('audit trail write failed: disk full'),
    );
    assert.deepEqual(log.stats, { commits: 1, events: 0, failures: 1 });
    failing = false;
    await Promise.all([log.record(entry(3)), log.probe()]);
    assert.deepEqual(log.stats, { commits: 2, events: 1, failures: 1 });
    assert.equal((await verifyStore(store, signingKey.publicKeyPem)).ok, true);
  });

  test('a malformed entry is refused alone; the rest of its batch commits', async () => {
    const { log } = await openLog();
    const outcomes = await Promise.allSettled([
      log.record(entry(1)),
      log.record({ ...entry(2), time: new Date(Number.NaN) }),
      log.record({ ...entry(3), keyIds: [42] } as unknown as AuditEntryInput),
      log.record(entry(4)),
    ]);
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
    );
    assert.equal((await log.store.tail()).lastSeq, 2);
  });

  test('a closed store fails records and probes', async () => {
    const { log } = await openLog();
    await log.store.close();
    await assert.rejects(log.record(entry(1)), AuditWriteError);
    await assert.rejects(log.probe(), AuditWriteError);
  });

  test('close flushes what is pending, then refuses records', async () => {
    const { signingKey, log } = await openLog({ mode: 'worker' });
    const pending = Promise.all(Array.from({ length: 20 }, (_, i) => log.record(entry(i))));
    await log.close();
    await pending;
    await assert.rejects(log.record(entry(99)), AuditWriteError);
    await assert.rejects(log.probe(), AuditWriteError);
    const store = new SqliteAuditStore(auditPaths(dir).database, { readonly: true });
    try {
      assert.deepEqual(await verifyStore(store, signingKey.publicKeyPem), { ok: true, events: 20, digests: 0, eventsAfterLastDigest: 20 });
    } finally {
      await store.close();
    }
  });

  test('a writer thread that dies fails its commits; the next commit starts a new one', async () => {
    const { log, signingKey } = await openLog({ mode: 'worker' });
    await log.record(entry(1));
    const writer = (log as unknown as { writer: { worker: Worker } }).writer;
    const inFlight = log.record(entry(2)).then(
      () => 'committed',
      (error: unknown) => (error instanceof AuditWriteError ? 'failed' : 'unexpected'),
    );
    await writer.worker.terminate();
    assert.notEqual(await inFlight, 'unexpected');
    await log.record(entry(3));
    assert.equal((await verifyStore(log.store, signingKey.publicKeyPem)).ok, true);
  });

  test('a digest falls due by time with no new events: appendDigestIfDue and the timer write it', async () => {
    let now = T0.getTime();
    const { log, signingKey } = await openLog({ now: () => new Date(now), digestIntervalMs: 60_000 });
    await Promise.all([log.record(entry(1)), log.record(entry(2))]);
    now += 59_000;
    await log.appendDigestIfDue();
    assert.equal((await log.store.tail()).lastDigestSeq, 0);
    now += 1_000;
    await log.appendDigestIfDue();
    assert.equal((await log.store.tail()).lastDigestSeq, 1);
    await log.appendDigestIfDue();
    assert.equal((await log.store.tail()).lastDigestSeq, 1, 'nothing new to seal');
    now += 1_000;
    await log.record(entry(3));
    await log.close();

    // The timer (here every 5 ms) does the same on its own.
    const reopened = await openLog({ now: () => new Date(now), digestIntervalMs: 60_000, digestCheckMs: 5 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal((await reopened.log.store.tail()).lastDigestSeq, 1, 'not due yet');
    now += 60_000;
    for (let i = 0; i < 100 && (await reopened.log.store.tail()).lastDigestSeq < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal((await reopened.log.store.tail()).lastDigestSeq, 2);
    assert.deepEqual(await verifyStore(reopened.log.store, signingKey.publicKeyPem), {
      ok: true,
      events: 3,
      digests: 2,
      eventsAfterLastDigest: 0,
    });
  });

  test('lastCryptoUse and trackingStart answer from the trail', async () => {
    const { log } = await openLog({ now: () => T0 });
    assert.deepEqual(await log.trackingStart(), T0);
    assert.equal(await log.lastCryptoUse('key-a'), undefined);
    await log.record(entry(1));
    await log.record(entry(2, { eventName: 'Decrypt', errorCode: 'IncorrectKeyException', cryptoSuccess: false }));
    assert.deepEqual(await log.lastCryptoUse('key-a'), { eventName: 'Encrypt', time: entry(1).time, eventId: 'event-1' });
    assert.deepEqual(await log.trackingStart(), entry(1).time);
  });

  test('the worker mode refuses an injected clock', async () => {
    await assert.rejects(openAuditLog({ dataDir: dir, sealer: new Sealer(rootKey), now: () => T0 }), /inline mode only/);
  });

  test('the public key file matches the key that signs', async () => {
    const { signingKey } = await openLog();
    assert.equal(await readFile(auditPaths(dir).publicKey, 'utf8'), signingKey.publicKeyPem);
  });
});

/** What an attacker without the signing key can do: recompute every hash after a change. */
function rechain(events: StoredEvent[]): StoredEvent[] {
  let previous = ZERO_HASH;
  for (const event of events.sort((a, b) => a.seq - b.seq)) {
    previous = chainHash(previous, event.text);
    event.hash = previous;
  }
  return events;
}
