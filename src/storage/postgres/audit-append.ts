import type { AuditEntryInput } from '../audit-types.ts';

/** What one append writes, chained and sealed already (audit-store.ts). */
export interface AppendRows {
  events: { seq: number; hash: Buffer; entry: AuditEntryInput }[];
  keys: { keyId: string; cryptoSuccess: boolean; seq: number }[];
  digests: { seq: number; lastSeq: number; time: number; text: string; signature: Buffer }[];
}

/**
 * PostgreSQL's text cannot hold U+0000. Event texts are compact JSON, which escapes it, so they are
 * stored (and hashed) verbatim; the indexed columns beside them come from request fields and only
 * serve queries, so a NUL there becomes U+FFFD rather than failing a batch that carries other
 * requests' events.
 */
function indexText(value: string | undefined): string | null {
  return value === undefined ? null : value.replaceAll('\u0000', '\uFFFD');
}

/** Appends `value` as the next parameter; returns its placeholder. */
function parameter(values: unknown[], value: unknown, type: string): string {
  values.push(value);
  return `$${values.length}::${type}`;
}

/**
 * One statement for an append's rows: events, their key index rows and digests as column arrays
 * (unnest), joined by data-modifying CTEs, so an append costs one round trip whatever its size.
 * Undefined when there is nothing to write. Plain loops, no per-call closures: this runs for every
 * batch the audit writer commits.
 */
export function appendStatement(rows: AppendRows, probe: boolean): { sql: string; values: unknown[] } | undefined {
  const parts: string[] = [];
  const values: unknown[] = [];
  const count = rows.events.length;
  if (count > 0) {
    const seqs = new Array<number>(count);
    const times = new Array<number>(count);
    const texts = new Array<string>(count);
    const hashes = new Array<Buffer>(count);
    const names = new Array<string | null>(count);
    const principals = new Array<string | null>(count);
    const errors = new Array<string | null>(count);
    const successes = new Array<boolean>(count);
    for (let i = 0; i < count; i++) {
      const { seq, hash, entry } = rows.events[i];
      seqs[i] = seq;
      times[i] = entry.time.getTime();
      texts[i] = entry.text;
      hashes[i] = hash;
      names[i] = indexText(entry.eventName);
      principals[i] = indexText(entry.principalArn);
      errors[i] = indexText(entry.errorCode);
      successes[i] = entry.cryptoSuccess;
    }
    parts.push(
      `INSERT INTO audit_events (seq, time, text, hash, event_name, principal_arn, error_code, crypto_success)
       SELECT * FROM unnest(${parameter(values, seqs, 'bigint[]')}, ${parameter(values, times, 'bigint[]')},
         ${parameter(values, texts, 'text[]')}, ${parameter(values, hashes, 'bytea[]')}, ${parameter(values, names, 'text[]')},
         ${parameter(values, principals, 'text[]')}, ${parameter(values, errors, 'text[]')}, ${parameter(values, successes, 'boolean[]')})`,
    );
  }
  if (rows.keys.length > 0) {
    const keyIds: (string | null)[] = [];
    const successes: boolean[] = [];
    const seqs: number[] = [];
    for (const row of rows.keys) {
      keyIds.push(indexText(row.keyId));
      successes.push(row.cryptoSuccess);
      seqs.push(row.seq);
    }
    parts.push(
      `INSERT INTO audit_event_keys (key_id, crypto_success, seq)
       SELECT * FROM unnest(${parameter(values, keyIds, 'text[]')}, ${parameter(values, successes, 'boolean[]')},
         ${parameter(values, seqs, 'bigint[]')}) ON CONFLICT DO NOTHING`,
    );
  }
  if (rows.digests.length > 0) {
    const seqs: number[] = [];
    const lastSeqs: number[] = [];
    const times: number[] = [];
    const texts: string[] = [];
    const signatures: Buffer[] = [];
    for (const row of rows.digests) {
      seqs.push(row.seq);
      lastSeqs.push(row.lastSeq);
      times.push(row.time);
      texts.push(row.text);
      signatures.push(row.signature);
    }
    parts.push(
      `INSERT INTO audit_digests (seq, last_seq, time, text, signature)
       SELECT * FROM unnest(${parameter(values, seqs, 'bigint[]')}, ${parameter(values, lastSeqs, 'bigint[]')},
         ${parameter(values, times, 'bigint[]')}, ${parameter(values, texts, 'text[]')}, ${parameter(values, signatures, 'bytea[]')})`,
    );
  }
  if (probe) parts.push('UPDATE audit_probe SET writes = writes + 1 WHERE id = 1');
  if (parts.length === 0) return undefined;
  // Every data-modifying CTE runs exactly once, referenced or not; the last part is the main statement.
  const last = parts.pop() as string;
  if (parts.length === 0) return { sql: last, values };
  let sql = 'WITH ';
  for (let i = 0; i < parts.length; i++) sql += `${i > 0 ? ', ' : ''}w${i} AS (${parts[i]})`;
  return { sql: `${sql} ${last}`, values };
}
