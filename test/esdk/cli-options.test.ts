/**
 * The encrypt/decrypt CLI's option parsing and file planning, in process (the end-to-end behaviour
 * is in cli-encrypt.test.ts): values, precedence of flags over environment, usage errors, which
 * inputs map to which outputs, and outputs that appear only on commit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { configFrom } from '../../src/cli/encrypt.ts';
import { AtomicOutput, planJobs, temporaryName } from '../../src/cli/encrypt-files.ts';
import { UsageError, endpointFrom, parseContext, parseCommitmentPolicy, parseSuite, regionFrom } from '../../src/cli/encrypt-options.ts';

describe('option values', () => {
  it('reads a suite by hex id or aws-encryption-cli name, and rejects unknown ones', () => {
    assert.equal(parseSuite('0x0478'), 0x0478);
    assert.equal(parseSuite('0X0578'), 0x0578);
    assert.equal(parseSuite('aes_256_gcm_iv12_tag16_hkdf_sha384_ecdsa_p384'), 0x0378);
    for (const bad of ['0x0000', '0x6700', '0x0070', '578', 'AES']) assert.throws(() => parseSuite(bad), /unknown algorithm suite/, bad);
  });

  it('reads commitment policies in either spelling', () => {
    assert.equal(parseCommitmentPolicy('forbid-encrypt-allow-decrypt'), 'FORBID_ENCRYPT_ALLOW_DECRYPT');
    assert.equal(parseCommitmentPolicy('REQUIRE_ENCRYPT_ALLOW_DECRYPT'), 'REQUIRE_ENCRYPT_ALLOW_DECRYPT');
    assert.throws(() => parseCommitmentPolicy('require'));
  });

  it('reads context pairs, keeping "=" in values, refusing duplicates and reserved keys', () => {
    assert.deepEqual(parseContext(['a=1', 'b=x=y']), { a: '1', b: 'x=y' });
    assert.deepEqual(parseContext(['empty=']), { empty: '' });
    assert.throws(() => parseContext(['a=1', 'a=2']), /given twice/);
    assert.throws(() => parseContext(['aws-crypto-public-key=x']), /reserved/);
    assert.throws(() => parseContext(['=v']), /key=value/);
  });

  it('takes the endpoint from the flag, then AWS_ENDPOINT_URL_KMS, then AWS_ENDPOINT_URL', () => {
    const env = { AWS_ENDPOINT_URL_KMS: 'http://kms:1', AWS_ENDPOINT_URL: 'http://all:2' };
    assert.equal(endpointFrom('https://flag:3', env), 'https://flag:3');
    assert.equal(endpointFrom(undefined, env), 'http://kms:1');
    assert.equal(endpointFrom(undefined, { AWS_ENDPOINT_URL: 'http://all:2' }), 'http://all:2');
    assert.equal(endpointFrom(undefined, {}), undefined);
    assert.throws(() => endpointFrom('ftp://x', {}), UsageError);
    assert.throws(() => endpointFrom('not a url', {}), UsageError);
  });

  it('takes the region from the flag, AWS_REGION, AWS_DEFAULT_REGION, then the first key ARN', () => {
    const arn = 'arn:aws:kms:eu-west-3:111122223333:key/abc';
    assert.equal(regionFrom('us-west-2', { AWS_REGION: 'eu-west-1' }, [arn]), 'us-west-2');
    assert.equal(regionFrom(undefined, { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'ap-south-1' }, [arn]), 'eu-west-1');
    assert.equal(regionFrom(undefined, { AWS_DEFAULT_REGION: 'ap-south-1' }, [arn]), 'ap-south-1');
    assert.equal(regionFrom(undefined, {}, ['alias/x', arn]), 'eu-west-3');
    assert.equal(regionFrom(undefined, {}, ['alias/x']), undefined);
    assert.throws(() => regionFrom('Mars', {}, []), UsageError);
  });
});

describe('configuration checks (usage errors)', () => {
  const base = { input: '-', output: '-', overwrite: true, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' as const, progress: true };
  const cases: [string, 'encrypt' | 'decrypt', Record<string, unknown>, RegExp][] = [
    ['encrypt without a key', 'encrypt', {}, /--key/],
    ['decrypt without key or discovery', 'decrypt', {}, /--discovery/],
    ['decrypt with both', 'decrypt', { key: ['alias/a'], discovery: true }, /exclude/],
    ['a discovery account without --discovery', 'decrypt', { key: ['alias/a'], discoveryAccount: ['1'] }, /need --discovery/],
    ['a partition without accounts', 'decrypt', { discovery: true, discoveryPartition: 'aws' }, /--discovery-account/],
    ['cache messages without cache age', 'encrypt', { key: ['alias/a'], cacheMaxMessages: 5 }, /--cache-max-age/],
    ['a malformed key', 'encrypt', { key: ['arn:aws:kms:x'] }, /not a key id/],
  ];
  for (const [title, mode, options, message] of cases) {
    it(`rejects ${title}`, () => {
      assert.throws(() => configFrom(mode, { ...base, ...options } as never, {}), (error: Error) => error instanceof UsageError && message.test(error.message));
    });
  }

  it('fills the defaults of each mode', () => {
    const encrypt = configFrom('encrypt', { ...base, key: ['alias/a', 'alias/b'] } as never, { AWS_REGION: 'us-east-1' });
    assert.equal(encrypt.suffix, '.encrypted');
    assert.equal(encrypt.frameLength, 4096);
    assert.deepEqual(encrypt.keys, ['alias/a', 'alias/b']);
    assert.equal(encrypt.region, 'us-east-1');
    assert.equal(encrypt.kmsTimeoutSeconds, 60, 'as botocore');
    assert.equal(configFrom('decrypt', { ...base, discovery: true } as never, {}).suffix, '.decrypted');
  });
});

describe('file planning and outputs', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strongroom-cli-plan-'));
    await mkdir(join(dir, 'in', 'sub'), { recursive: true });
    await writeFile(join(dir, 'in', 'a.txt'), 'a');
    await writeFile(join(dir, 'in', 'sub', 'b.txt'), 'bb');
    await writeFile(join(dir, 'in', 'sub', '.c.txt.0a1b.strongroom-partial'), 'leftover');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const plan = (input: string, output: string, recursive = true, suffix = '.encrypted') => planJobs({ mode: 'encrypt', input, output, recursive, suffix });

  it('maps a tree to the same tree under the output, with the suffix, listing partial files as skipped', async () => {
    const { jobs, skipped } = await plan(join(dir, 'in'), join(dir, 'out'));
    assert.deepEqual(skipped, [{ path: join(dir, 'in', 'sub', '.c.txt.0a1b.strongroom-partial'), reason: 'a temporary output of strongroom' }]);
    assert.deepEqual(
      jobs.map((job) => [job.source.slice(dir.length), job.target.slice(dir.length), job.size]),
      [
        ['/in/a.txt', '/out/a.txt.encrypted', 1],
        ['/in/sub/b.txt', '/out/sub/b.txt.encrypted', 2],
      ],
    );
  });

  it('does not walk an output directory inside the input tree', async () => {
    await mkdir(join(dir, 'in', 'enc'), { recursive: true });
    await writeFile(join(dir, 'in', 'enc', 'a.txt.encrypted'), 'x');
    try {
      const { jobs } = await plan(join(dir, 'in'), join(dir, 'in', 'enc'));
      assert.deepEqual(jobs.map((job) => job.source.slice(dir.length)), ['/in/a.txt', '/in/sub/b.txt']);
    } finally {
      await rm(join(dir, 'in', 'enc'), { recursive: true });
    }
  });

  it('puts a file into an existing directory under its name plus suffix, or writes the named file', async () => {
    assert.equal((await plan(join(dir, 'in', 'a.txt'), join(dir, 'in', 'sub'), false)).jobs[0].target, join(dir, 'in', 'sub', 'a.txt.encrypted'));
    assert.equal((await plan(join(dir, 'in', 'a.txt'), join(dir, 'x.bin'), false)).jobs[0].target, join(dir, 'x.bin'));
  });

  const usage: [string, () => Promise<unknown>][] = [
    ['a directory without --recursive', () => plan(join(dir, 'in'), join(dir, 'out'), false)],
    ['a directory into stdout', () => plan(join(dir, 'in'), '-')],
    ['a directory into a file', () => plan(join(dir, 'in'), join(dir, 'in', 'a.txt'))],
    ['stdin into a directory', () => plan('-', join(dir, 'in'))],
    ['a file onto itself', () => plan(join(dir, 'in', 'a.txt'), join(dir, 'in', 'a.txt'), false)],
    ['a tree onto itself without a suffix', () => plan(join(dir, 'in'), join(dir, 'in'), true, '')],
    ['a missing input', () => plan(join(dir, 'nope'), '-')],
  ];
  it('refuses a plan whose outputs overlap its inputs or each other', async () => {
    await mkdir(join(dir, 'overlap', 'in', 'one'), { recursive: true });
    await mkdir(join(dir, 'overlap', 'in', 'two'));
    await writeFile(join(dir, 'overlap', 'in', 'one', 'x'), '1');
    await writeFile(join(dir, 'overlap', 'in', 'two', 'x'), '2');
    await mkdir(join(dir, 'overlap', 'out', 'two'), { recursive: true });
    await symlink('two', join(dir, 'overlap', 'out', 'one'));
    await assert.rejects(plan(join(dir, 'overlap', 'in'), join(dir, 'overlap', 'out'), true, ''), /same output/);
    await symlink(join(dir, 'in', 'a.txt'), join(dir, 'overlap', 'link-to-input'));
    await assert.rejects(plan(join(dir, 'in', 'a.txt'), join(dir, 'overlap', 'link-to-input'), false), /overwrite an input/);
  });

  for (const [title, run] of usage) {
    it(`refuses ${title}`, async () => {
      await assert.rejects(run(), UsageError);
    });
  }

  it('shows an output only once committed, and leaves nothing when aborted', async () => {
    const target = join(dir, 'atomic', 'out.bin');
    const output = await AtomicOutput.create(target, 'decrypt');
    output.stream.write('plain');
    assert.deepEqual((await readdir(join(dir, 'atomic'))).filter((name) => name === 'out.bin'), []);
    output.stream.end();
    await new Promise<void>((done) => output.stream.once('close', () => done()));
    await output.commit(true);
    assert.equal(await readFile(target, 'utf8'), 'plain');
    assert.equal((await stat(target)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(join(dir, 'atomic')), ['out.bin']);

    const aborted = await AtomicOutput.create(join(dir, 'atomic', 'other.bin'), 'encrypt');
    aborted.stream.write('half');
    await aborted.abort();
    assert.deepEqual(await readdir(join(dir, 'atomic')), ['out.bin']);

    const refused = await AtomicOutput.create(target, 'decrypt');
    refused.stream.end('new');
    await new Promise<void>((done) => refused.stream.once('close', () => done()));
    await assert.rejects(refused.commit(false), /exists/);
    await refused.abort();
    assert.equal(await readFile(target, 'utf8'), 'plain');
    assert.deepEqual(await readdir(join(dir, 'atomic')), ['out.bin']);
  });

  it('writes an output whose name is as long as the file system allows (the temporary name is cut to fit)', async () => {
    for (const name of ['a'.repeat(255), `${'é'.repeat(127)}a`, `${'😀'.repeat(63)}abc`]) {
      assert.equal(Buffer.byteLength(name), 255);
      const temporary = temporaryName(name);
      assert.ok(Buffer.byteLength(temporary) <= 255, temporary);
      assert.match(temporary, /^\..+\.[0-9a-f]{12}\.strongroom-partial$/);
      assert.ok(!temporary.includes('\uFFFD') && Buffer.from(temporary).toString() === temporary, 'cut at a character boundary');
    }
    // A name that is itself too long is not cut: its temporary fails at once, before any work.
    assert.ok(temporaryName('x'.repeat(256)).startsWith(`.${'x'.repeat(256)}.`));
    const target = join(dir, 'long', `${'é'.repeat(127)}a`);
    const output = await AtomicOutput.create(target, 'encrypt');
    output.stream.end('long');
    await new Promise<void>((done) => output.stream.once('close', () => done()));
    await output.commit(true);
    assert.equal(await readFile(target, 'utf8'), 'long');
  });

  it('removes temporary outputs when the process dies of an uncaught exception', async () => {
    await mkdir(join(dir, 'crash'));
    const script = `
      import { AtomicOutput, installPartialFileCleanup } from ${JSON.stringify(new URL('../../src/cli/encrypt-files.ts', import.meta.url).href)};
      installPartialFileCleanup();
      const output = await AtomicOutput.create(${JSON.stringify(join(dir, 'crash', 'out.bin'))}, 'decrypt');
      output.stream.write('half', () => { throw new Error('unexpected'); });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((done) => child.once('close', done));
    assert.equal(code, 1, stderr);
    assert.match(stderr, /unexpected/, 'it died of the exception');
    assert.deepEqual(await readdir(join(dir, 'crash')), []);
  });
});
