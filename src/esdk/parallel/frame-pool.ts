import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { EsdkError, type EsdkErrorCode } from '../errors.ts';
import { ZERO_PATTERN, type FrameJobResult, type HelperJob } from './frame-worker.ts';
import { startModuleWorker, terminateUnreferenced } from './ts-worker.ts';
import { copyInto } from './shared-copy.ts';

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

/**
 * A signed message from this size on is hashed on the helper thread while the calling thread seals
 * it (encrypt.ts, writeHashedBeside). Paired runs in one process (2 cores, Intel Xeon, SHA-384 at
 * 0.4–0.6 GB/s; medians of 5 one-second pairs, hashed beside vs the frames split and hashed after):
 * 100 MB 1.44× (64 KB frames) and 1.14× (4 KB); 2–4 MiB 1.0–1.13×; 1 MiB and 256 KiB 0.82–0.94×,
 * where the shared output buffer's fresh pages cost the sealing thread more than the hash it hands off.
 */
const HASH_HELPER_MIN_BYTES = PARALLEL_THRESHOLD;

export function worthHashHelper(bytes: number): boolean {
  return bytes >= HASH_HELPER_MIN_BYTES && parallelAvailable();
}

let worker: Worker | undefined;
let broken = availableParallelism() < 2;
let pending: { resolve: (digest: Buffer | undefined) => void; reject: (error: Error) => void } | undefined;
let queue: Promise<void> = Promise.resolve();
/** The helper is stopped after this long without a job. */
const IDLE_MS = 5000;
let idle: NodeJS.Timeout | undefined;

function stopWhenIdle(): void {
  if (idle) return void idle.refresh();
  idle = setTimeout(() => {
    idle = undefined;
    spareInput = undefined;
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
      if (result.ok) waiter?.resolve(result.digest ? Buffer.from(result.digest) : undefined);
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

/** Jobs posted to the helper thread so far, and how many of them hashed (tests check when and which). */
export const helperStats = { posted: 0, hashes: 0 };

/** Jobs handed to runOnHelper and not yet settled. */
let outstanding = 0;

/**
 * Runs a job on the helper thread (resolving with a hash job's digest); jobs from concurrent calls
 * queue behind each other. With none outstanding the job is posted before this returns: the caller
 * then works on its own share while the helper works on this one. (Posting from a promise
 * callback, as queued jobs are, would wait until the caller next yields, i.e. until its share was
 * done: the two threads took turns.)
 */
export function runOnHelper(job: HelperJob): Promise<Buffer | undefined> {
  const run = (): Promise<Buffer | undefined> =>
    new Promise<Buffer | undefined>((resolve, reject) => {
      const helper = start();
      if (!helper) return reject(new EsdkError('KeyringFailure', 'no frame worker'));
      pending = { resolve, reject };
      helper.ref();
      helper.postMessage(job);
      helperStats.posted++;
      if (job.op === 'hash') helperStats.hashes++;
    });
  const result = outstanding === 0 ? run() : queue.then(run, run);
  outstanding++;
  queue = result.then(() => undefined, () => undefined).finally(() => outstanding--);
  return result;
}

/**
 * The helper's input copy is reused: on these machines fresh memory costs far more the first time
 * it is touched (page faults) than a copy into memory already touched (100 MB: 100–180 ms vs
 * 25–30 ms), and that first touch was most of what kept a 100 MB message from gaining from the
 * second core. One spare is kept, up to MAX_SPARE_INPUT bytes (a signed 100 MB decrypt copies its
 * whole body), and let go with the idle helper. Plaintext does not stay in it: the helper zeroes
 * each frame's input once it has sealed it (frame-worker.ts), and after a failed job the calling
 * thread zeroes the whole copy (discard) and does not reuse it.
 */
const MAX_SPARE_INPUT = 128 * 1024 * 1024;
let spareInput: SharedArrayBuffer | undefined;

/** The spare input copy, if one is kept (tests check that it holds no plaintext). */
export function spareInputCopy(): SharedArrayBuffer | undefined {
  return spareInput;
}

export interface SharedInput {
  readonly buffer: SharedArrayBuffer;
  readonly offset: number;
  /** Hands a reused copy back once the helper is done with it (nothing for a view). */
  release(): void;
  /** After a failed job (the helper finished or died): zeroes a copy, which is then not reused. */
  discard(): void;
}

/** A SharedArrayBuffer view of `bytes`: the same memory when it already is one, else a copy. */
export function shared(bytes: Uint8Array, start: number, end: number): SharedInput {
  if (bytes.buffer instanceof SharedArrayBuffer) return { buffer: bytes.buffer, offset: bytes.byteOffset + start, release: () => {}, discard: () => {} };
  const length = end - start;
  let buffer: SharedArrayBuffer;
  if (spareInput && spareInput.byteLength >= length) {
    buffer = spareInput;
    spareInput = undefined;
  } else {
    buffer = new SharedArrayBuffer(length);
  }
  copyInto(Buffer.from(buffer, 0, length), 0, bytes.subarray(start, end));
  return {
    buffer,
    offset: 0,
    release: () => {
      if (buffer.byteLength <= MAX_SPARE_INPUT && (!spareInput || spareInput.byteLength < buffer.byteLength)) spareInput = buffer;
    },
    discard: () => void Buffer.from(buffer, 0, length).fill(ZERO_PATTERN),
  };
}
