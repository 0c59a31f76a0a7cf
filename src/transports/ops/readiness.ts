import type { Logger } from 'pino';

/** One readiness check: resolves when the part works, rejects (or hangs) when it does not. */
export type ReadinessCheck = () => Promise<void>;

export interface ReadinessReport {
  readonly ready: boolean;
  /** Each check by name: "ok" or "failing". Reasons go to the log, never to the caller. */
  readonly checks: Readonly<Record<string, 'ok' | 'failing'>>;
}

export interface ReadinessOptions {
  /** A report is reused this long, so probes cost the stores at most one round per period. */
  cacheMs?: number;
  /** A check that has not answered by then counts as failing (a locked database waits long). */
  timeoutMs?: number;
  logger?: Logger;
}

interface CheckState {
  readonly name: string;
  readonly run: ReadinessCheck;
  /** A check still running is not started again: a stuck store gets one probe, not one per poll. */
  pending?: Promise<boolean>;
  failing: boolean;
}

/**
 * /readyz's answer: every check run concurrently, each bounded by a timeout, the report cached
 * briefly. Concurrent callers share one evaluation.
 */
export class Readiness {
  private readonly states: CheckState[];
  private readonly cacheMs: number;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  private cached: { report: ReadinessReport; at: number } | undefined;
  private evaluating: Promise<ReadinessReport> | undefined;

  constructor(checks: Readonly<Record<string, ReadinessCheck>>, options: ReadinessOptions = {}) {
    this.states = Object.entries(checks).map(([name, run]) => ({ name, run, failing: false }));
    this.cacheMs = options.cacheMs ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.logger = options.logger;
  }

  report(): Promise<ReadinessReport> {
    if (this.cached && performance.now() - this.cached.at < this.cacheMs) return Promise.resolve(this.cached.report);
    this.evaluating ??= this.evaluate().finally(() => {
      this.evaluating = undefined;
    });
    return this.evaluating;
  }

  private async evaluate(): Promise<ReadinessReport> {
    const results = await Promise.all(this.states.map((state) => this.check(state)));
    const checks: Record<string, 'ok' | 'failing'> = {};
    this.states.forEach((state, index) => (checks[state.name] = results[index] ? 'ok' : 'failing'));
    const report = { ready: results.every(Boolean), checks };
    this.cached = { report, at: performance.now() };
    return report;
  }

  private async check(state: CheckState): Promise<boolean> {
    state.pending ??= state.run().then(
      () => true,
      (error: unknown) => {
        this.logger?.warn({ check: state.name, err: errorSummary(error) }, 'readiness check failed');
        return false;
      },
    ).finally(() => {
      state.pending = undefined;
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.timeoutMs);
    });
    const ok = await Promise.race([state.pending, timedOut]);
    clearTimeout(timer);
    if (!ok && !state.failing) this.logger?.warn({ check: state.name }, 'not ready');
    if (ok && state.failing) this.logger?.info({ check: state.name }, 'ready again');
    state.failing = !ok;
    return ok;
  }
}

/** Name and message only: store errors name files and SQLite codes, never secrets. */
const errorSummary = (error: unknown) => (error instanceof Error ? { name: error.name, message: error.message } : String(error));
