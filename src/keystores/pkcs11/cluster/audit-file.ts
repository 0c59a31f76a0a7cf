/**
 * The per-cluster HSM audit log, independent of the KMS trail: one JSON line per member operation
 * (each encrypt, decrypt and random call, with its mechanism, CKA_ID and KMS request id) and per
 * lifecycle event (key created, replicated, destroyed, owed operations applied at resync, members
 * taken out and why). Lines name members, operations and CKA_IDs (hex), never key bytes,
 * plaintext or PINs. Created 0600.
 *
 * Crypto lines are many, so they are buffered and appended in one write per batch: at most
 * FLUSH_MS after the first line of the batch, when the batch reaches BATCH_BYTES, and at flush()
 * (the cluster calls it when it closes). A crash can lose the last batch's crypto lines, never a
 * lifecycle line: those are rare, so each is appended at once (after anything buffered before it,
 * keeping the order), and is on disk when the create or destroy that caused it returns.
 */
import { appendFileSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { HsmAuditEvent, HsmAuditLog } from './cluster-types.ts';

const FLUSH_MS = 100;
const BATCH_BYTES = 1 << 20;
const BUFFERED_OPERATIONS = new Set(['encrypt', 'decrypt', 'random']);

export function hsmAuditFile(path: string, clusterId: string, now: () => number = Date.now): HsmAuditLog & { flush(): void } {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  const format = lineFormatter(clusterId, now);
  // Lines are encoded into one buffer as they come, so no string outlives its request (buffered
  // strings would survive young-generation collections and be copied into the old generation).
  const batch = Buffer.allocUnsafe(BATCH_BYTES);
  let length = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (length === 0) return;
    appendFileSync(path, batch.subarray(0, length), { mode: 0o600 });
    length = 0;
  };
  const log = (event: HsmAuditEvent): void => {
    const line = format(event);
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    if (length + line.length * 3 > BATCH_BYTES) flush();
    if (line.length * 3 > BATCH_BYTES) appendFileSync(path, line, { mode: 0o600 });
    else length += batch.write(line, length, 'utf8');
    if (!BUFFERED_OPERATIONS.has(event.operation)) return flush();
    if (!timer) {
      timer = setTimeout(flush, FLUSH_MS);
      timer.unref();
    }
  };
  return Object.assign(log, { flush });
}

/**
 * One event as a JSON line, fields in a fixed order. Written out field by field rather than by
 * JSON.stringify of a spread object, and with the timestamp formatted once per millisecond
 * (new Date().toISOString() alone costs ~1 µs): about half the cost per line (docs/hsm-cluster.md).
 * Every value is still JSON-quoted; the few distinct member names, operations and codes once.
 */
function lineFormatter(clusterId: string, now: () => number): (event: HsmAuditEvent) => string {
  const head = `,"clusterId":${JSON.stringify(clusterId)},"member":`;
  const quotedOnce = new Map<string, string>();
  const quote = (value: string): string => {
    let quoted = quotedOnce.get(value);
    if (quoted === undefined) {
      quoted = JSON.stringify(value);
      if (quotedOnce.size < 1_024) quotedOnce.set(value, quoted);
    }
    return quoted;
  };
  let lastMs = Number.NaN;
  let lastTime = '';
  return (event) => {
    const ms = now();
    if (ms !== lastMs) {
      lastMs = ms;
      lastTime = new Date(ms).toISOString();
    }
    let line = `{"time":"${lastTime}"${head}${quote(event.member)},"operation":${quote(event.operation)}`;
    if (event.mechanism !== undefined) line += `,"mechanism":${quote(event.mechanism)}`;
    if (event.objectId !== undefined) line += `,"objectId":${JSON.stringify(event.objectId)}`;
    line += `,"outcome":${quote(event.outcome)}`;
    if (event.errorCode !== undefined) line += `,"errorCode":${quote(event.errorCode)}`;
    if (event.requestId !== undefined) line += `,"requestId":${JSON.stringify(event.requestId)}`;
    if (event.kmsOperation !== undefined) line += `,"kmsOperation":${quote(event.kmsOperation)}`;
    return `${line}}\n`;
  };
}
