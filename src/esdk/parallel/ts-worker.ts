import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on `url`. Compiled JavaScript starts as is. A TypeScript source (the
 * project run through tsx) is loaded with tsx's CommonJS require hook, which transforms in the
 * worker's own thread, and the worker gets no execArgv (so no inherited `--import tsx`).
 *
 * Why not tsx's ESM loader in the worker: on Node 20 every thread that registers module hooks gets
 * its own hooks thread, which the worker then waits on synchronously. Two hangs were traced to that
 * arrangement: the main thread blocked for good in import.meta.resolve while a worker started, and
 * a process that used the frame pool not exiting after its main module returned (CI, once in many
 * runs). The require hook has no second thread to wait on.
 */
export function startModuleWorker(url: URL, options: WorkerOptions = {}): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options);
  const code = `require(${JSON.stringify(tsxCjsApi())}).register(); require(${JSON.stringify(fileURLToPath(url))});`;
  return new Worker(code, { execArgv: [], ...options, eval: true });
}

let api: string | undefined;

function tsxCjsApi(): string {
  api ??= createRequire(import.meta.url).resolve('tsx/cjs/api');
  return api;
}

/**
 * Stops a helper thread without holding the process for it. Worker.terminate() references the
 * worker until its thread has exited; a pool stopping after a quiet spell must not keep a process
 * alive for that, and a thread that never exits would keep it forever. That happened: a full
 * bench/esdk.sh run ended with its process held by a terminated signing worker, deadlocked inside a
 * JWK export (signing-key-pool.ts), whose port terminate() had referenced. The thread still stops.
 */
export function terminateUnreferenced(worker: Worker): void {
  void worker.terminate();
  worker.unref();
}
