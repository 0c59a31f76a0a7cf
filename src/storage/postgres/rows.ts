import type {
  CustomKeyStoreConnectionState,
  CustomKeyStorePatch,
  CustomKeyStoreRecord,
  KeyPatch,
  KeyRecord,
  KeyState,
  XksProxyConfiguration,
} from '../types.ts';
import { toDate, toMs, type Row } from './connection.ts';

/**
 * Rows of the PostgreSQL schema (schema.ts) that differ from SQLite's: booleans are booleans and
 * bigint columns arrive as strings (node-postgres does not narrow int8 to a number). The rows
 * whose columns mean the same on both backends use src/storage/sqlite/rows.ts's converters,
 * which read every time and count through Number().
 */

export function keyFromRow(row: Row): KeyRecord {
  return {
    keyId: row.key_id as string,
    createdAt: new Date(Number(row.created_at)),
    description: row.description as string,
    keyUsage: row.key_usage as string,
    keySpec: row.key_spec as string,
    origin: row.origin as string,
    state: row.state as KeyState,
    deletionDate: toDate(row.deletion_date),
    pendingWindowInDays: (row.pending_window_days as number | null) ?? undefined,
    policy: row.policy as string,
    rotationEnabled: row.rotation_enabled === true,
    rotationPeriodInDays: (row.rotation_period_days as number | null) ?? undefined,
    nextRotationAt: toDate(row.next_rotation_at),
    currentVersion: row.current_version as number,
    onDemandRotationCount: row.on_demand_rotation_count as number,
    ...(row.custom_key_store_id != null ? { customKeyStoreId: row.custom_key_store_id as string } : {}),
    ...(row.xks_key_id != null ? { xksKeyId: row.xks_key_id as string } : {}),
  };
}

export const KEY_PATCH_COLUMNS: Record<keyof KeyPatch, [column: string, encode: (v: unknown) => unknown]> = {
  description: ['description', (v) => v],
  state: ['state', (v) => v],
  deletionDate: ['deletion_date', (v) => toMs(v as Date | null)],
  pendingWindowInDays: ['pending_window_days', (v) => v],
  policy: ['policy', (v) => v],
  rotationEnabled: ['rotation_enabled', (v) => v === true],
  rotationPeriodInDays: ['rotation_period_days', (v) => v],
  nextRotationAt: ['next_rotation_at', (v) => toMs(v as Date | null)],
};

export function customKeyStoreFromRow(row: Row): CustomKeyStoreRecord {
  return {
    customKeyStoreId: row.custom_key_store_id as string,
    name: row.name as string,
    type: row.type as CustomKeyStoreRecord['type'],
    createdAt: new Date(Number(row.created_at)),
    connectionState: row.connection_state as CustomKeyStoreConnectionState,
    ...(row.connection_error_code != null ? { connectionErrorCode: row.connection_error_code as string } : {}),
    ...(row.cloud_hsm_cluster_id != null ? { cloudHsmClusterId: row.cloud_hsm_cluster_id as string } : {}),
    ...(row.trust_anchor != null ? { trustAnchorCertificate: row.trust_anchor as string } : {}),
    sealedSecret: row.sealed_secret as Buffer,
    ...(row.xks_proxy != null ? { xksProxy: JSON.parse(row.xks_proxy as string) as XksProxyConfiguration } : {}),
  };
}

export const CUSTOM_KEY_STORE_PATCH_COLUMNS: Record<
  keyof CustomKeyStorePatch,
  [column: string, encode: (value: unknown) => unknown]
> = {
  name: ['name', (value) => value],
  connectionState: ['connection_state', (value) => value],
  connectionErrorCode: ['connection_error_code', (value) => value],
  cloudHsmClusterId: ['cloud_hsm_cluster_id', (value) => value],
  sealedSecret: ['sealed_secret', (value) => value],
  xksProxy: ['xks_proxy', (value) => JSON.stringify(value)],
};

/** `SET a = $n, b = $n+1` for the defined fields of a patch; values appended to `values`. */
export function patchAssignments<K extends string>(
  patch: Partial<Record<K, unknown>>,
  columns: Record<K, [column: string, encode: (value: unknown) => unknown]>,
  values: unknown[],
): string[] {
  const assignments: string[] = [];
  for (const [field, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const [column, encode] = columns[field as K];
    values.push(value === null ? null : encode(value));
    assignments.push(`${column} = $${values.length}`);
  }
  return assignments;
}

/** `rows` were read with LIMIT limit + 1: one more row means another page follows. */
export function pageOf<T>(rows: Row[], limit: number, toItem: (row: Row) => T, marker: (row: Row) => string) {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  return { items: pageRows.map(toItem), nextAfter: more ? marker(pageRows[pageRows.length - 1]) : undefined };
}
