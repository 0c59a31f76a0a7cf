import type {
  AccessKeyRecord,
  AliasRecord,
  GrantConstraints,
  GrantRecord,
  IdentityPolicyRecord,
  KeyPatch,
  KeyRecord,
  KeyState,
  KeyVersionRecord,
  PrincipalKind,
  PrincipalRecord,
  TagRecord,
} from '../types.ts';
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
    ...(row.custom_key_store_id != null ? { customKeyStoreId: row.custom_key_store_id as string } : {}),
    ...(row.xks_key_id != null ? { xksKeyId: row.xks_key_id as string } : {}),
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
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
    return new StoreConflictError('name exists');
  }
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
    lastUsedAt: toDate(row.last_used_at),
    sessionTokenHash: (row.session_token_hash as Buffer | null) ?? undefined,
    expiresAt: toDate(row.expires_at),
  };
}

/** Principal tags as stored: a JSON array in tag-key order, of the two fields only. */
export function encodeTags(tags: readonly TagRecord[]): string {
  const sorted = tags
    .map((tag) => ({ tagKey: tag.tagKey, tagValue: tag.tagValue }))
    .sort((a, b) => (a.tagKey < b.tagKey ? -1 : a.tagKey > b.tagKey ? 1 : 0));
  return JSON.stringify(sorted);
}

export function principalFromRow(row: Row): PrincipalRecord {
  return {
    arn: row.arn as string,
    kind: row.kind as PrincipalKind,
    name: row.name as string,
    principalId: row.principal_id as string,
    createdAt: new Date(Number(row.created_at)),
    trustPolicy: (row.trust_policy as string | null) ?? undefined,
    maxSessionDurationSeconds: (row.max_session_seconds as number | null) ?? undefined,
    tags: JSON.parse(row.tags as string) as TagRecord[],
  };
}

export function identityPolicyFromRow(row: Row): IdentityPolicyRecord {
  return {
    principalArn: row.principal_arn as string,
    policyName: row.policy_name as string,
    document: row.document as string,
  };
}

/** Grant constraints as stored: JSON of the two fields only, or NULL for none. */
export function encodeConstraints(constraints: GrantConstraints | undefined): string | null {
  if (constraints === undefined) return null;
  return JSON.stringify({
    encryptionContextEquals: constraints.encryptionContextEquals,
    encryptionContextSubset: constraints.encryptionContextSubset,
  });
}

export function grantFromRow(row: Row): GrantRecord {
  return {
    grantId: row.grant_id as string,
    keyId: row.key_id as string,
    name: (row.name as string | null) ?? undefined,
    granteePrincipal: row.grantee_principal as string,
    retiringPrincipal: (row.retiring_principal as string | null) ?? undefined,
    operations: JSON.parse(row.operations as string) as string[],
    constraints: row.constraints == null ? undefined : (JSON.parse(row.constraints as string) as GrantConstraints),
    issuingAccount: row.issuing_account as string,
    createdAt: new Date(Number(row.created_at)),
  };
}
