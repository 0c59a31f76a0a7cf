// Writes bench/audit.sh's section of bench/RESULTS.md: the cost of the audit trail on Encrypt 32 B.
//
//   node bench/report-audit.mjs <results.tsv> <RESULTS.md>
//
// The section sits between two HTML comment markers: a later run replaces it, anything else in
// the file (bench/run.sh's report, bench/authz.sh's section) is left as it is; without the markers
// it is appended. TSV and BENCH_META_* as for bench/report-authz.mjs (bench/results-lib.mjs), plus
// the trail check's BENCH_META_ON_* / OFF_* figures from audit.sh.
import {
  compareCases,
  fmt,
  median,
  meta,
  ms,
  noiseOf,
  pct,
  perRunTable,
  readRuns,
  runFactLines,
  summaryRow,
  warningsBlock,
  writeSection,
} from './results-lib.mjs';

const [tsvPath, outPath] = process.argv.slice(2);
const clkTck = Number(meta('CLK_TCK', '100'));
/** Issue: Encrypt throughput with audit on must be ≥ 85% of the same run with audit off. */
const TARGET_RATIO = 0.85;
const START = '<!-- bench/audit.sh: start -->';
const END = '<!-- bench/audit.sh: end -->';

const CASES = {
  'audit-on': 'audit-on: `strongroom serve`, every event durable (fsync, group commit) before its response',
  'audit-off': 'audit-off: `bench/unaudited-server.ts`, the same request path with a no-op trail',
  bare: 'bare node:http echo (no auth), the audit-on requests',
};

const runs = readRuns(tsvPath);
const { s, ref: off, sub: on, allClean, ratio, pairedRatio, cpuCostRatio, pairedBy } = compareCases(
  runs,
  Object.keys(CASES),
  { reference: 'audit-off', subject: 'audit-on' },
  clkTck,
);
const bare = s.bare;
const extraServerCpu = on && off ? on.cpuPerRequest - off.cpuPerRequest : NaN;
const pairedLatency = (field) => pairedBy((r, o) => (r[field] - o[field]) / 1000);
const met = Number.isFinite(ratio) && ratio >= TARGET_RATIO;
const crossChecks = [pairedRatio, cpuCostRatio].filter(Number.isFinite);
const crossAgree = crossChecks.every((x) => x >= TARGET_RATIO === met);
const noise = noiseOf(runs);

let verdict;
if (!allClean) verdict = '**invalid: some runs had non-2xx responses or socket errors** (see below); no verdict.';
else {
  const cost =
    ratio <= 1
      ? `the audit trail costs **${pct(1 - ratio)}** of Encrypt throughput`
      : 'the audit trail costs no measurable throughput (audit-on ran faster: noise)';
  verdict =
    `audit-on reaches **${pct(ratio)}** of audit-off's req/s, i.e. ${cost}: ` +
    `the ≥ ${fmt(TARGET_RATIO * 100)}% target is **${met ? 'met' : 'not met'}**` +
    (crossAgree
      ? ` (the paired per-repetition ratio, ${pct(pairedRatio)}, and the CPU-cost ratio, ${pct(cpuCostRatio)}, agree).`
      : ` — but the cross-checks disagree (paired per-repetition ratio ${pct(pairedRatio)}, CPU-cost ratio ` +
        `${pct(cpuCostRatio)}), so the margin is within this run's noise.`);
}

const row = (name) =>
  s[name] && summaryRow(s[name], CASES[name], { isReference: name === 'audit-off', isBare: name === 'bare', ref: off, bare });

// One event per request served: what wrk completed (warm-ups and measured runs, every attempt)
// plus the setup requests. A request in flight when a wrk run stops is still served and recorded,
// but wrk does not count it: at most CONNECTIONS of them per wrk run.
const events = Number(meta('ON_EVENTS', 'NaN'));
const wrkRequests = Number(meta('ON_WRK_REQUESTS', 'NaN'));
const setupRequests = Number(meta('ON_SETUP_REQUESTS', 'NaN'));
const wrkRuns = Number(meta('ON_WRK_RUNS', 'NaN'));
const connections = Number(meta('CONNECTIONS', '32'));
const expected = wrkRequests + setupRequests;
const surplus = events - expected;
const inFlightBound = wrkRuns * connections;
const errorEvents = meta('ON_ERROR_EVENTS', '?').trim();
const offEvents = meta('OFF_EVENTS', '?');
let trailCheck;
if (!Number.isFinite(events)) {
  trailCheck = `**could not be checked**: \`strongroom audit verify\` said: \`${meta('ON_VERIFY').trim() || '(nothing)'}\``;
} else {
  const ok = surplus >= 0 && surplus <= inFlightBound;
  trailCheck =
    `${ok ? '**consistent, nothing dropped**' : surplus < 0 ? '**EVENTS MISSING**' : '**more events than requests can explain**'}: ` +
    `the audited server's trail holds **${fmt(events)} events** (\`strongroom audit verify\`: intact, ${meta('ON_DIGESTS', '?')} signed digests), ` +
    `for **${fmt(expected)} requests** counted as sent (${fmt(wrkRequests)} completed by wrk over its ${wrkRuns} runs, warm-ups included, ` +
    `+ ${setupRequests} setup requests: CreateKey and one Encrypt made with the SDK, and one check request per audit-on pool); ` +
    `${fmt(surplus)} more events than counted requests, ${ok ? 'within' : 'OUTSIDE'} the 0–${fmt(inFlightBound)} expected ` +
    `(requests in flight when a wrk run stops are served and recorded, but not counted by wrk: ≤ ${connections} per run)` +
    `. Events with an error code: ${errorEvents}. The unaudited server's trail: ${offEvents} events.`;
}

const latencyLine = () => {
  if (!on || !off) return '?';
  return (
    `audit-on p50 ${ms(on.p50)} ms vs audit-off ${ms(off.p50)} ms (median per-repetition difference ` +
    `${fmt(pairedLatency('p50_us'), 2)} ms); p99 ${ms(on.p99)} ms vs ${ms(off.p99)} ms (${fmt(pairedLatency('p99_us'), 2)} ms)`
  );
};

// The disk flushes (fsync / fdatasync reaching the device) counted during each audit-on run (audit.sh).
const groupCommitLine = () => {
  const flushed = (on?.runs ?? []).filter((r) => r.flushes > 0 && r.flushed_requests > 0);
  if (flushed.length === 0) {
    return (
      'not measured (' +
      (meta('FLUSH_DEVICE') ? 'the disk counted no flushes' : `the data dirs are on no block device: ${meta('DATA_FS', '?')}`) +
      '); the exact figure, events per append transaction, is counted inside each worker process (`AuditLog.stats`) and not reachable from outside.'
    );
  }
  const ratios = flushed.map((r) => r.flushed_requests / r.flushes);
  const perFlush = median(ratios);
  return (
    `**${fmt(perFlush, 1)} requests per disk flush** (median over ${flushed.length} audit-on runs, ` +
    `${fmt(Math.min(...ratios), 1)}–${fmt(Math.max(...ratios), 1)}), i.e. about ${fmt(on.rps / perFlush)} flushes/s at the median req/s, ` +
    `for ${meta('WORKERS')} worker processes appending to one trail, each through its own connection (on its own thread when the ` +
    'workers fill every core, as serve does; else from a writer thread). Counted as the flush requests ' +
    `the disk under the data dirs (${meta('FLUSH_DEVICE')}) completed during each warm-up and measured run (/proc/diskstats; ` +
    'nothing attached to the server); a flush is one append transaction\'s fdatasync of the WAL, or part of a WAL checkpoint, so this is a ' +
    'lower bound on events per commit.'
  );
};

const samples = meta('SAMPLES').trim();
const srLog = meta('SR_LOG').trim();
const offLog = meta('OFF_LOG').trim();
const down = [
  ...(meta('SR_ALIVE') === 'no' ? ['the audited Strongroom server'] : []),
  ...(meta('OFF_ALIVE') === 'no' ? ['the unaudited server'] : []),
];
const section = `${START}
## Audit trail: Encrypt 32 B with the audit trail on vs off (\`bench/audit.sh\`)

Issue target: Encrypt throughput with audit on ≥ ${fmt(TARGET_RATIO * 100)}% of the same run with audit off. Two servers with
${meta('WORKERS')} workers each, both cases interleaved in each of ${meta('REPEATS')} repetitions, medians over repetitions (as
\`bench/run.sh\`); see bench/README.md ("Audit trail").
${warningsBlock({ allClean, noise, idle: 'all three servers', down })}
| Case | req/s | p50 ms | p99 ms | server CPU µs/req | server + wrk CPU µs/req | req/s vs audit-off | req/s vs bare | non-2xx (all runs) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${['audit-on', 'audit-off', 'bare'].map(row).filter(Boolean).join('\n')}

**Verdict:** ${verdict}

- audit-on / audit-off, median req/s: ${pct(ratio)}; median of the per-repetition ratios: ${pct(pairedRatio)}; CPU-cost ratio
  (audit-off's server + wrk CPU per request ÷ audit-on's, median over repetitions — what the req/s ratio would be with the
  machine to ourselves): ${pct(cpuCostRatio)}.
- Server CPU per request, audit-on − audit-off: ${Number.isFinite(extraServerCpu) ? `${fmt(extraServerCpu, 1)} µs` : '?'} (over ${fmt(off?.cpuPerRequest ?? NaN)} µs for audit-off;
  it includes the trail's SQLite work, hashing, commit and the fsync's system time, but not the time requests wait for the fsync).
- Latency (each response waits for its event's commit): ${latencyLine()}.
- Trail check: ${trailCheck}
- Group commit: ${groupCommitLine()}
- The bare line is the same bare node:http baseline as bench/run.sh's \`bare-32\`, on audit-on's requests, for comparing
  absolute figures with the runs above.

### How it was run

- Command: \`bash bench/audit.sh\` (${meta('REPEATS')} repetitions, ${meta('WARMUP')} s warm-up + ${meta('DURATION')} s measured per case, pool of ${meta('POOL')} pre-signed requests per case and run)
- Load generator, per case: \`${meta('WRK_CMD')}\` after a ${meta('WARMUP')} s warm-up with the same pool
- audit-on: \`node bin/strongroom.mjs serve --data-dir <tmp>/data --port <p> --workers ${meta('WORKERS')} --log-level warn\`
- audit-off: \`node --import tsx bench/unaudited-server.ts --data-dir <tmp>/data-off --port <p> --workers ${meta('WORKERS')} --log-level warn\`:
  serve's own request handler (\`createRequestHandler\`, src/cli/serve.ts) with \`context.audit\` a no-op (probe, record
  resolve at once) and a RequestAuditor that records nothing; its own data dir, key and administrator credentials
- baseline: \`node bench/bare-server.mjs --workers ${meta('WORKERS')}\`
- Data dirs (audit.db, WAL, fsync per commit) on: ${meta('DATA_FS', '?')}
- Requests: \`TrentService.Encrypt\`, 32 random bytes of plaintext (different in each pooled request), no encryption context,
  SigV4-signed by \`bench/prepare.ts\` as each server's administrator, right before each run
- Order of the cases per repetition (the Strongroom cases swap every other one): ${meta('ORDER')}
${runFactLines({ noise, idle: 'all three servers' })}

### Every run

${perRunTable(s, Object.keys(CASES), 'audit-off', clkTck)}
${samples ? `\nNon-2xx samples:\n\n\`\`\`\n${samples}\n\`\`\`\n` : ''}${srLog ? `\nAudited server's log (warnings and errors, last lines):\n\n\`\`\`\n${srLog}\n\`\`\`\n` : ''}${offLog ? `\nUnaudited server's log (last lines):\n\n\`\`\`\n${offLog}\n\`\`\`\n` : ''}${END}
`;

writeSection(outPath, START, END, section);
process.stdout.write(`${section.split('### How it was run')[0].replace(START, '').trim()}\n`);
