import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { CONTROL_BYTES, ringControl, type RingControl } from './ring-hash.ts';
import { startModuleWorker, terminateUnreferenced } from './ts-worker.ts';

/**
 * The hash workers, rings and start buffers that stream-hash.ts's messages take and give back: at
 * most one worker, and so one ring, per core less one, kept while streams come and let go after
 * IDLE_MS without one. Workers are never referenced: a stream's own I/O keeps the process alive.
 */

/**
 * Kept in a reused buffer of ordinary memory until the stream reserves a worker and a ring (a short
 * message never does). A copy per piece instead cost a 1 MiB message ~1 ms more than hashing it
 * as it came (fresh memory for every copy), against ~0.05 ms for a copy into memory already used.
 */
export const RESERVE_BYTES = 2 * 1024 * 1024;
/** Holds all of a message until the worker is engaged, and then lets the stream run ahead of it. */
const RING_BYTES = 8 * 1024 * 1024;
/** Idle workers and spare rings are let go after this long without a stream. */
const IDLE_MS = 5_000;

export interface Ring {
  readonly ring: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
  readonly view: Buffer;
  readonly shared: RingControl;
}

const maxWorkers = Math.max(0, availableParallelism() - 1);
const idleWorkers: Worker[] = [];
let busyWorkers = 0;
let broken = maxWorkers === 0;
const spareRings: Ring[] = [];
const spareStarts: Buffer[] = [];
let idleTimer: NodeJS.Timeout | undefined;

export const HASH_WORKER_MODULE = new URL(`./hash-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
let workerUrl = HASH_WORKER_MODULE;

/** Tests: the module new hash workers run (one that never starts on a job shows the fallback); idle workers are let go. */
export function setHashWorkerModule(url: URL): void {
  workerUrl = url;
  for (const worker of idleWorkers.splice(0)) terminateUnreferenced(worker);
}

function letGoWhenIdle(): void {
  if (idleTimer) return void idleTimer.refresh();
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    spareRings.length = 0;
    spareStarts.length = 0;
    for (const worker of idleWorkers.splice(0)) terminateUnreferenced(worker);
  }, IDLE_MS);
  idleTimer.unref();
}

export function takeWorker(): Worker | undefined {
  if (broken) return undefined;
  // The longest idle first: a worker given back by an abandoned stream may still be finishing.
  const idle = idleWorkers.shift();
  if (idle) {
    busyWorkers++;
    return idle;
  }
  if (busyWorkers >= maxWorkers) return undefined;
  try {
    const worker = startModuleWorker(workerUrl);
    worker.unref();
    worker.on('error', () => {
      broken = true;
      const at = idleWorkers.indexOf(worker);
      if (at >= 0) idleWorkers.splice(at, 1);
    });
    busyWorkers++;
    return worker;
  } catch {
    broken = true;
    return undefined;
  }
}

export function giveBackWorker(worker: Worker): void {
  busyWorkers--;
  if (broken) terminateUnreferenced(worker);
  else idleWorkers.push(worker);
  letGoWhenIdle();
}

/** A worker that failed or stalled: stopped, and not counted or reused. */
export function dropWorker(worker: Worker): void {
  busyWorkers--;
  terminateUnreferenced(worker);
}

export function takeRing(): Ring {
  const spare = spareRings.pop();
  if (spare) return spare;
  const ring = new SharedArrayBuffer(RING_BYTES);
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  return { ring, control, view: Buffer.from(ring), shared: ringControl(control) };
}

/** Only a ring no worker is reading: one never posted, or one whose digest is in. */
export function giveBackRing(ring: Ring): void {
  ring.shared.counters.fill(0n);
  ring.shared.words.fill(0);
  if (spareRings.length < Math.max(1, maxWorkers)) spareRings.push(ring);
  letGoWhenIdle();
}

/**
 * A buffer for at least `length` of a message's first bytes: a kept full-size one, else one just
 * big enough (from 64 KiB, doubling), so that many short streams at once do not each hold 2 MiB.
 */
export function takeStart(length: number): Buffer {
  const spare = spareStarts.pop();
  if (spare) return spare;
  let size = 64 * 1024;
  while (size < length) size *= 2;
  return Buffer.allocUnsafeSlow(Math.min(size, RESERVE_BYTES));
}

export function giveBackStart(start: Buffer): void {
  if (start.length === RESERVE_BYTES && spareStarts.length < maxWorkers + 1) spareStarts.push(start);
  letGoWhenIdle();
}

/** Whether a worker can be had at all (not on one core, nor after one failed to start). */
export function hashWorkersAvailable(): boolean {
  return !broken;
}
