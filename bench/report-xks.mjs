// Writes bench/xks.sh's section of bench/RESULTS.md: Encrypt 32 B through an external key vs a
// software key, and the XKS proxy's own latency against the spec's 250 ms budget.
//
//   node bench/report-xks.mjs <results.tsv> <RESULTS.md> <raw dir>
//   node bench/report-xks.mjs --window <proxy slice .jsonl> <start ms> <end ms>   (one line, for xks.sh's log)
//
// The section sits between two HTML comment markers: a later run replaces it, anything else in
// the file is left as it is; without the markers it is appended. TSV and BENCH_META_* as for
// bench/report-audit.mjs (bench/results-lib.mjs); each run's row also carries the measured run's
// window (window_start_ms, window_end_ms: when wrk's warm-up and measured run wrote their output).
// The raw dir holds, per case and repetition, the proxies' audit lines written during that run
// (proxy.<case>.<rep>.jsonl, each line with a "proxy" index added): the proxy's latency is the
// durationMs of its Encrypt lines whose time falls in the measured run's window.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareCases, fmt, median, meta, ms, noiseOf, pct, perRunTable, readRuns, runFactLines, warningsBlock, writeSection } from './results-lib.mjs';

/** The XKS spec: KMS gives up on a proxy call after 250 ms. */
const BUDGET_MS = 250;
const START = '<!-- bench/xks.sh: start -->';
const END = '<!-- bench/xks.sh: end -->';

/** Nearest-rank percentile of an ascending array. */
const percentile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] : NaN);

/** The proxies' audit lines of one run whose time falls in [startMs, endMs]: Encrypt calls and their durations. */
function proxyWindow(path, startMs, endMs) {
  const lines = existsSync(path) ? readFileSync(path, 'utf8').split('\n') : [];
  const durations = [];
  const perProxy = new Map();
  let errors = 0;
  let other = 0;
  let unparsed = 0;
  for (const line of lines) {
    if (!line.trim()) continue;
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      unparsed++; // a line still being appended when the slice was cut
      continue;
    }
    const at = Date.parse(event.time);
    if (!(at >= startMs && at <= endMs)) continue;
    if (event.operation !== 'Encrypt') {
      other++;
      continue;
    }
    if (event.httpStatus !== 200) errors++;
    durations.push(event.durationMs);
    perProxy.set(event.proxy, (perProxy.get(event.proxy) ?? 0) + 1);
  }
  durations.sort((a, b) => a - b);
  return {
    calls: durations.length,
    p50: percentile(durations, 0.5),
    p90: percentile(durations, 0.9),
    p99: percentile(durations, 0.99),
    max: durations.length ? durations[durations.length - 1] : NaN,
    overBudget: durations.filter((d) => d > BUDGET_MS).length,
    durations,
    perProxy,
    errors,
    other,
    unparsed,
  };
}

const describeWindow = (w) =>
  w.calls === 0
    ? `no Encrypt calls${w.other ? ` (${w.other} other calls)` : ''}`
    : `${w.calls} Encrypt calls, durationMs p50 ${ms(w.p50)} / p99 ${ms(w.p99)} / max ${ms(w.max)} ms, ` +
      `${w.overBudget} over ${BUDGET_MS} ms, ${w.errors} errors${w.other ? `, ${w.other} other calls` : ''}`;

if (process.argv[2] === '--window') {
  const [path, startMs, endMs] = process.argv.slice(3);
  process.stdout.write(`${describeWindow(proxyWindow(path, Number(startMs), Number(endMs)))}\n`);
  process.exit(0);
}

const [tsvPath, outPath, rawDir] = process.argv.slice(2);
const clkTck = Number(meta('CLK_TCK', '100'));
const CASES = {
  external: 'external key (`EXTERNAL_KEY_STORE`): software layer + XKS proxy call, AES-GCM in SoftHSMv2',
  software: 'software key (`AWS_KMS`)',
};

const runs = readRuns(tsvPath);
const { s, ref: software, sub: external, allClean, ratio, pairedRatio, cpuCostRatio, pairedBy } = compareCases(
  runs,
  Object.keys(CASES),
  { reference: 'software', subject: 'external' },
  clkTck,
);
const noise = noiseOf(runs);

// The proxy, per measured run of each case.
const windowOf = (name, r) => proxyWindow(join(rawDir, `proxy.${name}.${r.rep}.jsonl`), r.window_start_ms, r.window_end_ms);
const externalWindows = (external?.runs ?? []).map((r) => ({ run: r, w: windowOf('external', r) }));
const softwareWindows = (software?.runs ?? []).map((r) => ({ run: r, w: windowOf('software', r) }));
const withCalls = externalWindows.filter(({ w }) => w.calls > 0);
const proxyP50 = median(withCalls.map(({ w }) => w.p50));
const proxyP99 = median(withCalls.map(({ w }) => w.p99));
const pooled = withCalls.flatMap(({ w }) => w.durations).sort((a, b) => a - b);
const pooledCalls = pooled.length;
const overBudget = withCalls.reduce((n, { w }) => n + w.overBudget, 0);
const proxyErrors = externalWindows.reduce((n, { w }) => n + w.errors, 0);
const unparsed = [...externalWindows, ...softwareWindows].reduce((n, { w }) => n + w.unparsed, 0);
const softwareCalls = softwareWindows.reduce((n, { w }) => n + w.calls + w.other, 0);
const externalRequests = withCalls.reduce((n, { run }) => n + run.requests, 0);
const perProxy = new Map();
for (const { w } of withCalls) for (const [proxy, n] of w.perProxy) perProxy.set(proxy, (perProxy.get(proxy) ?? 0) + n);
const budgetMet = Number.isFinite(proxyP99) && proxyP99 <= BUDGET_MS;

const addedLatency = (field) => pairedBy((r, o) => (r[field] - o[field]) / 1000);

let verdict;
if (!allClean) verdict = '**invalid: some runs had non-2xx responses or socket errors** (see below); no verdict.';
else if (withCalls.length === 0) verdict = '**invalid: the proxies logged no Encrypt call during the measured external runs**; no verdict.';
else {
  verdict =
    `Encrypt through the external key reaches **${pct(ratio)}** of the software key's req/s (paired per repetition ${pct(pairedRatio)}, ` +
    `CPU-cost ratio ${pct(cpuCostRatio)}). The proxy's own latency: **p50 ${ms(proxyP50)} ms, p99 ${ms(proxyP99)} ms** ` +
    `(medians over ${withCalls.length} measured run(s)); against the spec's ${BUDGET_MS} ms budget the p99 is **${budgetMet ? 'within' : 'OVER'} budget**` +
    `, and ${fmt(overBudget)} of ${fmt(pooledCalls)} calls took longer than ${BUDGET_MS} ms.`;
}

const row = (name) => {
  const x = s[name];
  if (!x) return undefined;
  const vs = name === 'software' ? '1 (reference)' : software?.rps > 0 ? pct(x.rps / software.rps) : '?';
  return (
    `| ${CASES[name]} | ${fmt(x.rps)} | ${ms(x.p50)} | ${ms(x.p99)} | ${fmt(x.cpuPerRequest)} | ${fmt(x.totalCpu)} | ${vs} | ` +
    `${x.non2xx}${x.socketErrors ? ` (+${x.socketErrors} socket errors)` : ''}${x.broken ? ' (run without result!)' : ''} |`
  );
};

const proxyRows = externalWindows
  .map(
    ({ run, w }) =>
      `| ${run.rep} | ${fmt(w.calls)} | ${fmt(run.requests)} | ${run.requests > 0 ? fmt(w.calls / run.requests, 3) : '?'} | ` +
      `${ms(w.p50)} | ${ms(w.p90)} | ${ms(w.p99)} | ${ms(w.max)} | ${w.overBudget} | ${w.errors} | ` +
      `${[...w.perProxy.entries()].sort(([a], [b]) => a - b).map(([p, n]) => `${p + 1}: ${fmt(n)}`).join(', ') || '—'} |`,
  )
  .join('\n');

const samples = meta('SAMPLES').trim();
const srLog = meta('SR_LOG').trim();
const proxyLog = meta('PROXY_LOG').trim();
const down = [
  ...(meta('SR_ALIVE') === 'no' ? ['the Strongroom server'] : []),
  ...(meta('PROXIES_ALIVE') !== meta('PROXIES') ? [`${Number(meta('PROXIES')) - Number(meta('PROXIES_ALIVE'))} of the XKS proxies`] : []),
];
const idle = 'the server and the proxies';

const section = `${START}
## External key stores: Encrypt 32 B through an external key vs a software key (\`bench/xks.sh\`)

Issue 9: Encrypt through an external key vs a software key in the same run, and the proxy's own latency (p50/p99) against
the XKS spec's ${BUDGET_MS} ms budget. One Strongroom with ${meta('WORKERS')} workers holding both keys, ${meta('PROXIES')} \`strongroom xks-proxy\`
process(es) over HTTPS in front of one SoftHSMv2 token; both cases interleaved in each of ${meta('REPEATS')} repetitions, medians over
repetitions (as \`bench/run.sh\`); see bench/README.md ("External key stores").
${warningsBlock({ allClean, noise, idle, down })}
| Case | req/s | p50 ms | p99 ms | server + proxy CPU µs/req | server + proxy + wrk CPU µs/req | req/s vs software | non-2xx (all runs) |
|---|---:|---:|---:|---:|---:|---:|---:|
${['external', 'software'].map(row).filter(Boolean).join('\n')}

**Verdict:** ${verdict}

- external / software, median req/s: ${pct(ratio)}; median of the per-repetition ratios: ${pct(pairedRatio)}; CPU-cost ratio
  (software's server + wrk CPU per request ÷ external's, median over repetitions — the req/s ratio with the machine to
  ourselves): ${pct(cpuCostRatio)}. "Server" CPU counts the Strongroom primary and workers and the proxies.
- Latency the external key adds, as the client sees it (median per-repetition difference): p50 ${fmt(addedLatency('p50_us'), 2)} ms,
  p99 ${fmt(addedLatency('p99_us'), 2)} ms (external p50 ${ms(external?.p50 ?? NaN)} / p99 ${ms(external?.p99 ?? NaN)} ms vs software
  ${ms(software?.p50 ?? NaN)} / ${ms(software?.p99 ?? NaN)} ms, ${meta('CONNECTIONS')} connections).
- **Proxy's own latency** (its audit log's \`durationMs\`, Encrypt calls completed during the measured runs): p50 **${ms(proxyP50)} ms**,
  p99 **${ms(proxyP99)} ms** (medians of the per-run figures); all ${fmt(pooledCalls)} calls pooled: p50 ${ms(percentile(pooled, 0.5))},
  p90 ${ms(percentile(pooled, 0.9))}, p99 ${ms(percentile(pooled, 0.99))}, p99.9 ${ms(percentile(pooled, 0.999))}, max ${ms(pooled.length ? pooled[pooled.length - 1] : NaN)} ms;
  **${fmt(overBudget)} over the ${BUDGET_MS} ms budget**; ${proxyErrors} answered with an error. \`durationMs\` runs from the proxy's
  request handler being called (headers read) to its answer being ready: body, SigV4 check, waiting for one of its
  ${meta('SESSIONS')} PKCS#11 sessions, C_GenerateRandom (IV), C_Encrypt (AES-256-GCM) and — because Strongroom asks for
  \`ciphertextDataIntegrityValue\` — the HSM decrypt self-check; not TLS, the network, the time a request waits in the
  proxy's event loop before its handler runs, the audit line's write or the KMS side's signing (those are in the added
  latency above, and in the KMS side's own ${BUDGET_MS} ms timeout below).
- Requests the server failed because of the key store, over the whole bench (every attempt, warm-ups included; the KMS
  side's ${BUDGET_MS} ms budget for a proxy call running out shows as "the XKS proxy did not answer in time"):
  ${meta('KEY_STORE_FAILURES').trim() || 'none'}.
- Proxy calls per external request: ${externalRequests > 0 ? fmt(pooledCalls / externalRequests, 3) : '?'} (${fmt(pooledCalls)} calls for ${fmt(externalRequests)} requests
  wrk completed in the same windows; one Encrypt call each, requests in flight at a window's edge aside)${Number(meta('PROXIES')) > 1 ? `; calls per proxy: ${[...perProxy.entries()].sort(([a], [b]) => a - b).map(([p, n]) => `proxy ${p + 1}: ${fmt(n)}`).join(', ')} (the KMS side sends each call to the address that answered last)` : ''}.
- Proxy calls during the software-key runs: ${fmt(softwareCalls)} (expected 0).${unparsed ? ` ${unparsed} audit line(s) could not be parsed (cut while being written).` : ''}

### How it was run

- Command: \`bash bench/xks.sh\` (${meta('REPEATS')} repetitions, ${meta('WARMUP')} s warm-up + ${meta('DURATION')} s measured per case, pool of ${meta('POOL')} pre-signed requests per case and run)
- Load generator, per case: \`${meta('WRK_CMD')}\` after a ${meta('WARMUP')} s warm-up with the same pool
- Server: \`${meta('SERVE_CMD')}\`
- Proxies (${meta('PROXIES')}): \`${meta('PROXY_CMD')}\`, one SoftHSMv2 token (${meta('SOFTHSM')}) with one AES-256 key made by
  pkcs11-tool (sensitive); TLS with a bench CA, certificate for xks.test
- Setup (bench/prepare-xks.ts, AWS SDK): CreateCustomKeyStore (EXTERNAL_KEY_STORE, PUBLIC_ENDPOINT), ConnectCustomKeyStore,
  CreateKey with Origin EXTERNAL_KEY_STORE, CreateKey (software), an Encrypt/Decrypt round trip on each: \`${meta('SETUP')}\`
- Requests: \`TrentService.Encrypt\`, 32 random bytes of plaintext (different in each pooled request), no encryption context,
  SigV4-signed by \`bench/prepare.ts\` as the administrator, right before each run
- Order of the cases per repetition (swapped every other one): ${meta('ORDER')}
${runFactLines({ noise, idle })}

### Every run

${perRunTable(s, Object.keys(CASES), 'software', clkTck)}

The proxy during each measured external run:

| Rep | proxy Encrypt calls | requests (wrk) | calls / request | p50 ms | p90 ms | p99 ms | max ms | over ${BUDGET_MS} ms | errors | calls per proxy |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
${proxyRows}
${samples ? `\nNon-2xx samples:\n\n\`\`\`\n${samples}\n\`\`\`\n` : ''}${srLog ? `\nStrongroom's log (warnings and errors, last lines):\n\n\`\`\`\n${srLog}\n\`\`\`\n` : ''}${proxyLog ? `\nThe proxies' stderr (last lines):\n\n\`\`\`\n${proxyLog}\n\`\`\`\n` : ''}${END}
`;

writeSection(outPath, START, END, section);
process.stdout.write(`${section.split('### How it was run')[0].replace(START, '').trim()}\n`);
