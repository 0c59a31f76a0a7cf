import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';

/** boto3 is the third client DESIGN.md names; Debian's python3-boto3 is installed by npm's pretest. */
describe('boto3 against Strongroom', () => {
  let server: RunningServer;
  let seen: Record<string, any>;

  before(async () => {
    server = await startServer();
    assert.ok(existsSync(PYTHON), `${PYTHON} is missing`);
    const { stdout } = await run(PYTHON, [join(import.meta.dirname, 'boto3_client.py')], {
      env: {
        PATH: '/usr/bin:/bin',
        STRONGROOM_ENDPOINT: server.endpoint,
        AWS_SHARED_CREDENTIALS_FILE: join(server.dataDir, 'credentials'),
        AWS_CONFIG_FILE: '/dev/null',
        AWS_REGION: server.region,
      },
      timeout: 60_000,
    });
    seen = JSON.parse(stdout);
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  it('creates a symmetric key and parses its timestamps as datetimes', () => {
    assert.equal(seen.create_key.KeySpec, 'SYMMETRIC_DEFAULT');
    assert.equal(seen.create_key.KeyUsage, 'ENCRYPT_DECRYPT');
    assert.equal(seen.create_key.KeyState, 'Enabled');
    assert.equal(seen.creation_date_type, 'datetime');
  });

  it('pages through ListKeys with the botocore paginator, every key once', () => {
    assert.equal(seen.paginated_key_count, 5);
    assert.equal(seen.paginated_unique, true);
  });

  it('round-trips binary plaintext through an alias with an encryption context', () => {
    assert.equal(seen.round_trip, true);
    assert.equal(seen.encrypt_key_id, seen.create_key.Arn);
    assert.equal(seen.decrypt_key_id, seen.create_key.Arn);
  });

  it('generates data keys and re-encrypts under another key', () => {
    assert.equal(seen.data_key_length, 32);
    assert.equal(seen.data_key_round_trip, true);
    assert.match(seen.re_encrypt_key_id, /^arn:aws:kms:[a-z0-9-]+:\d{12}:key\//);
    assert.equal(seen.re_encrypt_round_trip, true);
  });

  it('sees AWS error codes, messages and statuses', () => {
    assert.deepEqual(seen.tampered, { code: 'InvalidCiphertextException', message: '', status: 400 });
    assert.deepEqual(seen.wrong_context, { code: 'InvalidCiphertextException', message: '', status: 400 });
    assert.deepEqual(seen.unknown_key, { code: 'NotFoundException', message: "Invalid keyId 'fake-key-id'", status: 400 });
    assert.deepEqual(seen.too_many_bytes, {
      code: 'ValidationException',
      message:
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
      status: 400,
    });
    assert.deepEqual(seen.disabled, { code: 'DisabledException', message: `${seen.create_key.Arn} is disabled.`, status: 400 });
    assert.deepEqual(seen.tags, [{ TagKey: 'team', TagValue: 'py' }]);
  });
});
