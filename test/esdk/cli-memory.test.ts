/**
 * `strongroom decrypt` of a large signed message in constant memory: to stdout (nothing written
 * before the signature verified; the SDK spills the withheld plaintext, encrypted, under TMPDIR)
 * and to a file. A real CLI process against a real `strongroom serve`; the CLI's peak RSS is
 * reported by a preload on exit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createKey } from '../support/kms-assertions.ts';
import { STRONGROOM_BIN, removeDataDir, startServer, type RunningServer } from '../support/server.ts';

const MB = 1024 * 1024;
const PRELOAD = fileURLToPath(new URL('./support/max-rss-on-exit.mjs', import.meta.url));
const SIZE = 128 * MB;
/** How much more a CLI decrypt of SIZE bytes may peak at than one of a few bytes. */
const MAX_RSS_GROWTH = 100 * MB;

let server: RunningServer;
let work: string;
let spillDir: string;
let env: Record<string, string>;

interface Run {
  code: number | null;
  stderr: string;
  stdoutBytes: number;
  stdoutSha256: string;
  maxRss: number;
}

/** Runs the CLI; stdout is hashed as it arrives (never held), and the peak RSS is read back. */
async function strongroom(args: string[]): Promise<Run> {
  const rssFile = join(work, `rss-${Math.random().toString(36).slice(2)}`);
  const base: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AWS_') && value !== undefined) base[name] = value;
  const child = spawn(process.execPath, ['--import', PRELOAD, STRONGROOM_BIN, ...args], {
    env: { ...base, ...env, STRONGROOM_TEST_MAX_RSS_FILE: rssFile, TMPDIR: spillDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const hash = createHash('sha256');
  let stdoutBytes = 0;
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdoutBytes += chunk.length;
    hash.update(chunk);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  return { code, stderr, stdoutBytes, stdoutSha256: hash.digest('hex'), maxRss: Number(await readFile(rssFile, 'utf8')) };
}

async function writePlaintext(file: string, size: number): Promise<string> {
  const block = Buffer.alloc(64 * 1024, 'STRONGROOM-CLI-MEMORY-TEST|');
  const hash = createHash('sha256');
  async function* pieces(): AsyncGenerator<Buffer> {
    for (let left = size; left > 0; left -= block.length) {
      const piece = block.subarray(0, Math.min(left, block.length));
      hash.update(piece);
      yield piece;
    }
  }
  await pipeline(Readable.from(pieces()), createWriteStream(file));
  return hash.digest('hex');
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('strongroom decrypt of a large signed message', () => {
  before(async () => {
    server = await startServer({ timeoutMs: 60_000 });
    const key = await createKey(server.kms());
    work = await mkdtemp(join(tmpdir(), 'strongroom-cli-memory-'));
    spillDir = await mkdtemp(join(tmpdir(), 'strongroom-cli-spill-'));
    env = {
      AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
      AWS_REGION: server.region,
      AWS_ENDPOINT_URL_KMS: server.endpoint,
    };
    env.KEY_ARN = key.Arn as string;
  });
  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
    if (work) await rm(work, { recursive: true, force: true });
    if (spillDir) await rm(spillDir, { recursive: true, force: true });
  });

  it(`decrypts ${SIZE / MB} MB (suite 0x0578) to stdout and to a file without its memory growing with the message`, async () => {
    const small = join(work, 'small.bin');
    const large = join(work, 'large.bin');
    await writePlaintext(small, 1000);
    const expected = await writePlaintext(large, SIZE);
    for (const file of [small, large]) {
      const encrypted = await strongroom(['encrypt', '-i', file, '-o', `${file}.encrypted`, '--key', env.KEY_ARN, '--no-progress']);
      assert.equal(encrypted.code, 0, encrypted.stderr);
    }
    const baseline = await strongroom(['decrypt', '-i', `${small}.encrypted`, '-o', '-', '--key', env.KEY_ARN, '--no-progress']);
    assert.equal(baseline.code, 0, baseline.stderr);
    assert.equal(baseline.stdoutBytes, 1000);

    const toStdout = await strongroom(['decrypt', '-i', `${large}.encrypted`, '-o', '-', '--key', env.KEY_ARN, '--no-progress']);
    assert.equal(toStdout.code, 0, toStdout.stderr);
    assert.equal(toStdout.stdoutBytes, SIZE);
    assert.equal(toStdout.stdoutSha256, expected);
    const growth = toStdout.maxRss - baseline.maxRss;
    assert.ok(growth < MAX_RSS_GROWTH, `decrypting ${SIZE / MB} MB to stdout peaked ${(growth / MB).toFixed(0)} MB above a tiny decrypt`);
    // (tsx keeps its own cache under TMPDIR too.)
    assert.deepEqual((await readdir(spillDir)).filter((name) => name.startsWith('.strongroom-spill-')), [], 'the spill was left in TMPDIR');

    const toFile = await strongroom(['decrypt', '-i', `${large}.encrypted`, '-o', `${large}.decrypted`, '--key', env.KEY_ARN, '--no-progress']);
    assert.equal(toFile.code, 0, toFile.stderr);
    assert.equal(await sha256Of(`${large}.decrypted`), expected);
    assert.ok(toFile.maxRss - baseline.maxRss < MAX_RSS_GROWTH, `decrypting to a file peaked ${((toFile.maxRss - baseline.maxRss) / MB).toFixed(0)} MB above a tiny decrypt`);
  });
});
