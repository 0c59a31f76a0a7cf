/**
 * Worker thread that hashes a streamed message beside the stream (stream-hash.ts): one job at a
 * time, each answered in shared memory (ring-hash.ts), never by message.
 */
import { parentPort } from 'node:worker_threads';
import { runRingHash, type RingHashJob } from './ring-hash.ts';

if (parentPort) parentPort.on('message', (job: RingHashJob) => runRingHash(job));
