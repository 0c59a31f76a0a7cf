// What bench/report.mjs and bench/report-authz.mjs share: reading the per-run TSV that
// bench/lib.sh's measure_case writes, medians, and the per-case summary.
//
// TSV rows: case, repetition, then key=value fields (wrk-requests.lua's BENCH_RESULT line plus
// server_cpu_ticks, wrk_cpu_ticks, foreign_cpu_pct, attempts, and for Sign/Verify the raw_* ones).
import { readFileSync } from 'node:fs';

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
