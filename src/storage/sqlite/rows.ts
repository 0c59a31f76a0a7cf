import type { AccessKeyRecord, AliasRecord, KeyPatch, KeyRecord, KeyState, KeyVersionRecord } from '../types.ts';
import { StoreConflictError, StoreKeyNotFoundError } from '../types.ts';

/** Rows of the SQLite schema (schema.ts) to and from the storage layer's records. */

export type Row = Record<string, unknown>;

export const toDate = (ms: unknown): Date | undefined => (ms == null ? undefined : new Date(Number(ms)));
export const toMs = (date: Date | undefined | null): number | null => (date == null ? null : date.getTime());

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
    rotationEnabled: row.rotation_enabled === 1,
    rotationPeriodInDays: (row.rotation_period_days as number | null) ?? undefined,
    nextRotationAt: toDate(row.next_rotation_at),
    currentVersion: row.current_version as number,
    onDemandRotationCount: row.on_demand_rotation_count as number,
  };
}

export function versionFromRow(row: Row): KeyVersionRecord {
  return {
    keyId: row.key_id as string,
    version: row.version as number,
    keyMaterialId: row.key_material_id as string,
    sealedMaterial: row.sealed_material as Buffer,
    createdAt: new Date(Number(row.created_at)),
    rotationType: (row.rotation_type as KeyVersionRecord['rotationType'] | null) ?? undefined,
  };
}

export function aliasFromRow(row: Row): AliasRecord {
  return {
    aliasName: row.alias_name as string,
    targetKeyId: row.target_key_id as string,
    createdAt: new Date(Number(row.created_at)),
    updatedAt: new Date(Number(row.updated_at)),
  };
}

export const PATCH_COLUMNS: Record<keyof KeyPatch, [column: string, encode: (v: unknown) => unknown]> = {
  description: ['description', (v) => v],
  state: ['state', (v) => v],
  deletionDate: ['deletion_date', (v) => toMs(v as Date | null)],
  pendingWindowInDays: ['pending_window_days', (v) => v],
  policy: ['policy', (v) => v],
  rotationEnabled: ['rotation_enabled', (v) => (v ? 1 : 0)],
  rotationPeriodInDays: ['rotation_period_days', (v) => v],
  nextRotationAt: ['next_rotation_at', (v) => toMs(v as Date | null)],
};


/** SQLite constraint failures as the store's own errors; anything else unchanged. */
export function storeError(error: unknown): unknown {
  const code = (error as { code?: string }).code;
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return new StoreConflictError('name exists');
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return new StoreKeyNotFoundError('key does not exist');
  return error;
}

export function accessKeyFromRow(row: Row): AccessKeyRecord {
  return {
    accessKeyId: row.access_key_id as string,
    principalArn: row.principal_arn as string,
    sealedSecret: row.sealed_secret as Buffer,
    status: row.status as AccessKeyRecord['status'],
    createdAt: new Date(Number(row.created_at)),
  };
}
