import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/client-node';
import { decrypt, decryptStream, encrypt } from '../../src/esdk/index.ts';
import { createHash, createSecretKey, randomBytes } from 'node:crypto';
import { helperStats, parallelAvailable, PARALLEL_THRESHOLD, runOnHelper, shared, spareInputCopy, worthHashHelper, worthHelper } from '../../src/esdk/parallel/frame-pool.ts';
import { runHashJob, type FrameJob } from '../../src/esdk/parallel/frame-worker.ts';
import { CachingCryptographicMaterialsManager } from '../../src/esdk/caching-cmm.ts';
import { AES_KEY, aesKeyring, collect, pattern, policyFor } from './support/fixtures.ts';

/** Messages above PARALLEL_THRESHOLD take the two-thread path (src/esdk/parallel/). */
const SIZE = PARALLEL_THRESHOLD * 2 + 12_345;
const plaintext = pattern(SIZE, 99);
const official = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT);
const theirs = new RawAesKeyringNode({
  keyNamespace: 'strongroom-test',
  keyName: 'aes-256',
  unencryptedMasterKey: new Uint8Array(AES_KEY),
  wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
});

describe('large buffered messages on two threads', () => {
  it('has a helper thread on this machine', () => {
    assert.equal(parallelAvailable(), true);
  });

  it('posts a job to the helper before runOnHelper returns, so the caller\'s own share overlaps it', async () => {
    // sealLarge/openLarge call runOnHelper, then work through their own frames synchronously. Were
    // the job posted from a promise callback, the helper would start only once the caller's share
    // was done, and the two halves would run one after the other (as they did until 2026-11-30).
    const job = (): FrameJob => ({
      op: 'seal',
      suiteId: 0x0478,
      key: createSecretKey(randomBytes(32)),
      messageId: randomBytes(32),
      frameLength: 16,
      firstSequence: 1,
      lastSequence: 1,
      finalLength: -1,
      input: new SharedArrayBuffer(16),
      inputOffset: 0,
      output: new SharedArrayBuffer(4 + 12 + 16 + 16),
      outputOffset: 0,
    });
    const posted = helperStats.posted;
    const first = runOnHelper(job());
    assert.equal(helperStats.posted, posted + 1, 'not posted before runOnHelper returned');
    // One already outstanding: the next waits its turn, and both complete.
    const second = runOnHelper(job());
    assert.equal(helperStats.posted, posted + 1);
    await Promise.all([first, second]);
    assert.equal(helperStats.posted, posted + 2);
  });

  for (const [suiteId, frameLength] of [[0x0478, 65536], [0x0578, 4096], [0x0014, 4096], [0x0378, 65536]] as const) {
    it(`suite 0x${suiteId.toString(16).padStart(4, '0')}, ${frameLength}-byte frames: round trip, streaming and official SDK agree`, async () => {
      const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, suiteId, frameLength, commitmentPolicy: policyFor(suiteId) });
      assert.ok((await decrypt(ciphertext, { keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })).plaintext.equals(plaintext));
      assert.ok((await collect(decryptStream({ keyring: aesKeyring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }), [ciphertext])).equals(plaintext));
      assert.ok(Buffer.from((await official.decrypt(theirs, ciphertext)).plaintext).equals(plaintext));
      if (suiteId >= 0x0478) {
        const { result } = await official.encrypt(theirs, plaintext, { suiteId, frameLength });
        assert.ok((await decrypt(result, { keyring: aesKeyring })).plaintext.equals(plaintext));
      }
    });
  }

  it('hands smaller messages to the helper when they have many frames, or are signed and decrypted', () => {
    const KiB = 1024;
    const MiB = 1024 * KiB;
    assert.equal(worthHelper(PARALLEL_THRESHOLD, 1024 * KiB), true, 'any framing from 4 MiB');
    assert.equal(worthHelper(1 * MiB, 4 * KiB), true, '256 frames of 4 KiB');
    assert.equal(worthHelper(512 * KiB, 4 * KiB), true, '128 frames of 4 KiB');
    assert.equal(worthHelper(256 * KiB, 4 * KiB), false, 'measured slower: 64 frames');
    assert.equal(worthHelper(2 * MiB, 64 * KiB), false, 'measured slower: 32 frames of 64 KiB');
    assert.equal(worthHelper(64 * KiB, 16), false, 'many tiny frames are still too little work');
    assert.equal(worthHelper(256 * KiB, 4 * KiB, true), true, 'signed decrypt: the helper opens every frame');
    assert.equal(worthHelper(1 * MiB, 64 * KiB, true), true);
    assert.equal(worthHelper(512 * KiB, 64 * KiB, true), false);
  });

  it('1 MiB in 4 KB frames: two threads (helper jobs posted), official SDK both ways, tampering, truncation and trailing bytes detected in message order', async () => {
    const small = pattern(1024 * 1024 + 777, 7);
    for (const suiteId of [0x0478, 0x0578]) {
      const posted = helperStats.posted;
      const { ciphertext } = await encrypt(small, { keyring: aesKeyring, suiteId, frameLength: 4096 });
      assert.equal(helperStats.posted, posted + 1, 'encrypt posted one job');
      assert.ok((await decrypt(ciphertext, { keyring: aesKeyring })).plaintext.equals(small));
      assert.equal(helperStats.posted, posted + 2, 'decrypt posted one job');
      assert.ok(Buffer.from((await official.decrypt(theirs, ciphertext)).plaintext).equals(small));
      const { result } = await official.encrypt(theirs, small, { suiteId, frameLength: 4096 });
      assert.ok((await decrypt(result, { keyring: aesKeyring })).plaintext.equals(small));
      for (const at of [Math.floor(ciphertext.length * 0.3), Math.floor(ciphertext.length * 0.8)]) {
        const tampered = Buffer.from(ciphertext);
        tampered[at] ^= 1;
        await assert.rejects(decrypt(tampered, { keyring: aesKeyring }), { code: 'AuthenticationFailed' });
      }
      await assert.rejects(decrypt(ciphertext.subarray(0, ciphertext.length - 1), { keyring: aesKeyring }), { code: 'MalformedMessage' });
      await assert.rejects(decrypt(Buffer.concat([ciphertext, Buffer.alloc(1)]), { keyring: aesKeyring }), { code: 'MalformedMessage' });
      // Tampered early and truncated late: the first problem in message order wins, as on one thread.
      const both = Buffer.from(ciphertext.subarray(0, ciphertext.length - 5000));
      both[Math.floor(both.length * 0.1)] ^= 1;
      await assert.rejects(decrypt(both, { keyring: aesKeyring }), { code: 'AuthenticationFailed' });
      // An exact multiple of the frame length: an empty final frame, on two threads too.
      const exact = small.subarray(0, 1024 * 1024);
      const postedBefore = helperStats.posted;
      const exactMessage = (await encrypt(exact, { keyring: aesKeyring, suiteId, frameLength: 4096 })).ciphertext;
      assert.ok((await decrypt(exactMessage, { keyring: aesKeyring })).plaintext.equals(exact));
      assert.equal(helperStats.posted, postedBefore + 2);
      assert.ok(Buffer.from((await official.decrypt(theirs, exactMessage)).plaintext).equals(exact));
    }
  });

  it('detects tampering in either thread\'s half, truncation, trailing bytes and a bad signature', async () => {
    for (const suiteId of [0x0478, 0x0578]) {
      const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, suiteId, frameLength: 4096 });
      const signed = suiteId === 0x0578;
      for (const at of [Math.floor(ciphertext.length * 0.25), Math.floor(ciphertext.length * 0.75), ciphertext.length - (signed ? 140 : 20)]) {
        const tampered = Buffer.from(ciphertext);
        tampered[at] ^= 1;
        await assert.rejects(decrypt(tampered, { keyring: aesKeyring }), { code: 'AuthenticationFailed' }, `0x${suiteId.toString(16)} flip at ${at}`);
      }
      await assert.rejects(decrypt(ciphertext.subarray(0, ciphertext.length - 1), { keyring: aesKeyring }), { code: 'MalformedMessage' });
      await assert.rejects(decrypt(Buffer.concat([ciphertext, Buffer.alloc(1)]), { keyring: aesKeyring }), { code: 'MalformedMessage' });
      if (signed) {
        const badSignature = Buffer.from(ciphertext);
        badSignature[badSignature.length - 3] ^= 1;
        await assert.rejects(decrypt(badSignature, { keyring: aesKeyring }), { code: 'SignatureInvalid' });
      }
    }
  });

  it('a signed message from 4 MiB is hashed on the helper while this thread seals it; the official SDK verifies it', async () => {
    assert.equal(worthHashHelper(PARALLEL_THRESHOLD), true);
    assert.equal(worthHashHelper(PARALLEL_THRESHOLD - 1), false, 'measured slower below (fresh shared pages)');
    for (const frameLength of [4096, 65536]) {
      const hashes = helperStats.hashes;
      const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, suiteId: 0x0578, frameLength });
      assert.equal(helperStats.hashes, hashes + 1, 'one hash job');
      assert.ok(Buffer.from((await official.decrypt(theirs, ciphertext)).plaintext).equals(plaintext));
      assert.ok((await decrypt(ciphertext, { keyring: aesKeyring })).plaintext.equals(plaintext));
    }
  });

  it('a signing key used twice (a caching CMM) signs its second message on this thread, the frames split between threads', async () => {
    const cmm = new CachingCryptographicMaterialsManager({ underlying: aesKeyring, maxAge: 60_000 });
    const hashes = helperStats.hashes;
    const posted = helperStats.posted;
    const messages = [];
    for (let i = 0; i < 2; i++) messages.push((await encrypt(plaintext, { cmm, suiteId: 0x0578, frameLength: 4096 })).ciphertext);
    assert.equal(helperStats.hashes - hashes, 1, 'only the first signature had a precomputed nonce');
    assert.equal(helperStats.posted - posted, 2, 'the second split its frames with the helper');
    for (const message of messages) assert.ok(Buffer.from((await official.decrypt(theirs, message)).plaintext).equals(plaintext));
  });

  it('the hash job: the digest of what was published, step by step; a caller that gives up stops it', () => {
    const message = new SharedArrayBuffer(300_000);
    const bytes = new Uint8Array(message);
    bytes.set(pattern(300_000, 5));
    const progress = new Int32Array(new SharedArrayBuffer(4));
    Atomics.store(progress, 0, Math.ceil(300_000 / 65536));
    const digest = runHashJob({ op: 'hash', algorithm: 'sha384', message, end: 300_000, unit: 65536, progress: progress.buffer as SharedArrayBuffer });
    assert.ok(digest.equals(createHash('sha384').update(bytes).digest()));
    Atomics.store(progress, 0, -1);
    assert.throws(() => runHashJob({ op: 'hash', algorithm: 'sha384', message, end: 300_000, unit: 65536, progress: progress.buffer as SharedArrayBuffer }), { code: 'KeyringFailure' });
  });

  it('reuses the copy of the plaintext it hands the helper, and leaves no plaintext in it', async () => {
    const secret = Buffer.alloc(SIZE, 0xa5);
    await encrypt(secret, { keyring: aesKeyring, suiteId: 0x0478, frameLength: 4096 });
    const spare = spareInputCopy();
    assert.ok(spare, 'a spare copy is kept');
    // (It may also hold ciphertext an earlier decrypt copied: that is no secret.)
    const holdsPlaintext = (copy: SharedArrayBuffer) => Buffer.from(copy).indexOf(Buffer.alloc(64, 0xa5)) >= 0;
    assert.equal(holdsPlaintext(spare), false, 'the helper zeroed every frame it sealed');
    const { ciphertext } = await encrypt(secret, { keyring: aesKeyring, suiteId: 0x0478, frameLength: 4096 });
    assert.equal(spareInputCopy(), spare, 'the same copy was used again');
    assert.equal(holdsPlaintext(spare), false);
    assert.ok((await decrypt(ciphertext, { keyring: aesKeyring })).plaintext.equals(secret));
    // A plaintext that already is shared memory is read where it is, and never wiped.
    const sharedPlaintext = Buffer.from(new SharedArrayBuffer(SIZE)).fill(0x5a);
    const sealed = (await encrypt(sharedPlaintext, { keyring: aesKeyring, suiteId: 0x0478, frameLength: 4096 })).ciphertext;
    assert.ok(sharedPlaintext.every((byte) => byte === 0x5a), "the caller's plaintext is untouched");
    assert.ok((await decrypt(sealed, { keyring: aesKeyring })).plaintext.equals(sharedPlaintext));
  });

  it('a copy discarded after a failed job is zeroed; a view of shared memory is never touched', () => {
    const plain = Buffer.alloc(100_000, 0xa5);
    const copy = shared(plain, 10, 90_000);
    // (It may be the reused spare, longer than this copy: the rest is not this copy's.)
    const bytes = Buffer.from(copy.buffer, 0, 89_990);
    assert.ok(bytes.every((byte) => byte === 0xa5), 'the copy holds the bytes');
    copy.discard();
    assert.ok(bytes.every((byte) => byte === 0));
    const view = Buffer.from(new SharedArrayBuffer(1000)).fill(0x5a);
    shared(view, 0, 1000).discard();
    assert.ok(view.every((byte) => byte === 0x5a));
  });
});
