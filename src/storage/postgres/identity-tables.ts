import type pg from 'pg';
import {
  accessKeyFromRow,
  encodeConstraints,
  encodeTags,
  grantFromRow,
  identityPolicyFromRow,
  principalFromRow,
} from '../sqlite/rows.ts';
import type {
  AccessKeyRecord,
  GrantRecord,
  IdentityPolicyRecord,
  Page,
  PrincipalKind,
  PrincipalRecord,
} from '../types.ts';
import { StoreKeyNotFoundError, StoreLimitError } from '../types.ts';
import { afterSeq, inTransaction, storeError, toMs, type Row } from './connection.ts';
import { pageOf } from './rows.ts';

const seqMarker = (row: Row): string => String(row.seq);

/** Statement names by text: few distinct texts (patches combine at most a handful of columns). */
const statementNames = new Map<string, string>();
function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (name === undefined) {
    name = `strongroom_${statementNames.size + 1}`;
    statementNames.set(sql, name);
  }
  return name;
}
const nameMarker = (row: Row): string => row.name as string;

/**
 * Access keys, principals, identity policies and grants. Every read goes to the database (no
 * cache): these rows guard every authorization, and a change made through any node must bind the
 * next request on every node (docs/storage-postgres.md, "No cache").
 */
export abstract class PostgresIdentityTables {
  constructor(protected readonly pool: pg.Pool) {}

  /** A one-statement read, as a named (per-connection prepared) statement: parsed and planned once. */
  protected async rows(sql: string, values: unknown[] = []): Promise<Row[]> {
    return (await this.pool.query({ name: statementName(sql), text: sql, values })).rows as Row[];
  }

  /** A one-statement write, prepared as `rows`; how many rows it changed. */
  protected async changed(sql: string, values: unknown[]): Promise<number> {
    return (await this.pool.query({ name: statementName(sql), text: sql, values })).rowCount ?? 0;
  }

  async putAccessKey(accessKey: AccessKeyRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO access_keys (access_key_id, principal_arn, sealed_secret, status, created_at,
         last_used_at, session_token_hash, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        accessKey.accessKeyId,
        accessKey.principalArn,
        accessKey.sealedSecret,
        accessKey.status,
        accessKey.createdAt.getTime(),
        toMs(accessKey.lastUsedAt),
        accessKey.sessionTokenHash ?? null,
        toMs(accessKey.expiresAt),
      ],
    );
  }

  async getAccessKey(accessKeyId: string): Promise<AccessKeyRecord | undefined> {
    const [row] = await this.rows('SELECT * FROM access_keys WHERE access_key_id = $1', [accessKeyId]);
    return row ? accessKeyFromRow(row) : undefined;
  }

  async listAccessKeys(principalArn?: string): Promise<AccessKeyRecord[]> {
    const rows =
      principalArn === undefined
        ? await this.rows('SELECT * FROM access_keys ORDER BY created_at, seq')
        : await this.rows('SELECT * FROM access_keys WHERE principal_arn = $1 ORDER BY created_at, seq', [principalArn]);
    return rows.map(accessKeyFromRow);
  }

  async updateAccessKeyStatus(accessKeyId: string, status: AccessKeyRecord['status']): Promise<boolean> {
    return (await this.changed('UPDATE access_keys SET status = $1 WHERE access_key_id = $2', [status, accessKeyId])) === 1;
  }

  async deleteAccessKey(accessKeyId: string): Promise<boolean> {
    return (await this.changed('DELETE FROM access_keys WHERE access_key_id = $1', [accessKeyId])) === 1;
  }

  async touchAccessKey(accessKeyId: string, usedAt: Date, staleBefore: Date): Promise<void> {
    // Called on every signed request; the condition makes a fresh use write (and lock) nothing.
    await this.pool.query(
      `UPDATE access_keys SET last_used_at = $1
       WHERE access_key_id = $2 AND (last_used_at IS NULL OR last_used_at < $3)`,
      [usedAt.getTime(), accessKeyId, staleBefore.getTime()],
    );
  }

  async deleteExpiredSessions(now: Date): Promise<number> {
    return this.changed('DELETE FROM access_keys WHERE expires_at IS NOT NULL AND expires_at <= $1', [now.getTime()]);
  }

  async createPrincipal(principal: PrincipalRecord): Promise<void> {
    try {
      await this.pool.query(
        `INSERT INTO principals (arn, kind, name, principal_id, created_at, trust_policy, max_session_seconds, tags)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          principal.arn,
          principal.kind,
          principal.name,
          principal.principalId,
          principal.createdAt.getTime(),
          principal.trustPolicy ?? null,
          principal.maxSessionDurationSeconds ?? null,
          encodeTags(principal.tags),
        ],
      );
    } catch (error) {
      throw storeError(error);
    }
  }

  async getPrincipal(arn: string): Promise<PrincipalRecord | undefined> {
    const [row] = await this.rows('SELECT * FROM principals WHERE arn = $1', [arn]);
    return row ? principalFromRow(row) : undefined;
  }

  async listPrincipals(kind: PrincipalKind, limit: number, after?: string): Promise<Page<PrincipalRecord>> {
    const rows = await this.rows('SELECT * FROM principals WHERE kind = $1 AND name > $2 ORDER BY name LIMIT $3', [
      kind,
      after ?? '',
      limit + 1,
    ]);
    return pageOf(rows, limit, principalFromRow, nameMarker);
  }

  async updatePrincipal(
    arn: string,
    patch: Partial<Pick<PrincipalRecord, 'trustPolicy' | 'tags' | 'maxSessionDurationSeconds'>>,
  ): Promise<boolean> {
    const values: unknown[] = [];
    const assignments: string[] = [];
    const set = (column: string, value: unknown) => {
      values.push(value);
      assignments.push(`${column} = $${values.length}`);
    };
    if (patch.trustPolicy !== undefined) set('trust_policy', patch.trustPolicy);
    if (patch.tags !== undefined) set('tags', encodeTags(patch.tags));
    if (patch.maxSessionDurationSeconds !== undefined) set('max_session_seconds', patch.maxSessionDurationSeconds);
    if (assignments.length === 0) return (await this.rows('SELECT 1 FROM principals WHERE arn = $1', [arn])).length === 1;
    values.push(arn);
    return (await this.changed(`UPDATE principals SET ${assignments.join(', ')} WHERE arn = $${values.length}`, values)) === 1;
  }

  async deletePrincipal(arn: string): Promise<boolean> {
    // A role's sessions sign as arn:<partition>:sts::<acct>:assumed-role/<role name>/<session>;
    // the role name is the ARN's last segment (a role's path is not part of it).
    const role = /^arn:([^:]+):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn);
    return inTransaction(this.pool, async (client) => {
      // ON DELETE CASCADE removes the identity policies.
      const existed = ((await client.query('DELETE FROM principals WHERE arn = $1', [arn])).rowCount ?? 0) === 1;
      if (role) {
        // Every ARN that starts with `<prefix>/` sorts in [`<prefix>/`, `<prefix>0`) in byte order
        // (principal_arn is COLLATE "C"): '0' follows '/'. No LIKE wildcards to escape.
        const prefix = `arn:${role[1]}:sts::${role[2]}:assumed-role/${role[3]}`;
        await client.query('DELETE FROM access_keys WHERE principal_arn >= $1 AND principal_arn < $2', [
          `${prefix}/`,
          `${prefix}0`,
        ]);
      }
      return existed;
    });
  }

  async putIdentityPolicy(policy: IdentityPolicyRecord, maxPerPrincipal = Infinity): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      // The principal's row lock serialises writers of its policies, so the count below cannot be
      // passed by a concurrent put. A missing principal fails the insert's foreign key.
      await client.query('SELECT 1 FROM principals WHERE arn = $1 FOR NO KEY UPDATE', [policy.principalArn]);
      await client.query(
        `INSERT INTO identity_policies (principal_arn, policy_name, document) VALUES ($1, $2, $3)
         ON CONFLICT (principal_arn, policy_name) DO UPDATE SET document = excluded.document`,
        [policy.principalArn, policy.policyName, policy.document],
      );
      const count = await client.query('SELECT count(*) AS n FROM identity_policies WHERE principal_arn = $1', [
        policy.principalArn,
      ]);
      if (Number(count.rows[0].n) > maxPerPrincipal) throw new StoreLimitError('too many policies for this principal'); // rolls back
    });
  }

  async getIdentityPolicy(principalArn: string, policyName: string): Promise<IdentityPolicyRecord | undefined> {
    const [row] = await this.rows('SELECT * FROM identity_policies WHERE principal_arn = $1 AND policy_name = $2', [
      principalArn,
      policyName,
    ]);
    return row ? identityPolicyFromRow(row) : undefined;
  }

  async listIdentityPolicies(principalArn: string): Promise<IdentityPolicyRecord[]> {
    const rows = await this.rows('SELECT * FROM identity_policies WHERE principal_arn = $1 ORDER BY policy_name', [
      principalArn,
    ]);
    return rows.map(identityPolicyFromRow);
  }

  async deleteIdentityPolicy(principalArn: string, policyName: string): Promise<boolean> {
    return (
      (await this.changed('DELETE FROM identity_policies WHERE principal_arn = $1 AND policy_name = $2', [
        principalArn,
        policyName,
      ])) === 1
    );
  }

  async createGrant(grant: GrantRecord, maxPerKey = Infinity): Promise<void> {
    try {
      await inTransaction(this.pool, async (client) => {
        // Grants commit in seq order (schema.ts), and one at a time: the count below is exact.
        await client.query(`SELECT 1 FROM insert_locks WHERE name = 'grants' FOR UPDATE`);
        const key = await client.query('SELECT 1 FROM keys WHERE key_id = $1', [grant.keyId]);
        if (key.rowCount !== 1) throw new StoreKeyNotFoundError('key does not exist');
        const count = await client.query('SELECT count(*) AS n FROM grants WHERE key_id = $1', [grant.keyId]);
        if (Number(count.rows[0].n) >= maxPerKey) throw new StoreLimitError('too many grants for this key');
        await client.query(
          `INSERT INTO grants (grant_id, key_id, name, grantee_principal, retiring_principal, operations,
             constraints, issuing_account, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [
            grant.grantId,
            grant.keyId,
            grant.name ?? null,
            grant.granteePrincipal,
            grant.retiringPrincipal ?? null,
            JSON.stringify(grant.operations),
            encodeConstraints(grant.constraints),
            grant.issuingAccount,
            grant.createdAt.getTime(),
          ],
        );
      });
    } catch (error) {
      throw storeError(error);
    }
  }

  async getGrant(grantId: string): Promise<GrantRecord | undefined> {
    const [row] = await this.rows('SELECT * FROM grants WHERE grant_id = $1', [grantId]);
    return row ? grantFromRow(row) : undefined;
  }

  async grantsForKey(keyId: string): Promise<GrantRecord[]> {
    return (await this.rows('SELECT * FROM grants WHERE key_id = $1 ORDER BY seq', [keyId])).map(grantFromRow);
  }

  async listGrants(
    keyId: string,
    limit: number,
    after?: string,
    filter: { grantId?: string; granteePrincipal?: string } = {},
  ): Promise<Page<GrantRecord>> {
    const values: unknown[] = [keyId, afterSeq(after)];
    const conditions = ['key_id = $1', 'seq > $2'];
    if (filter.grantId !== undefined) {
      values.push(filter.grantId);
      conditions.push(`grant_id = $${values.length}`);
    }
    if (filter.granteePrincipal !== undefined) {
      values.push(filter.granteePrincipal);
      conditions.push(`grantee_principal = $${values.length}`);
    }
    values.push(limit + 1);
    const rows = await this.rows(
      `SELECT * FROM grants WHERE ${conditions.join(' AND ')} ORDER BY seq LIMIT $${values.length}`,
      values,
    );
    return pageOf(rows, limit, grantFromRow, seqMarker);
  }

  async listRetirableGrants(retiringPrincipal: string, limit: number, after?: string): Promise<Page<GrantRecord>> {
    const rows = await this.rows('SELECT * FROM grants WHERE retiring_principal = $1 AND seq > $2 ORDER BY seq LIMIT $3', [
      retiringPrincipal,
      afterSeq(after),
      limit + 1,
    ]);
    return pageOf(rows, limit, grantFromRow, seqMarker);
  }

  async deleteGrant(grantId: string): Promise<boolean> {
    return (await this.changed('DELETE FROM grants WHERE grant_id = $1', [grantId])) === 1;
  }
}
