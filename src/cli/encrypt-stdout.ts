/**
 * stdout for `strongroom encrypt` / `decrypt` (data with `--output -`, or `--metadata-output -`).
 * When the reader goes away (`| head -c 100`), writes fail with EPIPE: that becomes one clear
 * failure (exit 1) instead of an unhandled 'error' event with a stack trace, or the pipeline's
 * AbortError.
 */
import { once } from 'node:events';

export class StdoutClosedError extends Error {
  override readonly name = 'StdoutClosedError';
  constructor() {
    super('output closed (EPIPE): whatever read stdout stopped reading');
  }
}

/** The error stdout failed with, once it has; from then on every write fails with it. */
let stdoutFailure: Error | undefined;
let listening = false;

function explained(error: Error): Error {
  return (error as NodeJS.ErrnoException).code === 'EPIPE' ? new StdoutClosedError() : error;
}

/** Writes to stdout, waiting while its buffer is full (backpressure); rejects once stdout failed. */
export async function writeStdout(chunk: Buffer | string): Promise<void> {
  if (!listening) {
    listening = true;
    // Always listening: an 'error' event without a listener would crash the process.
    process.stdout.on('error', (error: Error) => (stdoutFailure ??= error));
  }
  if (stdoutFailure) throw explained(stdoutFailure);
  if (process.stdout.write(chunk)) return;
  try {
    await once(process.stdout, 'drain');
  } catch (error) {
    throw explained(error as Error);
  }
}

/**
 * Why a pipeline into stdout failed: stdout's own error when it had one, since the pipeline may
 * report the AbortError it destroyed the other streams with instead.
 */
export function stdoutFailureOr(error: unknown): unknown {
  return stdoutFailure ? explained(stdoutFailure) : error;
}
