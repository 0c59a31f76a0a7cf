import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decrypt, encrypt } from '../../src/esdk/index.ts';
import { OfficialOracle } from './support/official-oracle-client.ts';
import { SimulatedKms, SimulatedKmsKeyring } from './support/simulated-kms.ts';
import { StrongroomVectorKeyrings } from './support/strongroom-keyrings.ts';
import { decryptingKeys, encryptPolicy, loadKeys, loadScenarios, scenarioPlaintext, type Scenario } from './support/vector-scenarios.ts';

/**
 * Every scenario of the official ESDK vectors 0003, both ways: Strongroom encrypts and the official
 * @aws-crypto/client-node decrypts, and the official SDK encrypts and Strongroom decrypts.
 * The official SDK runs in a child process (support/official-oracle.ts), so the two use both cores.
 *
 * Two deviations, counted below:
 * - aws-kms scenarios (440) run against a simulated KMS (support/simulated-kms.ts) on both sides:
 *   they prove the aws-kms EDK shape and multi-EDK messages interoperate, not a real KMS.
 * - frame-size 0 scenarios (660) mean non-framed; the official SDK cannot write non-framed bodies
 *   (its encrypt requires frameLength > 0), so in the official → Strongroom direction those run with
 *   the official default frame length 4096. Strongroom → official runs them non-framed.
 */
const keys = loadKeys();
const scenarios = loadScenarios();
const kms = new SimulatedKms();
const keyrings = new StrongroomVectorKeyrings(keys, (spec) => new SimulatedKmsKeyring(kms, keys.get(spec.key)!.keyId));
const CONCURRENCY = 12;

let oracle: OfficialOracle;

async function strongroomToOfficial(scenario: Scenario): Promise<void> {
  const plaintext = scenarioPlaintext(scenario.plaintextLength);
  const { ciphertext } = await encrypt(plaintext, {
    keyring: keyrings.forEncrypt(scenario.masterKeys),
    suiteId: scenario.suiteId,
    encryptionContext: scenario.encryptionContext,
    commitmentPolicy: encryptPolicy(scenario.suiteId),
    ...(scenario.frameSize === 0 ? { contentType: 'non-framed' as const } : { frameLength: scenario.frameSize }),
  });
  const decrypted = await oracle.request('decrypt', scenario.id, { message: ciphertext });
  if (!decrypted.equals(plaintext)) throw new Error('official SDK returned a different plaintext');
}

async function officialToStrongroom(scenario: Scenario): Promise<void> {
  const plaintext = scenarioPlaintext(scenario.plaintextLength);
  const message = await oracle.request('encrypt', scenario.id, { frameLength: scenario.frameSize || 4096 });
  const { plaintext: decrypted, header } = await decrypt(message, {
    keyring: keyrings.forDecrypt(decryptingKeys(scenario, keys)),
    commitmentPolicy: encryptPolicy(scenario.suiteId) === 'FORBID_ENCRYPT_ALLOW_DECRYPT' ? 'FORBID_ENCRYPT_ALLOW_DECRYPT' : 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT',
  });
  if (!decrypted.equals(plaintext)) throw new Error('Strongroom returned a different plaintext');
  if (header.suiteId !== scenario.suiteId) throw new Error('header names another suite');
}

/** Runs both directions of every scenario with bounded concurrency; returns the failures. */
async function runAll(batch: Scenario[]): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batch.length) {
      const scenario = batch[next++];
      for (const [direction, run] of [['strongroom→official', strongroomToOfficial], ['official→strongroom', officialToStrongroom]] as const) {
        try {
          await run(scenario);
        } catch (error) {
          failures.push(`${scenario.id} ${direction}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return failures;
}

describe('AWS Encryption SDK vectors 0003 (official @aws-crypto/client-node ↔ Strongroom)', () => {
  before(async () => {
    oracle = new OfficialOracle();
    await oracle.ready;
  });
  after(() => oracle.close());

  it('has the 3,300 scenarios of the manifest: 2,860 with raw keys and 440 naming aws-kms keys', () => {
    assert.equal(scenarios.length, 3300);
    const kmsScenarios = scenarios.filter((s) => s.masterKeys.some((mk) => mk.type === 'aws-kms'));
    assert.equal(kmsScenarios.length, 440);
    assert.ok(kmsScenarios.every((s) => s.masterKeys.every((mk) => mk.type === 'aws-kms')));
    assert.equal(scenarios.filter((s) => s.frameSize === 0).length, 660);
  });

  const suiteIds = [...new Set(scenarios.map((s) => s.suiteId))];
  for (const suiteId of suiteIds) {
    const batch = scenarios.filter((s) => s.suiteId === suiteId);
    it(`suite 0x${suiteId.toString(16).padStart(4, '0')}: all ${batch.length} scenarios pass both ways`, async () => {
      const failures = await runAll(batch);
      const kinds = new Map<string, number>();
      for (const failure of failures) {
        const kind = failure.slice(failure.indexOf(' ') + 1);
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
      assert.deepEqual([...kinds], [], `${failures.length} of ${batch.length * 2} runs failed, e.g. ${failures[0]}`);
    });
  }
});
