import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { terminateUnreferenced } from './parallel/ts-worker.ts';

/**
 * Background supply of ECDSA material for the signing suites. Every message of a signing suite
 * needs a fresh key pair (framework/default-cmm.md) and one signature; in OpenSSL 3.0 each P-384
 * key generation or signature is a generic-curve scalar multiplication costing about a
 * millisecond, which would dominate small messages. Both multiplications by the base point do not
 * depend on the message, so worker threads make them ahead of time:
 * - the message's key pair (private KeyObject, its scalar d, the compressed public key), and
 * - a one-time nonce k with r = (k·G).x mod n and k⁻¹ mod n,
 * leaving only s = k⁻¹(h + r·d) mod n for the encrypting thread (ecdsa-presigned.ts).
 *
 * Each entry is handed out once and forgotten. The workers are unref'd (they never keep a process
 * alive) and started on first use; if they fail, callers fall back to generating on their own thread.
 *
 * Entries come back on a MessagePort per worker that take() drains synchronously
 * (receiveMessageOnPort), not through 'message' events: a caller encrypting message after message
 * in a loop that awaits only promises never lets the event loop turn, and an event-fed pool stayed
 * empty for it (every message then paid for its own key pair and signature on the calling thread).
 */
export interface PresignMaterial {
  curve: 'P-256' | 'P-384';
  privateKey: KeyObject;
  publicKeyBase64: string;
  d: bigint;
  r: bigint;
  kInverse: bigint;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createECDH, createPrivateKey } = require('node:crypto');
const ORDER = {
  'P-256': 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  'P-384': 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
};
const NODE_CURVE = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };
const SIZE = { 'P-256': 32, 'P-384': 48 };
// k⁻¹ mod n by the extended Euclidean algorithm: ~110 µs for P-384 here, Fermat's k^(n-2) ~620 µs.
function modInverse(value, modulus) {
  let [r0, r1] = [value % modulus, modulus];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % modulus) + modulus) % modulus;
}
parentPort.on('message', ({ curve, count }) => {
  const n = ORDER[curve];
  const entries = [];
  while (entries.length < count) {
    // Both key pairs come from ECDH, not generateKeyPairSync: on Node 20, exporting a generated EC
    // key as JWK can deadlock its thread, when a garbage collection inside the export finalises
    // the key's generation job, which takes the lock the export holds (a signing worker hung so,
    // at exit, in a full bench/esdk.sh run: ~KeyGenJob under ExportJWKEcKey).
    const size = SIZE[curve];
    const signing = createECDH(NODE_CURVE[curve]);
    const publicPoint = signing.generateKeys();
    const d = signing.getPrivateKey();
    const privateKey = createPrivateKey({ format: 'jwk', key: {
      kty: 'EC',
      crv: curve,
      d: Buffer.concat([Buffer.alloc(size - d.length), d]).toString('base64url'),
      x: publicPoint.subarray(1, 1 + size).toString('base64url'),
      y: publicPoint.subarray(1 + size).toString('base64url'),
    } });
    const compressed = signing.getPublicKey('base64', 'compressed');
    const scalar = BigInt('0x' + d.toString('hex'));
    d.fill(0);
    // The nonce needs no KeyObject: a bare ECDH key pair is the cheapest k with k·G.
    const nonce = createECDH(NODE_CURVE[curve]);
    const point = nonce.generateKeys();
    const r = BigInt('0x' + point.subarray(1, 1 + size).toString('hex')) % n;
    const k = BigInt('0x' + nonce.getPrivateKey('hex'));
    if (r === 0n) continue;
    entries.push({ curve, privateKey, publicKeyBase64: compressed, d: scalar, r, kInverse: modInverse(k, n) });
  }
  workerData.port.postMessage(entries);
});
`;

const BATCH = 8;
const LOW_WATER = 16;
const HIGH_WATER = 64;
const IDLE_MS = 2000;

interface Helper {
  worker: Worker;
  /** Where the worker's batches arrive; read only by #drain. */
  results: MessagePort;
}

class Pool {
  readonly #ready: PresignMaterial[] = [];
  readonly #curve: 'P-256' | 'P-384';
  #helpers: Helper[] | undefined;
  #inFlight = 0;
  #broken = false;
  #idle: NodeJS.Timeout | undefined;

  constructor(curve: 'P-256' | 'P-384') {
    this.#curve = curve;
  }

  take(): PresignMaterial | undefined {
    this.#drain();
    const entry = this.#ready.pop();
    this.#refill();
    this.#idle?.refresh();
    return entry;
  }

  /** Stops the workers after a quiet spell: the pool costs nothing when signing suites are not in use. */
  #stop(): void {
    for (const { worker, results } of this.#helpers ?? []) {
      results.close();
      terminateUnreferenced(worker);
    }
    this.#helpers = undefined;
    this.#inFlight = 0;
    this.#idle = undefined;
  }

  /** Takes every batch the workers have finished, without waiting for the event loop. */
  #drain(): void {
    for (const { results } of this.#helpers ?? []) {
      for (let received = receiveMessageOnPort(results); received; received = receiveMessageOnPort(results)) {
        this.#inFlight--;
        this.#ready.push(...(received.message as PresignMaterial[]));
      }
    }
  }

  #refill(): void {
    if (this.#broken || this.#ready.length + this.#inFlight * BATCH >= LOW_WATER) return;
    const helpers = this.#start();
    if (!helpers) return;
    // Ask every worker for a batch, up to the high-water mark.
    for (const { worker } of helpers) {
      if (this.#ready.length + (this.#inFlight + 1) * BATCH > HIGH_WATER) break;
      this.#inFlight++;
      worker.postMessage({ curve: this.#curve, count: BATCH });
    }
  }

  #start(): Helper[] | undefined {
    if (this.#helpers) return this.#helpers;
    try {
      // Two workers, but never as many as the cores: the calling thread needs one of its own (its
      // SHA-384 and AES are a signed message's longest chain). Two workers on two cores took it
      // time slices: 1 MB 0x0578 encrypts 1.15-1.20x faster with one (docs/esdk.md).
      const count = Math.max(1, Math.min(2, availableParallelism() - 1));
      this.#helpers = Array.from({ length: count }, () => {
        const { port1: results, port2: port } = new MessageChannel();
        // Plain JavaScript: no loader hooks (tsx and the like) are needed or inherited.
        const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { port }, transferList: [port] });
        worker.on('error', () => {
          this.#broken = true;
        });
        // Neither keeps a process alive (the port has no listener, so it is read only by #drain).
        worker.unref();
        results.unref();
        return { worker, results };
      });
      this.#idle = setTimeout(() => this.#stop(), IDLE_MS);
      this.#idle.unref();
      return this.#helpers;
    } catch {
      this.#broken = true;
      return undefined;
    }
  }
}

const pools = { 'P-256': new Pool('P-256'), 'P-384': new Pool('P-384') };

/** A fresh, never-used entry for the curve, or undefined when none is ready (caller generates). */
export function takePresignMaterial(curve: 'P-256' | 'P-384'): PresignMaterial | undefined {
  return pools[curve].take();
}
