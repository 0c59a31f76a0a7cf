// Writes bench/hsm.sh's section of bench/RESULTS.md: Encrypt 32 B and GenerateDataKey AES_256
// through HSM-backed keys (AWS_CLOUDHSM key stores over a one-in-process-member cluster and a
// three-agent cluster) vs a software key, against issue 6's targets, with the raw PKCS#11 ceiling.
//
//   node bench/report-hsm.mjs <results.tsv> <RESULTS.md>
//
// The section sits between two HTML comment markers: a later run replaces it, anything else in
// the file is left as it is; without the markers it is appended. TSV and BENCH_META_* as for
// bench/report-xks.mjs (bench/results-lib.mjs); case names are <op>.<key>, op encrypt-32 or
// generate-data-key, key software, hsm-local or hsm-agents. BENCH_META_CEILING holds
// bench/pkcs11-micro.ts's output (empty when skipped).
import { compareCases, fmt, meta, ms, noiseOf, pct, perRunTable, readRuns, runFactLines, warningsBlock, writeSection } from './results-lib.mjs';

const START = '<!-- bench/hsm.sh: start -->';
const END = '<!-- bench/hsm.sh: end -->';
/** Issue 6's targets. */
const IN_PROCESS_SHARE = 0.8;
const AGENTS_RPS = 1800;

const OPS = { 'encrypt-32': 'Encrypt 32 B', 'generate-data-key': 'GenerateDataKey AES_256' };
const KEYS = {
  software: 'software key (`AWS_KMS`)',
  'hsm-local': 'HSM key, cluster of 1 in-process member',
  'hsm-agents': `HSM key, cluster of ${meta('AGENTS', '3')} hsm-agent members`,
};
const NAMES = Object.keys(OPS).flatMap((op) => Object.keys(KEYS).map((key) => `${op}.${key}`));

const [tsvPath, outPath] = process.argv.slice(2);
const clkTck = Number(meta('CLK_TCK', '100'));
const INLINE_NOTE = ', `--inline-calls`: C_Encrypt/C_Decrypt on the event loop, as for the agents\u2019 members';
const runs = readRuns(tsvPath);
const noise = noiseOf(runs);

/** Per op and HSM key: the comparison with the software key of the same op. */
const compare = (op, key) => compareCases(runs, NAMES, { reference: `${op}.software`, subject: `${op}.${key}` }, clkTck);
const cmp = Object.fromEntries(Object.keys(OPS).map((op) => [op, { 'hsm-local': compare(op, 'hsm-local'), 'hsm-agents': compare(op, 'hsm-agents') }]));
const s = cmp['encrypt-32']['hsm-local'].s; // every case's summary (the same in each comparison)
const allClean = cmp['encrypt-32']['hsm-local'].allClean;

/** bench/pkcs11-micro.ts's 32 B figures: ops/s per case name. */
function ceilingOf(text) {
  const section = /AES-256-GCM encrypt, 32 B\n([\s\S]*?)(?:\n\S|$)/.exec(text)?.[1] ?? '';
  const rates = {};
  for (const match of section.matchAll(/^\s+(.+?)\s{2,}([\d,]+) ops\/s$/gm)) rates[match[1]] = Number(match[2].replaceAll(',', ''));
  return rates;
}
const ceilingText = meta('CEILING').trim();
const ceiling = ceilingOf(ceilingText);
const rawSync = ceiling['pkcs11 sync (1 session)'];
const rawAsync = ceiling['pkcs11 async ×4'];
const rawStore = ceiling['store pkcs11 ×16'];
const rawNode = ceiling['node:crypto'];
const ops = (n) => (Number.isFinite(n) ? fmt(n) : '?');
const ofCeiling = (rps) => (rawAsync > 0 ? pct(rps / rawAsync) : '?');

const encLocal = cmp['encrypt-32']['hsm-local'];
const encAgents = cmp['encrypt-32']['hsm-agents'];
const localMet = encLocal.ratio >= IN_PROCESS_SHARE;
const agentsRps = encAgents.sub?.rps ?? NaN;
const agentsMet = agentsRps >= AGENTS_RPS;
const mark = (met) => (met ? '**met**' : '**NOT met**');

const row = (op, key) => {
  const x = s[`${op}.${key}`];
  if (!x) return undefined;
  const ref = s[`${op}.software`];
  const vs = key === 'software' ? '1 (reference)' : ref?.rps > 0 ? pct(x.rps / ref.rps) : '?';
  return (
    `| ${OPS[op]} | ${KEYS[key]} | ${fmt(x.rps)} | ${ms(x.p50)} | ${ms(x.p99)} | ${fmt(x.cpuPerRequest)} | ${fmt(x.totalCpu)} | ${vs} | ` +
    `${key === 'software' ? '—' : ofCeiling(x.rps)} | ` +
    `${x.non2xx}${x.socketErrors ? ` (+${x.socketErrors} socket errors)` : ''}${x.broken ? ' (run without result!)' : ''} |`
  );
};

const ratioLine = (op, key) => {
  const c = cmp[op][key];
  return `${OPS[op]}, ${KEYS[key]} / software: median req/s ${pct(c.ratio)}, paired per repetition ${pct(c.pairedRatio)}, CPU-cost ratio ${pct(c.cpuCostRatio)}`;
};

let verdict;
if (!allClean) verdict = '**invalid: some runs had non-2xx responses or socket errors** (see below); no verdict.';
else {
  verdict =
    `Encrypt through the HSM key with one in-process member reaches **${pct(encLocal.ratio)}** of the software key's req/s ` +
    `(target ≥ ${pct(IN_PROCESS_SHARE, 0)}: ${mark(localMet)}; paired per repetition ${pct(encLocal.pairedRatio)}, CPU-cost ratio ${pct(encLocal.cpuCostRatio)}). ` +
    `Through the three-agent cluster it runs at **${fmt(agentsRps)} req/s** (target ≥ ${fmt(AGENTS_RPS)}: ${mark(agentsMet)}; ` +
    `${pct(encAgents.ratio)} of the software key).`;
}

const samples = meta('SAMPLES').trim();
const srLog = meta('SR_LOG').trim();
const agentLog = meta('AGENT_LOG').trim();
const down = [
  ...(meta('SR_ALIVE') === 'no' ? ['the Strongroom server'] : []),
  ...(meta('AGENTS_ALIVE') !== meta('AGENTS') ? [`${Number(meta('AGENTS')) - Number(meta('AGENTS_ALIVE'))} of the hsm-agents`] : []),
];
const idle = 'the server and the agents';

const ceilingBlock = ceilingText
  ? `- **Ceiling** (\`bench/pkcs11-micro.ts ${meta('CEILING_SECONDS')}\`, AES-256-GCM of 32 B on one SoftHSMv2 token of its own, in one process, ` +
    `run once before the measurements with the server and agents idle): C_EncryptInit + C_Encrypt on 1 session (blocking) ` +
    `**${ops(rawSync)} ops/s**; C_EncryptAsync on 4 sessions (libuv pool) **${ops(rawAsync)} ops/s**; ` +
    `\`Pkcs11KeyStore.encrypt\` ×16 in flight ${ops(rawStore)} ops/s; node:crypto ${ops(rawNode)} ops/s. ` +
    `Column "of ceiling" = req/s ÷ the 4-session async figure. Every HSM-backed request makes one AES-GCM encryption ` +
    `in one member (Encrypt: the plaintext; GenerateDataKey: the new data key; the IV comes from Strongroom).`
  : '- Ceiling: not measured (BENCH_CEILING_SECONDS=0, or bench/pkcs11-micro.ts failed).';

const section = `${START}
## HSM-backed keys: Encrypt and GenerateDataKey through AWS_CLOUDHSM key stores vs a software key (\`bench/hsm.sh\`)

Issue 6: Encrypt and GenerateDataKey through an HSM-backed key vs a software key in the same run, with one in-process
member and with ${meta('AGENTS')} agent members; direct PKCS#11 calls as the ceiling. Targets: HSM-backed Encrypt ≥ ${pct(IN_PROCESS_SHARE, 0)} of
the software key's throughput with an in-process member; ≥ ${fmt(AGENTS_RPS)} req/s with agent members. One Strongroom with
${meta('WORKERS')} workers holding all three keys: a key store over \`${meta('LOCAL_CLUSTER')}\` (one SoftHSMv2 token loaded in-process by each
worker) and one over \`${meta('AGENTS_CLUSTER')}\` (${meta('AGENTS')} \`strongroom hsm-agent\` processes, each with its own token, mutual TLS 1.3 on
loopback); all six cases interleaved in each of ${meta('REPEATS')} repetitions, medians over repetitions (as \`bench/run.sh\`);
see bench/README.md ("HSM-backed keys").
${warningsBlock({ allClean, noise, idle, down })}
| Operation | Key | req/s | p50 ms | p99 ms | server + agents CPU µs/req | server + agents + wrk CPU µs/req | req/s vs software | of ceiling | non-2xx (all runs) |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|
${NAMES.map((name) => row(...name.split('.'))).filter(Boolean).join('\n')}

**Verdict:** ${verdict}

- Target 1, HSM-backed Encrypt ≥ ${pct(IN_PROCESS_SHARE, 0)} of software with an in-process member: ${pct(encLocal.ratio)} → ${allClean ? mark(localMet) : 'no verdict'}.
- Target 2, ≥ ${fmt(AGENTS_RPS)} req/s with agent members (Encrypt): ${fmt(agentsRps)} req/s → ${allClean ? mark(agentsMet) : 'no verdict'}; GenerateDataKey: ${fmt(cmp['generate-data-key']['hsm-agents'].sub?.rps ?? NaN)} req/s.
${Object.keys(OPS).flatMap((op) => ['hsm-local', 'hsm-agents'].map((key) => `- ${ratioLine(op, key)}.`)).join('\n')}
- The CPU-cost ratio is software's server + agents + wrk CPU per request ÷ the HSM key's (median over repetitions): the
  req/s ratio if the cores were ours alone. "Server" CPU counts the Strongroom primary and workers (SoftHSM runs inside
  them for the in-process member) and the ${meta('AGENTS')} agents (SoftHSM runs inside each agent).
${ceilingBlock}
- **This machine has ${meta('NPROC')} cores, and everything shares them**: wrk, the server's primary and ${meta('WORKERS')} workers, the ${meta('AGENTS')}
  agents (idle in the other cases) and SoftHSM's crypto inside those processes. Deployed, each agent runs beside its HSM on
  another host and the HSM does the AES-GCM in hardware; here the agents' TLS, framing and software AES compete with the
  server and the load generator for the same two cores, so the agents figure is a floor, not what three real HSMs give.
- CPU time of each agent over the whole bench (a sign the cluster spreads the load over its members): ${meta('AGENT_CPU') || '?'}.
- Requests the server failed because of a key store, over the whole bench (every attempt, warm-ups included):
  ${meta('KEY_STORE_FAILURES').trim() || 'none'}.

### How it was run

- Command: \`bash bench/hsm.sh\` (${meta('REPEATS')} repetitions, ${meta('WARMUP')} s warm-up + ${meta('DURATION')} s measured per case, pool of ${meta('POOL')} pre-signed requests per case and run)
- Load generator, per case: \`${meta('WRK_CMD')}\` after a ${meta('WARMUP')} s warm-up with the same pool
- Server: \`SOFTHSM2_CONF=<in-process tokens> ${meta('SERVE_CMD')}\`
- Agents (${meta('AGENTS')}): \`SOFTHSM2_CONF=<its own> ${meta('AGENT_CMD')}\`; ${meta('SOFTHSM')}; ECDSA P-256 certificates from a bench CA
- Clusters (the ceremony, \`strongroom hsm cluster …\` on the data dir): \`${meta('LOCAL_CLUSTER')}\` = \`create\` with the in-process token
  (${meta('SESSIONS')} sessions${meta('INLINE') === '1' ? INLINE_NOTE : ', calls through the thread pool'}); \`${meta('AGENTS_CLUSTER')}\` = \`create\` with a bootstrap in-process token, \`add-member --agent\` ×${meta('AGENTS')} (cluster
  key from the bootstrap), \`remove-member\` of the bootstrap (\`cluster create\` has no \`--agent\`)
- Setup (bench/prepare-hsm.ts, AWS SDK): per cluster CreateCustomKeyStore (AWS_CLOUDHSM, KeyStorePassword = the tokens' user
  PIN, TrustAnchorCertificate = the bench CA), ConnectCustomKeyStore, CreateKey with Origin AWS_CLOUDHSM; CreateKey (software);
  an Encrypt/Decrypt round trip on each (HSM ciphertexts format 0x02, software 0x01): \`${meta('SETUP')}\`
- Requests: \`TrentService.Encrypt\` with 32 random bytes (different in each pooled request) and \`TrentService.GenerateDataKey\`
  with KeySpec AES_256, no encryption context, SigV4-signed by \`bench/prepare.ts\` as the administrator, right before each run
- Order of the cases per repetition (keys rotate, operations swap every other one): ${meta('ORDER')}
${runFactLines({ noise, idle })}

### Every run

${Object.keys(OPS)
  .map((op) => `${OPS[op]}:\n\n${perRunTable(s, Object.keys(KEYS).map((key) => `${op}.${key}`), `${op}.software`, clkTck)}`)
  .join('\n\n')}
${ceilingText ? `\n\`bench/pkcs11-micro.ts\` output:\n\n\`\`\`\n${ceilingText}\n\`\`\`\n` : ''}${samples ? `\nNon-2xx samples:\n\n\`\`\`\n${samples}\n\`\`\`\n` : ''}${srLog ? `\nStrongroom's log (warnings and errors, last lines):\n\n\`\`\`\n${srLog}\n\`\`\`\n` : ''}${agentLog ? `\nThe agents' stderr (last lines, ceremony lines left out):\n\n\`\`\`\n${agentLog}\n\`\`\`\n` : ''}${END}
`;

writeSection(outPath, START, END, section);
process.stdout.write(`${section.split('### How it was run')[0].replace(START, '').trim()}\n`);
