/**
 * Rows of a SQLite table and of a PostgreSQL table in one comparable form, for checking that a
 * migration copied them exactly: every value as text (bytes as hex, booleans and SQLite's 0/1 as
 * "1"/"0", PostgreSQL's bigint strings and SQLite's numbers alike), rows sorted.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';

export type ComparableRow = (string | null)[];

function comparable(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return `x${value.toString('hex')}`;
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return String(value);
}

const sorted = (rows: ComparableRow[]): ComparableRow[] =>
  rows.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0));

/** The table's column names, as SQLite declares them. */
export function sqliteColumns(db: Database.Database, table: string): string[] {
  return (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((column) => column.name);
}

export function sqliteRows(db: Database.Database, table: string, columns: readonly string[]): ComparableRow[] {
  const rows = db.prepare(`SELECT ${columns.join(', ')} FROM ${table}`).raw(true).all() as unknown[][];
  return sorted(rows.map((row) => row.map(comparable)));
}

export async function postgresRows(client: pg.Client, table: string, columns: readonly string[]): Promise<ComparableRow[]> {
  const result = await client.query({ text: `SELECT ${columns.join(', ')} FROM ${table}`, rowMode: 'array' });
  return sorted((result.rows as unknown[][]).map((row) => row.map(comparable)));
}

/** Rows given as values (decoded from a format of the source's own), in the same form. */
export const comparableRows = (rows: unknown[][]): ComparableRow[] => sorted(rows.map((row) => row.map(comparable)));
