// What bench/report.mjs, bench/report-authz.mjs and bench/report-audit.mjs share: reading the
// per-run TSV that bench/lib.sh's measure_case writes, medians, the per-case summary; and for the
// two-case comparisons (authz, audit) the ratios, tables, warnings and the section in RESULTS.md.
//
// TSV rows: case, repetition, then key=value fields (wrk-requests.lua's BENCH_RESULT line plus
// server_cpu_ticks, wrk_cpu_ticks, foreign_cpu_pct, attempts, and for Sign/Verify the raw_* ones).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** BENCH_META_<name> from the environment: machine facts and run settings. */
export const meta = (name, fallback = '') => process.env[`BENCH_META_${name}`] ?? fallback;

/** Case name → its runs ({ rep, ...numeric fields }), in file order. */
export function readRuns(tsvPath) {
  const runs = new Map();
  for (const line of readFileSync(tsvPath, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const [name, rep, fields] = line.split('\t');
    const values = Object.fromEntries(fields.trim().split(/\s+/).map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
    if (!runs.has(name)) runs.set(name, []);
    runs.get(name).push({ rep: Number(rep), ...values });
  }
  return runs;
}

export const median = (numbers) => {
  const sorted = [...numbers].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** CPU time in µs per request of one run: the servers' (`server_cpu_ticks`) or wrk's. */
export const cpuPerRequest = (run, field, clkTck) => (run.requests > 0 ? ((run[field] / clkTck) * 1e6) / run.requests : NaN);

/** Medians and totals over a case's runs; undefined for a case without runs. */
export function summarize(list, clkTck) {
  if (!list || list.length === 0) return undefined;
  const sum = (field) => list.reduce((total, run) => total + Math.max(0, run[field] ?? 0), 0);
  return {
    runs: list,
    rps: median(list.map((r) => r.rps)),
    p50: median(list.map((r) => r.p50_us)) / 1000,
    p99: median(list.map((r) => r.p99_us)) / 1000,
    requests: sum('requests'),
    non2xx: sum('non2xx'),
    // Server CPU time (both servers' primaries and workers) per request, in µs: how much work one
    // request costs, which other load on the machine disturbs far less than req/s.
    cpuPerRequest: median(list.map((r) => cpuPerRequest(r, 'server_cpu_ticks', clkTck))),
    socketErrors: sum('connect_errors') + sum('read_errors') + sum('write_errors') + sum('timeouts'),
    // A missing BENCH_RESULT line is recorded as non2xx=-1.
    broken: list.some((r) => r.non2xx < 0 || !(r.requests > 0)),
    // Sign/Verify cases only: the raw node:crypto baseline measured right after each run.
    rawOps: median(list.map((r) => r.raw_ops_per_s ?? NaN)),
    rawCpuPerOp: median(list.map((r) => r.raw_cpu_us_per_op ?? NaN)),
    pairedRawRatio: median(list.map((r) => (r.raw_ops_per_s > 0 ? r.rps / r.raw_ops_per_s : NaN))),
    // What the req/s ratio would be if both sides had the cores to themselves: on shared cores
    // req/s ≈ cores ÷ (server + wrk CPU per request) and raw ops/s ≈ cores ÷ raw CPU per op.
    cpuCostRatio: median(
      list.map((r) =>
        r.requests > 0 && r.raw_cpu_us_per_op > 0
          ? r.raw_cpu_us_per_op / ((((r.server_cpu_ticks + r.wrk_cpu_ticks) / clkTck) * 1e6) / r.requests)
          : NaN,
      ),
    ),
  };
}

export const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const ms = (n) => fmt(n, 2);

// --- comparisons of interleaved cases (bench/authz.sh, bench/audit.sh) ------------------------

export const pct = (x, digits = 1) => (Number.isFinite(x) ? `${fmt(x * 100, digits)}%` : '?');

/** Server + wrk CPU time per request of one run, µs: on these shared cores req/s ≈ cores ÷ this. */
export const totalCpuPerRequest = (run, clkTck) =>
  cpuPerRequest(run, 'server_cpu_ticks', clkTck) + cpuPerRequest(run, 'wrk_cpu_ticks', clkTck);

/**
 * Summaries of `names` (each also with totalCpu, the median server + wrk CPU µs/request), and
 * `subject` against `reference`: the ratio of median req/s, the median of the per-repetition
 * ratios, and the CPU-cost ratio (reference's server + wrk CPU per request ÷ subject's, median over
 * repetitions: the req/s ratio with the machine to ourselves, least disturbed by other load).
 */
export function compareCases(runs, names, { reference, subject }, clkTck) {
  const s = Object.fromEntries(names.map((name) => [name, summarize(runs.get(name), clkTck)]));
  for (const summary of Object.values(s)) {
    if (summary) summary.totalCpu = median(summary.runs.map((r) => totalCpuPerRequest(r, clkTck)));
  }
  const ref = s[reference];
  const sub = s[subject];
  /** Median over repetitions of f(subject's run, reference's run of the same repetition). */
  const pairedBy = (f) =>
    sub && ref
      ? median(
          sub.runs
            .map((r) => [r, ref.runs.find((o) => o.rep === r.rep)])
            .filter(([, o]) => o)
            .map(([r, o]) => f(r, o))
            .filter(Number.isFinite),
        )
      : NaN;
  const clean = (x) => x && x.non2xx === 0 && x.socketErrors === 0 && !x.broken;
  return {
    s,
    ref,
    sub,
    pairedBy,
    allClean: Object.values(s).every(clean),
    ratio: ref && sub && ref.rps > 0 ? sub.rps / ref.rps : NaN,
    pairedRatio: pairedBy((r, o) => (o.rps > 0 ? r.rps / o.rps : NaN)),
    cpuCostRatio: pairedBy((r, o) => totalCpuPerRequest(o, clkTck) / totalCpuPerRequest(r, clkTck)),
  };
}

/** How much other processes took of the machine during the runs (lib.sh's foreign_cpu_pct). */
export function noiseOf(runs) {
  const shares = [...runs.values()].flat().map((r) => r.foreign_cpu_pct).filter(Number.isFinite);
  const maxForeign = shares.length ? Math.max(...shares) : 0;
  const medianForeign = shares.length ? median(shares) : 0;
  const background = Number(meta('BACKGROUND', '0'));
  return { maxForeign, medianForeign, background, noisy: maxForeign > 10 || background > 10 };
}

/**
 * The warnings at the top of a section: errors, a busy machine, servers that died (`down`: the
 * names of servers no longer running at the end). `idle` names the servers idle before measuring.
 */
export function warningsBlock({ allClean, noise, idle, down = [] }) {
  const { maxForeign, medianForeign, background, noisy } = noise;
  return (
    (!allClean ? '\n> **WARNING: some runs had non-2xx responses or socket errors; those figures are not valid measurements.**\n' : '') +
    (noisy
      ? `\n> **WARNING: the machine was not quiet: ${background > 10 ? `just before measuring, with ${idle} idle, ${background}% of its CPU was busy; ` : ''}during the measured runs other processes took up to ${maxForeign}% of it (median ${medianForeign}% over the runs; column "other CPU" below). req/s are lower and noisier than on an idle machine; the CPU-cost ratio is the least disturbed figure.**\n`
      : '') +
    down.map((name) => `\n> **WARNING: ${name} was no longer running at the end of the measurements.**\n`).join('')
  );
}

/** Summary table row: label, req/s, p50, p99, server CPU, server + wrk CPU, vs reference, vs bare, non-2xx. */
export function summaryRow(x, label, { isReference, isBare, ref, bare }) {
  const vsRef = isReference ? '1 (reference)' : ref?.rps > 0 ? pct(x.rps / ref.rps) : '?';
  const vsBare = isBare ? '1 (baseline)' : bare?.rps > 0 ? pct(x.rps / bare.rps) : '?';
  return (
    `| ${label} | ${fmt(x.rps)} | ${ms(x.p50)} | ${ms(x.p99)} | ${fmt(x.cpuPerRequest)} | ${fmt(x.totalCpu)} | ` +
    `${vsRef} | ${vsBare} | ${x.non2xx}${x.socketErrors ? ` (+${x.socketErrors} socket errors)` : ''}${x.broken ? ' (run without result!)' : ''} |`
  );
}

/** The "Every run" table: header and one row per run of `names`, each against `reference`'s run of its repetition. */
export function perRunTable(s, names, reference, clkTck) {
  const ref = s[reference];
  const rows = [];
  for (const name of names) {
    for (const r of s[name]?.runs ?? []) {
      const o = ref?.runs.find((x) => x.rep === r.rep);
      rows.push(
        `| ${name} | ${r.rep} | ${fmt(r.rps)} | ${name === reference ? '—' : o?.rps > 0 ? pct(r.rps / o.rps) : '?'} | ` +
          `${ms(r.p50_us / 1000)} | ${ms(r.p90_us / 1000)} | ${ms(r.p99_us / 1000)} | ${ms(r.max_us / 1000)} | ` +
          `${fmt(cpuPerRequest(r, 'server_cpu_ticks', clkTck))} | ${fmt(cpuPerRequest(r, 'wrk_cpu_ticks', clkTck))} | ` +
          `${fmt(r.requests)} | ${r.non2xx} | ${r.connect_errors}/${r.read_errors}/${r.write_errors}/${r.timeouts} | ` +
          `${Number.isFinite(r.foreign_cpu_pct) ? `${r.foreign_cpu_pct}%` : '?'} | ${r.attempts ?? 1} |`,
      );
    }
  }
  return (
    `| Case | Rep | req/s | vs ${reference} (same rep) | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/req | wrk CPU µs/req | requests | non-2xx | socket errors (c/r/w/t) | other CPU | attempts |\n` +
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n` +
    rows.join('\n')
  );
}

/** "How it was run" lines every comparison prints: machine, date, source, load. */
export function runFactLines({ noise, idle }) {
  return [
    `- Machine: nproc ${meta('NPROC')}; CPU ${meta('CPU')}; ${meta('KERNEL')}; Node ${meta('NODE')}; ${meta('WRK')}`,
    `- Date (UTC, start of measurements): ${meta('STARTED')}; measuring took ${meta('ELAPSED')} s`,
    `- Strongroom source (at server start): commit ${meta('COMMIT')}${Number(meta('DIRTY', '0')) > 0 ? ` plus ${meta('DIRTY')} uncommitted change(s) under src/, bin/ or package.json` : ''}`,
    `- Load average before / after: ${meta('LOAD_BEFORE')} / ${meta('LOAD_AFTER')}; CPU busy with ${idle} idle, just before measuring: ${meta('BACKGROUND')}%;\n` +
      `  other processes' share of the CPU during the measured runs: median ${noise.medianForeign}%, max ${noise.maxForeign}% (a run above ${meta('NOISE_LIMIT')}% was repeated; ${meta('RETRIES_USED', '0')} repeat(s))`,
  ].join('\n');
}

/**
 * Puts `section` (which starts with `start` and ends with `end` and a newline) into the file at
 * `outPath`: in place of the one between the same markers, else appended; other sections are kept.
 */
export function writeSection(outPath, start, end, section) {
  const previous = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
  let text;
  const at = previous.indexOf(start);
  const until = previous.indexOf(end);
  if (at >= 0 && until > at) {
    text = previous.slice(0, at) + section + previous.slice(until + end.length).replace(/^\n/, '');
  } else if (previous) {
    text = `${previous.replace(/\n*$/, '')}\n\n${section}`;
  } else {
    text = `# Strongroom benchmark results\n\n${section}`;
  }
  writeFileSync(outPath, text);
}
