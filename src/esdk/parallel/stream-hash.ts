import { createHash, type Hash } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { EsdkError } from '../errors.ts';
import { dropWorker, giveBackRing, giveBackStart, giveBackWorker, hashWorkersAvailable, RESERVE_BYTES, takeRing, takeStart, takeWorker, type Ring } from './hash-pool.ts';
import { abandonJob, DIGEST_READY, ENDED, FAILED, PENDING, signalWorker, type RingHashJob } from './ring-hash.ts';
import { copyInto } from './shared-copy.ts';

export { HASH_WORKER_MODULE, setHashWorkerModule } from './hash-pool.ts';

/**
 * A streamed signed message's hash, computed on a worker thread beside the stream once the message
 * is long enough to be worth it. SHA-384 runs at 0.45–0.5 GB/s on these machines, slower than
 * sealing or opening 64 KB frames, and a stream works on one thread: hashing was a third to a half
 * of a signed stream's time. The stream copies what it hashes into a ring of shared memory
 * (ring-hash.ts); a worker hashes behind it.
 *
 * A message's first RESERVE_BYTES are kept in a reused buffer; past them the stream reserves a
 * worker and a ring (hash-pool.ts) and moves them in; past ENGAGE_BYTES the worker starts hashing.
 * A message that ends sooner is hashed on the calling thread at its end, without touching a worker.
 * So only a stream that holds a worker holds a ring, and there are at most as many of either as
 * cores less one.
 *
 * Workers are started on first use, never referenced (a stream's own I/O keeps the process alive,
 * and its end waits for the digest synchronously). A stream that finds no worker free, or whose
 * worker has not started on the job when the stream would have to wait for it (a worker still
 * starting, or one that never will), hashes on its own thread: the ring still holds the whole
 * message then. The ring holds only what is hashed, which is the message as it travels
 * (ciphertext), never plaintext.
 */
/**
 * Messages up to this long are hashed on the calling thread (from RESERVE_BYTES on, a worker is
 * held for them all the same, so that it has started by the time a longer message needs it). Paired runs (2 cores, 0x0578 streaming
 * encrypt, worker vs none): 100 MB 1.2–1.36×, 16 MB 1.06–1.2×, 4 MB 1.0–1.04×; engaged from 256 KiB,
 * 1 MB lost (0.90–0.93×): for short signed messages the signing-key pool keeps the second core busy.
 */
export const ENGAGE_BYTES = 4 * 1024 * 1024;
/** The stream publishes its progress in steps of this much (and before it waits or ends). */
const PUBLISH_BYTES = 256 * 1024;
/**
 * How long the stream waits for its worker to start on the job before it hashes the ring itself: a
 * new worker loads its module first (through tsx, in this repository's tests, a few hundred ms).
 */
const ACCEPT_MS = 1_000;
/** How long the stream waits, in one sleep, for the worker to free ring space or finish the digest. */
const WAIT_SLICE_MS = 1_000;
/** A worker that makes no progress for this long is given up on, and the stream fails. */
const STALL_MS = 60_000;

/**
 * Messages whose hash a worker computed; that went past RESERVE_BYTES and found no worker free; and
 * whose worker had not started on the job when the stream needed it (tests look).
 */
export const streamHashStats = { beside: 0, local: 0, unstarted: 0 };

/** A worker and ring a message holds, for the finalizer below. */
interface Reservation {
  readonly worker: Worker;
  readonly ring: Ring;
  /** Whether the job was posted: the worker may then still read the ring. */
  posted: boolean;
}

/**
 * A message dropped without digest() or abandon() (a stream neither ended nor destroyed, as
 * `.pipe()` leaves a source whose destination failed) gives its worker back when it is collected,
 * so that it does not keep later streams on their own thread for good.
 */
const dropped = new FinalizationRegistry<Reservation>((reservation) => {
  if (reservation.posted) abandonJob(reservation.ring.shared);
  else giveBackRing(reservation.ring);
  giveBackWorker(reservation.worker);
});

type Stage =
  /** The first bytes, kept in #start. */
  | 'prefix'
  /** A worker and a ring reserved, the bytes in the ring; the job not posted yet. */
  | 'reserved'
  /** The worker hashes behind the stream. */
  | 'beside'
  /** Everything goes to #sink on this thread. */
  | 'local'
  /** Digest taken or message abandoned. */
  | 'closed';

/** A message's running hash: `update` in order, then `digest` once; `abandon` if the message is dropped. */
export class StreamHasher {
  readonly #algorithm: 'sha256' | 'sha384';
  /** The hash on this thread, for a short message or when no worker could take it. */
  readonly #sink: Hash;
  #stage: Stage;
  /** The message's first bytes (up to RESERVE_BYTES), taken on the first update. */
  #start: Buffer | undefined;
  #ring: Ring | undefined;
  #worker: Worker | undefined;
  /** Registered with the finalizer while this message holds #worker and #ring. */
  #reservation: Reservation | undefined;
  #written = 0;
  #published = 0;

  constructor(algorithm: 'sha256' | 'sha384') {
    this.#algorithm = algorithm;
    this.#sink = createHash(algorithm);
    this.#stage = hashWorkersAvailable() ? 'prefix' : 'local';
  }

  /** Feeds the message's next bytes (after abandon() or digest(), ignored: the stream is gone). */
  update(bytes: Uint8Array): void {
    if (this.#stage === 'closed') return;
    if (this.#stage === 'prefix') {
      if (this.#written + bytes.length <= RESERVE_BYTES) {
        this.#keep(bytes);
        return;
      }
      this.#reserve();
    }
    if (this.#local) return void this.#sink.update(bytes);
    if (this.#stage === 'reserved' && this.#written + bytes.length > ENGAGE_BYTES) this.#post();
    const ring = this.#ring as Ring;
    const size = ring.view.length;
    let position = 0;
    while (position < bytes.length) {
      const room = this.#stage === 'beside' ? this.#room() : size - this.#written;
      if (this.#local) return void this.#sink.update(bytes.subarray(position));
      const at = this.#written % size;
      const n = Math.min(room, bytes.length - position, size - at);
      copyInto(ring.view, at, bytes.subarray(position, position + n));
      position += n;
      this.#written += n;
      if (this.#stage === 'beside' && this.#written - this.#published >= PUBLISH_BYTES) this.#publish(ring);
    }
  }

  digest(): Buffer {
    switch (this.#stage) {
      case 'closed':
        throw new EsdkError('KeyringFailure', 'the message hash was already taken or abandoned');
      case 'prefix':
        if (this.#start) this.#sink.update(this.#start.subarray(0, this.#written));
        break;
      case 'reserved': {
        const ring = this.#ring as Ring;
        this.#sink.update(ring.view.subarray(0, this.#written));
        giveBackRing(ring);
        giveBackWorker(this.#worker as Worker);
        break;
      }
      case 'beside': {
        const digest = this.#besideDigest();
        if (digest) {
          this.#close();
          return digest;
        }
        break;
      }
      default:
        break;
    }
    this.#close();
    return this.#sink.digest();
  }

  /** The message will not be finished: its worker and ring go back, or are let go if the worker may still read it. */
  abandon(): void {
    if (this.#stage === 'closed') return;
    if (this.#stage === 'reserved') {
      giveBackRing(this.#ring as Ring);
      giveBackWorker(this.#worker as Worker);
    } else if (this.#stage === 'beside') {
      abandonJob((this.#ring as Ring).shared);
      giveBackWorker(this.#worker as Worker);
    }
    this.#close();
  }

  /** A method, not a comparison, so that the compiler does not assume a call left #stage alone. */
  get #local(): boolean {
    return this.#stage === 'local';
  }

  #close(): void {
    this.#unreserve();
    this.#stage = 'closed';
    if (this.#start) giveBackStart(this.#start);
    this.#start = undefined;
    this.#ring = undefined;
    this.#worker = undefined;
  }

  /** Keeps the message's next bytes in #start, growing it when they do not fit. */
  #keep(bytes: Uint8Array): void {
    const length = this.#written + bytes.length;
    if (!this.#start || this.#start.length < length) {
      const bigger = takeStart(length);
      if (this.#start) {
        this.#start.copy(bigger, 0, 0, this.#written);
        giveBackStart(this.#start);
      }
      this.#start = bigger;
    }
    this.#start.set(bytes, this.#written);
    this.#written = length;
  }

  /** Past RESERVE_BYTES: a worker and a ring for the rest of the message, or this thread. */
  #reserve(): void {
    const worker = takeWorker();
    let ring: Ring | undefined;
    try {
      if (worker) ring = takeRing();
    } catch (error) {
      giveBackWorker(worker as Worker); // no memory for a ring: the stream fails, the worker stays
      throw error;
    }
    const start = this.#start;
    this.#start = undefined;
    if (start) {
      if (ring) copyInto(ring.view, 0, start.subarray(0, this.#written));
      else this.#sink.update(start.subarray(0, this.#written));
      giveBackStart(start);
    }
    if (!worker) {
      streamHashStats.local++;
      this.#stage = 'local';
      return;
    }
    this.#worker = worker;
    this.#ring = ring;
    this.#reservation = { worker, ring: ring as Ring, posted: false };
    dropped.register(this, this.#reservation, this.#reservation);
    this.#stage = 'reserved';
  }

  /** The worker and ring are given back (or let go) by this message itself: not by the finalizer. */
  #unreserve(): void {
    if (!this.#reservation) return;
    dropped.unregister(this.#reservation);
    this.#reservation = undefined;
  }

  #post(): void {
    const ring = this.#ring as Ring;
    const job: RingHashJob = { algorithm: this.#algorithm, ring: ring.ring, control: ring.control };
    (this.#worker as Worker).postMessage(job);
    (this.#reservation as Reservation).posted = true;
    streamHashStats.beside++;
    this.#stage = 'beside';
    this.#publish(ring);
  }

  #publish(ring: Ring): void {
    Atomics.store(ring.shared.counters, 0, BigInt(this.#written));
    this.#published = this.#written;
    signalWorker(ring.shared);
  }

  /**
   * Whether the worker has started on the job, waiting up to ACCEPT_MS for it. If not, the stream
   * takes the message back: the ring holds all of it from the start (the worker read nothing, so the
   * stream never wrapped), the job is abandoned and the worker stopped, the ring is let go (it may
   * yet read it) and the rest is hashed here.
   */
  #started(ring: Ring): boolean {
    const { words } = ring.shared;
    if (Atomics.load(words, 3) === 0) Atomics.wait(words, 3, 0, ACCEPT_MS);
    if (Atomics.load(words, 3) !== 0) return true;
    streamHashStats.unstarted++;
    this.#unreserve();
    abandonJob(ring.shared);
    this.#sink.update(ring.view.subarray(0, this.#written));
    // Not reused: a worker that is stuck would hold every later message for a second each. A
    // merely slow one costs a new start next time, rarely: the job waits from 2 MiB to 8 MiB in.
    dropWorker(this.#worker as Worker);
    this.#ring = undefined;
    this.#worker = undefined;
    this.#stage = 'local';
    return false;
  }

  /** The worker's digest, or undefined when the message went to #sink after all (#started). */
  #besideDigest(): Buffer | undefined {
    const ring = this.#ring as Ring;
    const worker = this.#worker as Worker;
    const { words, digest } = ring.shared;
    this.#publish(ring);
    Atomics.store(words, 1, ENDED);
    signalWorker(ring.shared);
    if (!this.#started(ring)) return undefined;
    try {
      this.#await(ring, () => Atomics.load(words, 2) !== PENDING, 'answer');
      if (Atomics.load(words, 2) !== DIGEST_READY) throw new EsdkError('KeyringFailure', 'the hash worker failed');
    } catch (error) {
      dropWorker(worker);
      this.#close();
      throw error;
    }
    const result = Buffer.from(digest.subarray(0, this.#algorithm === 'sha384' ? 48 : 32));
    giveBackRing(ring);
    giveBackWorker(worker);
    return result;
  }

  /** Free space in the ring, waiting for the worker when there is none (or going local: #started). */
  #room(): number {
    const ring = this.#ring as Ring;
    const { counters, words } = ring.shared;
    const size = ring.view.length;
    let read = Number(Atomics.load(counters, 1));
    if (this.#written - read < size) return size - (this.#written - read);
    this.#publish(ring);
    if (!this.#started(ring)) return 0;
    try {
      this.#await(ring, () => {
        read = Number(Atomics.load(counters, 1));
        return this.#written - read < size || Atomics.load(words, 2) === FAILED;
      }, 'read');
      if (Atomics.load(words, 2) === FAILED) throw new EsdkError('KeyringFailure', 'the hash worker failed');
    } catch (error) {
      // The message cannot be hashed any more (what the worker had not read is overwritten or lost).
      dropWorker(this.#worker as Worker);
      this.#close();
      throw error;
    }
    return size - (this.#written - read);
  }

  /**
   * Blocks this thread until `ready()`, sleeping on what the worker notifies: its read position, or
   * its answer. Bounded: a worker that moves nothing for STALL_MS fails the stream rather than
   * hanging it.
   */
  #await(ring: Ring, ready: () => boolean, on: 'read' | 'answer'): void {
    const { counters, words } = ring.shared;
    let lastRead = Atomics.load(counters, 1);
    let stalledSince = Date.now();
    while (!ready()) {
      if (on === 'read') Atomics.wait(counters, 1, lastRead, WAIT_SLICE_MS);
      else Atomics.wait(words, 2, PENDING, WAIT_SLICE_MS);
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
