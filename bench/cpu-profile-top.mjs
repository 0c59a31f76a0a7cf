// Summarizes V8 .cpuprofile files (node --cpu-prof): top functions by self time, and self time
// by source file / package.
//
//   node bench/cpu-profile-top.mjs [--top 25] [--under <path>[,<path>...]] <file.cpuprofile>...
//
// --under adds, per function defined in one of those source files (e.g.
// src/service/authorization.ts,src/policy/evaluate.ts), its inclusive time: every sample with the
// function anywhere on its stack, counted once (so recursion and nesting do not double-count).
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const args = process.argv.slice(2);
let top = 25;
let under = [];
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else if (args[i] === '--under') under = args[++i].split(',').filter(Boolean);
  else files.push(args[i]);
}
const root = process.cwd();

function where(url) {
  if (!url) return '(native/V8)';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (path.startsWith('node:')) return path;
  return path.startsWith('/') ? relative(root, path) : path;
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  // Each sample charged to the nearest project source file on its stack (itself or a caller), so
  // time in node:crypto, better-sqlite3 or V8 lands on the project code that asked for it.
  const isProject = (url) => Boolean(url) && !url.includes('/node_modules/') && !url.startsWith('node:') && url.includes('/src/');
  const owners = new Map();
  for (const [id, us] of self) {
    let at = id;
    let owner;
    while (at !== undefined) {
      const frame = byId.get(at).callFrame;
      if (isProject(frame.url)) {
        owner = where(frame.url);
        break;
      }
      at = parent.get(at);
    }
    const name = byId.get(id).callFrame.functionName;
    owner ??= name === '(idle)' ? '(idle)' : name === '(garbage collector)' ? '(garbage collector)' : '(node http/net/runtime, no project frame)';
    owners.set(owner, (owners.get(owner) ?? 0) + us);
  }
  const functions = new Map();
  const places = new Map();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const place = where(url);
    // Line numbers are only meaningful for untransformed code (node: internals, .js/.mjs); tsx
    // compiles the .ts sources, so their positions do not match the files.
    const line = url && !/\.(ts|mts|cts)$/.test(url) ? `:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'}  ${place}${line}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
    places.set(place, (places.get(place) ?? 0) + us);
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  console.log(`\n== ${file}: ${(total / 1e6).toFixed(1)} s sampled`);
  console.log(`-- top ${top} functions by self time`);
  for (const [key, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${key}`);
  console.log('-- self time by file / package');
  for (const [place, us] of [...places].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${pct(us)}  ${place}`);
  console.log('-- time charged to the nearest project source file on the stack (self + what it called)');
  for (const [owner, us] of [...owners].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${pct(us)}  ${owner}`);
  if (under.length) {
    // Inclusive time of each function of the --under files: walk each sampled node's stack once.
    const inclusive = new Map();
    const selfIn = new Map();
    let anyUnder = 0;
    for (const [id, us] of self) {
      const seen = new Set();
      let at = id;
      while (at !== undefined) {
        const { functionName, url } = byId.get(at).callFrame;
        const place = where(url);
        if (under.includes(place)) {
          const key = `${functionName || '(anonymous)'}  ${place}`;
          if (!seen.has(key)) {
            seen.add(key);
            inclusive.set(key, (inclusive.get(key) ?? 0) + us);
            if (at === id) selfIn.set(key, (selfIn.get(key) ?? 0) + us);
          }
        }
        at = parent.get(at);
      }
      if (seen.size) anyUnder += us;
    }
    console.log(`-- inclusive time under ${under.join(', ')}: ${pct(anyUnder)} of all samples; per function (inclusive, self)`);
    for (const [key, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${pct(us)} ${pct(selfIn.get(key) ?? 0)}  ${key}`);
    }
  }
}
