/**
 * One run of `strongroom encrypt` / `decrypt`: every job streamed through the Encryption SDK in
 * constant memory (file → encryptStream/decryptStream → temporary file → rename), a progress bar on
 * a terminal for large inputs, and one metadata line per finished file.
 */
import { open } from 'node:fs/promises';
import { Transform, type Duplex, type Readable } from 'node:stream';
import { getSystemErrorMap } from 'node:util';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { decryptStream, encryptStream, type MessageHeaderInfo } from '../esdk/index.ts';
import { EsdkError } from '../esdk/errors.ts';
import { outputDescriptor } from './encrypt-descriptors.ts';
import { STDIO, installPartialFileCleanup, isExistingFile, openOutput, planJobs, type Job, type Output } from './encrypt-files.ts';
import { checkProfile, kmsClientFor, materialsFor } from './encrypt-keyring.ts';
import { openMetadataOutput, metadataRecord, type MetadataOutput } from './encrypt-metadata.ts';
import { UsageError, type RunConfig } from './encrypt-options.ts';
import { StdoutClosedError, stdoutFailureOr, writeStdout } from './encrypt-stdout.ts';

/** Inputs at least this large (in total) get a progress bar, when stderr is a terminal. */
export const PROGRESS_THRESHOLD_BYTES = 16 * 1024 * 1024;

/** A failure of one file: its path and what went wrong (never plaintext, keys or context values). */
export class JobError extends Error {
  override readonly name = 'JobError';
}

/** Counts bytes on their way to the SDK (for the progress bar and the metadata). */
class ByteCounter extends Transform {
  bytes = 0;
  readonly #onBytes: ((count: number) => void) | undefined;
  constructor(onBytes?: (count: number) => void) {
    super();
    this.#onBytes = onBytes;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.#onBytes?.(chunk.length);
    done(null, chunk);
  }
}

/**
 * Every `--context` pair must be in the message's stored context with the same value; checked when
 * the header is parsed, before any plaintext is written. (Not handed to the SDK as a reproduced
 * context: there a key the message lacks would count as a "required" key and surface as a KMS
 * InvalidCiphertextException instead of this clear message. So messages with required-only keys
 * are out of the CLI's reach.)
 */
function checkContext(expected: Record<string, string>, header: MessageHeaderInfo): void {
  for (const [key, value] of Object.entries(expected)) {
    if (!Object.hasOwn(header.encryptionContext, key)) throw new EsdkError('ContextMismatch', `the message's encryption context has no key "${key}"`);
    if (header.encryptionContext[key] !== value) throw new EsdkError('ContextMismatch', `the message's encryption context has another value for "${key}"`);
  }
}

/** `EROFS (read-only file system)`: the error's code and the system's short reason for it. */
function errnoText(error: NodeJS.ErrnoException): string {
  const reason = error.errno === undefined ? undefined : getSystemErrorMap().get(error.errno)?.[1];
  return reason ? `${error.code} (${reason})` : `${error.code}`;
}

/**
 * What went wrong with one job, for its line on stderr. A file-system error names the path the
 * user gave (never our temporary file or the directory being made for it) and keeps the reason.
 */
function describeFailure(error: unknown, job: Job): string {
  if (error instanceof EsdkError || error instanceof JobError || error instanceof StdoutClosedError) return error.message;
  const errno = error as NodeJS.ErrnoException;
  if (errno?.code && errno.syscall) {
    // Reading fails on the input's own path, or (stdin, a pipe) in read() with no path at all.
    const reading = errno.path === undefined ? errno.syscall === 'read' : errno.path === job.source;
    return reading ? `cannot read: ${errnoText(errno)}` : `cannot write ${job.target === STDIO ? '<stdout>' : job.target}: ${errnoText(errno)}`;
  }
  if (error instanceof Error) return `${error.name}: ${error.message.slice(0, 300)}`;
  return 'unknown error';
}

export async function runEsdkCommand(config: RunConfig): Promise<void> {
  const plan = await planJobs(config);
  const metadataToStdout = config.metadataOutput === STDIO || (config.metadataOutput !== undefined && (await outputDescriptor(config.metadataOutput)) === 1);
  if (metadataToStdout && plan.jobs.some((job) => job.target === STDIO)) throw new UsageError('--metadata-output and --output cannot both use stdout');
  if (config.frameLength === 0 && config.mode === 'encrypt' && plan.jobs.some((job) => job.size === undefined)) {
    throw new UsageError('--frame-length 0 (non-framed) needs a regular file as input: the length must be known before the first byte');
  }
  for (const { path, reason } of plan.skipped) process.stderr.write(`skipped (${reason}): ${path}\n`);
  // --no-overwrite skips what exists, as aws-encryption-cli does, before any work (a file that
  // appears during the run still fails that job when it is committed: see AtomicOutput).
  const jobs: Job[] = [];
  for (const job of plan.jobs) {
    if (!config.overwrite && job.target !== STDIO && (await isExistingFile(job.target))) process.stderr.write(`skipped (exists, --no-overwrite): ${job.target}\n`);
    else jobs.push(job);
  }
  installPartialFileCleanup();
  await checkProfile(config);
  const client = kmsClientFor(config);
  let metadata: MetadataOutput | undefined;
  let bar: cliProgress.SingleBar | undefined;
  try {
    const materials = await materialsFor(config, client);
    metadata = config.metadataOutput ? await openMetadataOutput(config.metadataOutput, config.overwriteMetadata) : undefined;
    const total = jobs.every((job) => job.size !== undefined) ? jobs.reduce((sum, job) => sum + (job.size as number), 0) : undefined;
    if (config.progress && process.stderr.isTTY && total !== undefined && total >= PROGRESS_THRESHOLD_BYTES) {
      bar = new cliProgress.SingleBar(
        { stream: process.stderr, format: `${config.mode} |{bar}| {percentage}% | {value}/{total} bytes | ETA {eta_formatted}`, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
    }
    for (const job of jobs) {
      const result = await runJob(config, job, materials, bar);
      await metadata?.write(metadataRecord(config.mode, job, result));
    }
  } finally {
    bar?.stop();
    await metadata?.close();
    client.destroy();
  }
}

type Materials = Awaited<ReturnType<typeof materialsFor>>;

interface JobResult {
  header: MessageHeaderInfo;
  inputBytes: number;
  outputBytes: number;
}

/**
 * The SDK's stream for this job; `releaseUnverified`: decrypted frames may leave before the
 * signature is checked; `plaintextLength`: the input's length, when known and needed.
 */
function sdkStream(config: RunConfig, materials: Materials, releaseUnverified: boolean, plaintextLength: number | undefined): Duplex {
  if (config.mode === 'encrypt') {
    return encryptStream({
      ...materials,
      encryptionContext: config.context,
      suiteId: config.suiteId,
      ...(config.frameLength === 0 ? { contentType: 'non-framed' as const } : { frameLength: config.frameLength }),
      commitmentPolicy: config.commitmentPolicy,
      maxEncryptedDataKeys: config.maxEncryptedDataKeys,
      plaintextLength,
    });
  }
  return decryptStream({
    ...materials,
    commitmentPolicy: config.commitmentPolicy,
    maxEncryptedDataKeys: config.maxEncryptedDataKeys,
    allowUnsignedStreaming: releaseUnverified,
  });
}

async function runJob(config: RunConfig, job: Job, materials: Materials, bar: cliProgress.SingleBar | undefined): Promise<JobResult> {
  const display = job.source === STDIO ? '<stdin>' : job.source;
  let header: MessageHeaderInfo | undefined;
  let output: Output | undefined;
  let input: Readable | undefined;
  try {
    // The SDK holds an encrypt to plaintextLength, so it is given only where it is needed (a
    // non-framed body, whose length comes first; the data-key cache, which counts bytes), and read
    // from the open file, not from the plan: a file may have grown since, or report no true size (/proc).
    let plaintextLength: number | undefined;
    if (job.source === STDIO) input = process.stdin;
    else {
      const handle = await open(job.source, 'r');
      const info = await handle.stat().catch(async (error) => {
        await handle.close();
        throw error;
      });
      if (config.mode === 'encrypt' && info.isFile() && (config.frameLength === 0 || config.cacheMaxAgeSeconds !== undefined)) plaintextLength = info.size;
      input = handle.createReadStream();
    }
    output = job.target === STDIO ? undefined : await openOutput(job.target, config.mode);
    // To a temporary file, plaintext may stream as frames verify: the file is removed unless the
    // whole message (signature included) verifies. To stdout, a pipe or a device, nothing is
    // released before the signature is verified: the SDK withholds it in an encrypted spill file
    // under TMPDIR (constant memory either way).
    // No await from here to the pipeline: a stream that errors before anyone listens would crash the process.
    const sdk = sdkStream(config, materials, output?.atomic ?? false, plaintextLength);
    sdk.once('header', (info: MessageHeaderInfo) => {
      header = info;
      if (config.mode === 'decrypt') {
        try {
          checkContext(config.context, info);
        } catch (error) {
          sdk.destroy(error as Error);
        }
      }
    });
    const counter = new ByteCounter(bar ? (count) => bar.increment(count) : undefined);
    const outputCounter = new ByteCounter();
    if (output) {
      await pipeline(input, counter, sdk, outputCounter, output.stream);
      await output.commit(config.overwrite);
    } else {
      await pipeline(input, counter, sdk, outputCounter, async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) await writeStdout(chunk);
      }).catch((error) => {
        throw stdoutFailureOr(error);
      });
    }
    if (!header) throw new JobError('the SDK reported no message header');
    return { header, inputBytes: counter.bytes, outputBytes: outputCounter.bytes };
  } catch (error) {
    if (input !== process.stdin) input?.destroy();
    await output?.abort();
    throw new JobError(`${display}: ${describeFailure(error, job)}`);
  }
}
