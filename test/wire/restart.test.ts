import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeyRotationsCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import {
  makeDataDir,
  removeDataDir,
  startServer,
  STRONGROOM_BIN,
  type RunningServer,
} from '../support/server.ts';

const repoRoot = resolve(import.meta.dirname, '../..');
const packageVersion = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const PLAINTEXT = Buffer.from([0x00, 0xff, 0x10, 0x80, ...Buffer.from('survives restarts')]);
const CONTEXT = { app: 'restart-test' };

interface ProcessResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `strongroom <args>` to completion (or the timeout). */
function runStrongroom(args: string[], timeoutMs = 20_000): Promise<ProcessResult> {
  return new Promise((done) => {
    execFile(process.execPath, [STRONGROOM_BIN, ...args], { cwd: repoRoot, timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const exitCode = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      done({ exitCode, stdout, stderr });
    });
  });
}

function runCommand(file: string, args: string[]): Promise<ProcessResult> {
  return new Promise((done) => {
    execFile(file, args, { timeout: 20_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      done({ exitCode: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** Everything a client can observe about the keys, in a form deepEqual can compare across restarts. */
async function observableState(kms: KMSClient) {
  const keys = [];
  for (const { KeyId } of (await kms.send(new ListKeysCommand({}))).Keys ?? []) {
    const metadata = (await kms.send(new DescribeKeyCommand({ KeyId }))).KeyMetadata!;
    const manageable = metadata.KeyState !== 'PendingDeletion';
    keys.push({
      metadata,
      tags: (await kms.send(new ListResourceTagsCommand({ KeyId }))).Tags,
      rotationStatus: manageable ? withoutResponseMetadata(await kms.send(new GetKeyRotationStatusCommand({ KeyId }))) : undefined,
      rotations: manageable ? (await kms.send(new ListKeyRotationsCommand({ KeyId }))).Rotations : undefined,
    });
  }
  const aliases = (await kms.send(new ListAliasesCommand({}))).Aliases;
  return { keys, aliases };
}

function withoutResponseMetadata<T extends { $metadata?: unknown }>(response: T): Omit<T, '$metadata'> {
  const { $metadata: _ignored, ...rest } = response;
  return rest;
}

async function encrypt(kms: KMSClient, keyId: string, context?: Record<string, string>): Promise<Uint8Array> {
  return (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: PLAINTEXT, EncryptionContext: context })))
    .CiphertextBlob!;
}

async function assertDecrypts(kms: KMSClient, ciphertextBlob: Uint8Array, context?: Record<string, string>): Promise<void> {
  const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: ciphertextBlob, EncryptionContext: context }));
  assert.deepEqual(Buffer.from(decrypted.Plaintext!), PLAINTEXT);
}

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

describe('state survives restarts', () => {
  let dataDir: string;
  let server: RunningServer | undefined;
  let firstCredentials: RunningServer['credentials'];
  let credentialsFileText: string;
  let stateBeforeRestart: Awaited<ReturnType<typeof observableState>>;
  const ciphertexts: { blob: Uint8Array; context?: Record<string, string> }[] = [];
  let lastKeyBeforeCrash: string;

  before(async () => {
    dataDir = await makeDataDir();
    server = await startServer({ dataDir });
    firstCredentials = server.credentials;
    credentialsFileText = await readFile(join(dataDir, 'credentials'), 'utf8');
    const kms = server.kms();

    const rotating = (
      await kms.send(new CreateKeyCommand({ Description: 'rotating key', Tags: [{ TagKey: 'team', TagValue: 'payments' }] }))
    ).KeyMetadata!.KeyId!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/restart/rotating', TargetKeyId: rotating }));
    await kms.send(new EnableKeyRotationCommand({ KeyId: rotating, RotationPeriodInDays: 90 }));
    ciphertexts.push({ blob: await encrypt(kms, rotating, CONTEXT), context: CONTEXT });
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: rotating }));
    ciphertexts.push({ blob: await encrypt(kms, 'alias/restart/rotating') });

    const disabled = (await kms.send(new CreateKeyCommand({ Description: 'disabled key' }))).KeyMetadata!.KeyId!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/restart/disabled', TargetKeyId: disabled }));
    await kms.send(new DisableKeyCommand({ KeyId: disabled }));

    const deleting = (await kms.send(new CreateKeyCommand({ Description: 'pending deletion' }))).KeyMetadata!.KeyId!;
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: deleting, PendingWindowInDays: 7 }));

    stateBeforeRestart = await observableState(kms);
    assert.equal(stateBeforeRestart.keys.length, 3);
  });

  after(async () => {
    await server?.stop();
    await removeDataDir(dataDir);
  });

  test('a graceful restart keeps keys, aliases, tags, rotation state, ciphertexts and the credentials', async () => {
    await server!.stop();
    assert.equal(server!.process.exitCode, 0, `graceful stop exits 0:\n${server!.output()}`);
    server = await startServer({ dataDir });

    assert.equal(await readFile(join(dataDir, 'credentials'), 'utf8'), credentialsFileText, 'credentials file unchanged');
    assert.match(server.output(), /Administrator credentials:/);
    assert.doesNotMatch(server.output(), /Created the administrator's access key/);
    // The access key of the first run still works.
    const kms = server.kms({ credentials: firstCredentials });
    assert.deepEqual(await observableState(kms), stateBeforeRestart);
    for (const { blob, context } of ciphertexts) await assertDecrypts(kms, blob, context);
    const [rotating] = stateBeforeRestart.keys;
    assert.equal(rotating.rotations?.length, 1);
    assert.equal(rotating.rotations?.[0].RotationType, 'ON_DEMAND');
    assert.equal(rotating.rotationStatus?.RotationPeriodInDays, 90);
  });

  test('a crash (kill -9) loses nothing that was acknowledged', async () => {
    const kms = server!.kms();
    lastKeyBeforeCrash = (await kms.send(new CreateKeyCommand({ Description: 'created just before the crash' }))).KeyMetadata!
      .KeyId!;
    const lastCiphertext = await encrypt(kms, lastKeyBeforeCrash);
    const beforeCrash = await observableState(kms);
    await server!.kill();
    assert.equal(server!.process.signalCode, 'SIGKILL');

    server = await startServer({ dataDir });
    const after = server.kms({ credentials: firstCredentials });
    assert.deepEqual(await observableState(after), beforeCrash);
    for (const { blob, context } of ciphertexts) await assertDecrypts(after, blob, context);
    await assertDecrypts(after, lastCiphertext);
    assert.equal(await readFile(join(dataDir, 'credentials'), 'utf8'), credentialsFileText);
  });

  test('a second server on the same data dir is refused while the first runs, which keeps serving', async () => {
    const second = await runStrongroom(['serve', '--data-dir', dataDir, '--port', '0', '--log-level', 'warn']);
    assert.notEqual(second.exitCode, 0, 'the second server must not start');
    assert.match(second.stderr, /in use/);
    assert.match(second.stderr, new RegExp(`pid ${server!.process.pid}`));
    assert.doesNotMatch(second.stdout, /listening on/);

    const kms = server!.kms();
    const described = await kms.send(new DescribeKeyCommand({ KeyId: lastKeyBeforeCrash }));
    assert.equal(described.KeyMetadata?.KeyState, 'Enabled');
    await assertDecrypts(kms, ciphertexts[0].blob, ciphertexts[0].context);
  });
});

describe('data dir permissions', () => {
  test('a new data dir is 0700 and its root.key, credentials and database are 0600', async () => {
    const parent = await makeDataDir();
    const dataDir = join(parent, 'fresh', 'data');
    const server = await startServer({ dataDir });
    try {
      assert.equal(await modeOf(dataDir), 0o700, 'data dir');
      for (const file of ['root.key', 'credentials', 'strongroom.db']) {
        assert.equal(await modeOf(join(dataDir, file)), 0o600, file);
      }
    } finally {
      await server.stop();
      await removeDataDir(parent);
    }
  });
});

// Independent short-lived processes: run side by side.
describe('command line', { concurrency: true }, () => {
  test('strongroom --version prints the package version', async () => {
    const result = await runStrongroom(['--version']);
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout.trim(), packageVersion);
  });

  test('strongroom --help exits 0 and lists the serve command', async () => {
    const result = await runStrongroom(['--help']);
    assert.equal(result.exitCode, 0);
    assert.match(result.stdout, /serve/);
    assert.match(result.stdout, /--version/);
  });

  test('strongroom serve --help exits 0 and lists its options', async () => {
    const result = await runStrongroom(['serve', '--help']);
    assert.equal(result.exitCode, 0);
    for (const option of ['--data-dir', '--host', '--port', '--region', '--tls-cert', '--tls-key', '--workers']) {
      assert.ok(result.stdout.includes(option), `serve --help lists ${option}`);
    }
  });

  const badArguments: [title: string, args: string[], message: RegExp][] = [
    ['a port above 65535', ['--port', '70000'], /--port.*70000.*0 to 65535/],
    ['a port that is not a number', ['--port', 'http'], /--port.*0 to 65535/],
    ['a region that is not a region name', ['--region', 'Mars'], /--region/],
    ['--tls-cert without --tls-key', ['--tls-cert', '/nonexistent.pem'], /--tls-cert and --tls-key/],
  ];
  for (const [title, args, message] of badArguments) {
    test(`serve refuses ${title} with a clear message`, async () => {
      const parent = await makeDataDir();
      try {
        const result = await runStrongroom(['serve', '--data-dir', join(parent, 'data'), ...args]);
        assert.notEqual(result.exitCode, 0);
        assert.match(result.stderr, message);
        assert.doesNotMatch(result.stdout, /listening on/);
      } finally {
        await removeDataDir(parent);
      }
    });
  }
});

describe('TLS', () => {
  let certDir: string;
  let certificate: Buffer;
  let server: RunningServer;

  before(async () => {
    certDir = await mkdtemp(join(tmpdir(), 'strongroom-tls-'));
    const [certPath, keyPath] = [join(certDir, 'cert.pem'), join(certDir, 'key.pem')];
    const generated = await runCommand('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-subj', '/CN=localhost', '-days', '1',
      // The SDK connects to 127.0.0.1, so the certificate must name that address.
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', keyPath, '-out', certPath,
    ]);
    assert.equal(generated.exitCode, 0, `openssl failed:\n${generated.stderr}`);
    certificate = await readFile(certPath);
    server = await startServer({ args: ['--tls-cert', certPath, '--tls-key', keyPath] });
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
    await rm(certDir, { recursive: true, force: true });
  });

  test('the listening line says https://', () => {
    assert.match(server.endpoint, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(server.output(), /listening on https:\/\//);
  });

  test('the SDK trusting the certificate talks to the server over https', async () => {
    // KMSClient builds its NodeHttpHandler from these options.
    const kms = server.kms({ requestHandler: { httpsAgent: new HttpsAgent({ ca: certificate }) } });
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await assertDecrypts(kms, await encrypt(kms, keyId, CONTEXT), CONTEXT);
  });

  test('a client that does not trust the certificate is refused by TLS', async () => {
    const kms = server.kms();
    await assert.rejects(kms.send(new ListKeysCommand({})), (error: Error & { code?: string }) => {
      assert.match(`${error.code} ${error.message}`, /self[- ]signed|certificate/i);
      return true;
    });
  });

  test('plain http to the TLS port gets no KMS answer', async () => {
    const kms = server.kms({ endpoint: server.endpoint.replace('https://', 'http://') });
    await assert.rejects(kms.send(new ListKeysCommand({})));
  });
});

describe('multi-process server (--workers 2)', () => {
  let server: RunningServer;
  let workerPids: number[];

  before(async () => {
    server = await startServer({ args: ['--workers', '2'] });
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  test('runs two worker processes', async () => {
    const ps = await runCommand('ps', ['-o', 'pid=', '--ppid', String(server.process.pid)]);
    workerPids = ps.stdout.split(/\s+/).filter(Boolean).map(Number);
    assert.equal(workerPids.length, 2, `worker processes: ${ps.stdout}`);
  });

  test('a key created through one connection is usable on fresh connections', async () => {
    const creator = server.kms();
    const keyId = (await creator.send(new CreateKeyCommand({ Description: 'made on one connection' }))).KeyMetadata!.KeyId!;
    await creator.send(new CreateAliasCommand({ AliasName: 'alias/workers', TargetKeyId: keyId }));
    const ciphertext = await encrypt(creator, keyId, CONTEXT);

    // Without keep-alive every request opens a new connection, which the cluster hands to the
    // workers in turn: consecutive requests land on different processes.
    const freshClients = Array.from({ length: 4 }, () =>
      server.kms({ requestHandler: { httpAgent: new HttpAgent({ keepAlive: false }) } }),
    );
    for (const kms of freshClients) {
      for (let attempt = 0; attempt < 3; attempt++) {
        const described = await kms.send(new DescribeKeyCommand({ KeyId: 'alias/workers' }));
        assert.equal(described.KeyMetadata?.KeyId, keyId);
        await assertDecrypts(kms, ciphertext, CONTEXT);
        await assertDecrypts(kms, await encrypt(kms, 'alias/workers', CONTEXT), CONTEXT);
      }
    }
  });

  test('stopping the server stops its workers', async () => {
    await server.stop();
    assert.equal(server.process.exitCode, 0, server.output());
    for (const pid of workerPids ?? []) {
      assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is still running`);
    }
  });
});
