/**
 * Files for `strongroom encrypt` / `decrypt`: which inputs become which outputs (a file, a whole
 * tree with --recursive, or stdin/stdout), and outputs that appear only when complete — written to
 * a temporary file beside the target, flushed, then renamed over it; removed on any failure and on
 * SIGINT/SIGTERM/SIGHUP, so a half-written output is never left behind. An output that is not a
 * regular file (a FIFO, a device, /dev/fd/N) cannot be replaced that way; it is written directly.
 */
import { randomBytes } from 'node:crypto';
import { rmdirSync, unlinkSync, type WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { link, lstat, mkdir, open, readdir, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { DescriptorWriter, isAbsent, outputDescriptor, walkLinks } from './encrypt-descriptors.ts';
import { UsageError, type Mode } from './encrypt-options.ts';

export const STDIO = '-';
const PARTIAL_SUFFIX = '.strongroom-partial';
/** The longest file name most file systems take, in bytes. */
const NAME_MAX = 255;

/**
 * `.<name>.<random>.strongroom-partial`, the name cut (at a character boundary) so that the whole
 * fits in NAME_MAX bytes: a valid output name must not fail for its temporary's 33 extra bytes.
 */
export function temporaryName(name: string): string {
  const tail = `.${randomBytes(6).toString('hex')}${PARTIAL_SUFFIX}`;
  // A name that is itself too long stays so: its temporary fails at once (ENAMETOOLONG), before any work.
  if (Buffer.byteLength(name) > NAME_MAX) return `.${name}${tail}`;
  let kept = name;
  while (Buffer.byteLength(`.${kept}${tail}`) > NAME_MAX) kept = [...kept].slice(0, -1).join('');
  return `.${kept}${tail}`;
}

export interface Job {
  /** A path, or `-` for stdin. */
  source: string;
  /** A path, or `-` for stdout. */
  target: string;
  /** Bytes of the source when it is a regular file (unknown for stdin, a FIFO, a device). */
  size: number | undefined;
}

export interface Plan {
  jobs: Job[];
  /**
   * Files met while walking a tree and not processed, each listed on stderr with the reason:
   * symbolic links and other non-regular files (not followed), and temporary outputs of a run
   * (ours or another's, maybe still being written).
   */
  skipped: { path: string; reason: string }[];
}

/** A regular file is at `path` (links followed): what --no-overwrite keeps. Not a descriptor's file: see outputDescriptor. */
export async function isExistingFile(path: string): Promise<boolean> {
  return (await outputDescriptor(path)) === undefined && (await statOrUndefined(path))?.isFile() === true;
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch (error) {
    if (isAbsent(error)) return undefined;
    throw error;
  }
}

/**
 * --input/--output to jobs. A usage error (exit 2) for combinations that cannot work: a directory
 * without --recursive, a tree into a file or stdout, stdin into a directory, output = input.
 * A single input may be anything readable but a directory (`<(cmd)`, /dev/stdin, a FIFO): it is
 * streamed like stdin.
 */
export async function planJobs(options: { mode: Mode; input: string; output: string; recursive: boolean; suffix: string }): Promise<Plan> {
  const { input, suffix } = options;
  // /dev/stdout (or /dev/fd/1) is this process's stdout, wherever the shell pointed it: the same as -.
  const output = options.output !== STDIO && (await outputDescriptor(options.output)) === 1 ? STDIO : options.output;
  if (input === STDIO) {
    if (output !== STDIO && (output.endsWith('/') || (await statOrUndefined(output))?.isDirectory())) {
      throw new UsageError('--output must be a file or - when --input is - (stdin)');
    }
    return { jobs: [{ source: STDIO, target: output, size: undefined }], skipped: [] };
  }
  const source = await statOrUndefined(input);
  if (!source) throw new UsageError(`--input ${input} does not exist`);
  if (source.isDirectory()) {
    if (!options.recursive) throw new UsageError(`--input ${input} is a directory: add --recursive`);
    if (output === STDIO) throw new UsageError('--output must be a directory when --input is a directory');
    const existing = await statOrUndefined(output);
    if (existing && !existing.isDirectory()) throw new UsageError(`--output ${output} is not a directory`);
    const plan = await walkTree(resolve(input), resolve(output), suffix);
    await refuseOverlaps(plan.jobs);
    return plan;
  }
  const size = source.isFile() ? source.size : undefined;
  if (output === STDIO) return { jobs: [{ source: input, target: STDIO, size }], skipped: [] };
  const existing = await statOrUndefined(resolve(output)); // resolve: "file/" would fail with ENOTDIR
  // A trailing slash says "a directory", as for cp and mv: created when missing.
  const intoDirectory = existing?.isDirectory() || output.endsWith('/');
  if (intoDirectory && existing && !existing.isDirectory()) throw new UsageError(`--output ${output} ends in / but is not a directory`);
  const target = intoDirectory ? join(output, basename(input) + suffix) : output;
  const jobs = [{ source: input, target, size }];
  await refuseOverlaps(jobs);
  return { jobs, skipped: [] };
}

/**
 * No job may write over a file that a job still has to read, nor two jobs write one file: with
 * `decrypt -r -i q/data -o q --suffix ''`, q/data/data/x would be written to q/data/x before that
 * input is read. Compared as real paths, so links and `..` cannot hide an overlap.
 */
async function refuseOverlaps(jobs: readonly Job[]): Promise<void> {
  const sources = new Set<string>();
  for (const job of jobs) sources.add(await realPath(job.source));
  const targets = new Set<string>();
  for (const job of jobs) {
    const target = await realPath(job.target);
    if (sources.has(target)) throw new UsageError(`--output would overwrite an input before it is read: ${job.target}`);
    if (targets.has(target)) throw new UsageError(`two inputs would be written to the same output: ${job.target}`);
    targets.add(target);
  }
}

/**
 * The real path of `path`, also when it and some of its directories do not exist yet (an
 * output) or its last link names no file (/dev/stdin when stdin is a pipe).
 */
async function realPath(path: string): Promise<string> {
  const destination = await walkLinks(path);
  const missing = [basename(destination)];
  let dir = dirname(destination);
  for (;;) {
    try {
      return join(await realpath(dir), ...missing);
    } catch (error) {
      if (!isAbsent(error) || dir === dirname(dir)) throw error;
      missing.unshift(basename(dir));
      dir = dirname(dir);
    }
  }
}

/** Every regular file under `root`, mapped to the same relative path under `outputRoot` plus the suffix. */
async function walkTree(root: string, outputRoot: string, suffix: string): Promise<Plan> {
  const jobs: Job[] = [];
  const skipped: Plan['skipped'] = [];
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop() as string;
    // The output tree may sit inside the input tree: never encrypt our own outputs.
    if (dir === outputRoot && outputRoot !== root) continue;
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (!entry.isFile()) skipped.push({ path, reason: 'not a regular file' });
      else if (entry.name.endsWith(PARTIAL_SUFFIX)) skipped.push({ path, reason: 'a temporary output of strongroom' });
      else jobs.push({ source: path, target: join(outputRoot, relative(root, path)) + suffix, size: (await lstat(path)).size });
    }
  }
  jobs.sort((a, b) => (a.source < b.source ? -1 : 1));
  return { jobs, skipped };
}

// ---------------------------------------------------------------------------------------------
// Outputs that appear only when complete

/** Temporary outputs not yet committed, each with the directories created for it (outermost first). */
const partialFiles = new Map<string, string[]>();
let cleanupInstalled = false;

/** Synchronous, as it must be in an 'exit' listener; rmdir removes only directories left empty. */
function removeDirectories(directories: readonly string[]): void {
  for (const directory of [...directories].reverse()) {
    try {
      rmdirSync(directory);
    } catch {
      return; // Not empty (another job's output is there) or already gone: keep the ones above.
    }
  }
}

function removePartialFile(temporary: string): void {
  try {
    unlinkSync(temporary);
  } catch {
    // Already gone.
  }
  removeDirectories(partialFiles.get(temporary) ?? []);
  partialFiles.delete(temporary);
}

function removePartialFiles(): void {
  for (const temporary of partialFiles.keys()) removePartialFile(temporary);
}

/**
 * mkdir -p that returns the directories it created (outermost first), so that a failed output
 * can remove them again.
 */
async function makeDirectories(directory: string): Promise<string[]> {
  const missing: string[] = [];
  for (let current = directory; !(await statOrUndefined(current)) && current !== dirname(current); current = dirname(current)) missing.unshift(current);
  const created: string[] = [];
  for (const path of missing) {
    try {
      await mkdir(path);
      created.push(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue; // made meanwhile by someone else
      removeDirectories(created);
      throw error;
    }
  }
  return created;
}

/**
 * Removes every temporary output when the process is interrupted (then exits as the signal asks)
 * and whenever it exits with one still open — after an uncaught exception too, since 'exit' runs
 * then as well. Synchronous: nothing asynchronous runs once 'exit' is emitted.
 */
export function installPartialFileCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', removePartialFiles);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.once(signal, () => {
      removePartialFiles();
      process.exit(code);
    });
  }
}

/** Where a job's bytes go: `stream`, then `commit` once it has finished, or `abort` on failure. */
export interface Output {
  /** The path the user named. */
  readonly target: string;
  readonly stream: Writable;
  /** True when nothing written is visible before `commit` (a temporary file renamed into place). */
  readonly atomic: boolean;
  commit(overwrite: boolean): Promise<void>;
  abort(): Promise<void>;
}

/**
 * The output for `target`. An existing FIFO, device or /dev/fd/N (after following links) is
 * written directly: renaming a file over it would replace the device or pipe itself, and /dev or
 * /proc/self/fd do not take our temporary file anyway. Anything else appears only on commit.
 */
export async function openOutput(target: string, mode: Mode): Promise<Output> {
  const descriptor = await outputDescriptor(target);
  if (descriptor !== undefined) return DirectOutput.onDescriptor(target, descriptor);
  const existing = await statOrUndefined(target);
  if (existing && !existing.isFile() && !existing.isDirectory()) return DirectOutput.open(target);
  return AtomicOutput.create(target, mode);
}

/** A pipe or device: bytes reach the reader as they are written, there is nothing to rename or remove. */
class DirectOutput implements Output {
  readonly atomic = false;
  readonly target: string;
  readonly stream: Writable;

  private constructor(target: string, stream: Writable) {
    this.target = target;
    this.stream = stream;
  }

  static async open(target: string): Promise<DirectOutput> {
    // No flush: fsync fails (EINVAL) on a pipe and means nothing for a device.
    return new DirectOutput(target, (await open(target, 'w')).createWriteStream());
  }

  /** Writes to a descriptor the process already has, and leaves it open (it is not ours to close). */
  static onDescriptor(target: string, descriptor: number): DirectOutput {
    return new DirectOutput(target, new DescriptorWriter(descriptor));
  }

  async commit(): Promise<void> {}

  async abort(): Promise<void> {
    this.stream.destroy();
  }
}

export class AtomicOutput implements Output {
  readonly atomic = true;
  readonly target: string;
  /** The target with symbolic links followed: the rename writes through a link, not over it. */
  readonly #destination: string;
  readonly #temporary: string;
  readonly #handle: FileHandle;
  readonly stream: WriteStream;

  private constructor(target: string, destination: string, temporary: string, handle: FileHandle) {
    this.target = target;
    this.#destination = destination;
    this.#temporary = temporary;
    this.#handle = handle;
    // flush: fsync before the stream closes the file, so a rename never exposes unwritten data.
    this.stream = handle.createWriteStream({ flush: true });
  }

  /**
   * A new temporary file beside `target`, or beside the file a symbolic link `target` points to
   * (same directory, so the rename is atomic), created exclusively. Decrypted output is
   * plaintext: 0600. Encrypted output: 0666 less the umask.
   */
  static async create(target: string, mode: Mode): Promise<AtomicOutput> {
    const destination = await walkLinks(target);
    // Directories are made for the path the user named, never where a (dangling) link points:
    // the shell's `>` fails there too, and the user named no such directory.
    const directories = destination === resolve(target) ? await makeDirectories(dirname(destination)) : [];
    const temporary = join(dirname(destination), temporaryName(basename(destination)));
    let handle: FileHandle;
    try {
      handle = await open(temporary, 'wx', mode === 'decrypt' ? 0o600 : 0o666);
    } catch (error) {
      removeDirectories(directories);
      throw error;
    }
    partialFiles.set(temporary, directories);
    return new AtomicOutput(target, destination, temporary, handle);
  }

  /** After the stream has finished (flushed, closed): rename over the target, or (no overwrite) link, which fails if it exists. */
  async commit(overwrite: boolean): Promise<void> {
    if (overwrite) await rename(this.#temporary, this.#destination);
    else {
      try {
        await link(this.#temporary, this.#destination);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${this.target} exists (and --no-overwrite was given)`);
        throw error;
      }
      await unlink(this.#temporary);
    }
    partialFiles.delete(this.#temporary);
  }

  /** Removes the temporary file, and the directories made for it if nothing else is in them. */
  async abort(): Promise<void> {
    this.stream.destroy();
    await this.#handle.close().catch(() => undefined);
    removePartialFile(this.#temporary);
  }
}

