// Turns the per-run results (TSV written by bench/run.sh) into bench/RESULTS.md. (bench/authz.sh's
// section is bench/report-authz.mjs; both read the TSV through bench/results-lib.mjs.)
//
//   node bench/report.mjs <results.tsv> <RESULTS.md>
//
// TSV rows: case, repetition, then the key=value fields of wrk-requests.lua's BENCH_RESULT line.
// Machine facts and run settings come in BENCH_META_* environment variables.
import { writeFileSync } from 'node:fs';
import { fmt, median, meta, ms, readRuns, summarize } from './results-lib.mjs';

const [tsvPath, outPath] = process.argv.slice(2);

const clkTck = Number(meta('CLK_TCK', '100'));
const TARGET_RATIO = 0.45;
const TARGET_P99_MS = 10;
// Issue target for asymmetric signing: RSA-2048 Sign over the API at ≥ 70% of raw node:crypto
// signing on the same cores (same number of processes as Strongroom workers).
const SIGN_TARGET_RATIO = 0.7;

const CASES = {
  'encrypt-32': { label: 'Encrypt, 32 B plaintext', bare: 'bare-32', targeted: true },
  'generate-data-key': { label: 'GenerateDataKey, AES_256', bare: 'bare-32', targeted: true },
  'decrypt-32': { label: 'Decrypt, 32 B ciphertext', bare: 'bare-32', targeted: false },
  'encrypt-4k': { label: 'Encrypt, 4 KB plaintext', bare: 'bare-4k', targeted: false },
  'bare-32': { label: 'bare node:http echo, Encrypt 32 B request', bare: null, targeted: false },
  'bare-4k': { label: 'bare node:http echo, Encrypt 4 KB request', bare: null, targeted: false },
};

// Sign / Verify cases: each run carries its raw node:crypto baseline (raw_ops_per_s,
// raw_cpu_us_per_op from bench/raw-sign.mjs, measured right after the wrk run).
const SIGNING = [
  ['rsa2048-pkcs1', 'RSA_2048, RSASSA_PKCS1_V1_5_SHA_256', true],
  ['rsa2048-pss', 'RSA_2048, RSASSA_PSS_SHA_256', true],
  ['p256', 'ECC_NIST_P256, ECDSA_SHA_256', false],
  ['ed25519', 'ECC_NIST_EDWARDS25519, ED25519_SHA_512', false],
  ['mldsa44', 'ML_DSA_44, ML_DSA_SHAKE_256 (raw: @noble/post-quantum)', false],
];
const SIGN_CASES = Object.fromEntries(
  ['sign', 'verify'].flatMap((kind) =>
    SIGNING.map(([name, label, targeted]) => [
      `${kind}-${name}`,
      { label: `${kind === 'sign' ? 'Sign' : 'Verify'}, ${label}`, targeted: kind === 'sign' && targeted },
    ]),
  ),
);

const runs = readRuns(tsvPath);

const summaries = Object.fromEntries([...Object.keys(CASES), ...Object.keys(SIGN_CASES)].map((name) => [name, summarize(runs.get(name), clkTck)]));
const anyErrors = Object.values(summaries).some((s) => s && (s.non2xx > 0 || s.socketErrors > 0 || s.broken));

const rows = [];
const verdicts = [];
for (const [name, info] of Object.entries(CASES)) {
  const s = summaries[name];
  if (!s) continue;
  const bare = info.bare ? summaries[info.bare] : undefined;
  const ratio = bare && bare.rps > 0 ? s.rps / bare.rps : undefined;
  const clean = s.non2xx === 0 && s.socketErrors === 0 && !s.broken;
  let target = '—';
  if (info.targeted) {
    const met = ratio !== undefined && ratio >= TARGET_RATIO && s.p99 <= TARGET_P99_MS;
    target = !clean ? '**invalid: errors**' : met ? 'met' : '**not met**';
    verdicts.push(
      `- ${info.label}: ${fmt(s.rps)} req/s = ${ratio === undefined ? '?' : fmt(ratio * 100, 1)}% of bare ` +
        `(target ≥ ${TARGET_RATIO * 100}%: ${ratio !== undefined && ratio >= TARGET_RATIO ? 'yes' : 'no'}), ` +
        `p99 ${ms(s.p99)} ms (target ≤ ${TARGET_P99_MS} ms: ${s.p99 <= TARGET_P99_MS ? 'yes' : 'no'}) → ${target.replaceAll('*', '')}`,
    );
  }
  const cpuRatio = bare && bare.cpuPerRequest > 0 ? s.cpuPerRequest / bare.cpuPerRequest : undefined;
  rows.push(
    `| ${info.label} | ${fmt(s.rps)} | ${ms(s.p50)} | ${ms(s.p99)} | ` +
      `${Number.isFinite(s.cpuPerRequest) ? fmt(s.cpuPerRequest) : '?'}${cpuRatio ? ` (${fmt(cpuRatio, 1)}×)` : ''} | ` +
      `${ratio === undefined ? '1 (baseline)' : `${fmt(ratio * 100, 1)}% of ${info.bare}`} | ` +
      `${s.non2xx}${s.socketErrors ? ` (+${s.socketErrors} socket errors)` : ''}${s.broken ? ' (run without result!)' : ''} | ${target} |`,
  );
}

const signRows = [];
for (const [name, info] of Object.entries(SIGN_CASES)) {
  const s = summaries[name];
  if (!s) continue;
  const ratio = s.rawOps > 0 ? s.rps / s.rawOps : undefined;
  const clean = s.non2xx === 0 && s.socketErrors === 0 && !s.broken && ratio !== undefined;
  let target = '—';
  if (info.targeted) {
    target = !clean ? '**invalid: errors**' : ratio >= SIGN_TARGET_RATIO ? 'met' : '**not met**';
    verdicts.push(
      `- ${info.label}: ${fmt(s.rps)} req/s = ${ratio === undefined ? '?' : fmt(ratio * 100, 1)}% of raw node:crypto ` +
        `(${Number.isFinite(s.rawOps) ? fmt(s.rawOps) : '?'} ops/s; target ≥ ${SIGN_TARGET_RATIO * 100}%) → ${target.replaceAll('*', '')}`,
    );
  }
  signRows.push(
    `| ${info.label} | ${fmt(s.rps)} | ${ms(s.p50)} | ${ms(s.p99)} | ` +
      `${Number.isFinite(s.cpuPerRequest) ? fmt(s.cpuPerRequest) : '?'} | ` +
      `${Number.isFinite(s.rawOps) ? fmt(s.rawOps) : '?'} | ${Number.isFinite(s.rawCpuPerOp) ? fmt(s.rawCpuPerOp) : '?'} | ` +
      `${ratio === undefined ? '?' : `${fmt(ratio * 100, 1)}%`} | ` +
      `${Number.isFinite(s.cpuCostRatio) ? `${fmt(s.cpuCostRatio * 100, 1)}%` : '?'} | ` +
      `${s.non2xx}${s.socketErrors ? ` (+${s.socketErrors} socket errors)` : ''}${s.broken ? ' (run without result!)' : ''} | ${target} |`,
  );
}

const perRun = [];
for (const [name, info] of [...Object.entries(CASES), ...Object.entries(SIGN_CASES)]) {
  const s = summaries[name];
  if (!s) continue;
  for (const r of s.runs) {
    // Paired with the baseline run of the same repetition (a few seconds apart), or for Sign and
    // Verify with the raw node:crypto run made right after this one.
    const pairedBare = info.bare ? summaries[info.bare]?.runs.find((b) => b.rep === r.rep) : undefined;
    const paired =
      name in SIGN_CASES
        ? r.raw_ops_per_s > 0
          ? `${fmt((100 * r.rps) / r.raw_ops_per_s, 1)}% of raw ${fmt(r.raw_ops_per_s)}/s`
          : '?'
        : pairedBare && pairedBare.rps > 0
          ? `${fmt((100 * r.rps) / pairedBare.rps, 1)}%`
          : '—';
    perRun.push(
      `| ${name} | ${r.rep} | ${fmt(r.rps)} | ${paired} | ${ms(r.p50_us / 1000)} | ${ms(r.p90_us / 1000)} | ${ms(r.p99_us / 1000)} | ` +
        `${ms(r.max_us / 1000)} | ${r.requests > 0 ? fmt((r.server_cpu_ticks / clkTck) * 1e6 / r.requests) : '?'} | ${r.requests > 0 ? fmt((r.wrk_cpu_ticks / clkTck) * 1e6 / r.requests) : '?'} | ${fmt(r.requests)} | ${r.non2xx} | ${r.connect_errors}/${r.read_errors}/${r.write_errors}/${r.timeouts} | ` +
        `${Number.isFinite(r.foreign_cpu_pct) ? `${r.foreign_cpu_pct}%` : '?'}${Number.isFinite(r.raw_other_cpu_pct) ? ` (raw run ${r.raw_other_cpu_pct}%)` : ''} | ${r.attempts ?? 1} |`,
    );
  }
}
const pairedMedians = [];
for (const [name, info] of Object.entries(CASES)) {
  const s = summaries[name];
  if (!s || !info.bare) continue;
  const ratios = s.runs
    .map((r) => [r, summaries[info.bare]?.runs.find((b) => b.rep === r.rep)])
    .filter(([, b]) => b && b.rps > 0)
    .map(([r, b]) => r.rps / b.rps);
  if (ratios.length) pairedMedians.push(`${info.label} ${fmt(100 * median(ratios), 1)}%`);
}
for (const [name, info] of Object.entries(SIGN_CASES)) {
  const s = summaries[name];
  if (s && Number.isFinite(s.pairedRawRatio)) pairedMedians.push(`${info.label} ${fmt(100 * s.pairedRawRatio, 1)}% of raw`);
}
const foreignShares = Object.values(summaries)
  .flatMap((s) => (s ? s.runs : []))
  .map((r) => r.foreign_cpu_pct)
  .filter(Number.isFinite);
const maxForeign = foreignShares.length ? Math.max(...foreignShares) : undefined;
const noisy = (maxForeign ?? 0) > 10 || Number(meta('BACKGROUND', '0')) > 10;

const samples = meta('SAMPLES').trim();
const srLog = meta('SR_LOG').trim();
const threads = meta('THREADS');
const connections = meta('CONNECTIONS');
const workers = meta('WORKERS');

const md = `# Strongroom benchmark results

Generated by \`bash bench/run.sh\` (\`npm run bench\`); see bench/README.md for what is measured and how.
${anyErrors ? '\n> **WARNING: some runs had non-2xx responses or socket errors. Those figures are not valid measurements; see the tables and the samples below.**\n' : ''}${noisy ? `\n> **WARNING: the machine was not quiet: processes other than the two servers and wrk took up to ${Math.max(maxForeign ?? 0, Number(meta('BACKGROUND', '0')))}% of its CPU during some runs (column "other CPU" below). That load competes with both servers and makes the figures noisier and lower; re-run on an idle machine for numbers to compare across runs.**\n` : ''}${meta('SR_ALIVE') === 'no' ? '\n> **WARNING: the Strongroom server was no longer running at the end of the measurements.**\n' : ''}
## Summary

Medians of ${meta('REPEATS')} repetitions (req/s, p50 and p99 each the median of the per-run values).
${rows.length ? `
### Symmetric operations

"Ratio" is Strongroom's req/s over the bare node:http echo server's req/s on the same requests
(32 B-sized requests for Encrypt 32 B, GenerateDataKey and Decrypt; the 4 KB requests for Encrypt 4 KB).
Target (Encrypt 32 B and GenerateDataKey): ≥ ${TARGET_RATIO * 100}% of bare req/s with p99 ≤ ${TARGET_P99_MS} ms.
"Server CPU µs/request" is the CPU time the server's processes (primary and workers, user + system) spent per
request during the measured run: the cost of one request, which other load on the machine disturbs much less than
req/s does. In brackets, how many times the size-matched baseline's.

| Operation | req/s | p50 ms | p99 ms | server CPU µs/request (× bare) | Ratio to bare req/s | non-2xx (all runs) | Target |
|---|---:|---:|---:|---:|---:|---:|---|
${rows.join('\n')}
` : ''}${signRows.length ? `
### Sign and Verify

Each Sign/Verify run is followed, on the same cores, by the raw operation: \`bench/raw-sign.mjs\`, ${workers} processes
(as many as Strongroom has workers) each looping \`crypto.sign\` / \`crypto.verify\` (ML-DSA: @noble/post-quantum's
\`ml_dsa44.sign\` / \`verify\`) over 32-byte messages for ${meta('RAW_DURATION')} s with a key made once; no HTTP, SigV4, policy,
storage or key unsealing. "Ratio to raw" is Strongroom's median req/s over the raw runs' median ops/s. Requests sign
(or verify) a 32-byte message, MessageType RAW. Target (issue): RSA-2048 signing over the API ≥ ${SIGN_TARGET_RATIO * 100}% of raw.
"CPU-cost ratio" is raw CPU µs/op ÷ (server + wrk CPU µs/request), the median over runs: the ratio req/s would show if
nothing else ran on the machine, and a cross-check that other load disturbs far less.

| Operation | req/s | p50 ms | p99 ms | server CPU µs/request | raw node:crypto ops/s (${workers} processes) | raw CPU µs/op | Ratio to raw | CPU-cost ratio | non-2xx (all runs) | Target |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
${signRows.join('\n')}
` : ''}
${verdicts.join('\n')}

Median of the per-repetition paired ratios (each Strongroom run over the baseline run of the same repetition), a
cross-check that is less sensitive to drift between repetitions: ${pairedMedians.join('; ')}.

## How it was run

- Command: \`bash bench/run.sh\` (settings: ${meta('REPEATS')} repetitions, ${meta('WARMUP')} s warm-up + ${meta('DURATION')} s measured per case, pool of ${meta('POOL')} pre-signed requests per case${signRows.length ? `; Sign/Verify cases ${meta('SIGN_WARMUP')} s warm-up + ${meta('SIGN_DURATION')} s measured, then ${meta('RAW_DURATION')} s of raw node:crypto` : ''})
- Load generator, per case: \`${meta('WRK_CMD')}\` after a ${meta('WARMUP')} s warm-up with the same pool
- Strongroom: \`node bin/strongroom.mjs serve --data-dir <tmp> --port <p> --workers ${workers} --log-level warn\` (HTTP, SQLite data dir in a fresh temp dir, one symmetric key and one key per asymmetric key spec created with @aws-sdk/client-kms)
- Baseline: \`node bench/bare-server.mjs --workers ${workers}\` — node:cluster, ${workers} workers, reads the body, JSON.parse, answers a small JSON document (application/x-amz-json-1.1)
- Every request is a complete SigV4-signed KMS request (@smithy/signature-v4, service kms, us-east-1), signed seconds before each case; ${threads} wrk threads × ${Math.round(Number(connections) / Number(threads))} keep-alive connections = ${connections} connections
- Order within each repetition: ${meta('CASES', 'bare-32 encrypt-32 generate-data-key decrypt-32 encrypt-4k bare-4k').split(/\s+/).join(', ')} (interleaved so drift touches both sides)

## Machine

- nproc: ${meta('NPROC')}
- CPU: ${meta('CPU')}
- Kernel: ${meta('KERNEL')}
- Node: ${meta('NODE')}
- wrk: ${meta('WRK')}
- Date (UTC, start of measurements): ${meta('STARTED')}; measuring took ${meta('ELAPSED')} s
- Strongroom source (at server start): commit ${meta('COMMIT')}${Number(meta('DIRTY', '0')) > 0 ? ` plus ${meta('DIRTY')} uncommitted change(s) under src/, bin/ or package.json` : ''}
- Load average before / after: ${meta('LOAD_BEFORE')} / ${meta('LOAD_AFTER')}; CPU busy with both servers idle, just before measuring: ${meta('BACKGROUND')}%

**wrk and the servers share the same ${meta('NPROC')} cores** (loopback, no isolation): wrk's ${threads} threads, the
server's ${workers} workers and its cluster primary all compete for CPU, so absolute req/s are lower than a server on its
own machine would reach, and both Strongroom and the baseline pay the same tax. Read the ratio, not the absolute figures.

## Every run

"vs baseline" pairs each run with the bare baseline run of its repetition, or (Sign/Verify) with the raw node:crypto
run made right after it. "Other CPU" is the share of the machine's
CPU time during the measured ${meta('DURATION')} s that went to processes other than the two servers and wrk (from /proc: system busy
time minus the servers' and wrk's own CPU time; kernel softirq time, mostly loopback TCP for our own traffic, is left
out); near 0% means the run had the machine to itself. For Sign/Verify it is the larger of the wrk run's and the raw
run's share, the latter in brackets. A run above ${meta('NOISE_LIMIT')}% was repeated, at most a few times per
bench (${meta('RETRIES_USED', '0')} repeat(s) this time); "attempts" says which attempt is shown.

| Case | Rep | req/s | vs baseline | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/req | wrk CPU µs/req | requests | non-2xx | socket errors (connect/read/write/timeout) | other CPU | attempts |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|
${perRun.join('\n')}
${samples ? `\n## Non-2xx samples\n\n\`\`\`\n${samples}\n\`\`\`\n` : ''}${srLog ? `\n## Strongroom log (warnings and errors, last lines)\n\n\`\`\`\n${srLog}\n\`\`\`\n` : ''}`;

writeFileSync(outPath, md);
process.stdout.write(md.split('## How it was run')[0]);
