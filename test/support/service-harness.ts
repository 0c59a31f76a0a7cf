/** The service in-process, over a real SQLite data dir, with a clock the test moves by hand. */
import assert from 'node:assert/strict';
import type {
  CreateKeyResponse,
  DecryptResponse,
  DescribeKeyResponse,
  EncryptResponse,
  GetKeyRotationStatusResponse,
  ListKeyRotationsResponse,
} from '@aws-sdk/client-kms';
import Database from 'better-sqlite3';
import {
  adminPrincipalArn,
  bootstrapAdministratorPrincipal,
  dataDirPaths,
  openInstance,
  type Instance,
  type InstanceOptions,
} from '../../src/cli/instance.ts';
import { runDueBackgroundWork } from '../../src/service/background.ts';
import type { Caller } from '../../src/service/context.ts';
import { isKmsError, type KmsErrorName } from '../../src/service/errors.ts';
import { invokeOperation } from '../../src/service/operations.ts';
import { newPrincipalId } from '../../src/service/principals.ts';

export const DAY_MS = 24 * 60 * 60 * 1000;
export const T0 = new Date('2025-03-01T12:00:00Z');
export const PLAINTEXT = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255]);

/** The service with a clock this test moves by hand. */
export class Harness {
  private constructor(
    readonly instance: Instance,
    readonly principalArn: string,
    private readonly time: { clock: Date },
  ) {}

  static async open(dataDir: string, options: Pick<InstanceOptions, 'customKeyStoreBackends' | 'quotas'> = {}): Promise<Harness> {
    const time = { clock: new Date(T0) };
    const instance = await openInstance({
      dataDir,
      region: 'us-east-1',
      now: () => new Date(time.clock),
      auditMode: 'inline',
      ...options,
    });
    await bootstrapAdministratorPrincipal(instance);
    return new Harness(instance, adminPrincipalArn(instance.context.accountId), time);
  }

  get clock(): Date {
    return this.time.clock;
  }

  advanceTo(days: number, extraMs = 0): void {
    this.time.clock = new Date(T0.getTime() + days * DAY_MS + extraMs);
  }

  /** A fresh caller per request, as the transport makes one; `as` calls as another principal. */
  caller(principalArn = this.principalArn): Caller {
    return { principalArn, accessKeyId: 'AKIATESTCALLER000000', sourceIp: '127.0.0.1', decisions: [] };
  }

  call<Output>(operation: string, input: object, as?: string): Promise<Output> {
    return invokeOperation(operation, this.instance.context, input, this.caller(as)) as Promise<Output>;
  }

  async expectError(operation: string, input: object, errorName: KmsErrorName, as?: string): Promise<void> {
    await assert.rejects(this.call(operation, input, as), (error) => {
      assert.ok(isKmsError(error), `expected a KmsError, got ${String(error)}`);
      assert.equal(error.errorName, errorName);
      return true;
    });
  }

  /** A user of this account with the given identity policies (name → document) and tags. */
  async addUser(name: string, policies: Record<string, object> = {}, tags: Record<string, string> = {}): Promise<string> {
    const { store, context } = this.instance;
    const arn = `arn:aws:iam::${context.accountId}:user/${name}`;
    await store.createPrincipal({
      arn,
      kind: 'user',
      name,
      principalId: newPrincipalId('user'),
      createdAt: this.clock,
      tags: Object.entries(tags).map(([tagKey, tagValue]) => ({ tagKey, tagValue })),
    });
    for (const [policyName, document] of Object.entries(policies)) {
      await store.putIdentityPolicy({ principalArn: arn, policyName, document: JSON.stringify(document) });
    }
    return arn;
  }

  runScheduler() {
    return runDueBackgroundWork(this.instance.context);
  }

  async createKey(input: object = {}): Promise<string> {
    const created = await this.call<CreateKeyResponse>('CreateKey', input);
    return created.KeyMetadata!.KeyId!;
  }

  async encrypt(keyId: string, encryptionContext?: Record<string, string>): Promise<Uint8Array> {
    const encrypted = await this.call<EncryptResponse>('Encrypt', {
      KeyId: keyId,
      Plaintext: PLAINTEXT,
      EncryptionContext: encryptionContext,
    });
    return encrypted.CiphertextBlob!;
  }

  async decrypt(ciphertextBlob: Uint8Array, encryptionContext?: Record<string, string>): Promise<DecryptResponse> {
    return this.call<DecryptResponse>('Decrypt', { CiphertextBlob: ciphertextBlob, EncryptionContext: encryptionContext });
  }

  async describe(keyId: string) {
    return (await this.call<DescribeKeyResponse>('DescribeKey', { KeyId: keyId })).KeyMetadata!;
  }

  async rotations(keyId: string) {
    return (await this.call<ListKeyRotationsResponse>('ListKeyRotations', { KeyId: keyId })).Rotations ?? [];
  }

  async rotationStatus(keyId: string) {
    return this.call<GetKeyRotationStatusResponse>('GetKeyRotationStatus', { KeyId: keyId });
  }

  /** Rows the key still has in a table, read from the database file by a separate connection. */
  countRows(table: 'keys' | 'key_versions' | 'tags' | 'aliases', keyId: string): number {
    const column = table === 'aliases' ? 'target_key_id' : 'key_id';
    const db = new Database(dataDirPaths(this.instance.dataDir).database, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?`).get(keyId) as { n: number }).n;
    } finally {
      db.close();
    }
  }
}

