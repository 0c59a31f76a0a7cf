// Writes bench/authz.sh's section of bench/RESULTS.md: the cost of access control on Encrypt 32 B.
//
//   node bench/report-authz.mjs <results.tsv> <RESULTS.md> <setup dir of bench/prepare-authz.ts>
//
// The section sits between two HTML comment markers: a later run replaces it, anything else in
// the file (bench/run.sh's report) is left as it is; without the markers it is appended. TSV and
// BENCH_META_* as for bench/report.mjs (bench/results-lib.mjs).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  compareCases,
  fmt,
  meta,
  noiseOf,
  pct,
  perRunTable,
  readRuns,
  runFactLines,
  summaryRow,
  warningsBlock,
  writeSection,
} from './results-lib.mjs';

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
const { s, ref: open, sub: real, allClean, ratio, pairedRatio, cpuCostRatio } = compareCases(
  runs,
  Object.keys(CASES),
  { reference: 'allow-all', subject: 'realistic' },
  clkTck,
);
const bare = s.bare;
const extraServerCpu = real && open ? real.cpuPerRequest - open.cpuPerRequest : NaN;
const met = Number.isFinite(ratio) && ratio >= TARGET_RATIO;
const crossChecks = [pairedRatio, cpuCostRatio].filter(Number.isFinite);
const crossAgree = crossChecks.every((x) => x >= TARGET_RATIO === met);
const noise = noiseOf(runs);

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

const row = (name) =>
  s[name] && summaryRow(s[name], CASES[name], { isReference: name === 'allow-all', isBare: name === 'bare', ref: open, bare });

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
${warningsBlock({ allClean, noise, idle: 'both servers', down: meta('SR_ALIVE') === 'no' ? ['the Strongroom server'] : [] })}
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
${runFactLines({ noise, idle: 'both servers' })}

### Every run

${perRunTable(s, Object.keys(CASES), 'allow-all', clkTck)}
${samples ? `\nNon-2xx samples:\n\n\`\`\`\n${samples}\n\`\`\`\n` : ''}${srLog ? `\nStrongroom log (warnings and errors, last lines):\n\n\`\`\`\n${srLog}\n\`\`\`\n` : ''}${END}
`;

writeSection(outPath, START, END, section);
process.stdout.write(`${section.split('### The cases')[0].replace(START, '').trim()}\n`);
