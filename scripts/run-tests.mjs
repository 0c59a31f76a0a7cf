#!/usr/bin/env node
// Runs every test file under test/ with Node's own runner, TypeScript through tsx.
// (Node 20's --test takes no globs, so the files are listed here.)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith('.test.ts')) found.push(relative(root, path));
  }
  return found;
}

const files = only.length > 0 ? only : findTests(join(root, 'test'));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// A test file whose tests have all finished exits even if something it started (a worker thread,
// a child's pipe) still holds the event loop: a leak must not hang CI. Node 20.14+ has the flag.
const [major, minor] = process.versions.node.split('.').map(Number);
const forceExit = major > 20 || (major === 20 && minor >= 14) ? ['--test-force-exit'] : [];
const result = spawnSync(
  process.execPath,
  // A test still running after 10 minutes fails by name instead of holding CI until its limit.
  // test-preload.mjs: no test result is lost to the force exit (see there).
  ['--import', 'tsx', '--import', pathToFileURL(join(root, 'scripts/test-preload.mjs')).href, '--test', '--test-concurrency=2', '--test-timeout=600000', ...forceExit, '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
