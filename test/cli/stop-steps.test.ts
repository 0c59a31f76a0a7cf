/**
 * A stop always ends the process: every step done → exit 0; a step that throws or never finishes
 * → exit 1 with a log line naming that step (runStopSteps, used by `strongroom serve` on SIGTERM).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const run = (scenario: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', new URL('./support/stop-steps-child.ts', import.meta.url).pathname, scenario], {
    encoding: 'utf8',
    timeout: 30_000,
  });

describe('runStopSteps', () => {
  it('runs every step in order and exits 0', () => {
    const result = run('ok');
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n'), ['first', 'second', 'last']);
  });

  it('exits 1 naming the step that did not finish within the bound, without running the rest', () => {
    const started = Date.now();
    const result = run('hang');
    assert.equal(result.status, 1, result.stderr);
    assert.ok(Date.now() - started < 20_000, 'the bound, not the hanging step, ended the process');
    assert.deepEqual(result.stdout.trim().split('\n'), ['first']);
    const line = JSON.parse(result.stderr.trim().split('\n').at(-1) as string);
    assert.equal(line.msg, 'stop did not finish in time; exiting');
    assert.equal(line.step, 'the stuck one');
  });

  it('exits 1 naming the step that failed', () => {
    const result = run('fail');
    assert.equal(result.status, 1, result.stderr);
    const line = JSON.parse(result.stderr.trim().split('\n').at(-1) as string);
    assert.equal(line.msg, 'error while stopping');
    assert.equal(line.step, 'the stuck one');
    assert.match(line.err.stack, /the store refused to close/);
  });
});
