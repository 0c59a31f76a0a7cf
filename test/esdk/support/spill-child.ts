/**
 * Child process for test/esdk/spill.test.ts: decrypts one message file through decryptStream and
 * prints one JSON line of measurements. Run as
 *   node --expose-gc --import tsx spill-child.ts '<json ChildRequest>'
 * Midway (after `probeAt` message bytes were written and processed) it looks at its own open spill
 * files through /proc/self/fd (the spill is unlinked, so that is the only way in) and scans them for
 * the plaintext marker. The reader is deliberately slower than the decrypter.
 */
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readlink } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptStream } from '../../../src/esdk/index.ts';
import { aesKeyring } from './fixtures.ts';

export interface ChildRequest {
  file: string;
  spillDirectory: string;
  probeAt: number;
  marker: string;
}

export interface SpillProbe {
  /** Open spill files of this process in the spill directory. */
  open: number;
  /** All of them already unlinked (only reachable through the descriptor). */
  unlinked: boolean;
  bytes: number;
  markerFound: boolean;
  /** Names in the spill directory at that moment. */
  directoryEntries: number;
}

export interface ChildReport {
  startRss: number;
  maxRss: number;
  /** Largest ArrayBuffer memory still referenced after a full GC, sampled every 8 MiB. */
  peakRetained: number;
  emitted: number;
  emittedBeforeEnd: number;
  sha256: string;
  errorCode: string | undefined;
  probe: SpillProbe | undefined;
  spillFilesOpenAtEnd: number;
}

/** True when `marker` occurs anywhere in the stream's bytes (also across chunk boundaries). */
export async function streamContains(path: string, marker: Buffer): Promise<{ found: boolean; bytes: number }> {
  let tail = Buffer.alloc(0);
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    const piece = chunk as Buffer;
    bytes += piece.length;
    // The chunk itself, and the seam with the previous one (a marker split across two reads).
    if (piece.includes(marker) || Buffer.concat([tail, piece.subarray(0, marker.length - 1)]).includes(marker)) return { found: true, bytes };
    tail = Buffer.from(piece.subarray(Math.max(0, piece.length - marker.length + 1)));
  }
  return { found: false, bytes };
}

export async function spillDescriptors(directory: string): Promise<{ fd: string; target: string }[]> {
  const found: { fd: string; target: string }[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(`${directory}/.strongroom-spill-`)) found.push({ fd, target });
  }
  return found;
}

async function probe(request: ChildRequest): Promise<SpillProbe> {
  const descriptors = await spillDescriptors(request.spillDirectory);
  let bytes = 0;
  let markerFound = false;
  for (const { fd } of descriptors) {
    const scan = await streamContains(`/proc/self/fd/${fd}`, Buffer.from(request.marker));
    bytes += scan.bytes;
    markerFound ||= scan.found;
  }
  return {
    open: descriptors.length,
    unlinked: descriptors.every(({ target }) => target.endsWith(' (deleted)')),
    bytes,
    markerFound,
    directoryEntries: (await readdir(request.spillDirectory)).length,
  };
}

async function main(request: ChildRequest): Promise<ChildReport> {
  const gc = (globalThis as { gc?: () => void }).gc as () => void;
  gc();
  const startRss = process.memoryUsage().rss;
  let peakRetained = 0;
  const sampler = (): ((position: number) => void) => {
    let next = 0;
    return (position) => {
      if (position < next) return;
      next = position + 8 * 1024 * 1024;
      gc();
      gc();
      peakRetained = Math.max(peakRetained, process.memoryUsage().arrayBuffers);
    };
  };
  const sampleInput = sampler();
  const sampleOutput = sampler();
  const decryptor = decryptStream({ keyring: aesKeyring, spillDirectory: request.spillDirectory });
  const hash = createHash('sha256');
  let emitted = 0;
  const slowReader = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      emitted += chunk.length;
      hash.update(chunk);
      sampleOutput(emitted);
      setImmediate(callback);
    },
  });
  const done = pipeline(decryptor, slowReader);
  done.catch(() => undefined);
  const processed = (): Promise<void> => new Promise((resolve) => decryptor.write(Buffer.alloc(0), () => resolve()));
  let fed = 0;
  let probeResult: SpillProbe | undefined;
  let emittedBeforeEnd = 0;
  let errorCode: string | undefined;
  try {
    for await (const chunk of createReadStream(request.file, { highWaterMark: 64 * 1024 })) {
      if (!decryptor.write(chunk)) await once(decryptor, 'drain');
      fed += (chunk as Buffer).length;
      sampleInput(fed);
      if (!probeResult && fed >= request.probeAt) {
        await processed();
        probeResult = await probe(request);
      }
    }
    await processed();
    emittedBeforeEnd = emitted;
    decryptor.end();
    await done;
  } catch (error) {
    errorCode = (error as { code?: string }).code ?? 'unknown';
  }
  await new Promise((resolve) => setImmediate(resolve));
  return {
    startRss,
    maxRss: process.resourceUsage().maxRSS * 1024,
    peakRetained,
    emitted,
    emittedBeforeEnd,
    sha256: hash.digest('hex'),
    errorCode,
    probe: probeResult,
    spillFilesOpenAtEnd: (await spillDescriptors(request.spillDirectory)).length,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await main(JSON.parse(process.argv[2]) as ChildRequest);
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
