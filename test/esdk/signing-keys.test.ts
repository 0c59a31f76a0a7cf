/**
 * Signing keys are made without a JWK export of a key from generateKeyPairSync. On Node 20 such an
 * export can deadlock its thread. A garbage collection inside the export finalises the key's
 * generation job, and that takes the lock the export holds. A full bench/esdk.sh run hung this way
 * at exit: a signing-pool worker was stuck in ~KeyGenJob under ExportJWKEcKey.
 *
 * --gc-interval brings such collections often. There the bare pattern (generateKeyPairSync('ec')
 * plus JWK exports) deadlocked within ~750 keys in 3 of 4 runs. The pool's old worker code hung in
 * 1 of 3 runs of this child. The child makes 2,000 keys on its thread and takes 2,000 from the
 * pool; it must finish.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

describe('ECDSA signing keys under frequent garbage collection', () => {
  it('are made on the calling thread and by the pool without deadlocking', () => {
    const result = spawnSync(
      process.execPath,
      ['--gc-interval=400', '--import', 'tsx', new URL('./support/signing-keys-child.ts', import.meta.url).pathname, '2000'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(result.signal, null, `the child hung (killed by ${result.signal}); it printed: ${result.stdout}${result.stderr}`);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^done 2000 here, 2000 from the pool$/m);
  });
});
