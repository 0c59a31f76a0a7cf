import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * The official AWS Encryption SDK test vectors (aws-encryption-sdk-test-vectors, copied into
 * test/vectors/esdk with their LICENSE): 0002 holds the keys, 0003 the encrypt scenarios. Both the
 * Strongroom side and the official-SDK oracle read them through this module, so both build their
 * keyrings from the same parsed description.
 */
const dir = resolve(import.meta.dirname, '../../vectors/esdk');

export interface KeySpec {
  type: 'symmetric' | 'private' | 'public' | 'aws-kms';
  keyId: string;
  encrypt: boolean;
  decrypt: boolean;
  bits?: number;
  material?: string;
}

export interface MasterKeySpec {
  type: 'raw' | 'aws-kms';
  key: string;
  providerId?: string;
  encryptionAlgorithm?: 'aes' | 'rsa';
  paddingAlgorithm?: 'pkcs1' | 'oaep-mgf1';
  paddingHash?: 'sha1' | 'sha256' | 'sha384' | 'sha512';
}

export interface Scenario {
  id: string;
  suiteId: number;
  frameSize: number;
  plaintextLength: number;
  encryptionContext: Record<string, string>;
  masterKeys: MasterKeySpec[];
}

interface RawScenario {
  plaintext: string;
  algorithm: string;
  'frame-size': number;
  'encryption-context': Record<string, string>;
  'master-keys': Record<string, string>[];
}

export function loadKeys(): Map<string, KeySpec> {
  const manifest = JSON.parse(readFileSync(resolve(dir, '0002-keys.v3.json'), 'utf8')) as { keys: Record<string, Record<string, unknown>> };
  return new Map(
    Object.entries(manifest.keys).map(([name, raw]) => [
      name,
      {
        type: raw.type as KeySpec['type'],
        keyId: raw['key-id'] as string,
        encrypt: raw.encrypt as boolean,
        decrypt: raw.decrypt as boolean,
        ...(raw.bits !== undefined ? { bits: raw.bits as number } : {}),
        ...(raw.material !== undefined ? { material: raw.material as string } : {}),
      },
    ]),
  );
}

export function loadScenarios(): Scenario[] {
  const manifest = JSON.parse(readFileSync(resolve(dir, '0003-awses-message-encryption.v2.json'), 'utf8')) as {
    plaintexts: Record<string, number>;
    tests: Record<string, RawScenario>;
  };
  return Object.entries(manifest.tests).map(([id, raw]) => ({
    id,
    suiteId: Number.parseInt(raw.algorithm, 16),
    frameSize: raw['frame-size'],
    plaintextLength: manifest.plaintexts[raw.plaintext],
    encryptionContext: raw['encryption-context'],
    masterKeys: raw['master-keys'].map((mk) => ({
      type: mk.type as MasterKeySpec['type'],
      key: mk.key,
      ...(mk['provider-id'] !== undefined ? { providerId: mk['provider-id'] } : {}),
      ...(mk['encryption-algorithm'] !== undefined ? { encryptionAlgorithm: mk['encryption-algorithm'] as 'aes' } : {}),
      ...(mk['padding-algorithm'] !== undefined ? { paddingAlgorithm: mk['padding-algorithm'] as 'pkcs1' } : {}),
      ...(mk['padding-hash'] !== undefined ? { paddingHash: mk['padding-hash'] as 'sha1' } : {}),
    })),
  }));
}

/** Committing suites encrypt under REQUIRE_*, the others under FORBID (the official SDKs' rule too). */
export function encryptPolicy(suiteId: number): 'FORBID_ENCRYPT_ALLOW_DECRYPT' | 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' {
  return suiteId >= 0x0478 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT';
}

/** The decrypting side uses every master key of the scenario that the key manifest marks decryptable. */
export function decryptingKeys(scenario: Scenario, keys: Map<string, KeySpec>): MasterKeySpec[] {
  return scenario.masterKeys.filter((mk) => keys.get(mk.key)?.decrypt);
}

/** The same plaintext in both processes: a fixed pattern of the scenario's length. */
export function scenarioPlaintext(length: number): Buffer {
  const plaintext = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) plaintext[i] = (i * 31 + 7) & 0xff;
  return plaintext;
}
