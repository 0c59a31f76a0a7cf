/**
 * `strongroom encrypt` / `strongroom decrypt` as a user runs them: a real CLI process against a
 * real `strongroom serve`, credentials from the environment or the credentials file. Files,
 * trees, stdin/stdout, metadata lines, exit codes, and no output left behind on any failure.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildClient, CommitmentPolicy, KmsKeyringNode } from '@aws-crypto/client-node';
import { CreateAliasCommand, KMS } from '@aws-sdk/client-kms';
import { createKey } from '../support/kms-assertions.ts';
import { STRONGROOM_BIN, removeDataDir, startServer, type RunningServer } from '../support/server.ts';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

let server: RunningServer;
let keyArn: string;
let otherKeyArn: string;
let accountId: string;
let work: string;
let baseEnv: Record<string, string>;

/**
 * Runs the CLI with only the AWS_* variables given (none leak in from the test's environment).
 * `pipes`: its stdin and stdout are pipes, as in a shell (node gives a child socket pairs).
 * `stdoutTo`: a shell command its stdout is piped into (the exit code is still the CLI's).
 * `redirect`: shell redirections for the command (`>> file`, `3> file`).
 */
function strongroom(
  args: string[],
  options: { env?: Record<string, string>; input?: Buffer; pipes?: boolean; stdoutTo?: string; redirect?: string; onSpawn?: (child: ReturnType<typeof spawn>) => void } = {},
): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AWS_') && value !== undefined) env[name] = value;
  const command = options.pipes
    ? ['bash', '-o', 'pipefail', '-c', 'cat | "$@" | cat', 'bash', process.execPath]
    : options.stdoutTo
      ? ['bash', '-c', `"$@" | ${options.stdoutTo}; exit \${PIPESTATUS[0]}`, 'bash', process.execPath]
      : options.redirect
        ? ['bash', '-c', `"$@" ${options.redirect}`, 'bash', process.execPath]
        : [process.execPath];
  return new Promise((done, fail) => {
    const child = spawn(command[0], [...command.slice(1), STRONGROOM_BIN, ...args], { env: { ...env, ...(options.env ?? baseEnv) }, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', fail);
    // A command that exits before reading all its input (a usage error, an interrupt) closes the pipe.
    child.stdin.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') fail(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout: Buffer.concat(stdout), stderr });
    });
    options.onSpawn?.(child);
    if (!options.onSpawn) child.stdin.end(options.input ?? Buffer.alloc(0));
  });
}

const path = (...parts: string[]) => join(work, ...parts);
const metadataLines = async (file: string) => (await readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);

async function listTree(dir: string, prefix = ''): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) names.push(...(await listTree(join(dir, entry.name), `${prefix}${entry.name}/`)));
    else names.push(`${prefix}${entry.name}`);
  }
  return names.sort();
}

before(async () => {
  server = await startServer({ timeoutMs: 60_000 }); // generous: the CI machine may be busy
  const kms = server.kms();
  const key = await createKey(kms);
  keyArn = key.Arn as string;
  accountId = key.AWSAccountId as string;
  otherKeyArn = (await createKey(kms)).Arn as string;
  await kms.send(new CreateAliasCommand({ AliasName: 'alias/cli-test', TargetKeyId: keyArn }));
  work = await mkdtemp(join(tmpdir(), 'strongroom-cli-esdk-'));
  baseEnv = {
    AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
    AWS_REGION: server.region,
    AWS_ENDPOINT_URL_KMS: server.endpoint,
  };
});

after(async () => {
  await server?.stop();
  if (server) await removeDataDir(server.dataDir);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('strongroom encrypt / decrypt', () => {
  it('round-trips a file, resolving an alias at decrypt, and writes metadata lines', async () => {
    const plaintext = randomBytes(300_000);
    await mkdir(path('single'));
    await writeFile(path('single', 'report.bin'), plaintext);
    const encrypted = await strongroom([
      'encrypt', '-i', path('single', 'report.bin'), '-o', path('single'), '--key', 'alias/cli-test',
      '--context', 'tenant=acme', '--context', 'purpose=cli', '--metadata-output', path('single', 'meta.jsonl'),
    ]);
    assert.equal(encrypted.code, 0, encrypted.stderr);
    assert.equal(encrypted.stderr, '');
    const decrypted = await strongroom([
      'decrypt', '-i', path('single', 'report.bin.encrypted'), '-o', path('single', 'report.out'), '--key', 'alias/cli-test',
      '--context', 'tenant=acme', '--metadata-output', path('single', 'meta.jsonl'),
    ]);
    assert.equal(decrypted.code, 0, decrypted.stderr);
    assert.ok((await readFile(path('single', 'report.out'))).equals(plaintext));
    assert.equal((await stat(path('single', 'report.out'))).mode & 0o777, 0o600, 'decrypted output is 0600');

    const [encryptLine, decryptLine] = await metadataLines(path('single', 'meta.jsonl'));
    // aws-encryption-cli's shape (keys sorted, as its json.dumps(sort_keys=True)), plus input_bytes/output_bytes.
    assert.deepEqual(Object.keys(encryptLine), ['header', 'input', 'input_bytes', 'mode', 'output', 'output_bytes']);
    assert.equal(encryptLine.mode, 'encrypt');
    assert.equal(encryptLine.input, path('single', 'report.bin'));
    assert.equal(encryptLine.output, path('single', 'report.bin.encrypted'));
    assert.equal(encryptLine.input_bytes, plaintext.length);
    assert.equal(encryptLine.output_bytes, (await stat(path('single', 'report.bin.encrypted'))).size);
    const { header } = encryptLine;
    assert.deepEqual(Object.keys(header), [
      'algorithm', 'algorithm_id', 'commitment_key', 'content_type', 'encrypted_data_keys', 'encryption_context',
      'frame_length', 'header_iv_length', 'message_id', 'type', 'version',
    ]);
    assert.equal(header.version, '2.0');
    assert.equal(header.type, null);
    assert.equal(header.header_iv_length, null);
    assert.equal(Buffer.from(header.commitment_key, 'base64').length, 32);
    assert.equal(header.algorithm_id, '0x0578');
    assert.equal(header.algorithm, 'AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384');
    assert.equal(Buffer.from(header.message_id, 'base64').length, 32);
    assert.equal(header.encryption_context.tenant, 'acme');
    assert.equal(header.encryption_context.purpose, 'cli');
    assert.ok(header.encryption_context['aws-crypto-public-key']);
    assert.equal(header.encrypted_data_keys.length, 1);
    assert.deepEqual(header.encrypted_data_keys[0].key_provider, { key_arn: keyArn, key_info: Buffer.from(keyArn).toString('base64'), provider_id: Buffer.from('aws-kms').toString('base64') });
    assert.equal(header.content_type, 2);
    assert.equal(header.frame_length, 4096);
    assert.equal(decryptLine.mode, 'decrypt');
    assert.equal(decryptLine.output_bytes, plaintext.length);
    assert.deepEqual(decryptLine.header, header, 'decrypt reads the header encrypt wrote');
    // Decrypt also records the header's authentication (version 2: a zero IV), as aws-encryption-cli does.
    assert.deepEqual(Object.keys(decryptLine), ['header', 'header_auth', 'input', 'input_bytes', 'mode', 'output', 'output_bytes']);
    assert.equal(decryptLine.header_auth.iv, Buffer.alloc(12).toString('base64'));
    const message = await readFile(path('single', 'report.bin.encrypted'));
    assert.ok(message.indexOf(Buffer.from(decryptLine.header_auth.tag, 'base64')) > 0, 'header_auth.tag is the message\'s header tag');
  });

  it('encrypts a directory tree recursively, keeping the tree, and decrypts it back', async () => {
    const files: Record<string, Buffer> = { 'a.txt': Buffer.from('alpha'), 'sub/b.bin': randomBytes(70_000), 'sub/deeper/empty': Buffer.alloc(0) };
    for (const [name, content] of Object.entries(files)) {
      await mkdir(join(path('tree', 'in'), name, '..'), { recursive: true });
      await writeFile(join(path('tree', 'in'), name), content);
    }
    const notRecursive = await strongroom(['encrypt', '-i', path('tree', 'in'), '-o', path('tree', 'enc'), '--key', keyArn]);
    assert.equal(notRecursive.code, 2);
    assert.match(notRecursive.stderr, /--recursive/);

    await writeFile(path('tree', 'in', 'sub', '.b.bin.0a1b2c.strongroom-partial'), 'left by an interrupted run');
    await symlink('a.txt', path('tree', 'in', 'link'));
    const encrypted = await strongroom([
      'encrypt', '-r', '-i', path('tree', 'in'), '-o', path('tree', 'enc'), '--key', keyArn, '--key', otherKeyArn,
      '--metadata-output', path('tree', 'meta.jsonl'), '--cache-max-age', '60',
    ]);
    assert.equal(encrypted.code, 0, encrypted.stderr);
    assert.equal(
      encrypted.stderr,
      `skipped (not a regular file): ${path('tree', 'in', 'link')}\nskipped (a temporary output of strongroom): ${path('tree', 'in', 'sub', '.b.bin.0a1b2c.strongroom-partial')}\n`,
    );
    assert.deepEqual(await listTree(path('tree', 'enc')), ['a.txt.encrypted', 'sub/b.bin.encrypted', 'sub/deeper/empty.encrypted']);
    const lines = await metadataLines(path('tree', 'meta.jsonl'));
    assert.equal(lines.length, 3);
    // --cache-max-age: one data key (so one GenerateDataKey and one Encrypt) for the whole tree.
    const edkSets = lines.map((line) => JSON.stringify(line.header.encrypted_data_keys));
    assert.equal(new Set(edkSets).size, 1);
    // Sorted by provider id, then key info (the ARN), as aws-encryption-cli sorts them.
    assert.deepEqual(lines[0].header.encrypted_data_keys.map((edk: any) => edk.key_provider.key_arn), [keyArn, otherKeyArn].sort());

    const tooMany = await strongroom(['decrypt', '-r', '-i', path('tree', 'enc'), '-o', path('tree', 'dec'), '--key', keyArn, '--max-encrypted-data-keys', '1']);
    assert.equal(tooMany.code, 1, 'two EDKs exceed --max-encrypted-data-keys 1');
    assert.deepEqual(await listTree(path('tree', 'dec')).catch(() => []), []);

    // Any one of the keys decrypts; here only the second.
    const decrypted = await strongroom(['decrypt', '-r', '-i', path('tree', 'enc'), '-o', path('tree', 'dec'), '--key', otherKeyArn, '--suffix', '']);
    assert.equal(decrypted.code, 0, decrypted.stderr);
    for (const [name, content] of Object.entries(files)) {
      assert.ok((await readFile(join(path('tree', 'dec'), `${name}.encrypted`))).equals(content), name);
    }

    // A re-run with --no-overwrite encrypts only what is new, and says what it skipped.
    await writeFile(path('tree', 'in', 'sub', 'new.txt'), 'new');
    const before = await readFile(path('tree', 'enc', 'a.txt.encrypted'));
    const rerun = await strongroom(['encrypt', '-r', '-i', path('tree', 'in'), '-o', path('tree', 'enc'), '--key', keyArn, '--no-overwrite']);
    assert.equal(rerun.code, 0, rerun.stderr);
    for (const name of ['a.txt', 'sub/b.bin', 'sub/deeper/empty']) assert.match(rerun.stderr, new RegExp(`skipped \\(exists, --no-overwrite\\): .*${name}\\.encrypted\n`));
    assert.ok((await readFile(path('tree', 'enc', 'a.txt.encrypted'))).equals(before), 'an existing output is kept');
    assert.deepEqual(await listTree(path('tree', 'enc')), ['a.txt.encrypted', 'sub/b.bin.encrypted', 'sub/deeper/empty.encrypted', 'sub/new.txt.encrypted']);
  });

  it('streams stdin to stdout both ways', async () => {
    const plaintext = randomBytes(2 * 1024 * 1024 + 17);
    const encrypted = await strongroom(['encrypt', '-i', '-', '-o', '-', '--key', keyArn, '--suite', '0x0478', '--frame-length', '65536'], { input: plaintext });
    assert.equal(encrypted.code, 0, encrypted.stderr);
    assert.equal(encrypted.stdout.readUInt16BE(1), 0x0478);
    const decrypted = await strongroom(['decrypt', '-i', '-', '-o', '-', '--key', keyArn, '--metadata-output', path('stdio-meta.jsonl')], { input: encrypted.stdout });
    assert.equal(decrypted.code, 0, decrypted.stderr);
    assert.ok(decrypted.stdout.equals(plaintext));
    const [line] = await metadataLines(path('stdio-meta.jsonl'));
    assert.equal(line.input, '<stdin>');
    assert.equal(line.output, '<stdout>');
    assert.equal(line.header.frame_length, 65536);
  });

  it('writes a message the official AWS Encryption SDK decrypts (non-framed, 0x0478)', async () => {
    const plaintext = randomBytes(12_345);
    await writeFile(path('official.bin'), plaintext);
    const run = await strongroom(['encrypt', '-i', path('official.bin'), '-o', path('official.msg'), '--key', keyArn, '--suite', 'AES_256_GCM_HKDF_SHA512_COMMIT_KEY', '--frame-length', '0', '--context', 'x=y']);
    assert.equal(run.code, 0, run.stderr);
    const kms = new KMS({ endpoint: server.endpoint, region: server.region, credentials: server.credentials });
    try {
      const { decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
      const result = await decrypt(new KmsKeyringNode({ keyIds: [keyArn], clientProvider: () => kms }), await readFile(path('official.msg')));
      assert.ok(result.plaintext.equals(plaintext));
      assert.equal(result.messageHeader.encryptionContext.x, 'y');
    } finally {
      kms.destroy();
    }
  });

  describe('failures: exit code 1, a message naming what failed, and no output left behind', () => {
    let message: string;

    before(async () => {
      await mkdir(path('fail'));
      await writeFile(path('fail', 'secret.txt'), randomBytes(1024 * 1024));
      const run = await strongroom(['encrypt', '-i', path('fail', 'secret.txt'), '-o', path('fail', 'secret.msg'), '--key', keyArn, '--context', 'tenant=acme']);
      assert.equal(run.code, 0, run.stderr);
      message = path('fail', 'secret.msg');
    });

    const leftovers = async () => (await readdir(path('fail'))).filter((name) => name !== 'secret.txt' && name !== 'secret.msg' && name !== 'tampered.msg');

    it('a wrong --context value', async () => {
      const run = await strongroom(['decrypt', '-i', message, '-o', path('fail', 'out'), '--key', keyArn, '--context', 'tenant=globex']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /encryption context/);
      assert.ok(!run.stderr.includes('globex') && !run.stderr.includes('acme'), 'no context value in the message');
      assert.deepEqual(await leftovers(), []);
    });

    it('a --context key the message lacks', async () => {
      const run = await strongroom(['decrypt', '-i', message, '-o', path('fail', 'out'), '--key', keyArn, '--context', 'department=hr']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /no key "department"/);
      assert.deepEqual(await leftovers(), []);
    });

    it('a key that cannot decrypt the message', async () => {
      const run = await strongroom(['decrypt', '-i', message, '-o', path('fail', 'out'), '--key', otherKeyArn]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, new RegExp(`${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
      assert.deepEqual(await leftovers(), []);
    });

    it('a message tampered with near its end (after plaintext was streamed to the temporary file)', async () => {
      const tampered = await readFile(message);
      tampered[tampered.length - 300] ^= 0x01;
      await writeFile(path('fail', 'tampered.msg'), tampered);
      const run = await strongroom(['decrypt', '-i', path('fail', 'tampered.msg'), '-o', path('fail', 'out'), '--key', keyArn]);
      assert.equal(run.code, 1);
      assert.deepEqual(await leftovers(), []);
    });

    it('an existing output with --no-overwrite is skipped, as aws-encryption-cli does (the existing file is kept)', async () => {
      await writeFile(path('fail', 'out'), 'keep me');
      try {
        const run = await strongroom(['decrypt', '-i', message, '-o', path('fail', 'out'), '--key', keyArn, '--no-overwrite', '--metadata-output', '-']);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stderr, `skipped (exists, --no-overwrite): ${path('fail', 'out')}\n`);
        assert.equal(run.stdout.length, 0, 'no metadata line for a skipped input');
        assert.equal(await readFile(path('fail', 'out'), 'utf8'), 'keep me');
        assert.deepEqual(await leftovers(), ['out']);
      } finally {
        await rm(path('fail', 'out'));
      }
    });

    it('discovery limited to another account', async () => {
      const run = await strongroom(['decrypt', '-i', message, '-o', path('fail', 'out'), '--discovery', '--discovery-account', '999999999999']);
      assert.equal(run.code, 1);
      assert.deepEqual(await leftovers(), []);
    });

    it('an interrupt while writing removes the temporary file (SIGINT, exit 130)', async () => {
      const run = await strongroom(['encrypt', '-i', '-', '-o', path('fail', 'interrupted'), '--key', keyArn], {
        onSpawn: (child) => {
          child.stdin?.write(randomBytes(256 * 1024));
          // Once the partial file exists, interrupt the still-running command.
          const poll = setInterval(async () => {
            if ((await leftovers()).some((name) => name.endsWith('.strongroom-partial'))) {
              clearInterval(poll);
              child.kill('SIGINT');
            }
          }, 50);
          child.once('close', () => clearInterval(poll));
        },
      });
      assert.equal(run.code, 130, run.stderr);
      assert.deepEqual(await leftovers(), []);
    });
  });

  it('decrypts with discovery within the right account', async () => {
    await writeFile(path('disc.bin'), 'discovered');
    assert.equal((await strongroom(['encrypt', '-i', path('disc.bin'), '-o', path('disc.msg'), '--key', keyArn])).code, 0);
    const run = await strongroom(['decrypt', '-i', path('disc.msg'), '-o', '-', '--discovery', '--discovery-account', accountId]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.toString(), 'discovered');
  });

  it('reads credentials from the credentials file, with --endpoint and --region flags', async () => {
    await writeFile(path('creds.bin'), 'from the credentials file');
    const env = { AWS_SHARED_CREDENTIALS_FILE: join(server.dataDir, 'credentials'), AWS_CONFIG_FILE: path('no-config') };
    const flags = ['--endpoint', server.endpoint, '--region', server.region];
    assert.equal((await strongroom(['encrypt', '-i', path('creds.bin'), '-o', path('creds.msg'), '--key', keyArn, ...flags], { env })).code, 0);
    const run = await strongroom(['decrypt', '-i', path('creds.msg'), '-o', '-', '--key', keyArn, ...flags], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.toString(), 'from the credentials file');
  });

  it('prefers --profile over AWS_ACCESS_KEY_ID without the SDK warning about it on stderr', async () => {
    await writeFile(path('profile.bin'), 'profile wins');
    await writeFile(
      path('profile-credentials'),
      `[files]\naws_access_key_id = ${server.credentials.accessKeyId}\naws_secret_access_key = ${server.credentials.secretAccessKey}\n`,
    );
    const env = {
      ...baseEnv,
      AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG0',
      AWS_SECRET_ACCESS_KEY: 'wrong',
      AWS_SHARED_CREDENTIALS_FILE: path('profile-credentials'),
      AWS_CONFIG_FILE: path('no-config'),
    };
    const run = await strongroom(['encrypt', '-i', path('profile.bin'), '-o', path('profile.msg'), '--key', keyArn, '--profile', 'files'], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    // A profile in neither file is named as such, before any KMS call (a usage error, exit 2).
    for (const [args, extra, via] of [[['--profile', 'nonexist'], {}, '--profile'], [[], { AWS_PROFILE: 'nonexist' }, 'AWS_PROFILE']] as const) {
      const missing = await strongroom(['encrypt', '-i', path('profile.bin'), '-o', path('profile-missing.msg'), '--key', keyArn, ...args], { env: { ...env, ...extra } });
      assert.equal(missing.code, 2, missing.stderr);
      assert.match(missing.stderr, new RegExp(`the profile "nonexist" \\(${via}\\) is in neither .*no-config nor .*profile-credentials`));
      await assert.rejects(stat(path('profile-missing.msg')), { code: 'ENOENT' });
    }
  });

  it('shows a progress bar for a large input on a terminal only', async () => {
    await writeFile(path('large.bin'), randomBytes(17 * 1024 * 1024));
    const args = ['encrypt', '-i', path('large.bin'), '-o', path('large.msg'), '--key', keyArn, '--suite', '0x0478', '--frame-length', '65536'];
    const plain = await strongroom(args);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stderr, '', 'no bar when stderr is not a terminal');
    // script(1) gives the command a terminal; its transcript is the terminal's output.
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AWS_') && value !== undefined) env[name] = value;
    const transcript = await new Promise<string>((done, fail) => {
      const child = spawn('script', ['-q', '-e', '-c', [process.execPath, STRONGROOM_BIN, ...args].join(' '), '/dev/null'], {
        env: { ...env, ...baseEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('error', fail);
      child.once('close', (code) => (code === 0 ? done(output) : fail(new Error(`exit ${code}: ${output}`))));
    });
    assert.match(transcript, /encrypt \|.*\| 100% \| 17825792\/17825792 bytes/);
    await rm(path('large.bin'));
    await rm(path('large.msg'));
  });

  describe('outputs and inputs that are not regular files', () => {
    /** A FIFO with a reader (cat) already waiting on it; `read` resolves to what the reader got. */
    async function fifoWithReader(name: string): Promise<{ fifo: string; read: () => Promise<Buffer> }> {
      const fifo = path(name);
      await new Promise<void>((done, fail) => spawn('mkfifo', [fifo]).once('close', (code) => (code === 0 ? done() : fail(new Error(`mkfifo: ${code}`)))));
      const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
      const chunks: Buffer[] = [];
      reader.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
      const closed = new Promise<void>((done) => reader.once('close', () => done()));
      return {
        fifo,
        // A reader still blocked in open() means the CLI never wrote to this FIFO: stop it, report what arrived.
        read: async () => {
          const timer = setTimeout(() => reader.kill('SIGKILL'), 5_000);
          await closed;
          clearTimeout(timer);
          return Buffer.concat(chunks);
        },
      };
    }

    it('writes into a FIFO named by -o, leaving the FIFO in place', async () => {
      const plaintext = randomBytes(100_000);
      await writeFile(path('to-fifo.bin'), plaintext);
      const { fifo, read } = await fifoWithReader('out.fifo');
      const run = await strongroom(['encrypt', '-i', path('to-fifo.bin'), '-o', fifo, '--key', keyArn]);
      const message = await read();
      assert.equal(run.code, 0, run.stderr);
      assert.ok((await lstat(fifo)).isFIFO(), 'still a FIFO');
      assert.equal(message.readUInt16BE(1), 0x0578);
      const decrypted = await strongroom(['decrypt', '-i', '-', '-o', '-', '--key', keyArn], { input: message });
      assert.ok(decrypted.stdout.equals(plaintext));
      await rm(fifo);
    });

    it('releases nothing into a FIFO from a signed message whose signature does not verify', async () => {
      const plaintext = randomBytes(200_000);
      await writeFile(path('signed.bin'), plaintext);
      assert.equal((await strongroom(['encrypt', '-i', path('signed.bin'), '-o', path('signed.msg'), '--key', keyArn])).code, 0);
      const badSignature = await readFile(path('signed.msg'));
      badSignature[badSignature.length - 5] ^= 0x01; // inside the footer's signature: every frame still verifies
      await writeFile(path('bad-signature.msg'), badSignature);
      const { fifo, read } = await fifoWithReader('plain.fifo');
      const run = await strongroom(['decrypt', '-i', path('bad-signature.msg'), '-o', fifo, '--key', keyArn]);
      assert.equal(run.code, 1, run.stderr);
      assert.equal((await read()).length, 0, 'no unverified plaintext reached the reader');
      assert.ok((await lstat(fifo)).isFIFO());
      await rm(fifo);
    });

    it('writes to /dev/fd/N (as for -o >(cmd))', async () => {
      await writeFile(path('to-fd.bin'), 'through a file descriptor');
      const encrypted = await strongroom(['encrypt', '-i', path('to-fd.bin'), '-o', '/dev/fd/1', '--key', keyArn], { pipes: true });
      assert.equal(encrypted.code, 0, encrypted.stderr);
      const decrypted = await strongroom(['decrypt', '-i', '-', '-o', '/dev/fd/1', '--key', keyArn], { input: encrypted.stdout, pipes: true });
      assert.equal(decrypted.code, 0, decrypted.stderr);
      assert.equal(decrypted.stdout.toString(), 'through a file descriptor');
    });

    it('writes /dev/stdout and /dev/fd/N through the descriptor the shell opened (>> appends, nothing is replaced)', async () => {
      const plaintext = randomBytes(20_000);
      await writeFile(path('fd-plain.bin'), plaintext);
      for (const [name, output, redirect] of [['append-1.log', '/dev/stdout', '>>'], ['append-3.log', '/dev/fd/3', '3>>']] as const) {
        await writeFile(path(name), 'PRECIOUS LOG LINE\n');
        const inode = (await stat(path(name))).ino;
        // --no-overwrite does not apply: the shell opened this file for us to write.
        const run = await strongroom(['encrypt', '-i', path('fd-plain.bin'), '-o', output, '--key', keyArn, '--no-overwrite'], { redirect: `${redirect} '${path(name)}'` });
        assert.equal(run.code, 0, run.stderr);
        const log = await readFile(path(name));
        assert.equal(log.subarray(0, 18).toString(), 'PRECIOUS LOG LINE\n', `${output}: the earlier content is kept`);
        assert.equal((await stat(path(name))).ino, inode, `${output}: still the shell's file, not one renamed over it`);
        await writeFile(path(`${name}.msg`), log.subarray(18));
        const back = await strongroom(['decrypt', '-i', path(`${name}.msg`), '-o', '-', '--key', keyArn]);
        assert.equal(back.code, 0, back.stderr);
        assert.ok(back.stdout.equals(plaintext), output);
      }
      assert.deepEqual((await readdir(work)).filter((entry) => entry.endsWith('.strongroom-partial')), []);

      // stderr on a pipe that Node made non-blocking, read slowly: every byte still arrives (EAGAIN is waited out).
      const big = randomBytes(3 * 1024 * 1024);
      await writeFile(path('fd-big.bin'), big);
      const slow = await strongroom(['encrypt', '-i', path('fd-big.bin'), '-o', '/dev/stderr', '--key', keyArn], {
        redirect: `2>&1 >/dev/null | (sleep 1; cat) > '${path('fd-slow.msg')}'`,
      });
      assert.equal(slow.code, 0, slow.stderr);
      const slowBack = await strongroom(['decrypt', '-i', path('fd-slow.msg'), '-o', '-', '--key', keyArn]);
      assert.equal(slowBack.code, 0, slowBack.stderr);
      assert.ok(slowBack.stdout.equals(big));

      // Metadata to /dev/stdout is stdout: it cannot share it with the data. A descriptor not given to the command is refused.
      const both = await strongroom(['encrypt', '-i', path('fd-plain.bin'), '-o', '-', '--key', keyArn, '--metadata-output', '/dev/stdout']);
      assert.equal(both.code, 2, both.stderr);
      assert.match(both.stderr, /cannot both use stdout/);
      // Descriptors 3-12 with no redirection are closed or Node's own (its event loop's): never written.
      for (let descriptor = 3; descriptor <= 12; descriptor++) {
        const notGiven = await strongroom(['encrypt', '-i', path('fd-plain.bin'), '-o', `/dev/fd/${descriptor}`, '--key', keyArn, '--metadata-output', path('fd-not-given.jsonl')]);
        assert.equal(notGiven.code, 2, `/dev/fd/${descriptor}: ${notGiven.stderr}`);
        assert.match(notGiven.stderr, new RegExp(`descriptor ${descriptor} (is not open|belongs to Node itself)`));
      }
      await assert.rejects(stat(path('fd-not-given.jsonl')), { code: 'ENOENT' });
      // Metadata through a given descriptor is appended where the shell pointed it.
      await writeFile(path('fd-meta.log'), 'FIRST\n');
      const meta = await strongroom(['encrypt', '-i', path('fd-plain.bin'), '-o', path('fd-meta.msg'), '--key', keyArn, '--metadata-output', '/dev/fd/3', '--overwrite-metadata'], {
        redirect: `3>> '${path('fd-meta.log')}'`,
      });
      assert.equal(meta.code, 0, meta.stderr);
      const metaLines = (await readFile(path('fd-meta.log'), 'utf8')).split('\n');
      assert.equal(metaLines[0], 'FIRST');
      assert.equal(JSON.parse(metaLines[1]).mode, 'encrypt');
    });

    it('encrypts a file whose size is not what stat says (/proc), framed; plaintextLength only where needed', async () => {
      const run = await strongroom(['encrypt', '-i', '/proc/version', '-o', path('version.msg'), '--key', keyArn]);
      assert.equal(run.code, 0, run.stderr);
      const back = await strongroom(['decrypt', '-i', path('version.msg'), '-o', '-', '--key', keyArn]);
      assert.equal(back.stdout.toString(), await readFile('/proc/version', 'utf8'));
    });

    it('reads /dev/stdin and a FIFO named by -i (as for -i <(cmd))', async () => {
      const plaintext = randomBytes(50_000);
      const encrypted = await strongroom(['encrypt', '-i', '/dev/stdin', '-o', path('from-stdin.msg'), '--key', keyArn], { input: plaintext, pipes: true });
      assert.equal(encrypted.code, 0, encrypted.stderr);
      const fifo = path('in.fifo');
      await new Promise<void>((done) => spawn('mkfifo', [fifo]).once('close', () => done()));
      const writer = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', path('from-stdin.msg'), fifo], { stdio: 'ignore' });
      const decrypted = await strongroom(['decrypt', '-i', fifo, '-o', '-', '--key', keyArn]);
      writer.kill();
      assert.equal(decrypted.code, 0, decrypted.stderr);
      assert.ok(decrypted.stdout.equals(plaintext));
      const nonFramed = await strongroom(['encrypt', '-i', '/dev/stdin', '-o', '-', '--key', keyArn, '--frame-length', '0'], { pipes: true });
      assert.equal(nonFramed.code, 2, 'non-framed needs a known length');
      await rm(fifo);
    });

    it('writes through a symbolic link named by -o, keeping the link', async () => {
      await mkdir(path('linked'));
      await writeFile(path('linked', 'real.msg'), 'old');
      await symlink('linked/real.msg', path('link.msg'));
      await writeFile(path('via-link.bin'), 'via the link');
      const run = await strongroom(['encrypt', '-i', path('via-link.bin'), '-o', path('link.msg'), '--key', keyArn]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(await readlink(path('link.msg')), 'linked/real.msg');
      const decrypted = await strongroom(['decrypt', '-i', path('linked', 'real.msg'), '-o', '-', '--key', keyArn]);
      assert.equal(decrypted.stdout.toString(), 'via the link');
      assert.deepEqual(await readdir(path('linked')), ['real.msg']);
      // A dangling link into directories that do not exist fails, as the shell's > does: none is made there.
      await symlink('nowhere/deep/file.msg', path('dangling.msg'));
      const dangling = await strongroom(['encrypt', '-i', path('via-link.bin'), '-o', path('dangling.msg'), '--key', keyArn]);
      assert.equal(dangling.code, 1);
      assert.match(dangling.stderr, /ENOENT/);
      await assert.rejects(stat(path('nowhere')), { code: 'ENOENT' });
    });
  });

  describe('a file-system failure names the output given and the reason, never the temporary file', () => {
    it('an output name too long for the file system', async () => {
      await mkdir(path('fs-errors'), { recursive: true });
      await writeFile(path('fs-errors', 'hi.txt'), 'hi');
      const target = path('fs-errors', 'n'.repeat(300));
      const run = await strongroom(['encrypt', '-i', path('fs-errors', 'hi.txt'), '-o', target, '--key', keyArn]);
      assert.equal(run.code, 1, run.stderr);
      assert.equal(run.stderr, `strongroom encrypt: ${path('fs-errors', 'hi.txt')}: cannot write ${target}: ENAMETOOLONG (name too long)\n`);
    });

    it('a file where the output tree needs a directory', async () => {
      await mkdir(path('fs-errors', 'in', 'sub'), { recursive: true });
      await writeFile(path('fs-errors', 'in', 'sub', 'b.txt'), 'b');
      await mkdir(path('fs-errors', 'out'));
      await writeFile(path('fs-errors', 'out', 'sub'), 'a file, not a directory');
      const run = await strongroom(['encrypt', '-r', '-i', path('fs-errors', 'in'), '-o', path('fs-errors', 'out'), '--key', keyArn]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /: cannot write \S+\/out\/sub\/b\.txt\.encrypted: ENOTDIR \(not a directory\)\n$/);
    });
  });

  describe('-o dir/ (a trailing slash): a directory, created when missing', () => {
    it('writes dir/<name><suffix>, creating the directories', async () => {
      await mkdir(path('slash'));
      await writeFile(path('slash', 'hi.txt'), 'hi');
      const run = await strongroom(['encrypt', '-i', path('slash', 'hi.txt'), '-o', `${path('slash', 'new', 'sub')}/`, '--key', keyArn]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(await listTree(path('slash', 'new')), ['sub/hi.txt.encrypted']);
    });

    it('removes the directories it created when the output fails', async () => {
      await mkdir(path('slash-fail'));
      await writeFile(path('slash-fail', 'hi.txt'), 'hi');
      assert.equal((await strongroom(['encrypt', '-i', path('slash-fail', 'hi.txt'), '-o', path('slash-fail', 'hi.msg'), '--key', keyArn])).code, 0);
      const run = await strongroom(['decrypt', '-i', path('slash-fail', 'hi.msg'), '-o', `${path('slash-fail', 'new', 'sub')}/`, '--key', otherKeyArn]);
      assert.equal(run.code, 1, run.stderr);
      assert.deepEqual(await readdir(path('slash-fail')), ['hi.msg', 'hi.txt']);
    });

    it('refuses a trailing slash on a file (exit 2)', async () => {
      const run = await strongroom(['encrypt', '-i', path('slash', 'hi.txt'), '-o', `${path('slash', 'hi.txt')}/`, '--key', keyArn]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /ends in \/ but is not a directory/);
    });
  });

  it('refuses an output tree that would overwrite inputs not yet read (exit 2, nothing touched)', async () => {
    await mkdir(path('overlap', 'q', 'data', 'data'), { recursive: true });
    await writeFile(path('overlap', 'a.pt'), 'alpha');
    await writeFile(path('overlap', 'b.pt'), 'bravo');
    for (const [source, target] of [['a.pt', 'q/data/x'], ['b.pt', 'q/data/data/x']]) {
      assert.equal((await strongroom(['encrypt', '-i', path('overlap', source), '-o', path('overlap', target), '--key', keyArn])).code, 0);
    }
    const before = await readFile(path('overlap', 'q', 'data', 'x'));
    const run = await strongroom(['decrypt', '-r', '-i', path('overlap', 'q', 'data'), '-o', path('overlap', 'q'), '--key', keyArn, '--suffix', '']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /usage: --output would overwrite an input before it is read: .*q\/data\/x/);
    assert.ok((await readFile(path('overlap', 'q', 'data', 'x'))).equals(before), 'the input is untouched');
    assert.deepEqual(await listTree(path('overlap', 'q')), ['data/data/x', 'data/x']);
  });

  it('gives up on a KMS that accepts connections and never answers (--kms-timeout)', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    const { port } = silent.address() as { port: number };
    try {
      await mkdir(path('stalled'));
      await writeFile(path('stalled', 'hi.txt'), 'hi');
      const started = Date.now();
      const run = await strongroom(['encrypt', '-i', path('stalled', 'hi.txt'), '-o', path('stalled', 'hi.msg'), '--key', keyArn, '--endpoint', `http://127.0.0.1:${port}`, '--kms-timeout', '1']);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /GenerateDataKey .*TimeoutError/);
      assert.ok(Date.now() - started < 30_000, 'three 1-second attempts, not forever');
      assert.deepEqual(await readdir(path('stalled')), ['hi.txt']);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  describe('stdout closed by its reader (EPIPE): exit 1 and one clear message', () => {
    const assertClosedOutput = (run: Run) => {
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /^strongroom encrypt: (\S+: )?output closed \(EPIPE\)/);
      assert.doesNotMatch(run.stderr, /\n\s+at |AbortError|Unhandled/, 'no stack trace, no AbortError');
    };

    it('the data (--output -)', async () => {
      await writeFile(path('epipe.bin'), randomBytes(4 * 1024 * 1024));
      assertClosedOutput(await strongroom(['encrypt', '-i', path('epipe.bin'), '-o', '-', '--key', keyArn], { stdoutTo: 'head -c 10 >/dev/null' }));
    });

    it('the metadata (--metadata-output -)', async () => {
      for (let n = 0; n < 100; n++) {
        await mkdir(path('epipe-tree', 'in'), { recursive: true });
        await writeFile(path('epipe-tree', 'in', `f${n}`), `file ${n}`);
      }
      const run = await strongroom(['encrypt', '-r', '-i', path('epipe-tree', 'in'), '-o', path('epipe-tree', 'out'), '--key', keyArn, '--metadata-output', '-'], {
        stdoutTo: 'head -c 100 >/dev/null',
      });
      assertClosedOutput(run);
      assert.deepEqual((await listTree(path('epipe-tree', 'out'))).filter((name) => name.endsWith('.strongroom-partial')), []);
    });
  });

  describe('a suite the commitment policy forbids: a usage error before any file or KMS call', () => {
    const cases: [string, string[]][] = [
      ['a non-committing suite under the default policy', ['--suite', '0x0014']],
      ['a committing suite under forbid-encrypt-allow-decrypt', ['--suite', '0x0478', '--commitment-policy', 'forbid-encrypt-allow-decrypt']],
    ];
    for (const [title, flags] of cases) {
      it(title, async () => {
        await mkdir(path('policy'), { recursive: true });
        await writeFile(path('policy', 'hi.txt'), 'hi');
        // Nothing listens on port 1: a KMS call would fail with exit 1, not 2.
        const run = await strongroom(['encrypt', '-i', path('policy', 'hi.txt'), '-o', path('policy', 's.msg'), '--key', keyArn, '--endpoint', 'http://127.0.0.1:1', ...flags]);
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, /^strongroom encrypt: usage: --suite 0x0[04][17]\d+ is (not )?committing: it needs --commitment-policy /);
        assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
        assert.deepEqual(await readdir(path('policy')), ['hi.txt']);
      });
    }
  });

  describe('a bad --context: exit 2, naming the key, never a value', () => {
    const cases: [string, string[], RegExp][] = [
      ['a key given twice', ['-c', 'dept=secretA', '-c', 'dept=secretB'], /--context key "dept" given twice/],
      ['a reserved key', ['-c', 'aws-crypto-x=secretA'], /--context key "aws-crypto-x" is reserved/],
      ['no key', ['-c', '=secretA'], /--context expects key=value/],
    ];
    for (const [title, flags, message] of cases) {
      it(title, async () => {
        const run = await strongroom(['encrypt', '-i', '-', '-o', '-', '--key', 'alias/x', ...flags]);
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, message);
        assert.doesNotMatch(run.stderr, /secret/);
      });
    }
  });

  describe('usage errors exit 2', () => {
    const cases: [string, string[]][] = [
      ['no --key at encrypt', ['encrypt', '-i', '-', '-o', '-']],
      ['neither --key nor --discovery at decrypt', ['decrypt', '-i', '-', '-o', '-']],
      ['--key with --discovery', ['decrypt', '-i', '-', '-o', '-', '--key', 'alias/x', '--discovery']],
      ['an unknown suite', ['encrypt', '-i', '-', '-o', '-', '--key', 'alias/x', '--suite', '0x0099']],
      ['a context pair without =', ['encrypt', '-i', '-', '-o', '-', '--key', 'alias/x', '--context', 'tenant']],
      ['a malformed key ARN', ['encrypt', '-i', '-', '-o', '-', '--key', 'arn:aws:kms:us-east-1:key/x']],
      ['an unknown option', ['encrypt', '-i', '-', '-o', '-', '--key', 'alias/x', '--frobnicate']],
      ['a missing input file', ['encrypt', '-i', '/nonexistent/input', '-o', '-', '--key', 'alias/x']],
      ['non-framed from stdin', ['encrypt', '-i', '-', '-o', '-', '--key', 'alias/x', '--frame-length', '0']],
      ['a KMS timeout of 0', ['encrypt', '-i', '-', '-o', '-', '--key', 'alias/x', '--kms-timeout', '0']],
    ];
    for (const [title, args] of cases) {
      it(title, async () => {
        const run = await strongroom(args);
        assert.equal(run.code, 2, run.stderr);
        assert.ok(run.stderr.length > 0);
      });
    }
  });
});
