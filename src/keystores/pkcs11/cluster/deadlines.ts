import { Pkcs11Error } from '../errors.ts';

interface Deadline {
  readonly at: number;
  readonly member: string;
  readonly reject: (error: Error) => void;
  done: boolean;
}

/**
 * Bounds member calls: a call still running `timeoutMs` after it started fails with
 * MEMBER_TIMEOUT (its late result is dropped). One sweep timer, every quarter timeout, checks
 * every deadline rather than a timer per call, which on the hot path costs more than the PKCS#11
 * call itself; so a late call fails between 1 and 1.25 timeouts. The sweep holds the process
 * alive only while calls are in flight.
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
    return new Promise<T>((resolve, reject) => {
      const deadline: Deadline = { at: Date.now() + this.#timeoutMs, member, reject, done: false };
      this.#pending.add(deadline);
      if (!this.#held) {
        this.#sweep.ref();
        this.#held = true;
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
      deadline.done = true;
      this.#pending.delete(deadline);
      deadline.reject(new Pkcs11Error('MEMBER_TIMEOUT', `HSM member ${deadline.member} did not answer in time`));
    }
  }
}
