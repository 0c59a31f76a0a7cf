/**
 * Worker thread for large buffered messages (frame-pool.ts): seals or opens a contiguous run of
 * frames between shared buffers, with the same BodyCrypto the calling thread uses.
 */
import type { KeyObject } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { BodyCrypto, IV_LENGTH, TAG_LENGTH } from '../body.ts';
import { EsdkError } from '../errors.ts';
import { getAlgorithmSuite } from '../suites.ts';

export interface FrameJob {
  op: 'seal' | 'open';
  suiteId: number;
  key: KeyObject;
  messageId: Uint8Array;
  frameLength: number;
  /** Regular frames firstSequence … lastSequence (inclusive; none when last < first). */
  firstSequence: number;
  lastSequence: number;
  /** Final frame content length, or -1 when the final frame is not part of this job. */
  finalLength: number;
  input: SharedArrayBuffer;
  inputOffset: number;
  output: SharedArrayBuffer;
  outputOffset: number;
}

export type FrameJobResult = { ok: true } | { ok: false; code: string; message: string };

const FRAME_HEAD = 4 + IV_LENGTH;
const FINAL_HEAD = 4 + 4 + IV_LENGTH + 4;

export function runFrameJob(job: FrameJob): void {
  const body = new BodyCrypto(getAlgorithmSuite(job.suiteId), job.key, job.messageId);
  const input = Buffer.from(job.input);
  const output = Buffer.from(job.output);
  let inOffset = job.inputOffset;
  let outOffset = job.outputOffset;
  const frameLength = job.frameLength;
  if (job.op === 'seal') {
    for (let sequence = job.firstSequence; sequence <= job.lastSequence; sequence++) {
      output.writeUInt32BE(sequence, outOffset);
      const iv = body.frameIv(sequence);
      iv.copy(output, outOffset + 4);
      outOffset = body.seal('frame', sequence, iv, input.subarray(inOffset, inOffset + frameLength), output, outOffset + FRAME_HEAD);
      inOffset += frameLength;
    }
    if (job.finalLength >= 0) {
      const sequence = job.lastSequence + 1;
      output.writeUInt32BE(0xffffffff, outOffset);
      output.writeUInt32BE(sequence, outOffset + 4);
      const iv = body.frameIv(sequence);
      iv.copy(output, outOffset + 8);
      output.writeUInt32BE(job.finalLength, outOffset + 8 + IV_LENGTH);
      body.seal('final', sequence, iv, input.subarray(inOffset, inOffset + job.finalLength), output, outOffset + FINAL_HEAD);
    }
    return;
  }
  // open: the caller checked the framing (sequence numbers, final-frame marker and length).
  for (let sequence = job.firstSequence; sequence <= job.lastSequence; sequence++) {
    const start = inOffset + FRAME_HEAD;
    const plaintext = body.open('frame', sequence, input.subarray(inOffset + 4, start), input.subarray(start, start + frameLength), input.subarray(start + frameLength, start + frameLength + TAG_LENGTH));
    plaintext.copy(output, outOffset);
    outOffset += frameLength;
    inOffset = start + frameLength + TAG_LENGTH;
  }
  if (job.finalLength >= 0) {
    const sequence = job.lastSequence + 1;
    const start = inOffset + FINAL_HEAD;
    const plaintext = body.open('final', sequence, input.subarray(inOffset + 8, inOffset + 8 + IV_LENGTH), input.subarray(start, start + job.finalLength), input.subarray(start + job.finalLength, start + job.finalLength + TAG_LENGTH));
    plaintext.copy(output, outOffset);
  }
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (job: FrameJob) => {
    let result: FrameJobResult;
    try {
      runFrameJob(job);
      result = { ok: true };
    } catch (error) {
      result = error instanceof EsdkError ? { ok: false, code: error.code, message: error.message } : { ok: false, code: 'AuthenticationFailed', message: 'frame processing failed' };
    }
    port.postMessage(result);
  });
}
