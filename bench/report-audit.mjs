// Writes bench/audit.sh's section of bench/RESULTS.md: the cost of the audit trail on Encrypt 32 B.
//
//   node bench/report-audit.mjs <results.tsv> <RESULTS.md>
//
// The section sits between two HTML comment markers: a later run replaces it, anything else in
// the file (bench/run.sh's report, bench/authz.sh's section) is left as it is; without the markers
// it is appended. TSV and BENCH_META_* as for bench/report-authz.mjs (bench/results-lib.mjs), plus
// the trail check's BENCH_META_ON_* / OFF_* figures from audit.sh.
//
// The cases are `audit-on@<c>`, `audit-off@<c>` for each connection count c of the sweep and
// `bare@<c>` at the first one (a TSV of an audit.sh from before the sweep, with plain `audit-on`,
// `audit-off` and `bare`, is read as run at BENCH_META_CONNECTIONS). Throughput is the highest rate
// a server sustains: each server's highest median req/s over the counts; the verdict is their ratio.
import {
  compareCases,
  cpuPerRequest,
  fmt,
  median,
  meta,
  ms,
  noiseOf,
  pct,
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
/** audit-on's req/s rising by more than this from the second-largest count to the largest: maybe not saturated. */
const STILL_RISING = 0.05;
const START = '<!-- bench/audit.sh: start -->';
const END = '<!-- bench/audit.sh: end -->';

const CASES = {
  'audit-on': 'audit-on: `strongroom serve`, every event durable (fsync, group commit) before its response',
  'audit-off': 'audit-off: `bench/unaudited-server.ts`, the same request path with a no-op trail',
  bare: 'bare node:http echo (no auth), the audit-on requests',
};

// --- the runs, by case and connection count ----------------------------------------------------
const listedConnections = meta('CONNECTIONS', '32').trim().split(/\s+/).map(Number).filter((c) => c > 0);
const runs = new Map();
for (const [name, list] of readRuns(tsvPath)) {
  // Before the sweep, audit.sh named its cases without the connection count, all at one count.
  runs.set(name.includes('@') ? name : `${name}@${listedConnections[0] ?? 32}`, list);
}
const caseName = (base, c) => `${base}@${c}`;
/** The connection counts of the Strongroom cases, ascending. */
const counts = [...new Set([...runs.keys()].filter((n) => /^audit-(on|off)@\d+$/.test(n)).map((n) => Number(n.split('@')[1])))].sort(
  (a, b) => a - b,
);
const bareName = [...runs.keys()].find((n) => n.startsWith('bare@'));
const bareConnections = bareName ? Number(bareName.split('@')[1]) : NaN;

/** Per connection count: audit-on@c against audit-off@c (summaries, ratios, pairedBy). */
const at = new Map(
  counts.map((c) => [
    c,
    compareCases(
      runs,
      [caseName('audit-on', c), caseName('audit-off', c)],
      { reference: caseName('audit-off', c), subject: caseName('audit-on', c) },
      clkTck,
    ),
  ]),
);
// bare on its own (compareCases also adds totalCpu), against audit-off at its connection count.
const bareCmp = bareName ? compareCases(runs, [bareName], { reference: bareName, subject: bareName }, clkTck) : undefined;
const bare = bareCmp?.s[bareName];
const clean = (x) => x && x.non2xx === 0 && x.socketErrors === 0 && !x.broken;
const allClean = counts.length > 0 && [...at.values()].every((x) => x.allClean) && (!bareName || clean(bare));
const noise = noiseOf(runs);
const smallest = counts[0];
const largest = counts[counts.length - 1];

// --- throughput: each server's highest median req/s over the counts -----------------------------
const best = (side) => {
  let top;
  for (const c of counts) {
    const x = side === 'on' ? at.get(c).sub : at.get(c).ref;
    if (x && (!top || x.rps > top.rps)) top = { c, rps: x.rps };
  }
  return top ?? { c: NaN, rps: NaN };
};
const onBest = best('on');
const offBest = best('off');
const ratio = offBest.rps > 0 ? onBest.rps / offBest.rps : NaN;
const met = Number.isFinite(ratio) && ratio >= TARGET_RATIO;
/** Per repetition: audit-on's highest req/s over the counts ÷ audit-off's; the median over repetitions. */
const pairedBestRatio = (() => {
  const reps = [...new Set(counts.flatMap((c) => [...(at.get(c).sub?.runs ?? []), ...(at.get(c).ref?.runs ?? [])].map((r) => r.rep)))];
  const topOf = (side, rep) =>
    Math.max(
      ...counts
        .map((c) => (side === 'on' ? at.get(c).sub : at.get(c).ref)?.runs.find((r) => r.rep === rep)?.rps ?? NaN)
        .filter(Number.isFinite),
    );
  const ratios = reps.map((rep) => topOf('on', rep) / topOf('off', rep)).filter((x) => Number.isFinite(x) && x > 0);
  return ratios.length ? median(ratios) : NaN;
})();
const top = at.get(largest);
const low = at.get(smallest);
// The cross-checks: the ratio where both servers should be saturated (the most connections), and the
// per-repetition version of the verdict's ratio. (The CPU-cost ratio assumes both are CPU-bound on a
// machine of their own; it is shown, not counted.)
const crossChecks = [
  {
    what: `the median req/s ratio at ${largest} connections${counts.length > 1 ? ', the most, where both should be saturated' : ''}`,
    value: top?.ratio,
  },
  { what: 'the median over repetitions of audit-on\'s highest req/s ÷ audit-off\'s in the same repetition', value: pairedBestRatio },
].filter((x) => Number.isFinite(x.value));
const disagreeing = crossChecks.filter((x) => x.value >= TARGET_RATIO !== met);

/** The relative rise of a side's median req/s from the second-largest count to the largest. */
const rise = (side) => {
  if (counts.length < 2) return NaN;
  const prev = at.get(counts[counts.length - 2]);
  const a = side === 'on' ? prev.sub : prev.ref;
  const b = side === 'on' ? top.sub : top.ref;
  return a?.rps > 0 && b ? b.rps / a.rps - 1 : NaN;
};
const onRise = rise('on');
const offRise = rise('off');
const onRising = onRise > STILL_RISING;
const offRising = offRise > STILL_RISING;

let verdict;
if (!allClean) verdict = '**invalid: some runs had non-2xx responses or socket errors** (see below); no verdict.';
else if (!Number.isFinite(ratio)) verdict = '**no verdict**: audit-on or audit-off has no runs.';
else {
  const cost =
    ratio <= 1
      ? `the audit trail costs **${pct(1 - ratio)}** of Encrypt throughput`
      : 'the audit trail costs no measurable throughput (audit-on ran faster: noise)';
  verdict =
    `audit-on's throughput, its highest median req/s over ${counts.join(' / ')} connections, is **${fmt(onBest.rps)} req/s** ` +
    `(at ${onBest.c}); audit-off's is **${fmt(offBest.rps)} req/s** (at ${offBest.c}). audit-on reaches **${pct(ratio)}** of ` +
    `audit-off's, i.e. ${cost}: the ≥ ${fmt(TARGET_RATIO * 100)}% target is **${met ? 'met' : 'not met'}**` +
    (crossChecks.length === 0
      ? ' (no cross-check available).'
      : disagreeing.length === 0
        ? ` (the cross-checks agree: ${crossChecks.map((x) => `${x.what}, ${pct(x.value)}`).join('; ')}).`
        : ` — but the cross-checks disagree (${crossChecks.map((x) => `${x.what}, ${pct(x.value)}`).join('; ')}), ` +
          'so the margin is within this run\'s noise.') +
    (Number.isFinite(top?.cpuCostRatio)
      ? ` (For reference, not a criterion: the CPU-cost ratio at ${largest} connections, ${pct(top.cpuCostRatio)}.)`
      : '');
  if (onRising && offRising) {
    verdict +=
      ` **Neither server may be saturated:** from ${counts[counts.length - 2]} to ${largest} connections audit-on's req/s still rose by ` +
      `${pct(onRise)} and audit-off's by ${pct(offRise)} (more than ${pct(STILL_RISING, 0)}), so both throughputs may be higher than ` +
      `measured and the ratio is neither a lower nor an upper bound; add a larger count to BENCH_CONNECTIONS.`;
  } else if (onRising) {
    verdict +=
      ` **audit-on may not be saturated:** from ${counts[counts.length - 2]} to ${largest} connections its req/s still rose by ` +
      `${pct(onRise)} (more than ${pct(STILL_RISING, 0)}), so its throughput may be higher than measured and the ratio ` +
      `(hence the verdict) is a lower bound; add a larger count to BENCH_CONNECTIONS.`;
  } else if (offRising) {
    verdict +=
      ` **audit-off may not be saturated:** from ${counts[counts.length - 2]} to ${largest} connections its req/s still rose by ` +
      `${pct(offRise)} (more than ${pct(STILL_RISING, 0)}), so the ratio may be an overestimate; add a larger count to BENCH_CONNECTIONS.`;
  } else if (counts.length < 2) {
    verdict += ' Only one connection count was measured, so whether the servers were saturated is not known.';
  }
}

/** Why the ratio is lower at the fewest connections: said plainly, so nobody takes the sweep for hiding it. */
const fewestLine = () => {
  if (!low?.sub || !low?.ref) return '?';
  const head =
    `at ${smallest} connections, the fewest, audit-on reaches **${pct(low.ratio)}** of audit-off's req/s ` +
    `(${fmt(low.sub.rps)} vs ${fmt(low.ref.rps)}; p50 ${ms(low.sub.p50)} vs ${ms(low.ref.p50)} ms)`;
  if (counts.length < 2) return `${head}; no other count was measured.`;
  if (onBest.c === smallest) {
    return `${head}; audit-on served no more with more connections, so this is its throughput, and the verdict's ratio uses it.`;
  }
  const grew = low.sub.rps > 0 ? onBest.rps / low.sub.rps - 1 : NaN;
  return (
    `${head}${low.ratio < ratio ? ', lower than the verdict\'s ratio' : ''}. That is a latency figure, not a throughput one: ` +
    'each audited response waits for its event\'s fsync (group commit), and wrk runs a closed loop, each connection sending its ' +
    `next request only when its previous response has arrived, so with ${smallest} connections audit-on's rate is capped at ` +
    `${smallest} ÷ its response time (${smallest} ÷ ${fmt(low.sub.rps)} req/s = ${ms((smallest / low.sub.rps) * 1000)} ms per request), ` +
    'below what the server can serve, while audit-off, with no fsync to wait for, ' +
    (low.ref.rps >= 0.95 * offBest.rps
      ? `is already saturated there (${pct(low.ref.rps / offBest.rps)} of its highest req/s). `
      : `reaches ${pct(low.ref.rps / offBest.rps)} of its highest req/s there. `) +
    `Given more connections audit-on serves ${pct(grew)} more ` +
    `(${fmt(onBest.rps)} req/s at ${onBest.c}). A client that keeps only ${smallest} requests outstanding sees the lower rate.`
  );
};

// --- tables ------------------------------------------------------------------------------------
const row = (base, c) => {
  const cmp = at.get(c);
  const x = base === 'audit-on' ? cmp?.sub : cmp?.ref;
  return x && summaryRow(x, `\`${caseName(base, c)}\``, { isReference: base === 'audit-off', isBare: false, ref: cmp.ref, bare });
};
const bareRow = () => {
  if (!bare) return undefined;
  const off = at.get(bareConnections)?.ref;
  return summaryRow(bare, `\`${bareName}\``, { isReference: false, isBare: true, ref: off, bare });
};
const summaryRows = [...counts.flatMap((c) => [row('audit-on', c), row('audit-off', c)]), bareRow()].filter(Boolean);

const bold = (text, yes) => (yes ? `**${text}**` : text);
const concurrencyRows = counts.map((c) => {
  const { sub: on, ref: off, ratio: r, pairedRatio, cpuCostRatio } = at.get(c);
  const lat = (x) => (x ? `${ms(x.p50)} / ${ms(x.p99)}` : '?');
  return (
    `| ${c} | ${on ? bold(fmt(on.rps), c === onBest.c) : '?'} | ${off ? bold(fmt(off.rps), c === offBest.c) : '?'} | ${pct(r)} | ` +
    `${pct(pairedRatio)} | ${pct(cpuCostRatio)} | ${lat(on)} | ${lat(off)} |`
  );
});

/** The "Every run" table: each run against the audit-off run of the same repetition and connection count. */
const perRunTable = () => {
  const rows = [];
  const names = [...counts.flatMap((c) => [caseName('audit-on', c), caseName('audit-off', c)]), ...(bareName ? [bareName] : [])];
  for (const name of names) {
    const [base, c] = name.split('@');
    const refRuns = runs.get(caseName('audit-off', c)) ?? [];
    for (const r of runs.get(name) ?? []) {
      const o = refRuns.find((x) => x.rep === r.rep);
      rows.push(
        `| ${base} | ${c} | ${r.rep} | ${fmt(r.rps)} | ${base === 'audit-off' ? '—' : o?.rps > 0 ? pct(r.rps / o.rps) : '?'} | ` +
          `${ms(r.p50_us / 1000)} | ${ms(r.p90_us / 1000)} | ${ms(r.p99_us / 1000)} | ${ms(r.max_us / 1000)} | ` +
          `${fmt(cpuPerRequest(r, 'server_cpu_ticks', clkTck))} | ${fmt(cpuPerRequest(r, 'wrk_cpu_ticks', clkTck))} | ` +
          `${fmt(r.requests)} | ${r.non2xx} | ${r.connect_errors}/${r.read_errors}/${r.write_errors}/${r.timeouts} | ` +
          `${Number.isFinite(r.foreign_cpu_pct) ? `${r.foreign_cpu_pct}%` : '?'} | ${r.attempts ?? 1} |`,
      );
    }
  }
  return (
    '| Case | Connections | Rep | req/s | vs audit-off (same rep and connections) | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/req | wrk CPU µs/req | requests | non-2xx | socket errors (c/r/w/t) | other CPU | attempts |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n' +
    rows.join('\n')
  );
};

// --- the trail ---------------------------------------------------------------------------------
// One event per request served: what wrk completed (warm-ups and measured runs, every attempt)
// plus the setup requests. A request in flight when a wrk run stops is still served and recorded,
// but wrk does not count it: at most that run's connection count of them per wrk run.
const events = Number(meta('ON_EVENTS', 'NaN'));
const wrkRequests = Number(meta('ON_WRK_REQUESTS', 'NaN'));
const setupRequests = Number(meta('ON_SETUP_REQUESTS', 'NaN'));
const wrkRuns = Number(meta('ON_WRK_RUNS', 'NaN'));
const expected = wrkRequests + setupRequests;
const surplus = events - expected;
// audit.sh sums each audit-on wrk run's connection count; before the sweep there was one count.
const inFlightBound = Number(meta('ON_INFLIGHT_BOUND', String(wrkRuns * Math.max(...listedConnections))));
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
    '(requests in flight when a wrk run stops are served and recorded, but not counted by wrk: at most that run\'s connection ' +
    `count, summed over the ${wrkRuns} runs)` +
    `. Events with an error code: ${errorEvents}. The unaudited server's trail: ${offEvents} events.`;
}

// --- per-count details -------------------------------------------------------------------------
const extraCpuLine = () =>
  counts
    .map((c) => {
      const { sub: on, ref: off } = at.get(c);
      return on && off ? `${c}: ${fmt(on.cpuPerRequest - off.cpuPerRequest, 1)} µs (over ${fmt(off.cpuPerRequest)} µs for audit-off)` : `${c}: ?`;
    })
    .join('; ');

const latencyLine = () =>
  counts
    .map((c) => {
      const { sub: on, ref: off, pairedBy } = at.get(c);
      if (!on || !off) return `${c}: ?`;
      const diff = (field) => fmt(pairedBy((r, o) => (r[field] - o[field]) / 1000), 2);
      return (
        `at ${c} connections p50 ${ms(on.p50)} vs ${ms(off.p50)} ms (median per-repetition difference ${diff('p50_us')} ms), ` +
        `p99 ${ms(on.p99)} vs ${ms(off.p99)} ms (${diff('p99_us')} ms)`
      );
    })
    .join('; ');

// The disk flushes (fsync / fdatasync reaching the device) counted during each audit-on run (audit.sh).
const groupCommitLine = () => {
  const perCount = counts
    .map((c) => {
      const on = at.get(c).sub;
      const flushed = (on?.runs ?? []).filter((r) => r.flushes > 0 && r.flushed_requests > 0);
      if (flushed.length === 0) return undefined;
      const ratios = flushed.map((r) => r.flushed_requests / r.flushes);
      const perFlush = median(ratios);
      return (
        `at ${c} connections **${fmt(perFlush, 1)}** (median over ${flushed.length} run${flushed.length === 1 ? '' : 's'}, ` +
        `${fmt(Math.min(...ratios), 1)}–${fmt(Math.max(...ratios), 1)}; about ${fmt(on.rps / perFlush)} flushes/s at the median req/s)`
      );
    })
    .filter(Boolean);
  if (perCount.length === 0) {
    return (
      'not measured (' +
      (meta('FLUSH_DEVICE') ? 'the disk counted no flushes' : `the data dirs are on no block device: ${meta('DATA_FS', '?')}`) +
      '); the exact figure, events per append transaction, is counted inside each worker process (`AuditLog.stats`) and not reachable from outside.'
    );
  }
  return (
    `requests per disk flush of the audit-on runs ${perCount.join('; ')}; ` +
    `for ${meta('WORKERS')} worker processes appending to one trail, each through its own connection (on its own thread when the ` +
    'workers fill every core, as serve does; else from a writer thread). More connections, more events per commit. Counted as the flush requests ' +
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

Issue target: Encrypt throughput with audit on ≥ ${fmt(TARGET_RATIO * 100)}% of the same run with audit off. Throughput is the
highest rate a server sustains, so both are measured at ${counts.join(', ')} connections (wrk's closed loop) and each
server's throughput is its highest median req/s among them. Two servers with ${meta('WORKERS')} workers each, all cases
interleaved in each of ${meta('REPEATS')} repetitions, medians over repetitions (as \`bench/run.sh\`); see bench/README.md
("Audit trail").
${warningsBlock({ allClean, noise, idle: 'all three servers', down })}
Cases (\`<case>@<connections>\`): ${Object.values(CASES).join('; ')}${Number.isFinite(bareConnections) ? ` (at ${bareConnections} connections only)` : ''}.

| Case | req/s | p50 ms | p99 ms | server CPU µs/req | server + wrk CPU µs/req | req/s vs audit-off (same connections) | req/s vs \`${bareName ?? 'bare'}\` | non-2xx (all runs) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${summaryRows.join('\n')}

**Verdict:** ${verdict}

Per connection count (audit-on against audit-off at the same count; each server's highest req/s in bold):

| Connections | audit-on req/s | audit-off req/s | ratio | paired ratio | CPU-cost ratio | audit-on p50 / p99 ms | audit-off p50 / p99 ms |
|---:|---:|---:|---:|---:|---:|---:|---:|
${concurrencyRows.join('\n')}

- Ratio: audit-on's median req/s ÷ audit-off's; paired ratio: the median of the per-repetition ratios; CPU-cost ratio:
  audit-off's server + wrk CPU per request ÷ audit-on's, median over repetitions — what the req/s ratio would be with the
  machine to ourselves and both CPU-bound.
- The fewest connections: ${fewestLine()}
- Server CPU per request, audit-on − audit-off, at ${extraCpuLine()}
  (it includes the trail's SQLite work, hashing, commit and the fsync's system time, but not the time requests wait for the fsync).
- Latency (each response waits for its event's commit): ${latencyLine()}.
- Trail check: ${trailCheck}
- Group commit: ${groupCommitLine()}
- The bare line is the same bare node:http baseline as bench/run.sh's \`bare-32\`, on audit-on's requests, for comparing
  absolute figures with the runs above.

### How it was run

- Command: \`bash bench/audit.sh\` (${meta('REPEATS')} repetitions, ${meta('WARMUP')} s warm-up + ${meta('DURATION')} s measured per case, connection counts \`BENCH_CONNECTIONS="${meta('CONNECTIONS')}"\`, pool of ${meta('POOL')} pre-signed requests per case and run)
- Load generator, per case: \`${meta('WRK_CMD')}\` after a ${meta('WARMUP')} s warm-up with the same pool and connections
- audit-on: \`node bin/strongroom.mjs serve --data-dir <tmp>/data --port <p> --workers ${meta('WORKERS')} --log-level warn\`
- audit-off: \`node --import tsx bench/unaudited-server.ts --data-dir <tmp>/data-off --port <p> --workers ${meta('WORKERS')} --log-level warn\`:
  serve's own request handler (\`createRequestHandler\`, src/cli/serve.ts) with \`context.audit\` a no-op (probe, record
  resolve at once) and a RequestAuditor that records nothing; its own data dir, key and administrator credentials
- baseline: \`node bench/bare-server.mjs --workers ${meta('WORKERS')}\`
- Data dirs (audit.db, WAL, fsync per commit) on: ${meta('DATA_FS', '?')}
- Requests: \`TrentService.Encrypt\`, 32 random bytes of plaintext (different in each pooled request), no encryption context,
  SigV4-signed by \`bench/prepare.ts\` as each server's administrator, right before each run
- Order of the cases per repetition (bare first, then per connection count the two Strongroom cases, which swap every other repetition): ${meta('ORDER')}
${runFactLines({ noise, idle: 'all three servers' })}

### Every run

${perRunTable()}
${samples ? `\nNon-2xx samples:\n\n\`\`\`\n${samples}\n\`\`\`\n` : ''}${srLog ? `\nAudited server's log (warnings and errors, last lines):\n\n\`\`\`\n${srLog}\n\`\`\`\n` : ''}${offLog ? `\nUnaudited server's log (last lines):\n\n\`\`\`\n${offLog}\n\`\`\`\n` : ''}${END}
`;

writeSection(outPath, START, END, section);
process.stdout.write(`${section.split('### How it was run')[0].replace(START, '').trim()}\n`);
