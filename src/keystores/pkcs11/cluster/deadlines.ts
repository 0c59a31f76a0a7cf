import { Pkcs11Error } from '../errors.ts';
import type { CallProgress } from './member.ts';

/**
 * One call under a deadline, and the CallProgress its member reports to. A class rather than an
 * object of closures: it is made once per crypto call, and methods cost nothing per call where
 * closures (each named by tsx's loader at creation) do.
 */
class Deadline implements CallProgress {
  done = false;
  /** Waiting for capacity (CallProgress.queued) rather than running. */
  waiting = false;

  constructor(
    public at: number,
    readonly member: string,
    readonly reject: (error: Error) => void,
    /** The overall bound of a call that may wait (track). */
    readonly giveUpAt: number,
    readonly timeoutMs: number,
  ) {}

  queued(): void {
    if (this.done || this.waiting) return;
    this.waiting = true;
    this.at = this.giveUpAt;
  }

  started(): boolean {
    if (this.done) return false;
    if (this.waiting) {
      this.waiting = false;
      this.at = Date.now() + this.timeoutMs;
    }
    return true;
  }
}

/**
 * Bounds member calls: a call still running `timeoutMs` after it started fails with
 * MEMBER_TIMEOUT (its late result is dropped). One sweep timer, every quarter timeout, checks
 * every deadline rather than a timer per call, which on the hot path costs more than the PKCS#11
 * call itself; so a late call fails between 1 and 1.25 timeouts. The sweep holds the process
 * alive only while calls are in flight.
 *
 * A crypto call (track) may first wait for capacity: a free session, or a place among an agent's
 * requests in flight. Waiting is load, not a member failure, so while the member reports it
 * waiting (CallProgress.queued) only the overall bound `giveUpAt` applies, past which the call
 * fails with POOL_TIMEOUT (busy: the cluster does not take the member out); the timeout starts
 * when the member reports it started.
 */
export class Deadlines {
  readonly #timeoutMs: number;
  readonly #pending = new Set<Deadline>();
  readonly #sweep: NodeJS.Timeout;
  #held = false;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.#sweep = setInterval(() => this.#expire(), Math.max(10, Math.floor(timeoutMs / 4)));
    this.#sweep.unref();
  }

  bound<T>(operation: Promise<T>, member: string): Promise<T> {
    return this.track(() => operation, member, Number.POSITIVE_INFINITY);
  }

  /** Runs `run` under a deadline that the member may suspend while the call waits (see the class comment). */
  track<T>(run: (progress: CallProgress) => Promise<T>, member: string, giveUpAt: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = new Deadline(Date.now() + this.#timeoutMs, member, reject, giveUpAt, this.#timeoutMs);
      this.#pending.add(deadline);
      if (!this.#held) {
        this.#sweep.ref();
        this.#held = true;
      }
      let operation: Promise<T>;
      try {
        operation = run(deadline);
      } catch (error) {
        operation = Promise.reject(error);
      }
      operation.then(
        (value) => {
          if (deadline.done) return;
          deadline.done = true;
          this.#pending.delete(deadline);
          resolve(value);
        },
        (error: unknown) => {
          if (deadline.done) return;
          deadline.done = true;
          this.#pending.delete(deadline);
          reject(error);
        },
      );
    });
  }

  /**
   * The member was taken out of service: calls still waiting for its capacity fail now (CLOSED),
   * so the cluster retries them on another member rather than letting them wait for the overall
   * bound; the member will not run them (started() answers false).
   */
  abandonWaiting(member: string): void {
    for (const deadline of this.#pending) {
      if (deadline.member !== member || !deadline.waiting) continue;
      this.#settle(deadline, new Pkcs11Error('CLOSED', `HSM member ${member} was taken out of service while the request waited`));
    }
  }

  close(): void {
    clearInterval(this.#sweep);
  }

  #expire(): void {
    if (this.#pending.size === 0 && this.#held) {
      this.#sweep.unref();
      this.#held = false;
    }
    const now = Date.now();
    for (const deadline of this.#pending) {
      if (deadline.at > now) continue;
      this.#settle(
        deadline,
        deadline.waiting
          ? new Pkcs11Error('POOL_TIMEOUT', `HSM member ${deadline.member} had no capacity free in time`)
          : new Pkcs11Error('MEMBER_TIMEOUT', `HSM member ${deadline.member} did not answer in time`),
      );
    }
  }

  #settle(deadline: Deadline, error: Error): void {
    deadline.done = true;
    this.#pending.delete(deadline);
    deadline.reject(error);
  }
}
