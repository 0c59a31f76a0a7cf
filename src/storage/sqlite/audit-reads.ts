import type Database from 'better-sqlite3';
import type { AuditEventRow, AuditQuery } from '../audit-types.ts';
import { type BatchRow, type StoredEvent, decodeBatch } from './audit-batches.ts';

type Row = Record<string, unknown>;

/** Batch rows read per statement by readEvents and query. */
const READ_BATCHES = 64;

/**
 * The read side of `audit.db`'s batch rows (audit-batches.ts): events by seq, queries and the
 * last cryptographic use of a key. SQL narrows the batches through their indexes; the events of
 * each candidate batch are decoded and matched here. Pages break between batches, never inside one.
 */
export class BatchReader {
  constructor(private readonly statement: (sql: string) => Database.Statement) {}

  readEvents(fromSeq: number, limit: number, toSeq = Number.MAX_SAFE_INTEGER): AuditEventRow[] {
    const events: AuditEventRow[] = [];
    if (limit <= 0 || toSeq < fromSeq) return events;
    // From the batch holding fromSeq (or the first after it), batch by batch in seq order.
    const start = this.statement('SELECT max(first_seq) AS seq FROM batches WHERE first_seq <= ?').get(fromSeq) as Row;
    let after = start.seq === null ? Number.MIN_SAFE_INTEGER : Number(start.seq) - 1;
    const page = this.statement('SELECT * FROM batches WHERE first_seq > ? AND first_seq <= ? ORDER BY first_seq LIMIT ?');
    for (;;) {
      const rows = page.all(after, toSeq, READ_BATCHES) as BatchRow[];
      for (const row of rows) {
        for (const event of decodeBatch(row)) {
          if (event.seq < fromSeq || event.seq > toSeq) continue;
          events.push(rowOf(event));
          if (events.length >= limit) return events;
        }
      }
      if (rows.length < READ_BATCHES) return events;
      after = Number(rows[rows.length - 1].first_seq);
    }
  }

  /**
   * SQL narrows the batches (time overlap, errors, key, seq bounds) through the indexes; each
   * candidate batch's events are then matched exactly against every filter.
   */
  query(query: AuditQuery): AuditEventRow[] {
    const conditions: string[] = [];
    const values: unknown[] = [];
    const add = (condition: string, value: unknown) => {
      conditions.push(condition);
      values.push(value);
    };
    if (query.from !== undefined) add('max_time >= ?', query.from.getTime());
    if (query.to !== undefined) add('min_time < ?', query.to.getTime());
    if (query.errorCode !== undefined || query.onlyErrors) conditions.push('errors > 0');
    if (query.keyId !== undefined) add('first_seq IN (SELECT first_seq FROM batch_keys WHERE key_id = ?)', query.keyId);
    if (query.afterSeq !== undefined) add('last_seq > ?', query.afterSeq);
    if (query.beforeSeq !== undefined) add('first_seq < ?', query.beforeSeq);
    const descending = query.order === 'desc';
    const matches = (event: StoredEvent): boolean =>
      (query.from === undefined || event.time.getTime() >= query.from.getTime()) &&
      (query.to === undefined || event.time.getTime() < query.to.getTime()) &&
      (query.principalArn === undefined || event.principalArn === query.principalArn) &&
      (query.eventName === undefined || event.eventName === query.eventName) &&
      (query.errorCode === undefined || event.errorCode === query.errorCode) &&
      (!query.onlyErrors || event.errorCode !== undefined) &&
      (query.keyId === undefined || event.keyIds.includes(query.keyId)) &&
      (query.afterSeq === undefined || event.seq > query.afterSeq) &&
      (query.beforeSeq === undefined || event.seq < query.beforeSeq);
    const events: AuditEventRow[] = [];
    if (query.limit <= 0) return events;
    // Paged by first_seq, so a page boundary never splits a batch.
    const pageCondition = descending ? 'first_seq < ?' : 'first_seq > ?';
    const where = `WHERE ${[...conditions, pageCondition].join(' AND ')}`;
    const page = this.statement(
      `SELECT * FROM batches ${where} ORDER BY first_seq ${descending ? 'DESC' : 'ASC'} LIMIT ${READ_BATCHES}`,
    );
    let cursor = descending ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER;
    for (;;) {
      const rows = page.all(...values, cursor) as BatchRow[];
      for (const row of rows) {
        const decoded = decodeBatch(row);
        if (descending) decoded.reverse();
        for (const event of decoded) {
          if (!matches(event)) continue;
          events.push(rowOf(event));
          if (events.length >= query.limit) return events;
        }
      }
      if (rows.length < READ_BATCHES) return events;
      cursor = Number(rows[rows.length - 1].first_seq);
    }
  }

  lastCryptoUse(keyId: string): AuditEventRow | undefined {
    // The newest batch with a successful cryptographic event naming the key, then that event in it.
    const rows = this.statement(
      `SELECT batches.* FROM batch_keys JOIN batches ON batches.first_seq = batch_keys.first_seq
       WHERE batch_keys.key_id = ? AND batch_keys.crypto_success = 1
       ORDER BY batch_keys.first_seq DESC LIMIT 1`,
    ).all(keyId) as BatchRow[];
    for (const row of rows) {
      const events = decodeBatch(row);
      for (let index = events.length - 1; index >= 0; index--) {
        const event = events[index];
        if (event.cryptoSuccess && event.keyIds.includes(keyId)) return rowOf(event);
      }
    }
    return undefined;
  }

  firstEventTime(): Date | undefined {
    const row = this.statement('SELECT * FROM batches ORDER BY first_seq LIMIT 1').get() as BatchRow | undefined;
    return row ? decodeBatch(row)[0]?.time : undefined;
  }
}

/** The event without its keys: AuditEventRow's shape. */
function rowOf(event: StoredEvent): AuditEventRow {
  const { keyIds: _keyIds, ...row } = event;
  return row;
}

