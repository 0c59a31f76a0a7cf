/**
 * The shared-memory protocol between a stream that hashes its message beside (stream-hash.ts) and
 * the hash worker (hash-worker.ts). The stream copies the message's bytes, in order, into a ring
 * of shared memory and publishes how far it has written; the worker hashes behind it and publishes
 * how far it has read, so the stream can reuse the space. No message crosses between the threads
 * once the job is posted: a caller that feeds the stream from promises never lets the event loop
 * turn, so a reply by message would sit unread (docs/esdk.md).
 *
 * The control buffer holds, as 64-bit counters of bytes since the message's start,
 * `written` (published by the stream) and `read` (published by the worker); as 32-bit words,
 * `signal`, bumped by the stream after each publication, end or abandonment (the worker sleeps on
 * it), `state` (0: running, ENDED: `written` is final, ABANDONED: stop), `done` (the worker's answer:
 * DIGEST_READY with the digest at DIGEST_OFFSET, or FAILED) and `accepted` (set by the worker when
 * it starts on the job: until then the ring still holds the whole message from its start, and the
 * stream can hash it itself instead of waiting for a worker that may never start); then the digest.
 */
import { createHash } from 'node:crypto';

export const ENDED = 1;
export const ABANDONED = -1;
export const PENDING = 0;
export const DIGEST_READY = 1;
export const FAILED = -1;

const COUNTERS = 2;
const WORDS = 4;
export const DIGEST_OFFSET = COUNTERS * 8 + WORDS * 4;
export const CONTROL_BYTES = DIGEST_OFFSET + 64;

export interface RingControl {
  /** [0] written, [1] read. */
  readonly counters: BigInt64Array;
  /** [0] signal, [1] state, [2] done, [3] accepted. */
  readonly words: Int32Array;
  readonly digest: Uint8Array;
}

export function ringControl(control: SharedArrayBuffer): RingControl {
  return {
    counters: new BigInt64Array(control, 0, COUNTERS),
    words: new Int32Array(control, COUNTERS * 8, WORDS),
    digest: new Uint8Array(control, DIGEST_OFFSET, 64),
  };
}

/** Wakes the worker after the stream published, ended or abandoned its message. */
export function signalWorker(control: RingControl): void {
  Atomics.add(control.words, 0, 1);
  Atomics.notify(control.words, 0);
}

/** Tells the worker to stop: the message will not be finished, or will be hashed elsewhere. */
export function abandonJob(control: RingControl): void {
  Atomics.store(control.words, 1, ABANDONED);
  signalWorker(control);
}

export interface RingHashJob {
  algorithm: 'sha256' | 'sha384';
  ring: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

/** The worker hands back space after hashing this much, so a full ring never waits for all of it. */
const READ_STEP = 256 * 1024;
/**
 * How long the worker sleeps before it looks again without being signalled. It is signalled on
 * every publication; this only bounds how long a lost wake-up could cost.
 */
const WAIT_MS = 200;

/** Runs on the hash worker: hashes the ring's bytes as they are published, until the end or abandonment. */
export function runRingHash(job: RingHashJob): void {
  const { counters, words, digest } = ringControl(job.control);
  Atomics.store(words, 3, 1);
  Atomics.notify(words, 3);
  try {
    const hash = createHash(job.algorithm);
    const ring = new Uint8Array(job.ring);
    let read = 0;
    for (;;) {
      const signal = Atomics.load(words, 0);
      // state before written: the stream publishes its last `written` before it sets ENDED.
      const state = Atomics.load(words, 1);
      if (state === ABANDONED) return;
      const written = Number(Atomics.load(counters, 0));
      if (written > read) {
        while (read < written) {
          const at = read % ring.length;
          const n = Math.min(written - read, ring.length - at, READ_STEP);
          hash.update(ring.subarray(at, at + n));
          read += n;
          Atomics.store(counters, 1, BigInt(read));
          Atomics.notify(counters, 1);
        }
        continue;
      }
      if (state === ENDED) {
        digest.set(hash.digest());
        Atomics.store(words, 2, DIGEST_READY);
        Atomics.notify(words, 2);
        return;
      }
      Atomics.wait(words, 0, signal, WAIT_MS);
    }
  } catch {
    Atomics.store(words, 2, FAILED);
    Atomics.notify(words, 2);
    Atomics.notify(counters, 1);
  }
}
