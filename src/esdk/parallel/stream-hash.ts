import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { EsdkError } from '../errors.ts';
import { ABANDONED, CONTROL_BYTES, DIGEST_READY, ENDED, FAILED, PENDING, RUNNING, ringControl, type RingControl, type RingHashJob } from './ring-hash.ts';
import { copyInto } from './shared-copy.ts';
import { startModuleWorker, terminateUnreferenced } from './ts-worker.ts';

/**
 * A streamed signed message's hash, computed on a worker thread beside the stream once the message
 * is long enough to be worth it. SHA-384 runs at 0.45–0.5 GB/s on these machines, slower than
 * sealing or opening 64 KB frames, and a stream works on one thread: hashing was a third to a half
 * of a signed stream's time. The stream copies what it hashes into a ring of shared memory
 * (ring-hash.ts); a worker hashes behind it. Bytes are copied into the ring from the start, and the
 * worker is engaged only when the message passes ENGAGE_BYTES: a shorter message is hashed on the
 * calling thread from the ring at the end, as before, without touching a worker.
 *
 * Workers are started on first use, never referenced (a stream's own I/O keeps the process alive,
 * and its end waits for the digest synchronously), one per concurrent stream up to one fewer than
 * the cores; a stream that finds none free hashes on its own thread. The ring holds only what is
 * hashed, which is the message as it travels (ciphertext), never plaintext.
 */
/** Holds all of a message until the worker is engaged, and then lets the stream run ahead of it. */
const RING_BYTES = 8 * 1024 * 1024;
/**
 * Messages up to this long are hashed on the calling thread. Paired runs (2 cores, 0x0578 streaming
 * encrypt, worker vs none): 100 MB 1.2–1.36×, 16 MB 1.06–1.2×, 4 MB 1.0–1.04×; engaged from 256 KiB,
 * 1 MB lost (0.90–0.93×): for short signed messages the signing-key pool keeps the second core busy.
 */
export const ENGAGE_BYTES = 4 * 1024 * 1024;
/** The stream publishes its progress in steps of this much (and before it waits or ends). */
const PUBLISH_BYTES = 256 * 1024;
/** How long the stream waits, in one sleep, for the worker to free ring space or finish the digest. */
const WAIT_SLICE_MS = 1_000;
/** A worker that makes no progress for this long is given up on, and the stream fails. */
const STALL_MS = 60_000;
/** Idle workers and spare rings are let go after this long without a stream. */
const IDLE_MS = 5_000;

interface Ring {
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
let idleTimer: NodeJS.Timeout | undefined;

/** Streams that engaged a worker, and that hashed on their own thread for want of one (tests look). */
export const streamHashStats = { beside: 0, local: 0 };

const workerUrl = new URL(`./hash-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

function letGoWhenIdle(): void {
  if (idleTimer) return void idleTimer.refresh();
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    spareRings.length = 0;
    for (const worker of idleWorkers.splice(0)) terminateUnreferenced(worker);
  }, IDLE_MS);
  idleTimer.unref();
}

function takeWorker(): Worker | undefined {
  if (broken) return undefined;
  const idle = idleWorkers.pop();
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

function giveBackWorker(worker: Worker): void {
  busyWorkers--;
  if (!broken) idleWorkers.push(worker);
  letGoWhenIdle();
}

/** A worker that failed or stalled: stopped, and not counted or reused. */
function dropWorker(worker: Worker): void {
  busyWorkers--;
  terminateUnreferenced(worker);
}

function takeRing(): Ring {
  const spare = spareRings.pop();
  if (spare) return spare;
  const ring = new SharedArrayBuffer(RING_BYTES);
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  return { ring, control, view: Buffer.from(ring), shared: ringControl(control) };
}

function giveBackRing(ring: Ring): void {
  ring.shared.counters.fill(0n);
  ring.shared.words.fill(0);
  if (spareRings.length < Math.max(1, maxWorkers)) spareRings.push(ring);
  letGoWhenIdle();
}

/** A message's running hash: `update` in order, then `digest` once; `abandon` if the message is dropped. */
export class StreamHasher {
  readonly #algorithm: 'sha256' | 'sha384';
  /** The hash on this thread, for a short message or when no worker was free. */
  readonly #sink: Hash;
  /** Whether the message is going to #sink as it comes. */
  #local = false;
  #ring: Ring | undefined;
  #worker: Worker | undefined;
  #written = 0;
  #published = 0;

  constructor(algorithm: 'sha256' | 'sha384') {
    this.#algorithm = algorithm;
    this.#sink = createHash(algorithm);
    if (broken) this.#local = true;
    else this.#ring = takeRing();
  }

  update(bytes: Uint8Array): void {
    if (this.#local) return void this.#sink.update(bytes);
    if (!this.#worker && this.#written + bytes.length > ENGAGE_BYTES) {
      this.#engage();
      if (this.#local) return void this.#sink.update(bytes);
    }
    const ring = this.#ring as Ring;
    const size = ring.view.length;
    let position = 0;
    while (position < bytes.length) {
      const room = this.#worker ? this.#room() : size - this.#written;
      const at = this.#written % size;
      const n = Math.min(room, bytes.length - position, size - at);
      copyInto(ring.view, at, bytes.subarray(position, position + n));
      position += n;
      this.#written += n;
      if (this.#worker && this.#written - this.#published >= PUBLISH_BYTES) this.#publish();
    }
  }

  digest(): Buffer {
    return this.#besideDigest() ?? this.#sink.digest();
  }

  /** The worker's digest; undefined when the whole message went to #sink instead. */
  #besideDigest(): Buffer | undefined {
    if (this.#local) return undefined;
    const ring = this.#ring as Ring;
    this.#ring = undefined;
    if (!this.#worker) {
      // Never engaged: the whole message is in the ring, from its start.
      this.#sink.update(ring.view.subarray(0, this.#written));
      this.#local = true;
      giveBackRing(ring);
      return undefined;
    }
    const worker = this.#worker;
    this.#worker = undefined;
    const { words, digest } = ring.shared;
    this.#publish(ring);
    Atomics.store(words, 1, ENDED);
    this.#signal(ring);
    try {
      this.#await(ring, () => Atomics.load(words, 2) !== PENDING, 2, PENDING);
      if (Atomics.load(words, 2) !== DIGEST_READY) throw new EsdkError('KeyringFailure', 'the hash worker failed');
    } catch (error) {
      dropWorker(worker);
      throw error;
    }
    const result = Buffer.from(digest.subarray(0, this.#algorithm === 'sha384' ? 48 : 32));
    giveBackRing(ring);
    giveBackWorker(worker);
    return result;
  }

  /** The message will not be finished: the worker stops, and its ring is not reused (it may still be reading it). */
  abandon(): void {
    const ring = this.#ring;
    this.#ring = undefined;
    if (!ring) return;
    if (!this.#worker) return giveBackRing(ring);
    Atomics.store(ring.shared.words, 1, ABANDONED);
    this.#signal(ring);
    giveBackWorker(this.#worker);
    this.#worker = undefined;
  }

  #engage(): void {
    const worker = takeWorker();
    const ring = this.#ring as Ring;
    if (!worker) {
      streamHashStats.local++;
      this.#sink.update(ring.view.subarray(0, this.#written));
      this.#local = true;
      this.#ring = undefined;
      giveBackRing(ring);
      return;
    }
    streamHashStats.beside++;
    this.#worker = worker;
    Atomics.store(ring.shared.words, 1, RUNNING);
    Atomics.store(ring.shared.words, 2, PENDING);
    const job: RingHashJob = { algorithm: this.#algorithm, ring: ring.ring, control: ring.control };
    worker.postMessage(job);
    this.#publish();
  }

  #publish(ring = this.#ring as Ring): void {
    Atomics.store(ring.shared.counters, 0, BigInt(this.#written));
    this.#published = this.#written;
    this.#signal(ring);
  }

  #signal(ring: Ring): void {
    Atomics.add(ring.shared.words, 0, 1);
    Atomics.notify(ring.shared.words, 0);
  }

  /** Free space in the ring, waiting for the worker when there is none. */
  #room(): number {
    const ring = this.#ring as Ring;
    const { counters, words } = ring.shared;
    const size = ring.view.length;
    let read = Number(Atomics.load(counters, 1));
    if (this.#written - read < size) return size - (this.#written - read);
    this.#publish();
    try {
      this.#await(ring, () => {
        read = Number(Atomics.load(counters, 1));
        return this.#written - read < size || Atomics.load(words, 2) === FAILED;
      }, 1, undefined);
      if (Atomics.load(words, 2) === FAILED) throw new EsdkError('KeyringFailure', 'the hash worker failed');
    } catch (error) {
      // The message cannot be hashed any more (what the worker had not read is overwritten or lost).
      dropWorker(this.#worker as Worker);
      this.#worker = undefined;
      this.#ring = undefined;
      throw error;
    }
    return size - (this.#written - read);
  }

  /**
   * Blocks this thread until `ready()`, sleeping on the word the worker notifies (`counter` 1: its
   * read position; else word 2, its answer). Bounded: a worker that moves nothing for STALL_MS fails
   * the stream rather than hanging it.
   */
  #await(ring: Ring, ready: () => boolean, index: 1 | 2, pending: number | undefined): void {
    const { counters, words } = ring.shared;
    let lastRead = Atomics.load(counters, 1);
    let stalledSince = Date.now();
    while (!ready()) {
      if (index === 1) Atomics.wait(counters, 1, lastRead, WAIT_SLICE_MS);
      else Atomics.wait(words, 2, pending as number, WAIT_SLICE_MS);
      const read = Atomics.load(counters, 1);
      if (read !== lastRead) {
        lastRead = read;
        stalledSince = Date.now();
      } else if (Date.now() - stalledSince > STALL_MS && !ready()) {
        throw new EsdkError('KeyringFailure', 'the hash worker stopped making progress');
      }
    }
  }
}
