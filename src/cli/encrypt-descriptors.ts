/**
 * Where a write to a path lands: symbolic links followed (walkLinks), and the command's own
 * descriptors as outputs (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, so the shell's `3> file` and
 * `>(cmd)`): which path names one, whether the user may mean it, and writing to it as the shell
 * opened it.
 */
import { write } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from './encrypt-options.ts';

/**
 * The descriptor of this process that `path` names, through /dev/stdout, /dev/stderr, /dev/fd/N
 * or /proc/self/fd/N (links followed up to there); undefined for any other path. Such a path must
 * be written through the descriptor the shell opened (`>> log`, `3> file`), in its mode and at its
 * offset: opened by name it would be truncated, and renamed over it would replace the shell's file
 * with ours and leave the shell writing to the unlinked one.
 */
export async function outputDescriptor(path: string): Promise<number | undefined> {
  const own = new RegExp(`^/(?:dev|proc/(?:self|thread-self|${process.pid}))/fd/(\\d+)$`);
  const landing = await walkLinks(path, (current) => own.test(current)).catch(() => undefined);
  const match = landing === undefined ? null : own.exec(landing);
  return match ? givenDescriptor(Number(match[1]), path) : undefined;
}

/**
 * Errors that mean nothing is at a path: ENOTDIR, a part of it is a file ("file/", "file/x");
 * ENAMETOOLONG, no file can have that name. (Writing there then fails and says why.)
 */
export function isAbsent(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG';
}

/**
 * The path a write to `path` lands on: symbolic links followed (relative ones from their own
 * directory), even a dangling last one, as a shell's `>` does, up to 40 like the kernel; or the
 * first path on the way for which `stopAt` is true (a /proc/self/fd link is a descriptor, not a
 * link to follow).
 */
export async function walkLinks(path: string, stopAt?: (current: string) => boolean): Promise<string> {
  let current = resolve(path);
  for (let hops = 0; hops < 40; hops++) {
    if (stopAt?.(current)) return current;
    let info;
    try {
      info = await lstat(current);
    } catch (error) {
      if (isAbsent(error)) return current;
      throw error;
    }
    if (!info.isSymbolicLink()) return current;
    current = resolve(dirname(current), await readlink(current));
  }
  throw Object.assign(new Error(`too many levels of symbolic links: ${path}`), { code: 'ELOOP', path });
}

/**
 * `descriptor`, if it is one the user can mean: 1 or 2, or another open for writing that is not
 * Node's own. Node marks inherited descriptors close-on-exec as well, so what tells them apart is
 * what they are: libuv's event loop holds anonymous inodes (epoll, eventfd) and pipes whose read
 * end it also holds, where the shell's `3> file` or `>(cmd)` gives a file or a pipe's write end.
 * Checked before this run opens files of its own.
 */
async function givenDescriptor(descriptor: number, path: string): Promise<number> {
  if (descriptor === 1 || descriptor === 2) return descriptor;
  const refuse = (why: string): never => {
    throw new UsageError(`${path}: descriptor ${descriptor} ${why}`);
  };
  if (descriptor === 0) refuse('is standard input');
  let target: string;
  try {
    target = await readlink(`/proc/self/fd/${descriptor}`);
  } catch {
    return refuse('is not open');
  }
  if (target.startsWith('anon_inode:')) refuse('belongs to Node itself, not to this command');
  if (!(await writable(descriptor))) refuse('is not open for writing');
  if (target.startsWith('pipe:')) {
    for (const other of await readdir('/proc/self/fd')) {
      if (Number(other) === descriptor) continue;
      const same = await readlink(`/proc/self/fd/${other}`).catch(() => undefined);
      if (same === target && !(await writable(Number(other)))) refuse('belongs to Node itself (a pipe it also reads), not to this command');
    }
  }
  return descriptor;
}

/** The descriptor's access mode allows writing (O_WRONLY or O_RDWR, from /proc/self/fdinfo). */
async function writable(descriptor: number): Promise<boolean> {
  const info = await readFile(`/proc/self/fdinfo/${descriptor}`, 'utf8').catch(() => '');
  const flags = Number.parseInt(/^flags:\s*([0-7]+)$/m.exec(info)?.[1] ?? '0', 8);
  return (flags & 3) !== 0;
}

/**
 * Writes to a descriptor the process was given, with backpressure, and leaves it open (it is not
 * ours to close). A pipe Node made non-blocking (stdout's or stderr's, and their copies) answers
 * EAGAIN while full: wait a moment and write the rest.
 */
export class DescriptorWriter extends Writable {
  readonly #descriptor: number;
  constructor(descriptor: number) {
    super();
    this.#descriptor = descriptor;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    writeFully(this.#descriptor, chunk).then(() => callback(), callback);
  }
}

export async function writeFully(descriptor: number, chunk: Buffer): Promise<void> {
  for (let offset = 0; offset < chunk.length; ) {
    try {
      offset += await new Promise<number>((done, fail) => write(descriptor, chunk, offset, chunk.length - offset, null, (error, written) => (error ? fail(error) : done(written))));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      await sleep(5);
    }
  }
}
