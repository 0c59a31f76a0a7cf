/** A hash worker that takes jobs and never starts on them (test/esdk/stream-hash.test.ts). */
import { parentPort } from 'node:worker_threads';

parentPort?.on('message', () => {});
