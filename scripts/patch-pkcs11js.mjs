#!/usr/bin/env node
// npm's postinstall: applies patches/pkcs11js+<version>.patch to node_modules/pkcs11js and rebuilds
// its addon. The patch lets CKA_WRAP_TEMPLATE / CKA_UNWRAP_TEMPLATE / CKA_DERIVE_TEMPLATE take an
// array of { type, value } (pkcs11js 2.1.7 accepts only number/boolean/string/Buffer values), which
// the cluster wrapping key needs (docs/hsm-cluster.md, "Threat model"). Dependency-free on purpose:
// no `patch` or `git` on the machine is assumed, and nothing from the registry runs here.
//
// Strict: every hunk must match the pinned pkcs11js exactly (no fuzz), or the install fails. Safe to
// run again: a tree that already carries the patch and a build of it (the marker file) is left alone.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const packageDir = dirname(require.resolve('pkcs11js/package.json'));
const { version } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const patchFile = join(root, 'patches', `pkcs11js+${version}.patch`);
if (!existsSync(patchFile)) fail(`no patch for pkcs11js ${version} (patches/ has one for the pinned version only)`);
const patchText = readFileSync(patchFile, 'utf8');
const marker = join(packageDir, '.strongroom-patched');
const patchHash = createHash('sha256').update(patchText).digest('hex');
if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === patchHash) process.exit(0);

const files = parsePatch(patchText);
let changed = 0;
for (const { path, hunks } of files) {
  const file = join(packageDir, path);
  const lines = readFileSync(file, 'utf8').split('\n');
  const state = hunks.map((hunk) => locate(lines, hunk));
  if (state.every((s) => s.applied)) continue;
  if (state.some((s) => s.applied)) fail(`${path} carries part of the patch only`);
  // Bottom-up, so earlier positions stay valid.
  for (let i = hunks.length - 1; i >= 0; i--) lines.splice(state[i].at, hunks[i].before.length, ...hunks[i].after);
  writeFileSync(file, lines.join('\n'));
  changed++;
}
console.log(`strongroom: pkcs11js ${version}: ${changed} file(s) patched (${files.length} in the patch); rebuilding the addon`);

// npm_execpath is npm's own CLI when run by npm; otherwise the npm on PATH.
const npm = process.env.npm_execpath ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
const rebuild = spawnSync(npm[0], [...npm[1], 'rebuild', 'pkcs11js'], { cwd: root, stdio: 'inherit' });
if (rebuild.status !== 0) fail('npm rebuild pkcs11js failed');
const check = spawnSync(process.execPath, ['-e', "process.exit(require('pkcs11js').STRONGROOM_NESTED_TEMPLATES === 1 ? 0 : 1)"], { cwd: root });
if (check.status !== 0) fail('the rebuilt pkcs11js does not report nested-template support');
writeFileSync(marker, `${patchHash}\n`);

function parsePatch(text) {
  const result = [];
  let current;
  let hunk;
  for (const line of text.split('\n')) {
    if (line.startsWith('+++ b/')) {
      current = { path: line.slice('+++ b/'.length), hunks: [] };
      result.push(current);
      hunk = undefined;
    } else if (line.startsWith('@@ ')) {
      const match = /^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@/.exec(line);
      if (!match || !current) fail(`malformed hunk header: ${line}`);
      hunk = { start: Number(match[1]) - 1, before: [], after: [] };
      current.hunks.push(hunk);
    } else if (hunk && line.startsWith(' ')) {
      hunk.before.push(line.slice(1));
      hunk.after.push(line.slice(1));
    } else if (hunk && line.startsWith('-') && !line.startsWith('--- ')) {
      hunk.before.push(line.slice(1));
    } else if (hunk && line.startsWith('+')) {
      hunk.after.push(line.slice(1));
    } else if (line.startsWith('\\')) {
      // "\ No newline at end of file": the lines are compared without their '\n', and the file
      // keeps whatever ending it had (the patch changes no file's final newline).
    } else {
      hunk = undefined; // diff --git / index / --- lines, or the blank tail
    }
  }
  if (result.length === 0) fail('the patch names no files');
  return result;
}

/** Where the hunk's old text is (exactly at its header's line, or else at one unique place), or that it is applied already. */
function locate(lines, hunk) {
  const matchesAt = (block, at) => at >= 0 && at + block.length <= lines.length && block.every((line, i) => lines[at + i] === line);
  const find = (block) => {
    if (matchesAt(block, hunk.start)) return [hunk.start];
    const found = [];
    for (let at = 0; at + block.length <= lines.length; at++) if (matchesAt(block, at)) found.push(at);
    return found;
  };
  const before = find(hunk.before);
  if (before.length === 1) return { applied: false, at: before[0] };
  const after = find(hunk.after);
  if (before.length === 0 && after.length === 1) return { applied: true, at: after[0] };
  fail(`a hunk at line ${hunk.start + 1} does not match pkcs11js ${version} exactly`);
}

function fail(message) {
  console.error(`strongroom: cannot patch pkcs11js: ${message}`);
  process.exit(1);
}
