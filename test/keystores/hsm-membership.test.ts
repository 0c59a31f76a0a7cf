/**
 * A connected HSM cluster follows membership changes made beside it: `strongroom hsm cluster
 * add-member/remove-member` run (as child processes) while the custom key store backend holds the
 * cluster open, as a running server does. Witness: opensc's pkcs11-tool on each SoftHSMv2 token.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { CatalogJournal, HsmClusterKeyStoreBackend, type ConnectedHsmClusterKeyStore } from '../../src/keystores/pkcs11/cluster/stored.ts';
import { keyVersionLabel } from '../../src/keystores/pkcs11/templates.ts';
import { HsmCatalog } from '../../src/cli/hsm-cluster.ts';
import { SOFTHSM_MODULE, SoftHsm, listObjects, type TestToken } from './softhsm.ts';
import { postgresQuery, postgresUrl, testSchemaName } from '../storage/backends.ts';

const BIN = fileURLToPath(new URL('../../bin/strongroom.mjs', import.meta.url));
const PIN = 'membership-user-pin-1';
const hsm = SoftHsm.get();
const c = hsm.createToken('memb-c', PIN);
const d = hsm.createToken('memb-d', PIN);
const dir = mkdtempSync(join(tmpdir(), 'strongroom-hsm-membership-'));
const dataDir = join(dir, 'data');
const secretFile = (name: string, value: string): string => {
  const path = join(dir, name);
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return path;
};

/** The command's exit code and output, whatever they are. */
function hsmCliResult(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'hsm', ...args, '--data-dir', dataDir], { env: process.env, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs the command (with `database`: as STRONGROOM_DATABASE, as an operator of a PostgreSQL installation sets it). */
function hsmCliOn(database: string | undefined, ...args: string[]): Promise<string> {
  const env = database === undefined ? process.env : { ...process.env, STRONGROOM_DATABASE: database };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'hsm', ...args, '--data-dir', dataDir], { env, timeout: 120_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`hsm ${args.slice(0, 2).join(' ')}: ${stderr}`)) : resolve(stdout),
    );
  });
}

const hsmCli = (...args: string[]): Promise<string> => hsmCliOn(undefined, ...args);

const holds = (token: TestToken, keyId: string): boolean => listObjects(token).some((object) => object.label === keyVersionLabel(keyId, 1));

/** Polls `condition` (running the cluster's probe each time) for up to 60 s. */
async function until(store: ConnectedHsmClusterKeyStore, what: string, condition: () => boolean): Promise<void> {
  for (const started = Date.now(); Date.now() - started < 60_000; ) {
    await store.cluster.probeNow();
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`never: ${what}`);
}

describe('a connected HSM cluster follows the catalog', { timeout: 240_000 }, () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const backendName of ['sqlite', 'postgres'] as const) {
    test(`add-member while connected: keys made during and after the join reach the new member; after remove-member it is no longer used (${backendName})`, async () => {
      const schema = backendName === 'postgres' ? testSchemaName() : undefined;
      if (schema) await postgresQuery(`CREATE SCHEMA ${schema}`);
      const database = schema ? postgresUrl(schema) : undefined;
      const hsmCli = (...args: string[]): Promise<string> => hsmCliOn(database, ...args);
      const [a, b] = [hsm.createToken(`memb-a-${backendName}`, PIN), hsm.createToken(`memb-b-${backendName}`, PIN)];
      await hsmCli('cluster', 'create', '--cluster-id', 'cluster-memb', '--member-name', 'a', '--module', SOFTHSM_MODULE, '--token-label', a.label,
        '--pin-file', secretFile('a.pin', PIN), '--so-pin-file', secretFile('a.so', a.soPin));
      const catalog = await HsmCatalog.open(dataDir, database);
      const backend = new HsmClusterKeyStoreBackend(catalog.store, (secret) => SecretBytes.from(Buffer.from(secret, 'utf8')), { probeIntervalMs: 60_000 });
      const store = (await backend.connect({ customKeyStoreId: 'cks-1', cloudHsmClusterId: 'cluster-memb', secret: PIN })) as ConnectedHsmClusterKeyStore;
      try {
        const objectIds = new Map<string, Buffer>();
        const create = async (): Promise<string> => {
          const keyId = randomUuid();
          // The 34-byte reference ends with the 28-byte CKA_ID (reference.ts).
          objectIds.set(keyId, (await store.createVersionMaterial(keyId, 1, 'SYMMETRIC_DEFAULT')).subarray(6));
          return keyId;
        };
        const before = await create();
        // Keys keep being made by the connected cluster while the command joins b.
        let joined = false;
        const adding = hsmCli('cluster', 'add-member', 'cluster-memb', '--member-name', 'b', '--module', SOFTHSM_MODULE, '--token-label', b.label,
          '--pin-file', secretFile('b.pin', PIN), '--so-pin-file', secretFile('b.so', b.soPin), '--source-so-pin-file', secretFile('a.so2', a.soPin))
          .finally(() => (joined = true));
        const during: string[] = [];
        // A few, spread over the command's run (each costs pkcs11-tool listings below).
        while (!joined && during.length < 30) {
          during.push(await create());
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        await adding;
        await until(store, 'b serves in the connected cluster', () => store.cluster.status().members.some((member) => member.name === 'b' && member.state === 'ACTIVE'));
        const afterJoin = await create();
        for (const keyId of [before, ...during, afterJoin]) {
          assert.ok(holds(a, keyId), `a holds ${keyId}`);
          assert.ok(holds(b, keyId), `b holds ${keyId} (made ${keyId === before ? 'before' : keyId === afterJoin ? 'after' : 'during'} the join)`);
        }
        assert.ok(during.length > 0, 'keys were made during the join');
        assert.equal((await catalog.store.owedOperations('cluster-memb', 'b')).length, 0, 'nothing left owed to b');

        await hsmCli('cluster', 'remove-member', 'cluster-memb', 'b', '--keep-objects');
        // Until then the cluster may still owe b a change: that is no error, and nothing is recorded.
        await new CatalogJournal(catalog.store, 'cluster-memb').owe('b', objectIds.get(before)!, 'destroy');
        assert.equal((await catalog.store.owedOperations('cluster-memb', 'b')).length, 0);
        await until(store, 'b has left the connected cluster', () => !store.cluster.members.some((member) => member.name === 'b'));
        const late = await create();
        assert.ok(holds(a, late) && !holds(b, late), 'a key made after the removal is not replicated to b');
        const { destroyedIn, owedBy } = await store.cluster.destroyKey(objectIds.get(before)!);
        assert.deepEqual([destroyedIn, owedBy], [['a'], []]);
        assert.ok(!holds(a, before));
        assert.ok(holds(b, before), 'b, removed with --keep-objects, was not touched');
      } finally {
        await store.close();
        await catalog.close();
        if (schema) await postgresQuery(`DROP SCHEMA ${schema} CASCADE`);
      }
    });
  }

  test('remove-member destroys the cluster key and every key object on a reachable token, and its owed operations; an unreachable one is exit code 2 naming what remains', async () => {
    const strongroomObjects = (token: TestToken) => listObjects(token).filter((object) => object.label?.startsWith('strongroom:')).map((object) => object.label);
    await hsmCli('cluster', 'create', '--cluster-id', 'cluster-rm', '--member-name', 'c', '--module', SOFTHSM_MODULE, '--token-label', c.label,
      '--pin-file', secretFile('c.pin', PIN), '--so-pin-file', secretFile('c.so', c.soPin));
    const addD = () => hsmCli('cluster', 'add-member', 'cluster-rm', '--member-name', 'd', '--module', SOFTHSM_MODULE, '--token-label', d.label,
      '--pin-file', secretFile('d.pin', PIN), '--so-pin-file', secretFile('d.so', d.soPin), '--source-so-pin-file', secretFile('c.so2', c.soPin));
    await addD();
    const catalog = await HsmCatalog.open(dataDir);
    try {
      const cluster = await catalog.connect('cluster-rm');
      const keyId = randomUuid();
      let objectId: Buffer;
      try {
        objectId = await cluster.createKey(keyId, 1);
      } finally {
        await cluster.close();
      }
      assert.ok(holds(d, keyId));
      assert.ok(strongroomObjects(d).includes('strongroom:cluster-wrapping-key:cluster-rm'));
      // Something owed by d (as if it had missed a destroy): it must not outlive d's membership.
      await catalog.store.oweOperation('cluster-rm', 'd', objectId, 'destroy', new Date());

      const removed = JSON.parse(await hsmCli('cluster', 'remove-member', 'cluster-rm', 'd'));
      assert.deepEqual(removed.Removed, { Name: 'd', TokenCleaned: true, KeyObjectsDestroyed: 1, ClusterWrappingKeyDestroyed: true });
      assert.deepEqual(removed.Members.map((member: { Name: string }) => member.Name), ['c']);
      assert.deepEqual(strongroomObjects(d), [], 'pkcs11-tool: nothing of the cluster left on d');
      assert.ok(holds(c, keyId), 'the remaining member keeps the key');
      assert.equal((await catalog.store.owedOperations('cluster-rm', 'd')).length, 0);

      // d joins again (its token is fresh for the ceremony), then its token cannot be found.
      await addD();
      assert.ok(holds(d, keyId));
      const db = new Database(join(dataDir, 'strongroom.db'));
      try {
        const row = db.prepare("SELECT config FROM hsm_members WHERE cluster_id = 'cluster-rm' AND name = 'd'").get() as { config: string };
        const config = { ...JSON.parse(row.config), tokenLabel: 'memb-gone' };
        db.prepare("UPDATE hsm_members SET config = ? WHERE cluster_id = 'cluster-rm' AND name = 'd'").run(JSON.stringify(config));
      } finally {
        db.close();
      }
      const unreachable = await hsmCliResult('cluster', 'remove-member', 'cluster-rm', 'd');
      assert.equal(unreachable.code, 2, unreachable.stderr);
      assert.match(unreachable.stderr, /member d was removed from cluster-rm, but its token still holds the cluster wrapping key \(label strongroom:cluster-wrapping-key:cluster-rm\) and every KMS key object it held/);
      assert.equal(JSON.parse(unreachable.stdout).Removed.TokenCleaned, false);
      assert.deepEqual((await catalog.store.listMembers('cluster-rm')).map((member) => member.name), ['c']);
      assert.ok(holds(d, keyId), 'what the message names is indeed still there');
    } finally {
      await catalog.close();
    }
  });
});
