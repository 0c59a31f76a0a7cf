import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/client-node';
import { decrypt, decryptStream, encrypt, encryptStream, type MessageHeaderInfo } from '../../src/esdk/index.ts';
import { AES_KEY, aesKeyring, collect, pattern } from './support/fixtures.ts';

const MB = 1024 * 1024;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A source of `total` bytes in `chunkSize` pieces, made on demand (never held in memory whole). */
function source(total: number, chunkSize: number, counter?: { produced: number }): Readable {
  const block = pattern(chunkSize, 7);
  let produced = 0;
  return new Readable({
    highWaterMark: chunkSize,
    read() {
      if (produced >= total) return void this.push(null);
      const n = Math.min(chunkSize, total - produced);
      produced += n;
      if (counter) counter.produced = produced;
      this.push(Buffer.from(block.subarray(0, n)));
    },
  });
}

describe('streaming encrypt/decrypt', () => {
  it('streams 50 MB through encryptStream → decryptStream in constant memory', async () => {
    const expected = createHash('sha256');
    const block = pattern(64 * 1024, 7);
    for (let i = 0; i < 50 * 16; i++) expected.update(block);
    const actual = createHash('sha256');
    let received = 0;
    let peak = 0;
    gc();
    const baseline = process.memoryUsage().arrayBuffers;
    const sink = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        actual.update(chunk);
        received += chunk.length;
        if (received % (2 * MB) < chunk.length) {
          gc(); // measure what is retained, not garbage the collector has not reached yet
          peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline);
        }
        callback();
      },
    });
    const headers: MessageHeaderInfo[] = [];
    const encryptor = encryptStream({ keyring: aesKeyring, suiteId: 0x0478 }).on('header', (h: MessageHeaderInfo) => headers.push(h));
    await pipeline(source(50 * MB, 64 * 1024), encryptor, decryptStream({ keyring: aesKeyring }), sink);
    assert.equal(received, 50 * MB);
    assert.equal(actual.digest('hex'), expected.digest('hex'));
    assert.equal(headers.length, 1);
    assert.equal(headers[0].suiteId, 0x0478);
    assert.ok(peak < 16 * MB, `buffers grew by ${(peak / MB).toFixed(1)} MB while streaming 50 MB`);
  });

  it('applies backpressure: an unread encryptStream stops pulling its input', async () => {
    const counter = { produced: 0 };
    const encryptor = encryptStream({ keyring: aesKeyring, suiteId: 0x0478 });
    source(100 * MB, 16 * 1024, counter).pipe(encryptor);
    await sleep(300);
    assert.ok(counter.produced < 2 * MB, `read ${counter.produced} bytes with nobody reading the output`);
    encryptor.destroy();
  });

  it('holds the plaintext of a signed message until the footer signature verified', async () => {
    const plaintext = pattern(50_000);
    const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, suiteId: 0x0578, frameLength: 1024 });
    const footerStart = ciphertext.length - 2 - (ciphertext.length - findFooter(ciphertext) - 2);
    const decryptor = decryptStream({ keyring: aesKeyring });
    const out: Buffer[] = [];
    decryptor.on('data', (chunk: Buffer) => out.push(chunk));
    decryptor.write(ciphertext.subarray(0, footerStart));
    await sleep(50);
    assert.equal(out.length, 0, 'plaintext left before the signature was checked');
    decryptor.end(ciphertext.subarray(footerStart));
    await new Promise((resolve) => decryptor.on('end', resolve));
    assert.deepEqual(Buffer.concat(out), plaintext);
  });

  it('emits nothing and fails when the signature is bad', async () => {
    const { ciphertext } = await encrypt(pattern(20_000), { keyring: aesKeyring, suiteId: 0x0578, frameLength: 1024 });
    const tampered = Buffer.from(ciphertext);
    tampered[tampered.length - 5] ^= 1;
    const decryptor = decryptStream({ keyring: aesKeyring });
    let emitted = 0;
    decryptor.on('data', (chunk: Buffer) => (emitted += chunk.length));
    await assert.rejects(pipeline(Readable.from([tampered]), decryptor), { code: 'SignatureInvalid' });
    assert.equal(emitted, 0);
  });

  it('with allowUnsignedStreaming releases verified frames before the footer, and still checks the signature at the end', async () => {
    const plaintext = pattern(50_000);
    const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, suiteId: 0x0578, frameLength: 1024 });
    const footerStart = findFooter(ciphertext);
    const decryptor = decryptStream({ keyring: aesKeyring, allowUnsignedStreaming: true });
    const out: Buffer[] = [];
    decryptor.on('data', (chunk: Buffer) => out.push(chunk));
    decryptor.write(ciphertext.subarray(0, footerStart));
    await sleep(50);
    assert.ok(out.length > 0);
    decryptor.end(ciphertext.subarray(footerStart));
    await new Promise((resolve) => decryptor.on('end', resolve));
    assert.deepEqual(Buffer.concat(out), plaintext);

    const tampered = Buffer.from(ciphertext);
    tampered[tampered.length - 5] ^= 1;
    await assert.rejects(collect(decryptStream({ keyring: aesKeyring, allowUnsignedStreaming: true }), [tampered]), { code: 'SignatureInvalid' });
  });

  // 64-byte frames are gathered into one output buffer per chunk; frames of 16 KiB and more are
  // pushed as head, ciphertext and tag (encrypt-stream.ts, DIRECT_FRAME_LENGTH): both ways here.
  for (const [frameLength, chunkings] of [
    [64, [[1], [7], [63], [64], [65], [3 * 64 + 5], [10, 100, 1, 63, 64, 65]]],
    [16 * 1024, [[7919], [16 * 1024 - 1], [16 * 1024], [16 * 1024 + 1], [3 * 16 * 1024 + 5], [1000, 30_000, 1, 16_383, 16_384, 16_385]]],
  ] as const) {
  it(`frames any chunking of the input the same (${frameLength}-byte frames): chunks smaller, equal and larger than a frame, and a reused input buffer`, async () => {
    const plaintext = pattern(5 * frameLength + 17, 3);
    for (const sizes of chunkings) {
      for (const total of [0, 5, frameLength, frameLength + 3, plaintext.length]) {
        const input = plaintext.subarray(0, total);
        const chunks: Buffer[] = [];
        for (let position = 0, i = 0; position < total; i++) {
          const size = sizes[i % sizes.length];
          chunks.push(input.subarray(position, position + size));
          position += size;
        }
        // One buffer reused for every chunk, each overwritten once its write has been taken (the
        // write callback): bytes the stream holds on to must be its own copies.
        const scratch = Buffer.alloc(Math.max(...sizes));
        const stream = encryptStream({ keyring: aesKeyring, suiteId: 0x0478, frameLength });
        const out: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => out.push(chunk));
        const ended = new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject));
        for (const chunk of chunks) {
          chunk.copy(scratch);
          await new Promise<void>((resolve, reject) => stream.write(scratch.subarray(0, chunk.length), (error) => (error ? reject(error) : resolve())));
          scratch.fill(0xee);
        }
        stream.end();
        await ended;
        const { plaintext: decrypted, header } = await decrypt(Buffer.concat(out), { keyring: aesKeyring });
        assert.ok(decrypted.equals(input), `chunks of ${sizes.join('/')}, ${total} bytes`);
        assert.equal(header.frameLength, frameLength);
      }
    }
  });
  }

  it('non-framed streaming needs plaintextLength and enforces it', async () => {
    await assert.rejects(collect(encryptStream({ keyring: aesKeyring, contentType: 'non-framed' }), [Buffer.alloc(1)]), { code: 'InvalidArgument' });
    await assert.rejects(collect(encryptStream({ keyring: aesKeyring, contentType: 'non-framed', plaintextLength: 5 }), [Buffer.alloc(4)]), { code: 'InvalidArgument' });
    await assert.rejects(collect(encryptStream({ keyring: aesKeyring, contentType: 'non-framed', plaintextLength: 3 }), [Buffer.alloc(4)]), { code: 'InvalidArgument' });
    const message = await collect(encryptStream({ keyring: aesKeyring, contentType: 'non-framed', plaintextLength: 4 }), [Buffer.from('ab'), Buffer.from('cd')]);
    assert.equal((await decrypt(message, { keyring: aesKeyring })).plaintext.toString(), 'abcd');
  });

  it('a framed encryptStream holds to plaintextLength too, and refuses one that is not a length', async () => {
    await assert.rejects(collect(encryptStream({ keyring: aesKeyring, plaintextLength: 10 }), [Buffer.alloc(100_000)]), { code: 'InvalidArgument', message: /more plaintext than plaintextLength/ });
    await assert.rejects(collect(encryptStream({ keyring: aesKeyring, plaintextLength: 10 }), [Buffer.alloc(9)]), { code: 'InvalidArgument', message: /less plaintext than plaintextLength/ });
    const message = await collect(encryptStream({ keyring: aesKeyring, plaintextLength: 5000, frameLength: 4096 }), [Buffer.alloc(3000, 1), Buffer.alloc(2000, 2)]);
    assert.equal((await decrypt(message, { keyring: aesKeyring })).plaintext.length, 5000);
    for (const plaintextLength of [-1, 1.5, Number.NaN, '5' as unknown as number]) {
      for (const contentType of ['framed', 'non-framed'] as const) {
        await assert.rejects(collect(encryptStream({ keyring: aesKeyring, contentType, plaintextLength }), [Buffer.from('abc')]), { code: 'InvalidArgument' });
      }
    }
  });

  it('holds what a frame has so far, not a whole frame: a 4 GiB frame length costs a short input what it holds', async () => {
    const input = pattern(200_000, 3);
    const chunks = [0, 65_536, 131_072, 196_608].map((at) => input.subarray(at, at + 65_536));
    gc();
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const stream = encryptStream({ keyring: aesKeyring, frameLength: 2 ** 32 - 1, suiteId: 0x0478 });
    const out: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => out.push(chunk));
    for (const chunk of chunks) {
      await new Promise<void>((resolve, reject) => stream.write(chunk, (error) => (error ? reject(error) : resolve())));
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
    }
    stream.end();
    await finished(stream);
    // Before: a 4 GiB buffer at the second chunk. Now at most twice what is held (doubling) plus the chunks.
    assert.ok(peak < 16 * MB, `array buffers grew by ${peak} bytes`);
    assert.deepEqual((await decrypt(Buffer.concat(out), { keyring: aesKeyring })).plaintext, input);
  });

  it('frames right whatever the chunking, frame length and declared length (the pending buffer grows in steps)', async () => {
    const input = pattern(70_001, 5);
    for (const frameLength of [1, 7, 4096, 65_536, 100_000, 2 ** 32 - 1]) {
      for (const declared of [undefined, input.length]) {
        for (let seed = 1; seed <= 3; seed++) {
          const chunks: Buffer[] = [];
          let x = seed * 7919;
          for (let at = 0; at < input.length; ) {
            x = (x * 1103515245 + 12345) >>> 0;
            const size = 1 + (x % (seed === 1 ? 50 : 20_000));
            chunks.push(input.subarray(at, at + size));
            at += size;
          }
          if (frameLength === 1 && seed > 1) continue; // 70,001 frames once is enough
          const options = { keyring: aesKeyring, frameLength, suiteId: 0x0478, ...(declared === undefined ? {} : { plaintextLength: declared }) };
          const message = await collect(encryptStream(options), chunks);
          assert.deepEqual((await decrypt(message, { keyring: aesKeyring })).plaintext, input, `frame ${frameLength}, seed ${seed}, declared ${declared}`);
        }
      }
    }
  });

  it('an error thrown by a \'header\' listener fails the stream instead of escaping', async () => {
    const message = (await encrypt(Buffer.from('abc'), { keyring: aesKeyring })).ciphertext;
    const cases = [
      { stream: encryptStream({ keyring: aesKeyring }), input: Buffer.from('abc') },
      { stream: decryptStream({ keyring: aesKeyring }), input: message },
    ];
    for (const { stream, input } of cases) {
      stream.on('header', () => {
        throw new Error('listener failed');
      });
      await assert.rejects(collect(stream, [input]), /listener failed/);
    }
  });

  it('the official SDK decrypts encryptStream output and Strongroom decryptStream reads the official encryptStream output', async () => {
    const official = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const theirs = new RawAesKeyringNode({
      keyNamespace: 'strongroom-test',
      keyName: 'aes-256',
      unencryptedMasterKey: new Uint8Array(AES_KEY),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    });
    const plaintext = pattern(300_000);
    for (const suiteId of [0x0478, 0x0578]) {
      const ours = await collect(encryptStream({ keyring: aesKeyring, suiteId, frameLength: 4096 }), [plaintext.subarray(0, 1000), plaintext.subarray(1000)]);
      assert.deepEqual(Buffer.from((await official.decrypt(theirs, ours)).plaintext), plaintext);
      // Frames pushed in pieces (64 KB frames): the official SDK reads them, signature included.
      const pieces = await collect(encryptStream({ keyring: aesKeyring, suiteId, frameLength: 65_536 }), [plaintext.subarray(0, 70_000), plaintext.subarray(70_000)]);
      assert.deepEqual(Buffer.from((await official.decrypt(theirs, pieces)).plaintext), plaintext);
      const officialMessage: Buffer[] = [];
      await pipeline(Readable.from([plaintext]), official.encryptStream(theirs, { suiteId, frameLength: 4096 }), new Writable({ write(c: Buffer, _e, cb) { officialMessage.push(c); cb(); } }));
      assert.deepEqual(await collect(decryptStream({ keyring: aesKeyring }), officialMessage), plaintext);
    }
  });
});

/** Start of the footer (uint16 length ‖ DER signature), which ends the message. */
function findFooter(ciphertext: Buffer): number {
  for (let length = 60; length <= 110; length++) {
    const at = ciphertext.length - 2 - length;
    if (ciphertext.readUInt16BE(at) === length) return at;
  }
  throw new Error('no footer');
}
