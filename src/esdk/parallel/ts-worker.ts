import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on `url`. Compiled JavaScript starts as is; a TypeScript source (the
 * project run through tsx) registers tsx's loader in the worker first, then imports it.
 *
 * tsx's ESM API is located with require.resolve on its package.json, not import.meta.resolve: on
 * Node 20 import.meta.resolve is a synchronous request to the module-hooks thread, and a process
 * was seen blocked in it for good (main thread in a futex wait, CI hung) when a worker was started
 * while loaders were busy.
 */
export function startModuleWorker(url: URL, options: WorkerOptions = {}): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options);
  const code =
    `import(${JSON.stringify(tsxEsmApi())})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(code, { ...options, eval: true });
}

let api: string | undefined;

function tsxEsmApi(): string {
  if (api) return api;
  const packageJson = createRequire(import.meta.url).resolve('tsx/package.json');
  const exports = (JSON.parse(readFileSync(packageJson, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports;
  api = pathToFileURL(join(dirname(packageJson), exports['./esm/api'].import.default)).href;
  return api;
}
