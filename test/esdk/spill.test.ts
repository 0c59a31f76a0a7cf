import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decryptStream, encrypt, encryptStream, type EncryptOptions } from '../../src/esdk/index.ts';
import { aesKeyring, collect, pattern } from './support/fixtures.ts';
import { streamContains, type ChildReport, type ChildRequest } from './support/spill-child.ts';

/**
 * decryptStream in constant memory at sizes where holding the plaintext would show: each message is
 * made by streaming encrypt from a generator into a file, then decrypted in a child process that
 * reports its peak RSS, the ArrayBuffer memory it retained, what it emitted when, and what its spill
 * file looked like midway.
 */
const MB = 1024 * 1024;
const execFileAsync = promisify(execFile);
const CHILD = fileURLToPath(new URL('./support/spill-child.ts', import.meta.url));
const MARKER = 'STRONGROOM-SPILL-TEST-PLAINTEXT-MARKER|';
/** RSS a child may grow by while decrypting: far below any of the message sizes used. */
const MAX_RSS_GROWTH = 100 * MB;
const MAX_RETAINED = 16 * MB;

let workDir: string;
let spillDirectory: string;

/** Streams `size` bytes of the marker pattern through encryptStream into a file; returns the plaintext's SHA-256. */
async function makeMessage(name: string, size: number, options: Omit<EncryptOptions, 'keyring'>): Promise<{ file: string; sha256: string }> {
  const block = Buffer.alloc(64 * 1024, MARKER);
  const hash = createHash('sha256');
  async function* plaintext(): AsyncGenerator<Buffer> {
    for (let left = size; left > 0; left -= block.length) {
      const piece = block.subarray(0, Math.min(block.length, left));
      hash.update(piece);
      yield Buffer.from(piece);
    }
  }
  const file = join(workDir, name);
  await pipeline(Readable.from(plaintext()), encryptStream({ keyring: aesKeyring, ...options }), createWriteStream(file));
  return { file, sha256: hash.digest('hex') };
}

async function decryptInChild(file: string, probeAt: number): Promise<ChildReport> {
  const request: ChildRequest = { file, spillDirectory, probeAt, marker: MARKER };
  const { stdout } = await execFileAsync(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD, JSON.stringify(request)], { maxBuffer: MB });
  return JSON.parse(stdout) as ChildReport;
}

/** Flips the last byte of a file (the end of the signature, or of the last tag). */
async function tamperLastByte(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const { size } = await handle.stat();
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, size - 1);
    byte[0] ^= 0x01;
    await handle.write(byte, 0, 1, size - 1);
  } finally {
    await handle.close();
  }
}

function assertConstantMemory(report: ChildReport, messageBytes: number): void {
  const growth = report.maxRss - report.startRss;
  assert.ok(growth < MAX_RSS_GROWTH, `peak RSS grew by ${(growth / MB).toFixed(0)} MB decrypting ${messageBytes / MB} MB`);
  assert.ok(report.peakRetained < MAX_RETAINED, `retained ${(report.peakRetained / MB).toFixed(1)} MB of buffers`);
}

async function assertSpillGone(report: ChildReport): Promise<void> {
  assert.equal(report.spillFilesOpenAtEnd, 0, 'the spill file is still open');
  assert.deepEqual(await readdir(spillDirectory), [], 'something was left in the spill directory');
}

describe('decryptStream spills withheld plaintext, encrypted, and stays in constant memory', () => {
  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'strongroom-spill-test-'));
    spillDirectory = await mkdtemp(join(tmpdir(), 'strongroom-spill-dir-'));
  });
  after(async () => {
    await rm(workDir, { recursive: true, force: true });
    await rm(spillDirectory, { recursive: true, force: true });
  });

  it('the marker scan finds the plaintext pattern when it is there (control for the spill scans)', async () => {
    const control = join(workDir, 'control');
    await writeFile(control, Buffer.concat([Buffer.alloc(3 * MB - 7), Buffer.from(MARKER), Buffer.alloc(10)]));
    assert.equal((await streamContains(control, Buffer.from(MARKER))).found, true);
    await writeFile(control, Buffer.alloc(3 * MB, MARKER.slice(0, -1)));
    assert.equal((await streamContains(control, Buffer.from(MARKER))).found, false);
  });

  it('without spillDirectory the spill goes to os.tmpdir(), looked up when the spill starts', async () => {
    // Over a MiB of frames: spilled frames are written in batches of a MiB (spill-frames.ts).
    const message = (await encrypt(pattern(2 * MB + 5, 9), { keyring: aesKeyring, suiteId: 0x0578 })).ciphertext;
    const run = (stream: Duplex) => collect(stream, [message]);
    const saved = process.env.TMPDIR;
    try {
      // The stream is made while TMPDIR names a directory that does not exist; it spills after TMPDIR changes.
      process.env.TMPDIR = join(workDir, 'absent');
      await assert.rejects(run(decryptStream({ keyring: aesKeyring, spillThreshold: 0 })), /absent/);
      const stream = decryptStream({ keyring: aesKeyring, spillThreshold: 0 });
      process.env.TMPDIR = spillDirectory;
      assert.ok((await run(stream)).equals(pattern(2 * MB + 5, 9)));
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    assert.deepEqual(await readdir(spillDirectory), []);
  });

  it('a signed framed 256 MB message (0x0578): nothing before the end, no plaintext on disk, constant memory', async () => {
    const size = 256 * MB;
    const { file, sha256 } = await makeMessage('signed-framed', size, { suiteId: 0x0578 });
    const report = await decryptInChild(file, 64 * MB);
    assert.equal(report.errorCode, undefined);
    assert.equal(report.emitted, size);
    assert.equal(report.sha256, sha256);
    assert.equal(report.emittedBeforeEnd, 0, 'plaintext was emitted before the message ended');
    assert.ok(report.probe, 'the child probed its spill midway');
    assert.equal(report.probe.open, 1);
    assert.equal(report.probe.unlinked, true, 'the spill file still has a name');
    assert.equal(report.probe.directoryEntries, 0);
    assert.ok(report.probe.bytes > 56 * MB, `only ${report.probe.bytes} bytes spilled after 64 MB of message`);
    assert.equal(report.probe.markerFound, false, 'readable plaintext in the spill file');
    assertConstantMemory(report, size);
    await assertSpillGone(report);
  });

  it('a signed framed message whose signature was altered: SignatureInvalid, zero plaintext bytes, spill removed', async () => {
    const size = 32 * MB;
    const { file } = await makeMessage('signed-tampered', size, { suiteId: 0x0578 });
    await tamperLastByte(file);
    const report = await decryptInChild(file, 16 * MB);
    assert.equal(report.errorCode, 'SignatureInvalid');
    assert.equal(report.emitted, 0, 'plaintext of a message with a bad signature was emitted');
    assert.equal(report.probe?.open, 1, 'the message was spilled before the signature was reached');
    assertConstantMemory(report, size);
    await assertSpillGone(report);
  });

  it('a non-framed 64 MB message: withheld until its tag verified, spilled encrypted; a bad tag emits nothing', async () => {
    const size = 64 * MB;
    const { file, sha256 } = await makeMessage('non-framed', size, { suiteId: 0x0478, contentType: 'non-framed', plaintextLength: size });
    const report = await decryptInChild(file, 32 * MB);
    assert.equal(report.errorCode, undefined);
    assert.equal(report.sha256, sha256);
    assert.equal(report.emittedBeforeEnd, 0);
    assert.equal(report.probe?.open, 1);
    assert.equal(report.probe?.unlinked, true);
    assert.ok((report.probe?.bytes ?? 0) > 24 * MB);
    assert.equal(report.probe?.markerFound, false, 'readable plaintext in the spill file');
    assertConstantMemory(report, size);
    await assertSpillGone(report);

    await tamperLastByte(file);
    const tampered = await decryptInChild(file, 32 * MB);
    assert.equal(tampered.errorCode, 'AuthenticationFailed');
    assert.equal(tampered.emitted, 0);
    await assertSpillGone(tampered);
  });

  it('an unsigned framed 128 MB message (0x0478) streams frame by frame in constant memory without a spill', async () => {
    const size = 128 * MB;
    const { file, sha256 } = await makeMessage('unsigned-framed', size, { suiteId: 0x0478 });
    const report = await decryptInChild(file, 64 * MB);
    assert.equal(report.errorCode, undefined);
    assert.equal(report.sha256, sha256);
    assert.ok(report.emittedBeforeEnd > 0, 'verified frames should leave before the end');
    assert.equal(report.probe?.open, 0);
    assertConstantMemory(report, size);
    await assertSpillGone(report);
  });
});
