import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { EsdkError, type EsdkErrorCode } from '../errors.ts';
import type { FrameJob, FrameJobResult } from './frame-worker.ts';
import { startModuleWorker, terminateUnreferenced } from './ts-worker.ts';

/**
 * One helper thread for large buffered messages, so a 100 MB encrypt or decrypt uses both cores:
 * the calling thread works on one run of frames (or the signature) while the helper does another.
 * Started on first use; referenced only while a job is outstanding, so it never keeps a process
 * alive. If it cannot start (no worker support, a loader that cannot load it) callers stay
 * single-threaded.
 */
export const PARALLEL_THRESHOLD = 4 * 1024 * 1024;
/**
 * Smaller framed messages go to two threads when the helper's share outweighs handing it over
 * (posting, the shared output buffer's pages, copying the helper's input). Each frame is its own
 * AES-GCM operation whose fixed cost is most of a 4 KB frame's, so the frame count matters more
 * than the bytes. Measured side by side in one process (2 cores, AMD EPYC, paired medians of 7
 * one-second runs, two threads vs one): 4 KB frames, 0x0478: 1 MiB 1.28× encrypt, 1.42× decrypt;
 * 512 KiB 1.41× and 1.35×; 256 KiB 0.97× and 0.89×. 64 KB frames at 1–2 MiB: 0.81–0.99×. A signed
 * decrypt hands the helper every frame while this thread hashes and verifies, so it gains sooner:
 * 1.68× at 1 MiB and 1.55× at 512 KiB in 4 KB frames, 1.26× at 256 KiB, 1.29× at 1–2 MiB in 64 KB
 * frames. A signed encrypt neither gains nor loses below 4 MiB (1.01–1.11×): its signature's hash
 * stays on this thread, and the signing-key pool already keeps the second core busy.
 */
const MIN_FRAMES = 128;
const MIN_BYTES = 512 * 1024;
const SIGNED_DECRYPT_MIN_FRAMES = 64;
const SIGNED_DECRYPT_MIN_BYTES = 256 * 1024;
const SIGNED_DECRYPT_ANY_FRAMES_BYTES = 1024 * 1024;

/**
 * Whether a framed body of `bytes` in `frameLength`-byte frames is worth the helper thread;
 * `signedDecrypt`: the helper would open every frame while this thread checks the signature.
 */
export function worthHelper(bytes: number, frameLength: number, signedDecrypt = false): boolean {
  const frames = bytes / frameLength;
  const worth = signedDecrypt
    ? bytes >= SIGNED_DECRYPT_ANY_FRAMES_BYTES || (frames >= SIGNED_DECRYPT_MIN_FRAMES && bytes >= SIGNED_DECRYPT_MIN_BYTES)
    : bytes >= PARALLEL_THRESHOLD || (frames >= MIN_FRAMES && bytes >= MIN_BYTES);
  return worth && parallelAvailable();
}

let worker: Worker | undefined;
let broken = availableParallelism() < 2;
let pending: { resolve: () => void; reject: (error: Error) => void } | undefined;
let queue: Promise<void> = Promise.resolve();
/** The helper is stopped after this long without a job. */
const IDLE_MS = 5000;
let idle: NodeJS.Timeout | undefined;

function stopWhenIdle(): void {
  if (idle) return void idle.refresh();
  idle = setTimeout(() => {
    idle = undefined;
    if (pending || !worker) return;
    terminateUnreferenced(worker);
    worker = undefined;
  }, IDLE_MS);
  idle.unref();
}

const workerUrl = new URL(`./frame-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

const startWorker = (): Worker => startModuleWorker(workerUrl);

function start(): Worker | undefined {
  if (worker || broken) return worker;
  try {
    const created = startWorker();
    created.on('message', (result: FrameJobResult) => {
      const waiter = pending;
      pending = undefined;
      created.unref();
      stopWhenIdle();
      if (result.ok) waiter?.resolve();
      else waiter?.reject(new EsdkError(result.code as EsdkErrorCode, result.message));
    });
    created.on('error', () => {
      broken = true;
      worker = undefined;
      pending?.reject(new EsdkError('KeyringFailure', 'the frame worker failed'));
      pending = undefined;
    });
    created.unref();
    worker = created;
  } catch {
    broken = true;
  }
  return worker;
}

export function parallelAvailable(): boolean {
  return start() !== undefined;
}

/** Jobs posted to the helper thread so far (a test checks when they are posted). */
export const helperStats = { posted: 0 };

/** Jobs handed to runOnHelper and not yet settled. */
let outstanding = 0;

/**
 * Runs a job on the helper thread; jobs from concurrent calls queue behind each other. With none
 * outstanding the job is posted before this returns: the caller then works on its own share while
 * the helper works on this one. (Posting from a promise callback, as queued jobs are, would wait
 * until the caller next yields, i.e. until its share was done: the two threads took turns.)
 */
export function runOnHelper(job: FrameJob): Promise<void> {
  const run = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const helper = start();
      if (!helper) return reject(new EsdkError('KeyringFailure', 'no frame worker'));
      pending = { resolve, reject };
      helper.ref();
      helper.postMessage(job);
      helperStats.posted++;
    });
  const result = outstanding === 0 ? run() : queue.then(run, run);
  outstanding++;
  queue = result.catch(() => undefined).finally(() => outstanding--);
  return result;
}

/** A SharedArrayBuffer view of `bytes`: the same memory when it already is one, else a copy. */
export function shared(bytes: Uint8Array, start: number, end: number): { buffer: SharedArrayBuffer; offset: number } {
  if (bytes.buffer instanceof SharedArrayBuffer) return { buffer: bytes.buffer, offset: bytes.byteOffset + start };
  const buffer = new SharedArrayBuffer(end - start);
  new Uint8Array(buffer).set(bytes.subarray(start, end));
  return { buffer, offset: 0 };
}
