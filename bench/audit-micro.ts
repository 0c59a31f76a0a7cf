/**
 * Micro-benchmark of the audit path's pieces, one process, no HTTP: what each costs per request
 * (CPU on the request's thread) and what a durable commit takes (the wait a response sits out).
 * Not part of bench/audit.sh; for deciding what to optimise when its ratio is short.
 *
 *   node --import tsx bench/audit-micro.ts [--iterations 50000] [--commits 300]
 *
 * Uses the production functions on a throwaway data dir under $TMPDIR (the bench's data dirs live
 * there too, so the fsync is the same file system's):
 *
 * - buildRequestEvent for an Encrypt 32 B event shaped like the bench's (IAM user, one key,
 *   KeyId / Plaintext in, CiphertextBlob / KeyId / EncryptionAlgorithm out), whole;
 * - JSON.stringify of that event object alone (the text buildRequestEvent makes);
 * - isAuditEntry (AuditLog.record's check);
 * - the structured clone of one commit message (what WorkerAuditWriter.commit's postMessage
 *   serialises on the request's thread and the writer thread deserialises), per batch and per event;
 * - worker.postMessage of that message to an idle worker thread, as called (serialise + enqueue + wake);
 * - one append transaction (SqliteAuditStore.append with the digest sealer: commit, then fdatasync of the WAL, so
 *   including the WAL fsync) per batch size, on the calling thread, alone (no second writer): wall
 *   time per commit and the process's CPU time (user, system) per event; and a bare fdatasync of a
 *   file in the same directory, the floor under it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { adminPrincipalArn, bootstrapAdministratorPrincipal, openInstance } from '../src/cli/instance.ts';
import { buildRequestEvent, type AuditRequest } from '../src/service/audit-events.ts';
import { digestSealer, loadOrCreateAuditSigningKey } from '../src/service/audit/index.ts';
import { isAuditEntry } from '../src/storage/audit-types.ts';
import { SqliteAuditStore } from '../src/storage/sqlite/audit-store.ts';

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '50000' }, commits: { type: 'string', default: '300' } } });
const iterations = Number(values.iterations);
const commits = Number(values.commits);

const dir = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'strongroom-audit-micro-'));
const out: string[] = [];
const line = (name: string, value: string) => {
  out.push(`${name.padEnd(62)} ${value}`);
  process.stdout.write(`${name.padEnd(62)} ${value}\n`);
};
const us = (ms: number, n: number) => `${((ms * 1000) / n).toFixed(2)} µs`;

async function time(n: number, body: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < Math.min(n, 5000); i++) await body(i); // warm-up (JIT)
  const start = performance.now();
  for (let i = 0; i < n; i++) await body(i);
  return performance.now() - start;
}
function timeSync(n: number, body: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(n, 5000); i++) body(i);
  const start = performance.now();
  for (let i = 0; i < n; i++) body(i);
  return performance.now() - start;
}

try {
  const instance = await openInstance({ dataDir: join(dir, 'data'), region: 'us-east-1', auditMode: 'inline' });
  await bootstrapAdministratorPrincipal(instance);
  const context = instance.context;
  const keyId = randomUUID();
  const keyArn = `arn:aws:kms:us-east-1:${context.accountId}:key/${keyId}`;
  const request = (): AuditRequest => ({
    eventSource: 'kms.amazonaws.com',
    eventName: 'Encrypt',
    time: new Date(),
    requestId: randomUUID(),
    sourceIp: '127.0.0.1',
    caller: {
      principalArn: adminPrincipalArn(context.accountId),
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      sourceIp: '127.0.0.1',
      secureTransport: false,
      decisions: [{ action: 'kms:Encrypt', resource: keyArn, allowed: true }],
    },
    input: { KeyId: keyId, Plaintext: randomBytes(32) },
    output: { CiphertextBlob: randomBytes(182), KeyId: keyArn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' },
  });
  const options = { encryptionContextValues: false };
  const sample = await buildRequestEvent(context, request(), options);
  line('event text (bytes)', String(Buffer.byteLength(sample.text)));

  const requests = Array.from({ length: 1000 }, request);
  let ms = await time(iterations, (i) => buildRequestEvent(context, requests[i % 1000], options));
  line('buildRequestEvent (whole, awaited)', us(ms, iterations));
  const object = JSON.parse(sample.text) as unknown;
  ms = timeSync(iterations, () => JSON.stringify(object));
  line('  of which JSON.stringify of the event object', us(ms, iterations));
  ms = timeSync(iterations, () => randomUUID());
  line('  of which randomUUID (eventID)', us(ms, iterations));
  ms = timeSync(iterations, () => isAuditEntry(sample));
  line('isAuditEntry (AuditLog.record)', us(ms, iterations));

  const entries = await Promise.all(requests.map((r) => buildRequestEvent(context, r, options)));
  for (const batch of [1, 8, 32]) {
    const message = { type: 'commit', id: 1, entries: entries.slice(0, batch), probe: false };
    const n = Math.max(1000, Math.floor(iterations / batch));
    ms = timeSync(n, () => structuredClone(message));
    line(`structured clone of a commit message, ${batch} event(s)`, `${us(ms, n)} (${us(ms, n * batch)}/event)`);
  }

  // postMessage to an idle worker that just drops what it gets, as the call itself costs.
  const worker = new Worker('require("node:worker_threads").parentPort.on("message", () => {});', { eval: true });
  await new Promise((resolve) => worker.once('online', resolve));
  for (const batch of [1, 8]) {
    const message = { type: 'commit', id: 1, entries: entries.slice(0, batch), probe: false };
    const n = 5000;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      worker.postMessage(message);
      total += performance.now() - start;
      // Let the worker take it: one message per turn, as AuditLog sends one batch at a time.
      if (i % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    line(`worker.postMessage of a commit message, ${batch} event(s)`, us(total, n));
  }
  await worker.terminate();

  // Commits: the same store and sealer as the writer thread, on this thread.
  const storePath = join(dir, 'commit.db');
  const store = new SqliteAuditStore(storePath, {});
  const signingKey = await loadOrCreateAuditSigningKey(store, context.sealer, join(dir, 'commit-public-key.pem'));
  const seal = digestSealer(signingKey);
  for (const batch of [1, 8, 32]) {
    const n = Math.max(50, Math.floor(commits / Math.sqrt(batch)));
    const times: number[] = [];
    for (let i = 0; i < 10; i++) await store.append(entries.slice(0, batch), seal, { probe: false });
    const cpu = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      await store.append(entries.slice(0, batch), seal, { probe: false });
      times.push(performance.now() - start);
    }
    const used = process.cpuUsage(cpu);
    times.sort((a, b) => a - b);
    const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
    line(
      `append transaction + fsync, ${batch} event(s) (${n} commits)`,
      `median ${p(0.5).toFixed(3)} ms, p90 ${p(0.9).toFixed(3)} ms, p99 ${p(0.99).toFixed(3)} ms; ` +
        `CPU per event: user ${(used.user / (n * batch)).toFixed(1)} µs, sys ${(used.system / (n * batch)).toFixed(1)} µs`,
    );
  }
  await store.close();
  const fd = openSync(join(dir, 'sync-test'), 'w');
  const block = Buffer.alloc(4096, 1);
  const syncTimes: number[] = [];
  for (let i = 0; i < commits + 10; i++) {
    writeSync(fd, block);
    const start = performance.now();
    fdatasyncSync(fd);
    if (i >= 10) syncTimes.push(performance.now() - start);
  }
  closeSync(fd);
  syncTimes.sort((a, b) => a - b);
  line('bare write 4 KiB + fdatasync, same directory', `median ${syncTimes[Math.floor(syncTimes.length / 2)].toFixed(3)} ms`);
  await instance.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
