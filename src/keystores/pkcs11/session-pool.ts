/** A bounded pool of PKCS#11 sessions for one logged-in token (module.ts's Pkcs11Token). */
import { Pkcs11Error } from './errors.ts';

/** A PKCS#11 handle as pkcs11js passes it (slot, session or object). */
export type Handle = Buffer;

export interface PoolStats {
  readonly size: number;
  /** Sessions open now (idle + in use). */
  readonly open: number;
  readonly inUse: number;
  readonly idle: number;
  readonly waiting: number;
  /** The most sessions ever in use at once. */
  readonly maxInUse: number;
  /** Sessions discarded after an error that may have left them unusable. */
  readonly discarded: number;
}

interface Waiter {
  resolve(session: Handle): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  done: boolean;
}

export interface SessionPoolOptions {
  readonly size: number;
  readonly acquireTimeoutMs: number;
  open(): Handle;
  close(session: Handle): void;
}

/**
 * At most `size` sessions; acquire takes an idle one, opens one while fewer than `size` are
 * open, or waits in a FIFO queue (a released session goes to the longest waiter, never to a
 * newcomer) until `acquireTimeoutMs`. A discarded session is closed, and replaced at once for
 * the first waiter, else on the next acquire.
 */
export class SessionPool {
  readonly #idle: Handle[] = [];
  readonly #waiters: Waiter[] = [];
  #waitHead = 0;
  /** Waiters neither served nor timed out. */
  #waiting = 0;
  #open = 0;
  #inUse = 0;
  #maxInUse = 0;
  #discarded = 0;
  #closed = false;
  #drained: (() => void) | undefined;

  constructor(private readonly options: SessionPoolOptions) {}

  /** Opens every session now, the first one with `first` when given (Pkcs11Token.open). */
  fill(first?: () => Handle): void {
    while (this.#open < this.options.size) {
      const session = first && this.#open === 0 ? first() : this.options.open();
      this.#open++;
      this.#idle.push(session);
    }
  }

  /** Closes every idle session: after a loss they are likely dead too; acquire opens new ones. */
  purgeIdle(): void {
    for (const session of this.#idle.splice(0)) {
      this.options.close(session);
      this.#open--;
    }
  }

  get stats(): PoolStats {
    return {
      size: this.options.size,
      open: this.#open,
      inUse: this.#inUse,
      idle: this.#idle.length,
      waiting: this.#waiting,
      maxInUse: this.#maxInUse,
      discarded: this.#discarded,
    };
  }

  acquire(): Promise<Handle> {
    if (this.#closed) return Promise.reject(new Pkcs11Error('CLOSED', 'the PKCS#11 token has been closed'));
    this.#serveWaiters();
    const idle = this.#idle.pop();
    if (idle) return Promise.resolve(this.#lend(idle));
    if (this.#open < this.options.size && !this.#hasWaiters()) {
      this.#open++;
      try {
        return Promise.resolve(this.#lend(this.options.open()));
      } catch (error) {
        this.#open--;
        return Promise.reject(error);
      }
    }
    return new Promise<Handle>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        done: false,
        timer: setTimeout(() => {
          waiter.done = true;
          this.#waiting--;
          reject(new Pkcs11Error('POOL_TIMEOUT', `no PKCS#11 session free within ${this.options.acquireTimeoutMs} ms`));
        }, this.options.acquireTimeoutMs),
      };
      this.#waiters.push(waiter);
      this.#waiting++;
    });
  }

  /**
   * An idle session now, without waiting; undefined when none is idle, when others already wait
   * (they come first) or when the pool is closed. Never opens one: opening (and logging in, which
   * can fail and count against the PIN) is left to acquire(), so a failing open is tried once per
   * request, not twice.
   */
  tryAcquire(): Handle | undefined {
    if (this.#closed || this.#hasWaiters()) return undefined;
    const idle = this.#idle.pop();
    return idle === undefined ? undefined : this.#lend(idle);
  }

  release(session: Handle, discard: boolean): void {
    this.#inUse--;
    if (discard || this.#closed) {
      this.#open--;
      if (discard) this.#discarded++;
      this.options.close(session);
      if (!this.#closed) this.#serveWaiters();
      this.#checkDrained();
      return;
    }
    const waiter = this.#nextWaiter();
    if (waiter) {
      waiter.resolve(this.#lend(session));
      return;
    }
    this.#idle.push(session);
  }

  /** Refuses new work, waits for sessions in use to come back, then closes them all. */
  async close(beforeLastClose?: (session: Handle) => void): Promise<void> {
    this.#closed = true;
    for (let waiter = this.#nextWaiter(); waiter; waiter = this.#nextWaiter()) {
      waiter.reject(new Pkcs11Error('CLOSED', 'the PKCS#11 token has been closed'));
    }
    if (this.#inUse > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    const sessions = this.#idle.splice(0);
    sessions.forEach((session, index) => {
      if (index === sessions.length - 1) beforeLastClose?.(session);
      this.options.close(session);
      this.#open--;
    });
  }

  #lend(session: Handle): Handle {
    this.#inUse++;
    if (this.#inUse > this.#maxInUse) this.#maxInUse = this.#inUse;
    return session;
  }

  #nextWaiter(): Waiter | undefined {
    while (this.#waitHead < this.#waiters.length) {
      const waiter = this.#waiters[this.#waitHead++];
      if (this.#waitHead > 1024 && this.#waitHead * 2 > this.#waiters.length) {
        this.#waiters.splice(0, this.#waitHead);
        this.#waitHead = 0;
      }
      if (waiter.done) continue;
      waiter.done = true;
      this.#waiting--;
      clearTimeout(waiter.timer);
      return waiter;
    }
    return undefined;
  }

  #hasWaiters(): boolean {
    return this.#waiting > 0;
  }

  /**
   * Opens sessions for queued waiters while below size (after discards). A session that cannot be
   * opened (token gone) fails the waiter with that error rather than letting it time out.
   */
  #serveWaiters(): void {
    while (this.#open < this.options.size) {
      const waiter = this.#nextWaiter();
      if (!waiter) return;
      this.#open++;
      try {
        waiter.resolve(this.#lend(this.options.open()));
      } catch (error) {
        this.#open--;
        waiter.reject(error instanceof Error ? error : new Pkcs11Error('FAILED', 'PKCS#11 session could not be opened'));
      }
    }
  }

  #checkDrained(): void {
    if (this.#inUse === 0 && this.#drained) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }
}
