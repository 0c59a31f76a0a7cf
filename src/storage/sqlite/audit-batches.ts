import { type AuditEntryInput, type AuditEventRow, AuditTrailCorruptError } from '../audit-types.ts';

/**
 * How `<data-dir>/audit.db` stores events (docs/audit.md "Storage"): one `batches` row per append
 * transaction, holding its events' texts, chain hashes and indexed fields together. One row, not
 * one per event, because the per-event rows and their index entries were most of what the trail
 * cost a request (measured: docs/audit.md "Where the audit path's cost goes").
 *
 * A row:
 * - `first_seq`, `last_seq`: the seqs of its first and last event (last - first + 1 events);
 * - `min_time`, `max_time`: the earliest and latest event time (ms since the epoch), for time ranges;
 * - `errors`: how many of its events have an error code (a partial index finds those rows);
 * - `hashes`: the events' 32-byte chain hashes, concatenated in order;
 * - `meta`: JSON, one array per event: `[time, eventName, principalArn|null, errorCode|null,
 *   cryptoSuccess 0|1, textLength, [keyId, …]]`, textLength in UTF-16 code units;
 * - `texts`: the events' texts, concatenated in order (each cut out by its textLength).
 *
 * The chain covers the texts; `meta` is an index beside them, as the per-event columns were.
 */

/** Events per row at most: an append of more is split, so no row is costly to read back. */
export const MAX_EVENTS_PER_BATCH = 256;

const HASH_BYTES = 32;

/** A batch row as stored (better-sqlite3's column values). */
export interface BatchRow {
  first_seq: number;
  last_seq: number;
  min_time: number;
  max_time: number;
  errors: number;
  hashes: Buffer;
  meta: string;
  texts: string;
}

/** An event as read back, with the keys it names (what `event_keys` rows held). */
export interface StoredEvent extends AuditEventRow {
  keyIds: string[];
}

type MetaEntry = [number, string, string | null, string | null, 0 | 1, number, string[]];

/** The row for events `firstSeq`… with their chain hashes (one per entry, in order). */
export function encodeBatch(firstSeq: number, entries: readonly AuditEntryInput[], hashes: readonly Buffer[]): BatchRow {
  let minTime = Number.POSITIVE_INFINITY;
  let maxTime = Number.NEGATIVE_INFINITY;
  let errors = 0;
  const meta: MetaEntry[] = [];
  const texts: string[] = [];
  for (const entry of entries) {
    const time = entry.time.getTime();
    if (time < minTime) minTime = time;
    if (time > maxTime) maxTime = time;
    if (entry.errorCode !== undefined) errors++;
    meta.push([
      time,
      entry.eventName,
      entry.principalArn ?? null,
      entry.errorCode ?? null,
      entry.cryptoSuccess ? 1 : 0,
      entry.text.length,
      entry.keyIds as string[], // serialised at once below, never mutated
    ]);
    texts.push(entry.text);
  }
  return {
    first_seq: firstSeq,
    last_seq: firstSeq + entries.length - 1,
    min_time: minTime,
    max_time: maxTime,
    errors,
    hashes: Buffer.concat(hashes as Buffer[]),
    meta: JSON.stringify(meta),
    texts: texts.join(''),
  };
}

/** The distinct (key, crypto success) pairs a batch names: its `batch_keys` rows. */
export function batchKeys(entries: readonly AuditEntryInput[]): [string, 0 | 1][] {
  const seen = new Set<string>();
  const pairs: [string, 0 | 1][] = [];
  for (const entry of entries) {
    const success = entry.cryptoSuccess ? 1 : 0;
    for (const keyId of entry.keyIds) {
      const id = `${success}${keyId}`;
      if (seen.has(id)) continue;
      seen.add(id);
      pairs.push([keyId, success]);
    }
  }
  return pairs;
}

/**
 * The events of a stored row. A row that does not decode (edited by hand: counts, lengths or
 * hashes that do not add up) throws, naming the row, rather than yield events that were never
 * appended; `audit verify` reports it as the trail's break.
 */
export function decodeBatch(row: BatchRow): StoredEvent[] {
  const firstSeq = Number(row.first_seq);
  const malformed = (why: string) =>
    new AuditTrailCorruptError(`the batch of events ${firstSeq}–${Number(row.last_seq)} is malformed (${why})`);
  let meta: unknown;
  try {
    meta = JSON.parse(row.meta);
  } catch {
    throw malformed('its meta is not JSON');
  }
  const count = Number(row.last_seq) - firstSeq + 1;
  if (!Array.isArray(meta) || meta.length !== count) throw malformed('its meta does not list one entry per event');
  if (!Buffer.isBuffer(row.hashes) || row.hashes.length !== count * HASH_BYTES) {
    throw malformed('its hashes are not 32 bytes per event');
  }
  const events: StoredEvent[] = [];
  let offset = 0;
  for (let index = 0; index < count; index++) {
    const entry = meta[index] as unknown;
    if (!isMetaEntry(entry)) throw malformed(`the meta of event ${firstSeq + index} is not well-formed`);
    const [time, eventName, principalArn, errorCode, cryptoSuccess, length, keyIds] = entry;
    if (offset + length > row.texts.length) throw malformed('its texts are shorter than their lengths');
    events.push({
      seq: firstSeq + index,
      time: new Date(time),
      text: row.texts.slice(offset, offset + length),
      hash: row.hashes.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES),
      eventName,
      principalArn: principalArn ?? undefined,
      errorCode: errorCode ?? undefined,
      cryptoSuccess: cryptoSuccess === 1,
      keyIds,
    });
    offset += length;
  }
  if (offset !== row.texts.length) throw malformed('its texts are longer than their lengths');
  return events;
}

function isMetaEntry(value: unknown): value is MetaEntry {
  if (!Array.isArray(value) || value.length !== 7) return false;
  const [time, eventName, principalArn, errorCode, cryptoSuccess, length, keyIds] = value as unknown[];
  const nullableString = (item: unknown) => item === null || typeof item === 'string';
  return (
    Number.isSafeInteger(time) &&
    typeof eventName === 'string' &&
    nullableString(principalArn) &&
    nullableString(errorCode) &&
    (cryptoSuccess === 0 || cryptoSuccess === 1) &&
    Number.isSafeInteger(length) &&
    (length as number) >= 0 &&
    Array.isArray(keyIds) &&
    keyIds.every((keyId) => typeof keyId === 'string')
  );
}
