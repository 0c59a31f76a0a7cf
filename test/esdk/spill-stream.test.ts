import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { beginDecryption, decryptSettings, tryParseHeader } from '../../src/esdk/decrypt-session.ts';
import { decryptStream, encrypt, type DecryptOptions } from '../../src/esdk/index.ts';
import { aesKeyring, collect, pattern } from './support/fixtures.ts';
import { spillDescriptors } from './support/spill-child.ts';

/** The spill of decryptStream at small sizes (spillThreshold lowered), in this process. */
const MB = 1024 * 1024;
let spillDirectory: string;

function options(extra: Partial<DecryptOptions> = {}): DecryptOptions {
  return { keyring: aesKeyring, spillDirectory, ...extra };
}

/** Feeds the message, waits until every byte was processed (spilled), and leaves the stream open. */
async function feedWithoutEnd(stream: Writable, message: Buffer): Promise<void> {
  for (let at = 0; at < message.length; at += 64 * 1024) {
    await new Promise<void>((resolve) => stream.write(message.subarray(at, at + 64 * 1024), () => resolve()));
  }
}

describe('decryptStream spill', () => {
  before(async () => {
    spillDirectory = await mkdtemp(join(tmpdir(), 'strongroom-spill-unit-'));
  });
  after(async () => {
    await rm(spillDirectory, { recursive: true, force: true });
  });

  it('keeps a signed message below the threshold in memory: no spill file is ever made', async () => {
    const plaintext = pattern(1 * MB);
    const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, suiteId: 0x0578 });
    const decryptor = decryptStream(options());
    await feedWithoutEnd(decryptor, ciphertext);
    assert.equal((await spillDescriptors(spillDirectory)).length, 0);
    const out: Buffer[] = [];
    decryptor.on('data', (chunk: Buffer) => out.push(chunk));
    decryptor.end();
    await new Promise((resolve) => decryptor.on('end', resolve));
    assert.deepEqual(Buffer.concat(out), plaintext);
  });

  for (const [title, encryptOptions] of [
    ['signed framed', { suiteId: 0x0578, frameLength: 1000 }],
    ['non-framed', { suiteId: 0x0478, contentType: 'non-framed' as const }],
    ['signed non-framed', { suiteId: 0x0578, contentType: 'non-framed' as const }],
  ] as const) {
    it(`round-trips a ${title} message through the spill and removes it`, async () => {
      const plaintext = pattern(3 * MB + 12345, 3);
      const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, ...encryptOptions });
      const decryptor = decryptStream(options({ spillThreshold: 0 }));
      await feedWithoutEnd(decryptor, ciphertext);
      assert.equal((await spillDescriptors(spillDirectory)).length, 1, 'no spill file while the message is withheld');
      const out: Buffer[] = [];
      decryptor.on('data', (chunk: Buffer) => out.push(chunk));
      decryptor.end();
      await new Promise((resolve) => decryptor.on('close', resolve));
      assert.deepEqual(Buffer.concat(out), plaintext);
      assert.equal((await spillDescriptors(spillDirectory)).length, 0);
      assert.deepEqual(await readdir(spillDirectory), []);
    });
  }

  for (const [title, frameLength, threshold, size] of [
    ['frames larger than a read batch (1.5 MiB frames)', 1.5 * MB, 0, 5 * MB + 7],
    ['the first frames in memory, the rest spilled (4 KiB frames, 1 MiB threshold)', 4096, MB, 4 * MB + 4095],
    ['whole frames only (2 MiB of 4 KiB frames), all spilled', 4096, 0, 2 * MB],
  ] as const) {
    it(`round-trips a signed message with ${title}`, async () => {
      const plaintext = pattern(size, 5);
      const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, suiteId: 0x0578, frameLength });
      const decryptor = decryptStream(options({ spillThreshold: threshold }));
      await feedWithoutEnd(decryptor, ciphertext);
      assert.equal((await spillDescriptors(spillDirectory)).length, 1, 'no spill file while the message is withheld');
      const out = await collect(decryptor, []);
      assert.ok(out.equals(plaintext));
      assert.equal((await spillDescriptors(spillDirectory)).length, 0);
    });
  }

  it('stops with AuthenticationFailed when spilled frames are swapped on disk, emitting nothing from the first of them on', async () => {
    const frameLength = 4096;
    const { ciphertext } = await encrypt(pattern(2 * MB), { keyring: aesKeyring, suiteId: 0x0578, frameLength });
    const decryptor = decryptStream(options({ spillThreshold: 0 }));
    await feedWithoutEnd(decryptor, ciphertext);
    const [spill] = await spillDescriptors(spillDirectory);
    const handle = await open(`/proc/self/fd/${spill.fd}`, 'r+');
    // Frames 3 and 4 as the message carried them (sequence number, IV, content, tag), swapped.
    const size = 4 + 12 + frameLength + 16;
    const third = Buffer.alloc(size);
    const fourth = Buffer.alloc(size);
    await handle.read(third, 0, size, 2 * size);
    await handle.read(fourth, 0, size, 3 * size);
    assert.equal(third.readUInt32BE(0), 3, 'the spill holds the frames as the message carried them');
    await handle.write(fourth, 0, size, 2 * size);
    await handle.write(third, 0, size, 3 * size);
    await handle.close();
    let emitted = 0;
    decryptor.on('data', (chunk: Buffer) => (emitted += chunk.length));
    decryptor.end();
    await assert.rejects(new Promise((resolve, reject) => decryptor.on('end', resolve).on('error', reject)), { code: 'AuthenticationFailed' });
    assert.equal(emitted, 0, 'the batch holding them fails its MAC before any of its frames is decrypted');
    await sleep(10);
    assert.equal((await spillDescriptors(spillDirectory)).length, 0);
  });

  it('refuses a spilled frame replaced by one sealed under the data key (a recipient forging content): nothing from its batch is emitted', async () => {
    const frameLength = 64 * 1024;
    const plaintext = pattern(3 * MB + 123, 7);
    const { ciphertext } = await encrypt(plaintext, { keyring: aesKeyring, suiteId: 0x0578, frameLength });
    const decryptor = decryptStream(options({ spillThreshold: 0 }));
    await feedWithoutEnd(decryptor, ciphertext);
    // Whoever can decrypt the message holds its data key, and can seal a frame 1 of their own.
    const settings = decryptSettings({ keyring: aesKeyring });
    const session = await beginDecryption(tryParseHeader(ciphertext, settings)!, { keyring: aesKeyring }, settings);
    const forged = Buffer.alloc(4 + 12 + frameLength + 16);
    forged.writeUInt32BE(1, 0);
    const iv = Buffer.from(session.body.frameIv(1));
    iv.copy(forged, 4);
    session.body.seal('frame', 1, iv, Buffer.alloc(frameLength, 0x41), forged, 16);
    const [spill] = await spillDescriptors(spillDirectory);
    const handle = await open(`/proc/self/fd/${spill.fd}`, 'r+');
    await handle.write(forged, 0, forged.length, 0);
    await handle.close();
    let emitted = 0;
    decryptor.on('data', (chunk: Buffer) => (emitted += chunk.length));
    decryptor.end();
    await assert.rejects(new Promise((resolve, reject) => decryptor.on('end', resolve).on('error', reject)), { code: 'AuthenticationFailed' });
    assert.equal(emitted, 0);
  });

  it('fails with the write error, emitting nothing, when the last spill write fails (a full disk)', async (t) => {
    const probe = await open(join(spillDirectory, 'probe'), 'w');
    const fileHandle = Object.getPrototypeOf(probe) as { writev: (...args: unknown[]) => Promise<unknown> };
    await probe.close();
    await rm(join(spillDirectory, 'probe'));
    t.mock.method(fileHandle, 'writev', async () => {
      await sleep(5);
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    });
    // 1 MiB kept in memory, the rest spilled: the one write fails while the stream is ending.
    const { ciphertext } = await encrypt(pattern(2.5 * MB, 7), { keyring: aesKeyring, suiteId: 0x0578, frameLength: 64 * 1024 });
    const decryptor = decryptStream(options({ spillThreshold: MB }));
    let emitted = 0;
    decryptor.on('data', (chunk: Buffer) => (emitted += chunk.length));
    await assert.rejects(pipeline(Readable.from([ciphertext]), decryptor), { code: 'ENOSPC' });
    assert.equal(emitted, 0);
  });

  it('stops with AuthenticationFailed at a spilled record altered on disk, emitting nothing from it on', async () => {
    const { ciphertext } = await encrypt(pattern(2 * MB), { keyring: aesKeyring, suiteId: 0x0578 });
    const decryptor = decryptStream(options({ spillThreshold: 0 }));
    await feedWithoutEnd(decryptor, ciphertext);
    const [spill] = await spillDescriptors(spillDirectory);
    const handle = await open(`/proc/self/fd/${spill.fd}`, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 70_000);
    byte[0] ^= 0x80;
    await handle.write(byte, 0, 1, 70_000);
    await handle.close();
    let emitted = 0;
    decryptor.on('data', (chunk: Buffer) => (emitted += chunk.length));
    decryptor.end();
    await assert.rejects(new Promise((resolve, reject) => decryptor.on('end', resolve).on('error', reject)), { code: 'AuthenticationFailed' });
    // The first record (64 KiB) verified and may have left; the altered second one and later never do.
    assert.ok(emitted <= 64 * 1024, `${emitted} bytes emitted`);
    await sleep(10);
    assert.equal((await spillDescriptors(spillDirectory)).length, 0);
  });

  it('releases the spill at the reader\'s pace: an unread stream holds about one record, not the message', async () => {
    const { ciphertext } = await encrypt(pattern(8 * MB), { keyring: aesKeyring, suiteId: 0x0578 });
    const decryptor = decryptStream(options({ spillThreshold: 0 }));
    await feedWithoutEnd(decryptor, ciphertext);
    decryptor.end();
    await sleep(200);
    assert.ok(decryptor.readableLength <= 256 * 1024, `${decryptor.readableLength} bytes buffered with nobody reading`);
    let received = 0;
    await pipeline(decryptor, new Writable({ write(chunk: Buffer, _encoding, callback) { received += chunk.length; callback(); } }));
    assert.equal(received, 8 * MB);
  });

  it('removes the spill when the reader gives up midway through the release', async () => {
    const { ciphertext } = await encrypt(pattern(4 * MB), { keyring: aesKeyring, suiteId: 0x0578 });
    const decryptor = decryptStream(options({ spillThreshold: 0 }));
    await feedWithoutEnd(decryptor, ciphertext);
    decryptor.end();
    await new Promise((resolve) => decryptor.once('readable', resolve));
    decryptor.read(1000);
    decryptor.destroy();
    await new Promise((resolve) => decryptor.on('close', resolve));
    await sleep(10);
    assert.equal((await spillDescriptors(spillDirectory)).length, 0);
    assert.deepEqual(await readdir(spillDirectory), []);
  });

  it('fails, emitting nothing, when the spill directory cannot be used', async () => {
    const { ciphertext } = await encrypt(pattern(2 * MB), { keyring: aesKeyring, suiteId: 0x0578 });
    let emitted = 0;
    const decryptor = decryptStream(options({ spillThreshold: 0, spillDirectory: join(spillDirectory, 'missing') }));
    decryptor.on('data', (chunk: Buffer) => (emitted += chunk.length));
    await assert.rejects(pipeline(Readable.from([ciphertext]), decryptor), { code: 'ENOENT' });
    assert.equal(emitted, 0);
  });

  it('rejects a bad spillDirectory or spillThreshold before reading any input', async () => {
    for (const bad of [{ spillDirectory: '' }, { spillThreshold: -1 }, { spillThreshold: 1.5 }] as Partial<DecryptOptions>[]) {
      assert.throws(() => decryptStream(options(bad)), { code: 'InvalidArgument' });
    }
    const { ciphertext } = await encrypt(pattern(100), { keyring: aesKeyring });
    assert.equal((await collect(decryptStream(options({ spillThreshold: 0 })), [ciphertext])).length, 100);
  });
});
