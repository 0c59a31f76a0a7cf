// The raw baseline of the Sign and Verify benches: how many signatures (or verifications) per
// second node:crypto itself does on this machine, in as many processes as Strongroom has workers,
// with no HTTP, SigV4, policy, storage or key unsealing around it.
//
//   node bench/raw-sign.mjs --algorithm rsa2048-pkcs1 --op sign [--duration 3] [--workers 2] [--clk-tck 100]
//
// Algorithms (the key types bench/prepare.ts creates in Strongroom):
//   rsa2048-pkcs1  RSA 2048, PKCS#1 v1.5 with SHA-256        (RSASSA_PKCS1_V1_5_SHA_256)
//   rsa2048-pss    RSA 2048, PSS, SHA-256, 32-byte salt      (RSASSA_PSS_SHA_256)
//   p256           ECDSA P-256 with SHA-256, DER signature    (ECDSA_SHA_256)
//   ed25519        Ed25519                                     (ED25519_SHA_512)
//   mldsa44        ML-DSA-44 via @noble/post-quantum, as Strongroom itself signs (ML_DSA_SHAKE_256)
//
// Each worker is a child process that makes its own key, signs a pool of 64 random 32-byte
// messages (so the loop does not sign one constant), then, on the primary's signal, loops the
// operation over those messages until a common deadline. Start is synchronised so the workers
// overlap fully. Prints one line:
//
//   RAW_RESULT ops=N ops_per_s=R cpu_us_per_op=C other_cpu_pct=O workers=W duration_ms=D
//
// ops_per_s is the sum of each worker's ops / its own elapsed time; cpu_us_per_op is the workers'
// user + system CPU time per operation (process.cpuUsage), which other load disturbs less.
// other_cpu_pct is, as bench/run.sh works it out for the wrk runs, the share of the machine's CPU
// during the timed loop that went to other processes (/proc/stat busy time minus the workers'
// own; softirq left out), so that bench/run.sh can repeat a raw run that was not alone.
import { fork } from 'node:child_process';
import { constants, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    algorithm: { type: 'string' },
    op: { type: 'string', default: 'sign' },
    duration: { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    child: { type: 'boolean', default: false },
    'clk-tck': { type: 'string', default: '100' },
  },
});

/** System-wide busy and total clock ticks (USER_HZ), busy excluding idle, iowait and softirq. */
function systemTicks() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  return { busy: total - fields[3] - fields[4] - fields[6], total };
}

const MESSAGES = 64;

/** Per algorithm: make a key, and sign / verify functions over 32-byte messages. */
const ALGORITHMS = {
  'rsa2048-pkcs1': () => nodeKey('rsa', { modulusLength: 2048 }, 'sha256', {}),
  'rsa2048-pss': () =>
    nodeKey('rsa', { modulusLength: 2048 }, 'sha256', { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }),
  p256: () => nodeKey('ec', { namedCurve: 'prime256v1' }, 'sha256', { dsaEncoding: 'der' }),
  ed25519: () => nodeKey('ed25519', {}, null, {}),
  mldsa44: async () => {
    const { ml_dsa44 } = await import('@noble/post-quantum/ml-dsa.js');
    const { secretKey, publicKey } = ml_dsa44.keygen(randomBytes(32));
    return {
      sign: (message) => ml_dsa44.sign(message, secretKey),
      verify: (message, signature) => ml_dsa44.verify(signature, message, publicKey),
    };
  },
};

function nodeKey(type, options, hash, padding) {
  const { privateKey, publicKey } = generateKeyPairSync(type, options);
  return {
    sign: (message) => sign(hash, message, { key: privateKey, ...padding }),
    verify: (message, signature) => verify(hash, message, { key: publicKey, ...padding }, signature),
  };
}

function fail(message) {
  process.stderr.write(`raw-sign: ${message}\n`);
  process.exit(2);
}

const algorithm = args.algorithm;
if (!(algorithm in ALGORITHMS)) fail(`--algorithm must be one of ${Object.keys(ALGORITHMS).join(', ')}`);
if (args.op !== 'sign' && args.op !== 'verify') fail('--op must be sign or verify');
const durationMs = Number(args.duration) * 1000;
const workerCount = Number(args.workers);
if (!(durationMs > 0) || !(workerCount >= 1)) fail('--duration and --workers must be positive');

if (args.child) {
  const scheme = await ALGORITHMS[algorithm]();
  const messages = Array.from({ length: MESSAGES }, () => randomBytes(32));
  const signatures = messages.map((message) => scheme.sign(message));
  if (!signatures.every((signature, i) => scheme.verify(messages[i], signature))) fail('self-check failed');
  const operation =
    args.op === 'sign' ? (i) => scheme.sign(messages[i]) : (i) => {
      if (!scheme.verify(messages[i], signatures[i])) throw new Error('verification failed');
    };
  process.send({ ready: true });
  process.once('message', ({ startAt, endAt }) => {
    while (Date.now() < startAt) {
      // Spin to the common start (a few ms at most): both workers begin together.
    }
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    let ops = 0;
    while (Date.now() < endAt) {
      operation(ops % MESSAGES);
      ops++;
    }
    const elapsedMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    process.send({ ops, elapsedMs, cpuUs: cpu.user + cpu.system }, () => process.exit(0));
  });
} else {
  const children = Array.from({ length: workerCount }, () =>
    fork(import.meta.filename, ['--child', '--algorithm', algorithm, '--op', args.op, '--duration', args.duration], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const killAll = () => children.forEach((child) => child.exitCode === null && child.kill('SIGKILL'));
  process.on('SIGINT', () => (killAll(), process.exit(130)));
  process.on('SIGTERM', () => (killAll(), process.exit(143)));
  const guard = setTimeout(() => (killAll(), fail('workers did not finish in time')), durationMs + 60_000);
  const next = (child) =>
    new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
    });
  try {
    await Promise.all(children.map(next));
    const startAt = Date.now() + 50;
    const results = children.map(next);
    for (const child of children) child.send({ startAt, endAt: startAt + durationMs });
    // Sampled across the timed loops only (key generation, self-check and start spin left out).
    let ticksBefore = systemTicks();
    setTimeout(() => {
      ticksBefore = systemTicks();
    }, startAt - Date.now());
    const done = await Promise.all(results);
    const ticksAfter = systemTicks();
    clearTimeout(guard);
    const workerTicks = (done.reduce((sum, r) => sum + r.cpuUs, 0) / 1e6) * Number(args['clk-tck']);
    const totalTicks = ticksAfter.total - ticksBefore.total;
    const otherPercent =
      totalTicks > 0 ? Math.max(0, (100 * (ticksAfter.busy - ticksBefore.busy - workerTicks)) / totalTicks) : 0;
    const ops = done.reduce((sum, r) => sum + r.ops, 0);
    const opsPerSecond = done.reduce((sum, r) => sum + (r.ops * 1000) / r.elapsedMs, 0);
    const cpuUsPerOp = done.reduce((sum, r) => sum + r.cpuUs, 0) / ops;
    process.stdout.write(
      `RAW_RESULT ops=${ops} ops_per_s=${opsPerSecond.toFixed(1)} cpu_us_per_op=${cpuUsPerOp.toFixed(1)} ` +
        `other_cpu_pct=${otherPercent.toFixed(0)} workers=${workerCount} duration_ms=${durationMs}\n`,
    );
  } catch (error) {
    killAll();
    fail(error.message);
  }
}
