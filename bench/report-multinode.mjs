// Writes bench/multinode.sh's section of bench/RESULTS.md: the same Encrypt 32 B load on one node
// and on two nodes sharing one store, SQLite and PostgreSQL.
//
//   node bench/report-multinode.mjs <results.tsv> <RESULTS.md>
//
// The section sits between two HTML comment markers: a later run replaces it, anything else in the
// file is left as it is; without the markers it is appended. TSV rows as bench/lib.sh's measure_case
// writes them, from multinode.sh's run_case: the two wrk processes' figures summed (requests, req/s,
// errors) or the worse of the two (latencies), each wrk's own as a_* / b_*, and server_cpu_ticks
// (every Strongroom node), wrk_cpu_ticks (both wrk), db_cpu_ticks (PostgreSQL's processes). The
// BENCH_META_* settings come from multinode.sh (and bench/lib.sh's export_machine_meta).
import {
  cpuPerRequest,
  fmt,
  median,
  meta,
  ms,
  noiseOf,
  pct,
  readRuns,
  runFactLines,
  summarize,
  warningsBlock,
  writeSection,
} from './results-lib.mjs';

const [tsvPath, outPath] = process.argv.slice(2);
const clkTck = Number(meta('CLK_TCK', '100'));
const cores = Number(meta('NPROC', '2'));
const START = '<!-- bench/multinode.sh: start -->';
const END = '<!-- bench/multinode.sh: end -->';

/** Case → how it is served, its store, its node count, the one-node case it is compared with. */
const CASES = {
  'sqlite-1node': { label: 'SQLite, 1 node × 2 workers', store: 'sqlite', nodes: 1 },
  'sqlite-2nodes': { label: 'SQLite, 2 nodes × 1 worker, one data dir', store: 'sqlite', nodes: 2, reference: 'sqlite-1node' },
  'pg-1node': { label: 'PostgreSQL, 1 node × 2 workers', store: 'pg', nodes: 1, reference: 'sqlite-1node' },
  'pg-2nodes': { label: 'PostgreSQL, 2 nodes × 1 worker', store: 'pg', nodes: 2, reference: 'pg-1node' },
  'pg-2nodes-2w': { label: 'PostgreSQL, 2 nodes × 2 workers', store: 'pg', nodes: 2, reference: 'pg-1node' },
};

const runs = readRuns(tsvPath);
const names = Object.keys(CASES).filter((name) => runs.has(name));
const perRequest = (run, field) => cpuPerRequest(run, field, clkTck);
/** CPU µs per request of one run: Strongroom's nodes + PostgreSQL (pg-* cases only) + both wrk. */
const totalCpu = (run, store) =>
  perRequest(run, 'server_cpu_ticks') + (store === 'pg' ? perRequest(run, 'db_cpu_ticks') : 0) + perRequest(run, 'wrk_cpu_ticks');
const s = {};
for (const name of names) {
  const x = summarize(runs.get(name), clkTck);
  const { store } = CASES[name];
  x.dbCpu = store === 'pg' ? median(x.runs.map((r) => perRequest(r, 'db_cpu_ticks'))) : NaN;
  // PostgreSQL transactions (each autocommit statement is one) per request: round trips to the store.
  x.xacts = store === 'pg' ? median(x.runs.map((r) => (r.requests > 0 ? r.pg_xacts / r.requests : NaN))) : NaN;
  // Share of the machine idle during the measured runs: the load waited rather than ran out of cores.
  x.idle = median(x.runs.map((r) => r.idle_cpu_pct ?? NaN));
  x.wrkCpu = median(x.runs.map((r) => perRequest(r, 'wrk_cpu_ticks')));
  x.totalCpu = median(x.runs.map((r) => totalCpu(r, store)));
  // Every node answered: each wrk completed requests, none of them non-2xx, no socket errors.
  x.everyNodeAnswered = x.runs.every((r) => r.a_requests > 0 && r.b_requests > 0 && r.a_non2xx === 0 && r.b_non2xx === 0);
  x.share = median(x.runs.map((r) => (r.rps > 0 ? r.a_rps / r.rps : NaN)));
  s[name] = x;
}

/** subject against reference: ratio of median req/s, median of per-repetition ratios, CPU-cost ratio. */
function compare(subject, reference) {
  const sub = s[subject];
  const ref = s[reference];
  if (!sub || !ref) return undefined;
  const paired = (f) =>
    median(
      sub.runs
        .map((r) => [r, ref.runs.find((o) => o.rep === r.rep)])
        .filter(([, o]) => o)
        .map(([r, o]) => f(r, o))
        .filter(Number.isFinite),
    );
  return {
    ratio: ref.rps > 0 ? sub.rps / ref.rps : NaN,
    pairedRatio: paired((r, o) => (o.rps > 0 ? r.rps / o.rps : NaN)),
    // Reference's CPU per request ÷ subject's: the req/s ratio the CPU cost alone predicts on
    // these saturated cores, least disturbed by other load.
    cpuCostRatio: paired((r, o) => totalCpu(o, CASES[reference].store) / totalCpu(r, CASES[subject].store)),
  };
}

const clean = (x) => x.non2xx === 0 && x.socketErrors === 0 && !x.broken && x.everyNodeAnswered;
const allClean = names.every((name) => clean(s[name]));
const noise = noiseOf(runs);
const idle = 'every node';

const summaryRows = names.map((name) => {
  const x = s[name];
  const { reference } = CASES[name];
  const c = reference && compare(name, reference);
  const vs = c ? `${pct(c.ratio)} of ${reference} (paired ${pct(c.pairedRatio)}, CPU-cost ${pct(c.cpuCostRatio)})` : '—';
  return (
    `| ${name}: ${CASES[name].label} | ${fmt(x.rps)} | ${CASES[name].nodes === 2 ? `${pct(x.share, 0)} / ${pct(1 - x.share, 0)}` : 'all on A'} | ` +
    `${ms(x.p50)} | ${ms(x.p99)} | ${fmt(x.cpuPerRequest)} | ${Number.isFinite(x.dbCpu) ? fmt(x.dbCpu) : '—'} | ${Number.isFinite(x.xacts) ? fmt(x.xacts, 1) : '—'} | ${fmt(x.totalCpu)} | ${Number.isFinite(x.idle) ? `${x.idle}%` : '?'} | ${vs} | ` +
    `${x.non2xx}${x.socketErrors ? ` (+${x.socketErrors} socket errors)` : ''}${x.everyNodeAnswered ? '' : ' (a node did not answer!)'} |`
  );
});

// --- the verdicts ----------------------------------------------------------------------------------
const lines = [];
const sqliteSecond = meta('SQLITE_SECOND');
if (sqliteSecond && !s['sqlite-2nodes']) {
  lines.push(
    `- **SQLite, two nodes on one data dir: not supported.** Two more \`serve\` processes started on the running node's data dir were ` +
      `${sqliteSecond.replace(/^refused: /, 'refused (')}${sqliteSecond.startsWith('refused') ? ')' : ''}: \`serve\` locks its data dir ` +
      '(src/cli/data-dir-lock.ts, one server per data dir: the scheduler, the audit digest timer and the start-up bootstrap belong to ' +
      'one primary). On SQLite a machine scales with `--workers N`, which is what sqlite-1node measures; several nodes need PostgreSQL.',
  );
}
const pg2 = compare('pg-2nodes', 'pg-1node');
if (pg2) {
  lines.push(
    `- **PostgreSQL, 2 nodes × 1 worker vs 1 node × 2 workers: ${pct(pg2.ratio)}** of the one node's req/s (median of the ` +
      `per-repetition ratios ${pct(pg2.pairedRatio)}; CPU-cost ratio ${pct(pg2.cpuCostRatio)}: the one node's CPU per request, ` +
      `Strongroom + PostgreSQL + wrk, ${fmt(s['pg-1node'].totalCpu)} µs, ÷ the two nodes' ${fmt(s['pg-2nodes'].totalCpu)} µs).`,
  );
}
const sq2 = compare('sqlite-2nodes', 'sqlite-1node');
if (sq2) lines.push(`- SQLite, 2 nodes × 1 worker vs 1 node × 2 workers: ${pct(sq2.ratio)} (paired ${pct(sq2.pairedRatio)}, CPU-cost ${pct(sq2.cpuCostRatio)}).`);
const pg22 = compare('pg-2nodes-2w', 'pg-1node');
if (pg22) lines.push(`- PostgreSQL, 2 nodes × 2 workers (4 server processes on ${cores} cores) vs 1 node × 2 workers: ${pct(pg22.ratio)} (paired ${pct(pg22.pairedRatio)}, CPU-cost ${pct(pg22.cpuCostRatio)}).`);
const pg1 = compare('pg-1node', 'sqlite-1node');
if (pg1) {
  lines.push(
    `- One node on PostgreSQL vs on SQLite: ${pct(pg1.ratio)} of SQLite's req/s (CPU-cost ${pct(pg1.cpuCostRatio)}); ` +
      `PostgreSQL itself took ${fmt(s['pg-1node'].dbCpu)} µs of CPU per request on these same cores, and each request ` +
      'waits for its lookups (read through on PostgreSQL: access key, principal, policies, key) and its share of an audit append (chain lock, COMMIT with WAL flush).',
  );
}

// What two nodes would do on machines of their own: inferred from CPU per request, not measured.
const inference = () => {
  const two = s['pg-2nodes'];
  if (!two) return '';
  const nodeBound = (2 * cores * 1e6) / two.cpuPerRequest;
  const dbBound = (cores * 1e6) / two.dbCpu;
  return (
    `- **On separate machines** (inferred, not measured): each node would have ${cores} cores to itself, and wrk and PostgreSQL ` +
    `would run elsewhere. At the measured ${fmt(two.cpuPerRequest)} µs of Strongroom CPU per request, two such nodes could ` +
    `serve about ${fmt(nodeBound)} req/s together, i.e. 2 × what one node alone on ${cores} cores could; PostgreSQL at ` +
    `${fmt(two.dbCpu)} µs per request would need its own ${cores} cores to keep up to about ${fmt(dbBound)} req/s. Both are ` +
    'CPU ceilings: the audit chain is one lock held through each append\'s COMMIT (a WAL flush and three round trips, ' +
    'docs/storage-postgres.md), so the trail commits appends one after another; events/s = appends/s × events per append, and ' +
    'a real network (0.1–0.5 ms per round trip instead of loopback\'s ~0.03 ms) lengthens every append and lookup. Whether a ' +
    'second machine doubles throughput therefore depends on the batch size the audit writers reach, which this run does not ' +
    'measure; the latency columns show what the waits already cost here.'
  );
};

// --- the trails -------------------------------------------------------------------------------------
const connections = Number(meta('CONNECTIONS', '16'));
function trailLine(store, label) {
  const key = store.toUpperCase();
  if (!meta(`${key}_VERIFY`, '')) return '';
  const events = Number(meta(`${key}_EVENTS`, 'NaN'));
  const wrkRequests = Number(meta(`${key}_WRK_REQUESTS`, 'NaN'));
  const setup = Number(meta(`${key}_SETUP_REQUESTS`, 'NaN'));
  const wrkRuns = Number(meta(`${key}_WRK_RUNS`, 'NaN'));
  if (!Number.isFinite(events)) return `- ${label} trail: **could not be verified**: \`${meta(`${key}_VERIFY`).trim()}\``;
  const expected = wrkRequests + setup;
  const surplus = events - expected;
  const bound = wrkRuns * connections;
  const ok = surplus >= 0 && surplus <= bound;
  return (
    `- ${label} trail: \`strongroom audit verify\`: ${meta(`${key}_VERIFY`).trim()} — ` +
    `${ok ? '**consistent, nothing dropped**' : surplus < 0 ? '**EVENTS MISSING**' : '**more events than requests can explain**'}: ` +
    `${fmt(events)} events for ${fmt(expected)} requests counted as sent (${fmt(wrkRequests)} completed by wrk over ${wrkRuns} wrk runs, ` +
    `warm-ups included, + ${setup} setup requests: CreateKey and one Encrypt with the SDK, one check request per pool); ` +
    `${fmt(surplus)} more, ${ok ? 'within' : 'OUTSIDE'} the 0–${fmt(bound)} that requests in flight when a wrk run stops explain ` +
    `(served and recorded, not counted by wrk: ≤ ${connections} per wrk run). Events with an error code: ${meta(`${key}_ERROR_EVENTS`, '?').trim()}.`
  );
}
const trailsOk = ['SQLITE', 'PG'].every((key) => !meta(`${key}_VERIFY`, '') || /intact/.test(meta(`${key}_VERIFY`)));

// --- every run ----------------------------------------------------------------------------------------
const runRows = names.flatMap((name) =>
  s[name].runs.map(
    (r) =>
      `| ${name} | ${r.rep} | ${fmt(r.rps)} | ${fmt(r.a_rps)} / ${fmt(r.b_rps)} | ${ms(r.a_p50_us / 1000)} / ${ms(r.b_p50_us / 1000)} | ` +
      `${ms(r.a_p99_us / 1000)} / ${ms(r.b_p99_us / 1000)} | ${ms(r.max_us / 1000)} | ${fmt(perRequest(r, 'server_cpu_ticks'))} | ` +
      `${CASES[name].store === 'pg' ? fmt(perRequest(r, 'db_cpu_ticks')) : '—'} | ${r.requests > 0 && Number.isFinite(r.pg_xacts) ? fmt(r.pg_xacts / r.requests, 1) : '—'} | ` +
      `${fmt(perRequest(r, 'wrk_cpu_ticks'))} | ${fmt(r.requests)} | ` +
      `${r.a_non2xx} / ${r.b_non2xx} | ${r.connect_errors}/${r.read_errors}/${r.write_errors}/${r.timeouts} | ` +
      `${Number.isFinite(r.foreign_cpu_pct) ? `${r.foreign_cpu_pct}%` : '?'} | ${Number.isFinite(r.idle_cpu_pct) ? `${r.idle_cpu_pct}%` : '?'} | ${r.attempts ?? 1} |`,
  ),
);

const down = meta('DOWN').trim();
const samples = meta('SAMPLES').trim();
const nodeLog = meta('NODE_LOG').trim();
const section = `${START}
## Several nodes: Encrypt 32 B on one node vs two nodes sharing one store (\`bench/multinode.sh\`)

Issue 8: the same load against one node and against two, with SQLite and with PostgreSQL. The load is two wrk processes
at once, each \`-t1 -c${connections}\`: both at node A for one node, one at A and one at B for two nodes (what a load balancer
would do). Cases interleaved in each of ${meta('REPEATS')} repetitions, medians over repetitions; see bench/README.md
("Several nodes").
${warningsBlock({ allClean: allClean && trailsOk, noise, idle, down: down ? [`node(s) ${down}`] : [] })}
| Case | req/s (sum of both wrk) | split A / B | p50 ms | p99 ms | Strongroom CPU µs/req | PostgreSQL CPU µs/req | PostgreSQL transactions/req | total CPU µs/req (+ wrk) | CPU idle | req/s vs | non-2xx (all runs) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|
${summaryRows.join('\n')}

PostgreSQL transactions/req: committed + rolled-back transactions of the database (\`pg_stat_database\`; each autocommit
statement is one) during the measured run ÷ requests — the round trips one Encrypt costs the shared store (key and
credential lookups, audit appends shared by the requests of one batch). Anything else using the database counts too, and
the view lags by up to a second at both ends.

p50 / p99: the worse of the two wrk processes' figures (medians over repetitions). wrk prints percentiles, not its
histogram, so the two cannot be merged exactly; the merged percentile lies between the two, so the worse is its upper
bound (each wrk's own are in the table below).

**Read this first: on ${cores} cores, two nodes cannot be expected to beat one.** Both layouts run the same number of server
processes (2) on the same ${cores} cores, shared with PostgreSQL and wrk. A second node adds no CPU here; what the ratio
measures is what splitting the processes into two nodes *costs*: per-node overhead and coordination through the shared
store (for PostgreSQL: separate connection pools, and audit appends from two nodes contending for the one chain lock — as
two workers of one node already do, since each process appends for itself; nothing to invalidate: the only cache on PostgreSQL holds immutable key-version rows).
A ratio near 100% means a second node costs nothing per request; above it is noise or a per-node effect, not capacity;
below it, the CPU-cost ratio tells whether the loss is CPU spent (a real cost that would remain on two machines) or
waiting. "CPU idle" tells which bound a case hit: near 0% the cores were the limit (req/s ≈ ${cores} cores ÷ total CPU per
request, less what other processes took); well above 0% the requests waited — round trips to the store, the audit chain's
lock and its COMMITs — and more cores, or more nodes, would not help by themselves.

${lines.join('\n')}
${inference()}
- Every node answered: ${allClean ? 'yes — in every run both wrk processes completed requests, none non-2xx, no socket errors.' : '**no** (see the runs below).'}
${trailLine('sqlite', 'SQLite')}
${trailLine('pg', 'PostgreSQL')}

### How it was run

- Command: \`bash bench/multinode.sh\` (${meta('REPEATS')} repetitions, ${meta('WARMUP')} s warm-up + ${meta('DURATION')} s measured per case, pools of ${meta('POOL')} pre-signed requests per wrk and run)
- Load, per case: \`${meta('WRK_CMD')}\` after a ${meta('WARMUP')} s warm-up of the same pair
- Nodes: \`node bin/strongroom.mjs serve --data-dir <dir> --port <p> --workers <1|2> --log-level warn\`; SQLite on one
  data dir; PostgreSQL with \`--database ${meta('POSTGRES')}?schema=strongroom_bench_<random>\` (PostgreSQL ${meta('PG_VERSION')},
  same machine, a fresh schema dropped afterwards), node A's data dir made at its first start, the other nodes' with copies
  of its root.key and credentials
- Requests: \`TrentService.Encrypt\`, 32 random bytes, no encryption context, one symmetric key per store made once with the
  SDK; each wrk's pool signed by \`bench/prepare.ts\` for its node right before each run
- CPU per request: utime + stime from /proc of all Strongroom nodes (idle ones included), of PostgreSQL's postmaster and its
  children (pg-* cases; the database is shared with anything else using it; children that exit during the run are counted
  through the postmaster's reaped-children time, bench/pg-cpu.sh), and of both wrk, over the measured run
- Data dirs on: ${meta('DATA_FS', '?')}
- Cases: ${meta('CASES')}; order per repetition (rotated each time): ${meta('ORDER')}
${runFactLines({ noise, idle })}

### Every run

| Case | Rep | req/s | A / B req/s | p50 ms A / B | p99 ms A / B | max ms | Strongroom CPU µs/req | PostgreSQL CPU µs/req | PostgreSQL transactions/req | wrk CPU µs/req | requests | non-2xx A / B | socket errors (c/r/w/t) | other CPU | CPU idle | attempts |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|
${runRows.join('\n')}
${samples ? `\nNon-2xx samples:\n\n\`\`\`\n${samples}\n\`\`\`\n` : ''}${nodeLog ? `\nNodes' logs (warnings and errors, last lines):\n\n\`\`\`\n${nodeLog}\n\`\`\`\n` : ''}${END}
`;

writeSection(outPath, START, END, section);
process.stdout.write(`${section.split('### How it was run')[0].replace(START, '').trim()}\n`);
