import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { ZERO_HASH, chainHash } from '../../crypto/audit-chain.ts';
import { AuditTrailCorruptError, DEFAULT_DIGEST_EVERY_EVENTS, type AuditStore } from '../../storage/audit-types.ts';
import { parseDigest, previousDigestHash, verifyDigestSignature } from './digests.ts';
import { DIGEST_LINE_PREFIX, EVENT_LINE_PREFIX, exportLines } from './export.ts';
import { auditPublicKey, publicKeyIdOf } from './signing-key.ts';

/**
 * Verification (docs/audit.md "Verification"), streaming over export lines. Event and digest texts
 * are cut out of each line at known offsets and checked as they are: nothing is re-serialised.
 */

export type VerifyResult =
  | {
      ok: true;
      /** Events and digests checked. */
      events: number;
      digests: number;
      /** Events chained but not yet sealed by a digest. */
      eventsAfterLastDigest: number;
    }
  | {
      ok: false;
      /** Events and digests that passed before the break. */
      events: number;
      digests: number;
      /** The 1-based line of the export where the break was found (the last line + 1 at the end). */
      line: number;
      /** The first broken position and why: `event 17: hash does not match`. */
      error: string;
    };

export interface VerifyOptions {
  /**
   * The store's digest count bound (default 1,000): a trail never ends with this many events
   * after its last digest, so one that does has lost its last digests. 0 turns the check off.
   */
  digestEveryEvents?: number;
}

const HASH_MARKER = ',"hash":"';
const EVENT_MARKER = '","event":';
const SIGNATURE_MARKER = ',"signature":"';
const SEQ = /^(0|[1-9][0-9]*)$/;
const HEX64 = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

interface EventLine {
  seq: number;
  hash: string;
  text: string;
}

/** `{"type":"event","seq":S,"hash":"<hex>","event":<text>}`, or undefined. */
function parseEventLine(line: string): EventLine | undefined {
  if (!line.startsWith(EVENT_LINE_PREFIX) || !line.endsWith('}')) return undefined;
  const seqEnd = line.indexOf(HASH_MARKER, EVENT_LINE_PREFIX.length);
  if (seqEnd < 0) return undefined;
  const seqText = line.slice(EVENT_LINE_PREFIX.length, seqEnd);
  const hashStart = seqEnd + HASH_MARKER.length;
  const hash = line.slice(hashStart, hashStart + 64);
  const textStart = hashStart + 64 + EVENT_MARKER.length;
  if (!SEQ.test(seqText) || !HEX64.test(hash) || !line.startsWith(EVENT_MARKER, hashStart + 64)) return undefined;
  const seq = Number(seqText);
  const text = line.slice(textStart, -1);
  if (!Number.isSafeInteger(seq) || text.length === 0) return undefined;
  return { seq, hash, text };
}

/** `{"type":"digest","digest":<text>,"signature":"<base64>"}`, or undefined. */
function parseDigestLine(line: string): { text: string; signature: Buffer } | undefined {
  if (!line.startsWith(DIGEST_LINE_PREFIX) || !line.endsWith('"}')) return undefined;
  const marker = line.lastIndexOf(SIGNATURE_MARKER);
  if (marker < DIGEST_LINE_PREFIX.length) return undefined;
  const signature = line.slice(marker + SIGNATURE_MARKER.length, -2);
  if (!BASE64.test(signature)) return undefined;
  return { text: line.slice(DIGEST_LINE_PREFIX.length, marker), signature: Buffer.from(signature, 'base64') };
}

export async function verifyTrail(
  source: AsyncIterable<string> | Iterable<string>,
  publicKey: string | KeyObject,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const key = typeof publicKey === 'string' ? auditPublicKey(publicKey) : publicKey;
  const keyId = publicKeyIdOf(key);
  const maxUnsealed = options.digestEveryEvents ?? DEFAULT_DIGEST_EVERY_EVENTS;

  let lineNumber = 0;
  let events = 0;
  let digests = 0;
  let lastSeq = 0;
  let lastHash: Buffer = ZERO_HASH;
  let sealedUpTo = 0;
  let previousText: string | undefined;
  /** A digest sealing events not yet seen: an error at the next line or at the end. */
  let ahead: { seq: number; lastSeq: number } | undefined;

  const fail = (error: string): VerifyResult => ({ ok: false, events, digests, line: lineNumber, error });

  try {
    for await (const raw of source) {
      lineNumber++;
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line.length === 0) continue;
      if (ahead) return fail(`digest ${ahead.seq} seals up to event ${ahead.lastSeq} but follows event ${lastSeq}`);

      if (line.startsWith(EVENT_LINE_PREFIX)) {
        const event = parseEventLine(line);
        if (!event) return fail(`line ${lineNumber}: not an audit export line`);
        const expected = lastSeq + 1;
        if (event.seq > expected) return fail(`event ${expected} missing (found ${event.seq})`);
        if (event.seq < expected) return fail(`event ${event.seq} repeated or out of order (expected ${expected})`);
        const hash = chainHash(lastHash, event.text);
        if (hash.toString('hex') !== event.hash) return fail(`event ${event.seq}: hash does not match`);
        lastSeq = event.seq;
        lastHash = hash;
        events++;
        continue;
      }

      const parsed = parseDigestLine(line);
      if (!parsed) return fail(`line ${lineNumber}: not an audit export line`);
      const digest = parseDigest(parsed.text);
      if (!digest) return fail(`line ${lineNumber}: unreadable digest`);
      const expected = digests + 1;
      if (digest.seq > expected) return fail(`digest ${expected} missing (found ${digest.seq})`);
      if (digest.seq < expected) return fail(`digest ${digest.seq} repeated or out of order (expected ${expected})`);
      if (digest.publicKeyId !== keyId) {
        return fail(`digest ${digest.seq}: made with key ${digest.publicKeyId}, not the given public key ${keyId}`);
      }
      if (!verifyDigestSignature(parsed.text, parsed.signature, key)) return fail(`digest ${digest.seq}: bad signature`);
      if (digest.previousDigestHash !== previousDigestHash(previousText).toString('hex')) {
        return fail(`digest ${digest.seq}: previousDigestHash does not match digest ${digest.seq - 1}`);
      }
      if (digest.lastSeq > lastSeq) {
        ahead = { seq: digest.seq, lastSeq: digest.lastSeq }; // an error whatever comes next
        continue;
      }
      if (digest.lastSeq < lastSeq) {
        return fail(`digest ${digest.seq} seals up to event ${digest.lastSeq} but follows event ${lastSeq}`);
      } else if (digest.lastHash !== lastHash.toString('hex')) {
        return fail(`digest ${digest.seq}: lastHash does not match event ${digest.lastSeq}`);
      } else if (digest.eventCount !== digest.lastSeq - sealedUpTo) {
        return fail(`digest ${digest.seq}: eventCount ${digest.eventCount} but ${digest.lastSeq - sealedUpTo} events since the previous digest`);
      }
      sealedUpTo = digest.lastSeq;
      previousText = parsed.text;
      digests++;
    }
  } catch (error) {
    // A store whose rows no longer decode has been edited: that is the break, at this position.
    if (!(error instanceof AuditTrailCorruptError)) throw error;
    lineNumber++;
    return fail(`after event ${lastSeq}: ${error.message}`);
  }

  lineNumber++;
  if (ahead) {
    return fail(`trail ends at event ${lastSeq} but digest ${ahead.seq} seals up to ${ahead.lastSeq}`);
  }
  if (maxUnsealed > 0 && lastSeq - sealedUpTo >= maxUnsealed) {
    return fail(`trail ends with ${lastSeq - sealedUpTo} events after digest ${digests} and no digest (a digest is written every ${maxUnsealed})`);
  }
  return { ok: true, events, digests, eventsAfterLastDigest: lastSeq - sealedUpTo };
}

/** Verifies a trail straight from its store, through the export format. */
export function verifyStore(store: AuditStore, publicKey: string | KeyObject, options: VerifyOptions = {}): Promise<VerifyResult> {
  return verifyTrail(exportLines(store), publicKey, options);
}

/** Verifies an export file (JSON Lines). */
export async function verifyExportFile(path: string, publicKey: string | KeyObject, options: VerifyOptions = {}): Promise<VerifyResult> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    return await verifyTrail(lines, publicKey, options);
  } finally {
    lines.close();
    input.destroy();
  }
}
