/**
 * Encryption SDK benchmark: Strongroom's SDK (src/esdk) next to the official AWS Encryption SDK
 * (@aws-crypto/client-node) and raw AES-256-GCM, in the same process and run (issue 7).
 *
 *   node --import tsx bench/esdk.ts [--duration 3] [--repeats 3] [--cases PATTERN] [--big-mb 100]
 *
 * Cases (names: <size>-<suite>-<frame>-<buffered|streaming>-<encrypt|decrypt>):
 * - 1 KB messages, ops/s; 1 MB and 100 MB messages, MB/s of plaintext;
 * - suites 0x0578 (signing, the default) and 0x0478 (committing, no signature);
 * - frames of 4 KB (the default) and 64 KB (1 KB messages: 4 KB only);
 * - buffered (whole message in memory) and streaming (64 KB chunks through the Duplex streams).
 * Each implementation warms up for a third of `duration`, then runs `repeats` times for `duration`
 * seconds (at least one operation each); the median is printed. Raw AES-GCM is one cipher over the whole plaintext (buffered) or fed the same
 * 64 KB chunks (streaming), with a fresh key and IV per message: the ceiling for either SDK.
 * Both SDKs use a raw AES-256 keyring, so no network is involved.
 */
import { buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier, type AlgorithmSuiteIdentifier } from '@aws-crypto/client-node';
import { createCipheriv, createDecipheriv, randomBytes, type DecipherGCM } from 'node:crypto';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { RawAesKeyring, decrypt, decryptStream, encrypt, encryptStream } from '../src/esdk/index.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    repeats: { type: 'string', default: '3' },
    cases: { type: 'string', default: '' },
    'big-mb': { type: 'string', default: '100' },
  },
});
const DURATION_MS = Number(values.duration) * 1000;
const REPEATS = Number(values.repeats);
const CASE_FILTER = values.cases ? new RegExp(values.cases) : undefined;
const BIG = Number(values['big-mb']) * 1024 * 1024;
const CHUNK = 64 * 1024;

const wrappingKey = randomBytes(32);
const ours = new RawAesKeyring({ keyNamespace: 'bench', keyName: 'aes-256', wrappingKey });
const theirs = new RawAesKeyringNode({
  keyNamespace: 'bench',
  keyName: 'aes-256',
  unencryptedMasterKey: new Uint8Array(wrappingKey),
  wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
});
const official = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

interface Case {
  name: string;
  size: number;
  suiteId: number;
  frameLength: number;
  mode: 'buffered' | 'streaming';
  op: 'encrypt' | 'decrypt';
}

type Operation = () => Promise<unknown>;

function chunks(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) out.push(bytes.subarray(i, i + CHUNK));
  return out;
}

async function drain(input: Buffer[], stream: Duplex): Promise<number> {
  let bytes = 0;
  await pipeline(Readable.from(input), stream, new Writable({ highWaterMark: CHUNK, write(chunk: Buffer, _encoding, callback) { bytes += chunk.length; callback(); } }));
  return bytes;
}

function rawGcm(plaintext: Buffer, mode: Case['mode'], op: Case['op']): Operation {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const sealer = createCipheriv('aes-256-gcm', key, iv);
  const sealed = Buffer.concat([sealer.update(plaintext), sealer.final()]);
  const tag = sealer.getAuthTag();
  const input = op === 'encrypt' ? plaintext : sealed;
  const parts = chunks(input);
  return async () => {
    const cipher = op === 'encrypt' ? createCipheriv('aes-256-gcm', randomBytes(32), randomBytes(12)) : createDecipheriv('aes-256-gcm', key, iv);
    if (op === 'decrypt') (cipher as DecipherGCM).setAuthTag(tag);
    if (mode === 'buffered') {
      cipher.update(input);
    } else {
      for (const part of parts) cipher.update(part);
    }
    cipher.final();
  };
}

async function operations(c: Case): Promise<Record<string, Operation>> {
  const plaintext = randomBytes(c.size);
  const ourOptions = { keyring: ours, suiteId: c.suiteId, frameLength: c.frameLength };
  // Fresh option objects per call: the official encrypt() writes plaintextLength into the one it gets.
  const theirOptions = { suiteId: c.suiteId as AlgorithmSuiteIdentifier, frameLength: c.frameLength };
  const ourMessage = (await encrypt(plaintext, ourOptions)).ciphertext;
  const theirMessage = Buffer.from((await official.encrypt(theirs, plaintext, { ...theirOptions })).result);
  const plainParts = chunks(plaintext);
  const ourParts = chunks(ourMessage);
  const theirParts = chunks(theirMessage);
  const result: Record<string, Operation> = {};
  if (c.mode === 'buffered') {
    result.strongroom = c.op === 'encrypt' ? () => encrypt(plaintext, ourOptions) : () => decrypt(ourMessage, { keyring: ours });
    result.official = c.op === 'encrypt' ? () => official.encrypt(theirs, plaintext, { ...theirOptions }) : () => official.decrypt(theirs, theirMessage);
  } else {
    result.strongroom = c.op === 'encrypt' ? () => drain(plainParts, encryptStream(ourOptions)) : () => drain(ourParts, decryptStream({ keyring: ours }));
    result.official =
      c.op === 'encrypt'
        ? () => drain(plainParts, official.encryptStream(theirs, { ...theirOptions }) as unknown as Duplex)
        : () => drain(theirParts, official.decryptStream(theirs) as unknown as Duplex);
  }
  result['raw-aes-gcm'] = rawGcm(plaintext, c.mode, c.op);
  return result;
}

/** Operations per second over one timed run of at least one operation. */
async function measure(operation: Operation, durationMs = DURATION_MS): Promise<number> {
  const start = performance.now();
  let count = 0;
  let elapsed = 0;
  do {
    await operation();
    count++;
    elapsed = performance.now() - start;
  } while (elapsed < durationMs);
  return (count * 1000) / elapsed;
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function allCases(): Case[] {
  const cases: Case[] = [];
  for (const size of [1024, 1024 * 1024, BIG]) {
    for (const suiteId of [0x0578, 0x0478]) {
      for (const frameLength of size === 1024 ? [4096] : [4096, 65536]) {
        for (const mode of ['buffered', 'streaming'] as const) {
          for (const op of ['encrypt', 'decrypt'] as const) {
            const sizeName = size === 1024 ? '1KB' : `${size / 1024 / 1024}MB`;
            const name = `${sizeName}-${suiteId.toString(16).padStart(4, '0')}-${frameLength / 1024}K-${mode}-${op}`;
            cases.push({ name, size, suiteId, frameLength, mode, op });
          }
        }
      }
    }
  }
  return cases.filter((c) => !CASE_FILTER || CASE_FILTER.test(c.name));
}

function format(c: Case, opsPerSecond: number): string {
  return c.size === 1024 ? `${opsPerSecond.toFixed(0)} ops/s` : `${((opsPerSecond * c.size) / 1e6).toFixed(0)} MB/s`;
}

const header = ['case', 'strongroom', 'official', 'raw-aes-gcm', 'vs official', 'of raw'];
console.log(`# ESDK bench: ${REPEATS} × ${DURATION_MS / 1000} s per implementation and case, median`);
console.log(header.join('\t'));
for (const c of allCases()) {
  const ops = await operations(c);
  const medians: Record<string, number> = {};
  for (const [implementation, operation] of Object.entries(ops)) {
    // Warm-up (JIT, lazily started helper threads, the signing-key pool), not counted.
    await measure(operation, DURATION_MS / 3);
    const samples: number[] = [];
    for (let r = 0; r < REPEATS; r++) samples.push(await measure(operation));
    medians[implementation] = median(samples);
  }
  console.log(
    [
      c.name,
      format(c, medians.strongroom),
      format(c, medians.official),
      format(c, medians['raw-aes-gcm']),
      `${(medians.strongroom / medians.official).toFixed(2)}×`,
      `${((medians.strongroom / medians['raw-aes-gcm']) * 100).toFixed(0)}%`,
    ].join('\t'),
  );
}
