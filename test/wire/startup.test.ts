import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { makeDataDir, removeDataDir, STRONGROOM_BIN, startServer } from '../support/server.ts';

function serveOnce(dataDir: string) {
  return spawnSync(process.execPath, [STRONGROOM_BIN, 'serve', '--data-dir', dataDir, '--port', '0'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
}

describe('a start that must be refused', () => {
  it('refuses a data directory other users can read, naming the fix', async () => {
    const dataDir = await makeDataDir();
    try {
      await chmod(dataDir, 0o755);
      const result = serveOnce(dataDir);
      assert.equal(result.status, 2);
      assert.match(result.stderr, /data directory .* is accessible by other users \(mode 755\); run: chmod 700/);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace for an operator mistake');
    } finally {
      await removeDataDir(dataDir);
    }
  });

  it('refuses a credentials file other users can read', async () => {
    const server = await startServer();
    await server.stop();
    try {
      await chmod(join(server.dataDir, 'credentials'), 0o644);
      const result = serveOnce(server.dataDir);
      assert.equal(result.status, 2);
      assert.match(result.stderr, /credentials file .* is accessible by other users/);
    } finally {
      await removeDataDir(server.dataDir);
    }
  });

  it('refuses a damaged root key file without a stack trace', async () => {
    const dataDir = await makeDataDir();
    try {
      await writeFile(join(dataDir, 'root.key'), 'not a key\n', { mode: 0o600 });
      const result = serveOnce(dataDir);
      assert.equal(result.status, 2);
      assert.match(result.stderr, /root key file .* is not a Strongroom root key file/);
    } finally {
      await removeDataDir(dataDir);
    }
  });
});
