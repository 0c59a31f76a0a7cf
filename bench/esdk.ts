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
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RawAesKeyring, decrypt, decryptStream, encrypt, encryptStream } from '../src/esdk/index.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    repeats: { type: 'string', default: '3' },
    cases: { type: 'string', default: '' },
    'big-mb': { type: 'string', default: '100' },
    /** Also write the results as a Markdown table (bench/esdk.sh puts it into bench/RESULTS.md). */
    markdown: { type: 'string' },
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

interface Row {
  c: Case;
  medians: Record<string, number>;
  samples: Record<string, number[]>;
}

const header = ['case', 'strongroom', 'official', 'raw-aes-gcm', 'vs official', 'of raw'];
console.log(`# ESDK bench: ${REPEATS} × ${DURATION_MS / 1000} s per implementation and case, median`);
console.log(header.join('\t'));
const rows: Row[] = [];
for (const c of allCases()) {
  const ops = await operations(c);
  const samples: Record<string, number[]> = {};
  // Warm-up (JIT, lazily started helper threads, the signing-key pool), not counted.
  for (const [implementation, operation] of Object.entries(ops)) {
    await measure(operation, DURATION_MS / 3);
    samples[implementation] = [];
  }
  // Repetitions interleaved (strongroom, official, raw, strongroom, …) so drift touches all three.
  for (let r = 0; r < REPEATS; r++) {
    for (const [implementation, operation] of Object.entries(ops)) samples[implementation].push(await measure(operation));
  }
  const medians = Object.fromEntries(Object.entries(samples).map(([name, runs]) => [name, median(runs)]));
  rows.push({ c, medians, samples });
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
if (values.markdown) writeFileSync(values.markdown, markdown(rows));

/** The targets: 5× official at 1 KB; 3× at 1 MB and 100 MB; 60% of raw at 100 MB, 0x0478, 64 KB frames. */
function targets(row: Row): string[] {
  const { c, medians } = row;
  const ratio = medians.strongroom / medians.official;
  const verdicts: string[] = [];
  if (c.size === 1024) verdicts.push(`≥ 5× official: ${ratio >= 5 ? 'met' : '**not met**'}`);
  else verdicts.push(`≥ 3× official: ${ratio >= 3 ? 'met' : '**not met**'}`);
  if (c.size === BIG && c.suiteId === 0x0478 && c.frameLength === 65536) {
    const ofRaw = medians.strongroom / medians['raw-aes-gcm'];
    verdicts.push(`≥ 60% of raw: ${ofRaw >= 0.6 ? 'met' : '**not met**'}`);
  }
  return verdicts;
}

function markdown(all: Row[]): string {
  const lines = [
    '| case | Strongroom | official @aws-crypto/client-node | raw AES-256-GCM | vs official | of raw | target |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const row of all) {
    const { c, medians } = row;
    lines.push(
      `| ${c.name} | ${format(c, medians.strongroom)} | ${format(c, medians.official)} | ${format(c, medians['raw-aes-gcm'])} | ` +
        `${(medians.strongroom / medians.official).toFixed(2)}× | ${((medians.strongroom / medians['raw-aes-gcm']) * 100).toFixed(0)}% | ${targets(row).join('; ')} |`,
    );
  }
  const met = all.flatMap(targets).filter((verdict) => verdict.endsWith(': met')).length;
  const total = all.flatMap(targets).length;
  lines.push('', `Targets met: ${met} of ${total} case checks.`, '');
  lines.push('Every run (ops/s of each repetition, in order): ');
  lines.push('');
  for (const row of all) {
    const runs = Object.entries(row.samples).map(([name, values]) => `${name} ${values.map((v) => v.toFixed(1)).join(' / ')}`);
    lines.push(`- ${row.c.name}: ${runs.join('; ')}`);
  }
  return lines.join('\n') + '\n';
}
