import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { availableParallelism } from 'node:os';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/client-node';
import { decrypt, encryptStream } from '../../src/esdk/index.ts';
import { ENGAGE_BYTES, HASH_WORKER_MODULE, setHashWorkerModule, StreamHasher, streamHashStats } from '../../src/esdk/parallel/stream-hash.ts';
import { copyInto } from '../../src/esdk/parallel/shared-copy.ts';
import { takePresignMaterial } from '../../src/esdk/signing-key-pool.ts';
import { AES_KEY, aesKeyring, pattern } from './support/fixtures.ts';

/** Feeds `bytes` in pieces of the given lengths, cycling (odd lengths put every copy off alignment). */
function feed(hasher: { update(bytes: Uint8Array): void }, bytes: Buffer, lengths: number[]): void {
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.min(lengths[i % lengths.length], bytes.length - at);
    hasher.update(bytes.subarray(at, at + n));
    at += n;
  }
}

/**
 * Only a signing key with a precomputed nonce can sign a digest hashed elsewhere, and the signing-key
 * pool starts cold: waits until it hands out material. That takes one away; the pool then holds a
 * batch of eight, so the message that follows gets one.
 */
async function warmSigningPool(): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!takePresignMaterial('P-384')) {
    assert.ok(Date.now() < deadline, 'the signing-key pool made no key in 30 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Past the hasher's RESERVE_BYTES (2 MiB): a message this long reserves a worker if one is free. */
const RESERVE_PROBE = 2 * 1024 * 1024 + 1;

const sha = (algorithm: 'sha256' | 'sha384', bytes: Buffer): Buffer => createHash(algorithm).update(bytes).digest();

/** Hashes messages until the worker started on one in time: the first loads its module (tsx) first. */
function warmHashWorker(): void {
  const bytes = pattern(ENGAGE_BYTES + 1, 5);
  for (let i = 0; i < 10; i++) {
    const unstarted = streamHashStats.unstarted;
    const hasher = new StreamHasher('sha384');
    hasher.update(bytes);
    assert.deepEqual(hasher.digest(), sha('sha384', bytes));
    if (streamHashStats.unstarted === unstarted) return;
  }
  assert.fail('the hash worker never started on a job in time');
}

describe('signature hash beside a stream (parallel/stream-hash.ts)', () => {
  it('has a worker to hash on, on this machine', () => {
    // CI runs on 2 cores; with one the hasher would always hash on its own thread.
    assert.ok(availableParallelism() >= 2);
  });

  before(warmHashWorker);

  it('gives the same digest as node:crypto, on this thread below ENGAGE_BYTES and on the worker above', () => {
    // 0 and 1 KB never engage the worker; the others do, and the longest wraps the 8 MiB ring twice.
    for (const size of [0, 1024, ENGAGE_BYTES, ENGAGE_BYTES + 1, 3 * ENGAGE_BYTES + 7, 21 * 1024 * 1024 + 13]) {
      const bytes = pattern(size, size + 1);
      for (const algorithm of ['sha384', 'sha256'] as const) {
        const before = { ...streamHashStats };
        const hasher = new StreamHasher(algorithm);
        feed(hasher, bytes, [65_537, 13, 4_129, 1_000_003]);
        assert.deepEqual(hasher.digest(), sha(algorithm, bytes), `${size} bytes, ${algorithm}`);
        const engaged = streamHashStats.beside - before.beside;
        assert.equal(engaged, size > ENGAGE_BYTES ? 1 : 0, `${size} bytes: worker engaged ${engaged} times`);
        assert.equal(streamHashStats.local, before.local);
        assert.equal(streamHashStats.unstarted, before.unstarted);
      }
    }
  });

  // One worker and one 8 MiB ring per core: kept to machines of a sensible size (CI has 2 cores).
  it('many short messages at once: each keeps its first bytes apart and gets its own digest', () => {
    // More at once than the kept full-size start buffers: the others grow theirs from 64 KiB.
    const messages = Array.from({ length: 6 }, (_, i) => pattern(1_500_000 + i * 100_003, 40 + i));
    const hashers = messages.map(() => new StreamHasher('sha384'));
    for (let at = 0; at < 2_100_000; at += 10_007) {
      hashers.forEach((hasher, i) => hasher.update(messages[i].subarray(at, at + 10_007)));
    }
    hashers.forEach((hasher, i) => assert.deepEqual(hasher.digest(), sha('sha384', messages[i]), `message ${i}`));
  });

  it('hashes on its own thread when every worker is taken, and gives the worker back after each message', { skip: availableParallelism() > 16 ? 'more than 16 cores' : false }, () => {
    const workers = availableParallelism() - 1;
    const bytes = pattern(ENGAGE_BYTES + 100_000, 7);
    const before = { ...streamHashStats };
    const hashers = Array.from({ length: workers + 1 }, () => new StreamHasher('sha384'));
    // Interleaved, so all of them are in flight at once.
    for (let at = 0; at < bytes.length; at += 50_000) for (const hasher of hashers) hasher.update(bytes.subarray(at, at + 50_000));
    for (const hasher of hashers) assert.deepEqual(hasher.digest(), sha('sha384', bytes));
    assert.equal(streamHashStats.beside - before.beside, workers);
    assert.equal(streamHashStats.local - before.local, 1);
    // All given back: the next message finds a worker.
    const next = new StreamHasher('sha384');
    next.update(bytes);
    assert.deepEqual(next.digest(), sha('sha384', bytes));
    assert.equal(streamHashStats.beside - before.beside, workers + 1);
  });

  it('frees its worker when a message is abandoned part way', () => {
    const bytes = pattern(2 * ENGAGE_BYTES, 9);
    const before = { ...streamHashStats };
    for (let i = 0; i < availableParallelism() + 1; i++) {
      const dropped = new StreamHasher('sha384');
      dropped.update(bytes);
      dropped.abandon();
      dropped.abandon(); // twice is harmless
    }
    // The worker given back must have stopped its abandoned job, or it would not start on this one
    // (unstarted) and the message would be hashed here.
    const hasher = new StreamHasher('sha384');
    hasher.update(bytes);
    assert.deepEqual(hasher.digest(), sha('sha384', bytes));
    assert.equal(streamHashStats.local, before.local, 'an abandoned message kept its worker');
    assert.equal(streamHashStats.unstarted, before.unstarted, 'the worker did not leave its abandoned job');
    assert.equal(streamHashStats.beside - before.beside, availableParallelism() + 2);
  });

  it('a hasher used after digest() or abandon() ignores updates and refuses a second digest', () => {
    const hasher = new StreamHasher('sha384');
    hasher.update(pattern(2 * ENGAGE_BYTES, 4));
    hasher.abandon();
    hasher.update(pattern(ENGAGE_BYTES, 4));
    assert.throws(() => hasher.digest(), /already taken or abandoned/);
    const done = new StreamHasher('sha256');
    done.update(Buffer.from('abc'));
    assert.deepEqual(done.digest(), sha('sha256', Buffer.from('abc')));
    assert.throws(() => done.digest(), /already taken or abandoned/);
  });

  it('a signed encryptStream hashes beside, and the official SDK and ours verify its signature', async () => {
    const plaintext = pattern(3 * ENGAGE_BYTES + 4_321, 11);
    const pieces: Buffer[] = [];
    for (let at = 0; at < plaintext.length; at += 65_536) pieces.push(plaintext.subarray(at, at + 65_536));
    for (const frameLength of [4096, 65536]) {
      await warmSigningPool();
      const before = streamHashStats.beside;
      const out: Buffer[] = [];
      await pipeline(Readable.from(pieces), encryptStream({ keyring: aesKeyring, suiteId: 0x0578, frameLength }), new Writable({ write(chunk: Buffer, _e, done) { out.push(chunk); done(); } }));
      assert.equal(streamHashStats.beside, before + 1);
      const message = Buffer.concat(out);
      assert.deepEqual(Buffer.from((await decrypt(message, { keyring: aesKeyring })).plaintext), plaintext);
      const theirs = new RawAesKeyringNode({ keyNamespace: 'strongroom-test', keyName: 'aes-256', unencryptedMasterKey: new Uint8Array(AES_KEY), wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING });
      const { plaintext: official } = await buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT).decrypt(theirs, message);
      assert.deepEqual(Buffer.from(official), plaintext);
    }
  });

  it('a destroyed encryptStream gives its worker back', async () => {
    const before = { ...streamHashStats };
    for (let i = 0; i < availableParallelism() + 1; i++) {
      await warmSigningPool();
      const stream = encryptStream({ keyring: aesKeyring, suiteId: 0x0578 });
      stream.resume();
      await new Promise<void>((resolve) => stream.write(pattern(ENGAGE_BYTES + 1, i), () => resolve()));
      stream.destroy();
    }
    assert.equal(streamHashStats.beside - before.beside, availableParallelism() + 1);
    assert.equal(streamHashStats.local, before.local);
  });

  it('an encryptStream destroyed by its reader inside push(), part way through a frame, gives its worker back', async () => {
    // 64 KB frames leave as three pushes each; a 'data' handler runs inside push() and may destroy
    // the stream between them. The hasher must not take a worker again for the pieces after that.
    const before = { ...streamHashStats };
    for (let i = 0; i < availableParallelism() + 1; i++) {
      await warmSigningPool();
      const stream = encryptStream({ keyring: aesKeyring, suiteId: 0x0578, frameLength: 65536 });
      let seen = 0;
      stream.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > ENGAGE_BYTES + 1024 * 1024) stream.destroy();
      });
      const closed = new Promise<void>((resolve) => stream.on('close', () => resolve()));
      stream.write(pattern(3 * ENGAGE_BYTES, i));
      await closed;
    }
    assert.equal(streamHashStats.beside - before.beside, availableParallelism() + 1);
    assert.equal(streamHashStats.local, before.local, 'a destroyed stream kept its worker');
    assert.equal(streamHashStats.unstarted, before.unstarted);
  });

  it('a message dropped without digest() or abandon() gives its worker back once collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const before = { ...streamHashStats };
    // On 2 cores there is one worker: held by a dropped message, later ones would all hash here.
    for (const posted of [true, false]) {
      (() => {
        const hasher = new StreamHasher('sha384');
        hasher.update(pattern(posted ? ENGAGE_BYTES + 1 : ENGAGE_BYTES, 31));
      })();
      let found = false;
      for (let i = 0; i < 50 && !found; i++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 20));
        const probe = new StreamHasher('sha384');
        const local = streamHashStats.local;
        probe.update(pattern(RESERVE_PROBE, 32));
        found = streamHashStats.local === local;
        probe.abandon();
      }
      assert.ok(found, `the worker of a dropped message (${posted ? 'posted' : 'reserved'}) never came back`);
    }
    assert.equal(streamHashStats.unstarted, before.unstarted);
    warmHashWorker();
  });

  it('hashes the message itself, losing nothing, when its worker never starts on the job', () => {
    // A worker that cannot load its module, or is still loading, looks the same from the stream:
    // the job is not accepted. The stream waits a bounded time, then hashes what the ring holds.
    setHashWorkerModule(new URL('./support/silent-hash-worker.ts', import.meta.url));
    try {
      const bytes = pattern(3 * ENGAGE_BYTES + 17, 21); // past the ring's 8 MiB: the stream must wait
      const before = { ...streamHashStats };
      const hasher = new StreamHasher('sha384');
      feed(hasher, bytes, [65_536, 333]);
      assert.deepEqual(hasher.digest(), sha('sha384', bytes));
      assert.equal(streamHashStats.unstarted - before.unstarted, 1);
      // Shorter than the ring: the stream notices at the digest instead.
      const short = pattern(ENGAGE_BYTES + 5, 22);
      const second = new StreamHasher('sha384');
      feed(second, short, [65_536]);
      assert.deepEqual(second.digest(), sha('sha384', short));
      assert.equal(streamHashStats.unstarted - before.unstarted, 2);
    } finally {
      setHashWorkerModule(HASH_WORKER_MODULE);
    }
    warmHashWorker();
  });
});

describe('copyInto', () => {
  it('copies into shared and ordinary memory at any alignment', () => {
    const source = pattern(10_000, 3);
    for (const target of [Buffer.from(new SharedArrayBuffer(12_000)), Buffer.alloc(12_000)]) {
      for (const [offset, start, end] of [[0, 0, 10_000], [3, 1, 9_999], [1_001, 7, 7], [11_999, 5, 6]]) {
        target.fill(0);
        copyInto(target, offset, source.subarray(start, end));
        assert.deepEqual(target.subarray(offset, offset + end - start), source.subarray(start, end));
        assert.equal(target.subarray(0, offset).every((b) => b === 0), true);
        assert.equal(target.subarray(offset + end - start).every((b) => b === 0), true);
      }
    }
  });
});
