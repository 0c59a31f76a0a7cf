import type { KeyObject } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { startModuleWorker } from '../../esdk/parallel/ts-worker.ts';
import type { AppendResult, AuditEntryInput, AuditStore, DigestSealer } from '../../storage/audit-types.ts';
import type { SqliteAuditStoreOptions } from '../../storage/sqlite/audit-store.ts';

/** Where AuditLog's batches go: one commit() is one append transaction. */
export interface AuditWriter {
  commit(entries: readonly AuditEntryInput[], probe: boolean): Promise<AppendResult>;
  close(): Promise<void>;
}

/** Appends on the calling thread: the commit's fsync blocks the event loop while it runs. */
export class InlineAuditWriter implements AuditWriter {
  constructor(
    private readonly store: AuditStore,
    private readonly seal: DigestSealer,
  ) {}

  commit(entries: readonly AuditEntryInput[], probe: boolean): Promise<AppendResult> {
    return this.store.append(entries, this.seal, { probe });
  }

  async close(): Promise<void> {}
}

/** What the worker needs: its own connection's settings and the signing key. */
export interface AuditWorkerData {
  path: string;
  storeOptions: Omit<SqliteAuditStoreOptions, 'now' | 'readonly'>;
  privateKey: KeyObject;
  publicKeyId: string;
}

export type AuditWorkerRequest =
  | { type: 'commit'; id: number; entries: readonly AuditEntryInput[]; probe: boolean }
  | { type: 'close' };

export type AuditWorkerReply =
  | { type: 'ready'; error?: SerialisedError }
  | { type: 'result'; id: number; result?: AppendResult; error?: SerialisedError };

export interface SerialisedError {
  name: string;
  message: string;
  code?: string;
}

export const serialiseError = (error: unknown): SerialisedError => ({
  name: (error as Error)?.name ?? 'Error',
  message: (error as Error)?.message ?? String(error),
  ...(typeof (error as { code?: unknown })?.code === 'string' ? { code: (error as { code: string }).code } : {}),
});

function deserialiseError(error: SerialisedError): Error {
  return Object.assign(new Error(error.message), { name: error.name, ...(error.code ? { code: error.code } : {}) });
}

const workerUrl = new URL(`./audit-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** On TypeScript sources the worker loads them through tsx's in-thread require hook (ts-worker.ts). */
const startWorker = (data: AuditWorkerData): Worker => startModuleWorker(workerUrl, { workerData: data });

interface Pending {
  resolve: (result: AppendResult) => void;
  reject: (error: Error) => void;
}

/**
 * Appends in a worker thread that owns its own connection, so the main thread keeps serving
 * while a commit's fsync runs. The worker handles one commit at a time, in order. If it dies,
 * its outstanding commits reject and the next commit starts a new one.
 */
export class WorkerAuditWriter implements AuditWriter {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly data: AuditWorkerData) {}

  /** Starts the thread now (it takes a moment to load), rather than at the first commit. */
  start(): Promise<void> {
    if (this.ready) return this.ready;
    const worker = startWorker(this.data);
    this.worker = worker;
    this.ready = new Promise<void>((resolve, reject) => {
      const fail = (error: Error) => {
        if (this.worker === worker) {
          this.worker = undefined;
          this.ready = undefined;
        }
        reject(error);
        for (const [id, pending] of this.pending) {
          this.pending.delete(id);
          pending.reject(error);
        }
      };
      worker.on('message', (reply: AuditWorkerReply) => {
        if (reply.type === 'ready') {
          if (reply.error) {
            fail(deserialiseError(reply.error));
          } else {
            if (this.pending.size === 0) worker.unref(); // referenced only while it has work
            resolve();
          }
          return;
        }
        const pending = this.pending.get(reply.id);
        if (!pending) return;
        this.pending.delete(reply.id);
        if (this.pending.size === 0) worker.unref();
        if (reply.error) pending.reject(deserialiseError(reply.error));
        else pending.resolve(reply.result as AppendResult);
      });
      worker.on('error', (error) => fail(error));
      worker.on('exit', (code) => fail(new Error(`audit writer thread exited (code ${code})`)));
    });
    this.ready.catch(() => {}); // reported through the commits waiting on it
    return this.ready;
  }

  async commit(entries: readonly AuditEntryInput[], probe: boolean): Promise<AppendResult> {
    await this.start();
    const worker = this.worker as Worker;
    const id = this.nextId++;
    const result = new Promise<AppendResult>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    worker.ref(); // a commit in flight keeps the process alive
    try {
      worker.postMessage({ type: 'commit', id, entries, probe } satisfies AuditWorkerRequest);
    } catch (error) {
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      throw error;
    }
    return result;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    this.ready = undefined;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    worker.postMessage({ type: 'close' } satisfies AuditWorkerRequest);
    await exited;
  }
}
