import type {
  AccessKeyRecord,
  GrantRecord,
  IdentityPolicyRecord,
  Page,
  PrincipalKind,
  PrincipalRecord,
} from '../types.ts';
import { StoreLimitError } from '../types.ts';
import {
  accessKeyFromRow,
  encodeConstraints,
  encodeTags,
  grantFromRow,
  identityPolicyFromRow,
  principalFromRow,
  storeError,
  toMs,
  type Row,
} from './rows.ts';
import { SqliteConnection } from './connection.ts';

/** Access keys, principals, identity policies and grants: the access-control tables. */
export abstract class SqliteIdentityTables extends SqliteConnection {
  async putAccessKey(accessKey: AccessKeyRecord): Promise<void> {
    this.reads.invalidate();
    this.statement(
      `INSERT INTO access_keys (access_key_id, principal_arn, sealed_secret, status, created_at,
         last_used_at, session_token_hash, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      accessKey.accessKeyId,
      accessKey.principalArn,
      accessKey.sealedSecret,
      accessKey.status,
      accessKey.createdAt.getTime(),
      toMs(accessKey.lastUsedAt),
      accessKey.sessionTokenHash ?? null,
      toMs(accessKey.expiresAt),
    );
  }

  async getAccessKey(accessKeyId: string): Promise<AccessKeyRecord | undefined> {
    return this.reads.lookup(`access-key:${accessKeyId}`, () => {
      const row = this.statement('SELECT * FROM access_keys WHERE access_key_id = ?').get(accessKeyId) as
        | Row
        | undefined;
      return row ? accessKeyFromRow(row) : undefined;
    });
  }

  async listAccessKeys(principalArn?: string): Promise<AccessKeyRecord[]> {
    const rows = (
      principalArn === undefined
        ? this.statement('SELECT * FROM access_keys ORDER BY created_at, rowid').all()
        : this.statement('SELECT * FROM access_keys WHERE principal_arn = ? ORDER BY created_at, rowid').all(
            principalArn,
          )
    ) as Row[];
    return rows.map(accessKeyFromRow);
  }

  async updateAccessKeyStatus(accessKeyId: string, status: AccessKeyRecord['status']): Promise<boolean> {
    this.reads.invalidate();
    return (
      this.statement('UPDATE access_keys SET status = ? WHERE access_key_id = ?').run(status, accessKeyId).changes === 1
    );
  }

  async deleteAccessKey(accessKeyId: string): Promise<boolean> {
    this.reads.invalidate();
    return this.statement('DELETE FROM access_keys WHERE access_key_id = ?').run(accessKeyId).changes === 1;
  }

  async touchAccessKey(accessKeyId: string, usedAt: Date, staleBefore: Date): Promise<void> {
    // Called on every signed request: the cache is cleared only when a row changed, so a use
    // that writes nothing does not cost every cached lookup.
    const result = this.statement(
      `UPDATE access_keys SET last_used_at = ?
       WHERE access_key_id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
    ).run(usedAt.getTime(), accessKeyId, staleBefore.getTime());
    if (result.changes > 0) this.reads.invalidate();
  }

  async deleteExpiredSessions(now: Date): Promise<number> {
    this.reads.invalidate();
    return this.statement('DELETE FROM access_keys WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now.getTime())
      .changes;
  }

  async createPrincipal(principal: PrincipalRecord): Promise<void> {
    this.reads.invalidate();
    try {
      this.statement(
        `INSERT INTO principals (arn, kind, name, principal_id, created_at, trust_policy, max_session_seconds, tags)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        principal.arn,
        principal.kind,
        principal.name,
        principal.principalId,
        principal.createdAt.getTime(),
        principal.trustPolicy ?? null,
        principal.maxSessionDurationSeconds ?? null,
        encodeTags(principal.tags),
      );
    } catch (error) {
      throw storeError(error);
    }
  }

  async getPrincipal(arn: string): Promise<PrincipalRecord | undefined> {
    return this.reads.lookup(`principal:${arn}`, () => {
      const row = this.statement('SELECT * FROM principals WHERE arn = ?').get(arn) as Row | undefined;
      return row ? principalFromRow(row) : undefined;
    });
  }

  async listPrincipals(kind: PrincipalKind, limit: number, after?: string): Promise<Page<PrincipalRecord>> {
    const rows = this.statement('SELECT * FROM principals WHERE kind = ? AND name > ? ORDER BY name LIMIT ?').all(
      kind,
      after ?? '',
      limit + 1,
    ) as Row[];
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map(principalFromRow);
    return { items, nextAfter: more ? items[items.length - 1].name : undefined };
  }

  async updatePrincipal(
    arn: string,
    patch: Partial<Pick<PrincipalRecord, 'trustPolicy' | 'tags' | 'maxSessionDurationSeconds'>>,
  ): Promise<boolean> {
    this.reads.invalidate();
    const set: [column: string, value: unknown][] = [];
    if (patch.trustPolicy !== undefined) set.push(['trust_policy', patch.trustPolicy]);
    if (patch.tags !== undefined) set.push(['tags', encodeTags(patch.tags)]);
    if (patch.maxSessionDurationSeconds !== undefined) set.push(['max_session_seconds', patch.maxSessionDurationSeconds]);
    if (set.length === 0) return this.statement('SELECT 1 FROM principals WHERE arn = ?').get(arn) !== undefined;
    const columns = set.map(([column]) => `${column} = ?`).join(', ');
    const values = set.map(([, value]) => value);
    return this.statement(`UPDATE principals SET ${columns} WHERE arn = ?`).run(...values, arn).changes === 1;
  }

  async deletePrincipal(arn: string): Promise<boolean> {
    this.reads.invalidate();
    // A role's sessions sign as arn:<partition>:sts::<acct>:assumed-role/<role name>/<session>;
    // the role name is the ARN's last segment (a role's path is not part of it).
    const role = /^arn:([^:]+):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn);
    const remove = this.db.transaction((): boolean => {
      // ON DELETE CASCADE removes the identity policies.
      const existed = this.statement('DELETE FROM principals WHERE arn = ?').run(arn).changes === 1;
      if (role) {
        // Every ARN that starts with `<prefix>/` sorts in [`<prefix>/`, `<prefix>0`): '0' follows
        // '/'. A range, unlike LIKE, has no wildcards to escape and uses the principal_arn index.
        const prefix = `arn:${role[1]}:sts::${role[2]}:assumed-role/${role[3]}`;
        this.statement('DELETE FROM access_keys WHERE principal_arn >= ? AND principal_arn < ?').run(
          `${prefix}/`,
          `${prefix}0`,
        );
      }
      return existed;
    });
    return remove.immediate();
  }

  async putIdentityPolicy(policy: IdentityPolicyRecord, maxPerPrincipal = Infinity): Promise<void> {
    this.reads.invalidate();
    const put = this.db.transaction(() => {
      this.statement(
        `INSERT INTO identity_policies (principal_arn, policy_name, document) VALUES (?, ?, ?)
         ON CONFLICT (principal_arn, policy_name) DO UPDATE SET document = excluded.document`,
      ).run(policy.principalArn, policy.policyName, policy.document);
      const count = this.statement('SELECT COUNT(*) AS n FROM identity_policies WHERE principal_arn = ?').get(
        policy.principalArn,
      ) as Row;
      if (Number(count.n) > maxPerPrincipal) throw new StoreLimitError('too many policies for this principal'); // rolls back
    });
    // Not storeError: a missing principal fails the foreign key, which is not a missing key.
    put.immediate();
  }

  async getIdentityPolicy(principalArn: string, policyName: string): Promise<IdentityPolicyRecord | undefined> {
    const row = this.statement('SELECT * FROM identity_policies WHERE principal_arn = ? AND policy_name = ?').get(
      principalArn,
      policyName,
    ) as Row | undefined;
    return row ? identityPolicyFromRow(row) : undefined;
  }

  async listIdentityPolicies(principalArn: string): Promise<IdentityPolicyRecord[]> {
    const policies = this.reads.lookup(`identity-policies:${principalArn}`, () => {
      const rows = this.statement('SELECT * FROM identity_policies WHERE principal_arn = ? ORDER BY policy_name').all(
        principalArn,
      ) as Row[];
      return rows.map(identityPolicyFromRow);
    });
    return policies ?? [];
  }

  async deleteIdentityPolicy(principalArn: string, policyName: string): Promise<boolean> {
    this.reads.invalidate();
    return (
      this.statement('DELETE FROM identity_policies WHERE principal_arn = ? AND policy_name = ?').run(
        principalArn,
        policyName,
      ).changes === 1
    );
  }

  async createGrant(grant: GrantRecord, maxPerKey = Infinity): Promise<void> {
    this.reads.invalidate();
    const create = this.db.transaction(() => {
      const count = this.statement('SELECT COUNT(*) AS n FROM grants WHERE key_id = ?').get(grant.keyId) as Row;
      if (Number(count.n) >= maxPerKey) throw new StoreLimitError('too many grants for this key');
      this.statement(
        `INSERT INTO grants (grant_id, key_id, name, grantee_principal, retiring_principal, operations,
           constraints, issuing_account, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        grant.grantId,
        grant.keyId,
        grant.name ?? null,
        grant.granteePrincipal,
        grant.retiringPrincipal ?? null,
        JSON.stringify(grant.operations),
        encodeConstraints(grant.constraints),
        grant.issuingAccount,
        grant.createdAt.getTime(),
      );
    });
    try {
      create.immediate();
    } catch (error) {
      throw storeError(error);
    }
  }

  async getGrant(grantId: string): Promise<GrantRecord | undefined> {
    const row = this.statement('SELECT * FROM grants WHERE grant_id = ?').get(grantId) as Row | undefined;
    return row ? grantFromRow(row) : undefined;
  }

  async grantsForKey(keyId: string): Promise<GrantRecord[]> {
    const grants = this.reads.lookup(`grants:${keyId}`, () => {
      const rows = this.statement('SELECT * FROM grants WHERE key_id = ? ORDER BY seq').all(keyId) as Row[];
      return rows.map(grantFromRow);
    });
    return grants ?? [];
  }

  async listGrants(
    keyId: string,
    limit: number,
    after?: string,
    filter: { grantId?: string; granteePrincipal?: string } = {},
  ): Promise<Page<GrantRecord>> {
    const conditions = ['key_id = ?', 'seq > ?'];
    const values: unknown[] = [keyId, afterSeq(after)];
    if (filter.grantId !== undefined) {
      conditions.push('grant_id = ?');
      values.push(filter.grantId);
    }
    if (filter.granteePrincipal !== undefined) {
      conditions.push('grantee_principal = ?');
      values.push(filter.granteePrincipal);
    }
    const rows = this.statement(`SELECT * FROM grants WHERE ${conditions.join(' AND ')} ORDER BY seq LIMIT ?`).all(
      ...values,
      limit + 1,
    ) as Row[];
    return grantPage(rows, limit);
  }

  async listRetirableGrants(retiringPrincipal: string, limit: number, after?: string): Promise<Page<GrantRecord>> {
    const rows = this.statement(
      'SELECT * FROM grants WHERE retiring_principal = ? AND seq > ? ORDER BY seq LIMIT ?',
    ).all(retiringPrincipal, afterSeq(after), limit + 1) as Row[];
    return grantPage(rows, limit);
  }

  async deleteGrant(grantId: string): Promise<boolean> {
    this.reads.invalidate();
    return this.statement('DELETE FROM grants WHERE grant_id = ?').run(grantId).changes === 1;
  }
}

/** A seq marker as a number; anything else starts from the beginning, as listKeys does. */
function afterSeq(after: string | undefined): number {
  const seq = after === undefined ? 0 : Number(after);
  return Number.isSafeInteger(seq) ? seq : 0;
}

/** `rows` were read with LIMIT limit + 1: one more row means another page follows. */
function grantPage(rows: Row[], limit: number): Page<GrantRecord> {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  return {
    items: pageRows.map(grantFromRow),
    nextAfter: more ? String(pageRows[pageRows.length - 1].seq) : undefined,
  };
}
