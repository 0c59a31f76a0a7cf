import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./support/pool-exit-child.ts', import.meta.url));

it('a process that used the frame pool, the signing pool and the spill exits on its own soon after main returns', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  const exitedAt = Date.now();
  clearTimeout(killer);
  assert.equal(signal, null, `killed: the process did not exit within 60 s (${stdout.trim()})`);
  assert.equal(code, 0, stderr.slice(0, 2000));
  const returnedAt = Number(/main returned at (\d+)/.exec(stdout)?.[1]);
  assert.ok(returnedAt > 0, 'the child did not finish its work');
  assert.ok(exitedAt - returnedAt < 3000, `exited ${exitedAt - returnedAt} ms after main returned`);
});
