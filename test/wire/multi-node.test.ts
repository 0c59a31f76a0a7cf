/**
 * Several Strongroom nodes on one PostgreSQL (issue 8): real `strongroom serve` processes on
 * different ports sharing a database schema of their own, each with its own data directory
 * holding the same root key. What one node does, the others see at once where security depends
 * on it; concurrent alias moves stay consistent; a node killed mid-load loses no acknowledged
 * request's audit event, and the one shared chain verifies.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  CreateAliasCommand,
  DecryptCommand,
  DisableKeyCommand,
  EncryptCommand,
  KMSClient,
  ListAliasesCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import pg from 'pg';
import { createKey } from '../support/kms-assertions.ts';
import { STRONGROOM_BIN, makeDataDir, removeDataDir, startServer, type RunningServer } from '../support/server.ts';

const POSTGRES = process.env.STRONGROOM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `strongroom_nodes_${randomBytes(6).toString('hex')}`;
const databaseUrl = `${POSTGRES}?schema=${schema}`;

describe('several nodes on one PostgreSQL', { timeout: 240_000 }, () => {
  const nodes: RunningServer[] = [];
  const dataDirs: string[] = [];
  let a: KMSClient;
  let b: KMSClient;
  let c: KMSClient;

  /** Node 1 makes the root key and the administrator; the others get copies, as an operator would deploy them. */
  async function startNode(index: number): Promise<RunningServer> {
    const dataDir = dataDirs[index] ?? (dataDirs[index] = await makeDataDir());
    if (index > 0) {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      for (const file of ['root.key', 'credentials']) copyFileSync(join(dataDirs[0], file), join(dataDir, file));
    }
    return startServer({ dataDir, args: ['--database', databaseUrl], timeoutMs: 60_000 });
  }

  before(async () => {
    const client = new pg.Client({ connectionString: POSTGRES });
    await client.connect().catch((error: Error) => {
      throw new Error(`PostgreSQL is not reachable at ${POSTGRES} (${error.message}): start it (.ci/run does); this test does not skip`);
    });
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.end();
    for (let i = 0; i < 3; i++) nodes.push(await startNode(i));
    [a, b, c] = nodes.map((node) => node.kms());
  });

  after(async () => {
    for (const node of nodes) await node.stop().catch(() => {});
    for (const dir of dataDirs) await removeDataDir(dir);
    const client = new pg.Client({ connectionString: POSTGRES });
    await client.connect();
    await client.query(`DROP SCHEMA ${schema} CASCADE`);
    await client.end();
  });

  it('a key created on node A works on B and C; disabled on A, B refuses it at once', async () => {
    const key = await createKey(a);
    const { CiphertextBlob } = await a.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('shared') }));
    assert.equal(Buffer.from((await b.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString(), 'shared');
    assert.equal(Buffer.from((await c.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString(), 'shared');
    await b.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('warm any cache') }));
    await a.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    await assert.rejects(b.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('x') })), { name: 'DisabledException' });
    await assert.rejects(c.send(new DecryptCommand({ CiphertextBlob })), { name: 'DisabledException' });
  });

  it('concurrent alias moves from two nodes leave exactly one alias, pointing at one of the keys', async () => {
    const keys = [await createKey(a), await createKey(b)];
    await a.send(new CreateAliasCommand({ AliasName: 'alias/contended', TargetKeyId: keys[0].KeyId }));
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).send(new UpdateAliasCommand({ AliasName: 'alias/contended', TargetKeyId: keys[i % 2].KeyId })),
      ),
    );
    for (const client of [a, b, c]) {
      const aliases = (await client.send(new ListAliasesCommand({}))).Aliases!.filter((alias) => alias.AliasName === 'alias/contended');
      assert.equal(aliases.length, 1);
      assert.ok(keys.some((key) => key.KeyId === aliases[0].TargetKeyId));
    }
  });

  it('a node killed mid-load: every acknowledged request has its event in the one shared chain, which verifies', async () => {
    const key = await createKey(a);
    const acknowledged: string[] = [];
    let stop = false;
    const worker = async (client: KMSClient) => {
      while (!stop) {
        try {
          const response = await client.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('load') }));
          acknowledged.push(response.$metadata.requestId as string);
        } catch {
          return; // its node died under this request
        }
      }
    };
    const workers = [a, a, b, b, c, c].map(worker);
    for (const started = Date.now(); acknowledged.length < 150 && Date.now() - started < 30_000; ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await nodes[1].kill();
    await new Promise((resolve) => setTimeout(resolve, 300));
    stop = true;
    await Promise.all(workers);
    assert.ok(acknowledged.length >= 150, `only ${acknowledged.length} acknowledged`);

    const audit = (...args: string[]) =>
      spawnSync(process.execPath, [STRONGROOM_BIN, 'audit', ...args, '--data-dir', dataDirs[0], '--database', databaseUrl], {
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
        timeout: 120_000,
      });
    const verified = audit('verify');
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /intact/);
    const exported = audit('export');
    assert.equal(exported.status, 0, exported.stderr);
    const recorded = new Set(
      exported.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { type: string; event?: { requestID?: string } })
        .filter((line) => line.type === 'event')
        .map((line) => line.event?.requestID),
    );
    const missing = acknowledged.filter((id) => !recorded.has(id));
    assert.deepEqual(missing, [], `${missing.length} acknowledged requests have no event`);
  });
});
