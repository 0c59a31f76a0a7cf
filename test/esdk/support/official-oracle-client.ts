import { fork, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

interface Reply {
  id?: number;
  ready?: boolean;
  ok?: boolean;
  result?: Uint8Array;
  error?: string;
}

/** The parent's handle on official-oracle.ts: request/response over IPC, one child process. */
export class OfficialOracle {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (r: Buffer) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<void>;
  #nextId = 1;

  constructor() {
    this.#child = fork(resolve(import.meta.dirname, 'official-oracle.ts'), [], {
      execArgv: ['--security-revert=CVE-2023-46809', '--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'ignore', 'ipc'],
    });
    let onReady: () => void = () => {};
    this.ready = new Promise((r) => (onReady = r));
    this.#child.on('message', (reply: Reply) => {
      if (reply.ready) return onReady();
      const waiter = this.#pending.get(reply.id!);
      this.#pending.delete(reply.id!);
      if (reply.ok) waiter?.resolve(Buffer.from(reply.result!));
      else waiter?.reject(new Error(`official SDK: ${reply.error}`));
    });
    this.#child.on('exit', () => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error('official oracle exited'));
      this.#pending.clear();
    });
  }

  request(op: 'encrypt' | 'decrypt', scenarioId: string, extra: { frameLength?: number; message?: Uint8Array }): Promise<Buffer> {
    const id = this.#nextId++;
    return new Promise((resolvePromise, reject) => {
      this.#pending.set(id, { resolve: resolvePromise, reject });
      this.#child.send({ id, op, scenarioId, ...extra });
    });
  }

  close(): void {
    this.#child.kill();
  }
}
