import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

/**
 * The real AWS CLI v2, Debian's package (scripts/install-test-deps.sh). Not the `aws` on PATH,
 * which may be a pip-installed v1 with different behaviour.
 */
const AWS_CLI = '/usr/bin/aws';
const CLI_TIMEOUT_MS = 30_000;

interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

describe('AWS CLI v2 against strongroom serve', () => {
  let server: RunningServer;
  let fileCounter = 0;

  before(async () => {
    assert.ok(
      existsSync(AWS_CLI),
      `${AWS_CLI} (Debian's awscli, AWS CLI v2) is missing: run scripts/install-test-deps.sh (npm test runs it as pretest)`,
    );
    server = await startServer();
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  /** Runs `aws kms <args>` against the server with only the environment the CLI should see. */
  function runCli(args: string[]): Promise<CliResult> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: server.dataDir,
      AWS_SHARED_CREDENTIALS_FILE: join(server.dataDir, 'credentials'),
      AWS_CONFIG_FILE: '/dev/null',
      AWS_REGION: server.region,
      AWS_PAGER: '',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    // CLI 2.9 predates AWS_ENDPOINT_URL_KMS, so the endpoint goes on the command line.
    const argv = ['kms', ...args, '--endpoint-url', server.endpoint, '--output', 'json'];
    return new Promise((done) => {
      execFile(AWS_CLI, argv, { env, timeout: CLI_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
        const exitCode = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        done({ exitCode, stdout, stderr });
      });
    });
  }

  async function aws<T = Record<string, unknown>>(...args: string[]): Promise<T> {
    const result = await runCli(args);
    assert.equal(result.exitCode, 0, `aws kms ${args[0]} failed:\n${result.stderr}`);
    return (result.stdout.trim() === '' ? {} : JSON.parse(result.stdout)) as T;
  }

  async function fileWith(bytes: Uint8Array): Promise<string> {
    const path = join(server.dataDir, `cli-input-${++fileCounter}.bin`);
    await writeFile(path, bytes);
    return `fileb://${path}`;
  }

  const fromBase64 = (text: string): Buffer => Buffer.from(text, 'base64');

  interface KeyMetadataJson {
    KeyMetadata: { KeyId: string; Arn: string; Description: string; KeyState: string; Enabled: boolean };
  }

  let keyId: string;

  test('create-key with --description and --tags makes a key described and tagged as asked', async () => {
    const created = await aws<KeyMetadataJson>(
      'create-key',
      '--description',
      'made by the AWS CLI',
      '--tags',
      'TagKey=team,TagValue=payments',
      'TagKey=env,TagValue=test',
    );
    keyId = created.KeyMetadata.KeyId;
    assert.match(keyId, /^[0-9a-f-]{36}$/);
    assert.equal(created.KeyMetadata.Description, 'made by the AWS CLI');
    assert.equal(created.KeyMetadata.KeyState, 'Enabled');

    const tags = await aws<{ Tags: { TagKey: string; TagValue: string }[] }>('list-resource-tags', '--key-id', keyId);
    assert.deepEqual(
      [...tags.Tags].sort((a, b) => a.TagKey.localeCompare(b.TagKey)),
      [
        { TagKey: 'env', TagValue: 'test' },
        { TagKey: 'team', TagValue: 'payments' },
      ],
    );
  });

  test('list-keys lists the new key', async () => {
    const listed = await aws<{ Keys: { KeyId: string; KeyArn: string }[] }>('list-keys');
    const entry = listed.Keys.find((key) => key.KeyId === keyId);
    assert.ok(entry, 'the created key is listed');
    assert.match(entry.KeyArn, new RegExp(`^arn:aws:kms:${server.region}:\\d{12}:key/${keyId}$`));
  });

  test('create-alias names the key for describe-key and list-aliases', async () => {
    await aws('create-alias', '--alias-name', 'alias/cli-test', '--target-key-id', keyId);
    const described = await aws<KeyMetadataJson>('describe-key', '--key-id', 'alias/cli-test');
    assert.equal(described.KeyMetadata.KeyId, keyId);
    assert.equal(described.KeyMetadata.Description, 'made by the AWS CLI');
    const aliases = await aws<{ Aliases: { AliasName: string; TargetKeyId: string }[] }>('list-aliases', '--key-id', keyId);
    assert.deepEqual(
      aliases.Aliases.map((alias) => [alias.AliasName, alias.TargetKeyId]),
      [['alias/cli-test', keyId]],
    );
  });

  test('encrypt and decrypt round-trip binary plaintext through fileb:// files', async () => {
    const plaintext = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, byte) => byte)), randomBytes(1000)]);
    const encrypted = await aws<{ CiphertextBlob: string; KeyId: string }>(
      'encrypt',
      '--key-id',
      'alias/cli-test',
      '--plaintext',
      await fileWith(plaintext),
    );
    assert.match(encrypted.KeyId, new RegExp(`:key/${keyId}$`));
    const ciphertext = fromBase64(encrypted.CiphertextBlob);
    assert.equal(ciphertext.includes(plaintext.subarray(0, 64)), false, 'the ciphertext does not carry the plaintext');

    const decrypted = await aws<{ Plaintext: string; KeyId: string }>('decrypt', '--ciphertext-blob', await fileWith(ciphertext));
    assert.deepEqual(fromBase64(decrypted.Plaintext), plaintext);
    assert.match(decrypted.KeyId, new RegExp(`:key/${keyId}$`));
  });

  test('encrypt with --encryption-context needs the same context to decrypt', async () => {
    const plaintext = Buffer.from('context-bound secret');
    const encrypted = await aws<{ CiphertextBlob: string }>(
      'encrypt',
      '--key-id',
      keyId,
      '--plaintext',
      await fileWith(plaintext),
      '--encryption-context',
      'purpose=cli-test,tenant=42',
    );
    const ciphertextFile = await fileWith(fromBase64(encrypted.CiphertextBlob));

    const decrypted = await aws<{ Plaintext: string }>(
      'decrypt',
      '--ciphertext-blob',
      ciphertextFile,
      '--encryption-context',
      'tenant=42,purpose=cli-test',
    );
    assert.deepEqual(fromBase64(decrypted.Plaintext), plaintext);

    for (const context of [[], ['--encryption-context', 'purpose=cli-test,tenant=43']]) {
      const refused = await runCli(['decrypt', '--ciphertext-blob', ciphertextFile, ...context]);
      assert.notEqual(refused.exitCode, 0);
      assert.match(refused.stderr, /InvalidCiphertextException/);
      assert.equal(refused.stderr.includes('42'), false, 'no context value in the error');
    }
  });

  test('generate-data-key --key-spec AES_256 returns a 32-byte key whose ciphertext decrypts to it', async () => {
    const generated = await aws<{ Plaintext: string; CiphertextBlob: string; KeyId: string }>(
      'generate-data-key',
      '--key-id',
      keyId,
      '--key-spec',
      'AES_256',
    );
    const dataKey = fromBase64(generated.Plaintext);
    assert.equal(dataKey.length, 32);
    const decrypted = await aws<{ Plaintext: string }>(
      'decrypt',
      '--ciphertext-blob',
      await fileWith(fromBase64(generated.CiphertextBlob)),
    );
    assert.deepEqual(fromBase64(decrypted.Plaintext), dataKey);
  });

  test('decrypt of garbage exits non-zero naming InvalidCiphertextException', async () => {
    const result = await runCli(['decrypt', '--ciphertext-blob', await fileWith(Buffer.from('not a ciphertext at all'))]);
    assert.notEqual(result.exitCode, 0);
    assert.match(result.stderr, /InvalidCiphertextException/);
    assert.equal(result.stdout, '');
  });

  test('describe-key of a key that does not exist exits non-zero naming NotFoundException', async () => {
    const result = await runCli(['describe-key', '--key-id', '00000000-0000-0000-0000-000000000000']);
    assert.notEqual(result.exitCode, 0);
    assert.match(result.stderr, /NotFoundException/);
  });
});
