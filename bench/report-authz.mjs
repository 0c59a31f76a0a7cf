// Writes bench/authz.sh's section of bench/RESULTS.md: the cost of access control on Encrypt 32 B.
//
//   node bench/report-authz.mjs <results.tsv> <RESULTS.md> <setup dir of bench/prepare-authz.ts>
//
// The section sits between two HTML comment markers: a later run replaces it, anything else in
// the file (bench/run.sh's report) is left as it is; without the markers it is appended. TSV and
// BENCH_META_* as for bench/report.mjs (bench/results-lib.mjs).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuPerRequest, fmt, median, meta, ms, readRuns, summarize } from './results-lib.mjs';

const [tsvPath, outPath, setupDir] = process.argv.slice(2);
const clkTck = Number(meta('CLK_TCK', '100'));
/** Issue: realistic policies may cost at most 10% of allow-all's throughput. */
const TARGET_RATIO = 0.9;
const START = '<!-- bench/authz.sh: start -->';
const END = '<!-- bench/authz.sh: end -->';

const CASES = {
  'allow-all': 'allow-all: `bench-open`, identity policy Allow `*` on `*`; key with the default key policy',
  realistic: 'realistic: `bench-app` (2 tags), 2 identity policies (5 statements); key with an 8-statement key policy, 3 tags, 3 grants',
  bare: 'bare node:http echo (no auth), the allow-all requests',
};

const runs = readRuns(tsvPath);
const s = Object.fromEntries(Object.keys(CASES).map((name) => [name, summarize(runs.get(name), clkTck)]));
const totalCpu = (run) => cpuPerRequest(run, 'server_cpu_ticks', clkTck) + cpuPerRequest(run, 'wrk_cpu_ticks', clkTck);
for (const summary of Object.values(s)) {
  if (summary) summary.totalCpu = median(summary.runs.map(totalCpu));
}
const open = s['allow-all'];
const real = s.realistic;
const bare = s.bare;
const clean = (x) => x && x.non2xx === 0 && x.socketErrors === 0 && !x.broken;
const allClean = Object.values(s).every(clean);

const ratio = open && real && open.rps > 0 ? real.rps / open.rps : NaN;
const pairedBy = (f) =>
  real && open
    ? median(
        real.runs
          .map((r) => [r, open.runs.find((o) => o.rep === r.rep)])
          .filter(([, o]) => o)
          .map(([r, o]) => f(r, o))
          .filter(Number.isFinite),
      )
    : NaN;
const pairedRatio = pairedBy((r, o) => (o.rps > 0 ? r.rps / o.rps : NaN));
// On these shared cores req/s ≈ 2 cores ÷ (server + wrk CPU per request): the ratio req/s would
// show with nothing else running, and much less disturbed by other load than req/s.
const cpuCostRatio = pairedBy((r, o) => totalCpu(o) / totalCpu(r));
const extraServerCpu = real && open ? real.cpuPerRequest - open.cpuPerRequest : NaN;
const pct = (x, digits = 1) => (Number.isFinite(x) ? `${fmt(x * 100, digits)}%` : '?');
const met = Number.isFinite(ratio) && ratio >= TARGET_RATIO;
const crossChecks = [pairedRatio, cpuCostRatio].filter(Number.isFinite);
const crossAgree = crossChecks.every((x) => x >= TARGET_RATIO === met);

const foreignShares = [...runs.values()].flat().map((r) => r.foreign_cpu_pct).filter(Number.isFinite);
const maxForeign = foreignShares.length ? Math.max(...foreignShares) : 0;
const medianForeign = foreignShares.length ? median(foreignShares) : 0;
const background = Number(meta('BACKGROUND', '0'));
const noisy = maxForeign > 10 || background > 10;

let verdict;
if (!allClean) verdict = '**invalid: some runs had non-2xx responses or socket errors** (see below); no verdict.';
else {
  const cost =
    ratio <= 1
      ? `access control with realistic policies costs **${pct(1 - ratio)}** of throughput`
      : 'realistic policies cost no measurable throughput (realistic ran faster: noise)';
  verdict =
    `realistic reaches **${pct(ratio)}** of allow-all's req/s, i.e. ${cost}: ` +
    `the ≤ ${fmt((1 - TARGET_RATIO) * 100)}% target is **${met ? 'met' : 'not met'}**` +
    (crossAgree
      ? ` (the paired per-repetition ratio, ${pct(pairedRatio)}, and the CPU-cost ratio, ${pct(cpuCostRatio)}, agree).`
      : ` — but the cross-checks disagree (paired per-repetition ratio ${pct(pairedRatio)}, CPU-cost ratio ` +
        `${pct(cpuCostRatio)}), so the margin is within this run's noise.`);
}

const row = (name) => {
  const x = s[name];
  if (!x) return undefined;
  const vsOpen = name === 'allow-all' ? '1 (reference)' : open?.rps > 0 ? pct(x.rps / open.rps) : '?';
  const vsBare = name === 'bare' ? '1 (baseline)' : bare?.rps > 0 ? pct(x.rps / bare.rps) : '?';
  return (
    `| ${CASES[name]} | ${fmt(x.rps)} | ${ms(x.p50)} | ${ms(x.p99)} | ${fmt(x.cpuPerRequest)} | ${fmt(x.totalCpu)} | ` +
    `${vsOpen} | ${vsBare} | ${x.non2xx}${x.socketErrors ? ` (+${x.socketErrors} socket errors)` : ''}${x.broken ? ' (run without result!)' : ''} |`
  );
};

const perRun = [];
for (const name of Object.keys(CASES)) {
  for (const r of s[name]?.runs ?? []) {
    const o = open?.runs.find((x) => x.rep === r.rep);
    perRun.push(
      `| ${name} | ${r.rep} | ${fmt(r.rps)} | ${name === 'allow-all' ? '—' : o?.rps > 0 ? pct(r.rps / o.rps) : '?'} | ` +
        `${ms(r.p50_us / 1000)} | ${ms(r.p90_us / 1000)} | ${ms(r.p99_us / 1000)} | ${ms(r.max_us / 1000)} | ` +
        `${fmt(cpuPerRequest(r, 'server_cpu_ticks', clkTck))} | ${fmt(cpuPerRequest(r, 'wrk_cpu_ticks', clkTck))} | ` +
        `${fmt(r.requests)} | ${r.non2xx} | ${r.connect_errors}/${r.read_errors}/${r.write_errors}/${r.timeouts} | ` +
        `${Number.isFinite(r.foreign_cpu_pct) ? `${r.foreign_cpu_pct}%` : '?'} | ${r.attempts ?? 1} |`,
    );
  }
}

// What the setup installed and how the evaluator decided each case (StrongroomAdmin.ExplainRequest).
const readJson = (file) => (existsSync(join(setupDir, file)) ? JSON.parse(readFileSync(join(setupDir, file), 'utf8')) : undefined);
const explain = readJson('explain.json') ?? {};
const policies = readJson('policies.json') ?? {};
const statements = (document) =>
  (document?.Statement ?? [])
    .map((st, i) => `${i}: ${st.Effect}${st.NotAction ? ' NotAction' : ''}${st.NotResource ? ' NotResource' : ''} "${st.Sid ?? '(no Sid)'}"` +
      `${st.Condition ? ` [${Object.entries(st.Condition).flatMap(([op, keys]) => Object.keys(keys).map((k) => `${op} ${k}`)).join(', ')}]` : ''}`)
    .join('; ');
const realistic = policies.realistic ?? {};
const explained = (name) => {
  const e = explain[name];
  if (!e) return '?';
  const matched = (e.MatchedStatements ?? []).map((m) => `${m.SourcePolicyId} ${m.StatementIndex}${m.Sid ? ` ("${m.Sid}")` : ''}`);
  const notApplied = (e.Reasons ?? []).filter((reason) => reason.includes('did not apply')).length;
  return `${e.Decision} by ${matched.join(' + ')}${notApplied ? `; ${notApplied} statements with conditions evaluated and not applying` : ''}`;
};

const samples = meta('SAMPLES').trim();
const srLog = meta('SR_LOG').trim();
const section = `${START}
## Access control: Encrypt 32 B with realistic policies vs allow-all (\`bench/authz.sh\`)

Issue target: Encrypt with a realistic key policy and identity policy costs ≤ ${fmt((1 - TARGET_RATIO) * 100)}% of throughput against the
same run with a policy that allows everything. One Strongroom, both cases interleaved in each of ${meta('REPEATS')} repetitions,
medians over repetitions (as \`bench/run.sh\`); see bench/README.md ("Access control").
${!allClean ? '\n> **WARNING: some runs had non-2xx responses or socket errors; those figures are not valid measurements.**\n' : ''}${noisy ? `\n> **WARNING: the machine was not quiet: ${background > 10 ? `just before measuring, with both servers idle, ${background}% of its CPU was busy; ` : ''}during the measured runs other processes took up to ${maxForeign}% of it (median ${medianForeign}% over the runs; column "other CPU" below). req/s are lower and noisier than on an idle machine; the CPU-cost ratio is the least disturbed figure.**\n` : ''}${meta('SR_ALIVE') === 'no' ? '\n> **WARNING: the Strongroom server was no longer running at the end of the measurements.**\n' : ''}
| Case | req/s | p50 ms | p99 ms | server CPU µs/req | server + wrk CPU µs/req | req/s vs allow-all | req/s vs bare | non-2xx (all runs) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${['allow-all', 'realistic', 'bare'].map(row).filter(Boolean).join('\n')}

**Verdict:** ${verdict}

- realistic / allow-all, median req/s: ${pct(ratio)}; median of the per-repetition ratios: ${pct(pairedRatio)}; CPU-cost ratio
  (allow-all's server + wrk CPU per request ÷ realistic's, median over repetitions — what the req/s ratio would be with the
  machine to ourselves): ${pct(cpuCostRatio)}.
- Server CPU per request, realistic − allow-all: ${Number.isFinite(extraServerCpu) ? `${fmt(extraServerCpu, 1)} µs` : '?'} (over ${fmt(open?.cpuPerRequest ?? NaN)} µs for allow-all).
- The bare line is the same bare node:http baseline as bench/run.sh's \`bare-32\`, here with these slightly larger requests
  (an encryption context of 3 pairs in every body), for comparing absolute figures with the runs above.

### The cases

Both send the same request shape, \`TrentService.Encrypt\` with a 32-byte plaintext (different in each pooled request) and
EncryptionContext \`{"app":"payments-api","tenant":"tenant-0042","purpose":"card-token"}\`, each pool SigV4-signed with its
case's own user's access key (made with \`StrongroomAdmin.CreateAccessKey\`). Set up by \`bench/prepare-authz.ts\` (all documents there).

- **allow-all**: ${explained('allow-all')}.
- **realistic**: ${explained('realistic')}.
  - key policy: ${statements(realistic.keyPolicy)}
  - identity policy "payments-kms-use": ${statements(realistic.identityPolicies?.['payments-kms-use'])}
  - identity policy "guardrails": ${statements(realistic.identityPolicies?.guardrails)}
  - user tags ${Object.entries(realistic.userTags ?? {}).map(([k, v]) => `${k}=${v}`).join(', ')}; key tags ${Object.entries(realistic.keyTags ?? {}).map(([k, v]) => `${k}=${v}`).join(', ')}; ${realistic.grants ?? '?'} grants on the key to other principals (not needed: a policy allows)
  - checked before measuring, with bench-app's own key: Encrypt under the allow-all key, without encryption context, or with
    another \`app\` in it, and ScheduleKeyDeletion, are all AccessDeniedException.

### How it was run

- Command: \`bash bench/authz.sh\` (${meta('REPEATS')} repetitions, ${meta('WARMUP')} s warm-up + ${meta('DURATION')} s measured per case, pool of ${meta('POOL')} pre-signed requests per case and run)
- Load generator, per case: \`${meta('WRK_CMD')}\` after a ${meta('WARMUP')} s warm-up with the same pool
- Strongroom: \`node bin/strongroom.mjs serve --data-dir <tmp> --port <p> --workers ${meta('WORKERS')} --log-level warn\`; baseline: \`node bench/bare-server.mjs --workers ${meta('WORKERS')}\`
- Order of the cases per repetition (the Strongroom cases swap every other one): ${meta('ORDER')}
- Machine: nproc ${meta('NPROC')}; CPU ${meta('CPU')}; ${meta('KERNEL')}; Node ${meta('NODE')}; ${meta('WRK')}
- Date (UTC, start of measurements): ${meta('STARTED')}; measuring took ${meta('ELAPSED')} s
- Strongroom source (at server start): commit ${meta('COMMIT')}${Number(meta('DIRTY', '0')) > 0 ? ` plus ${meta('DIRTY')} uncommitted change(s) under src/, bin/ or package.json` : ''}
- Load average before / after: ${meta('LOAD_BEFORE')} / ${meta('LOAD_AFTER')}; CPU busy with both servers idle, just before measuring: ${meta('BACKGROUND')}%;
  other processes' share of the CPU during the measured runs: median ${medianForeign}%, max ${maxForeign}% (a run above ${meta('NOISE_LIMIT')}% was repeated; ${meta('RETRIES_USED', '0')} repeat(s))

### Every run

| Case | Rep | req/s | vs allow-all (same rep) | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/req | wrk CPU µs/req | requests | non-2xx | socket errors (c/r/w/t) | other CPU | attempts |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|
${perRun.join('\n')}
${samples ? `\nNon-2xx samples:\n\n\`\`\`\n${samples}\n\`\`\`\n` : ''}${srLog ? `\nStrongroom log (warnings and errors, last lines):\n\n\`\`\`\n${srLog}\n\`\`\`\n` : ''}${END}
`;

const previous = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
let text;
const start = previous.indexOf(START);
const end = previous.indexOf(END);
if (start >= 0 && end > start) {
  text = previous.slice(0, start) + section + previous.slice(end + END.length).replace(/^\n/, '');
} else if (previous) {
  text = `${previous.replace(/\n*$/, '')}\n\n${section}`;
} else {
  text = `# Strongroom benchmark results\n\n${section}`;
}
writeFileSync(outPath, text);
process.stdout.write(`${section.split('### The cases')[0].replace(START, '').trim()}\n`);
