/**
 * Child process that runs the official AWS Encryption SDK (@aws-crypto/client-node 5.0.2) for the
 * vector tests: it encrypts or decrypts a scenario on request over the IPC channel. Running it in its
 * own process puts the official SDK on the second core while Strongroom works on the first.
 *
 * It is started with --security-revert=CVE-2023-46809 because the official raw RSA keyring decrypts
 * PKCS#1 v1.5 with crypto.privateDecrypt(RSA_PKCS1_PADDING), which Node ≥ 20.11 refuses by default
 * (the Marvin attack); Strongroom's own keyring does not need it (see src/esdk/keyrings/pkcs1-unpad.ts).
 */
import {
  AlgorithmSuiteIdentifier,
  CommitmentPolicy,
  KmsKeyringNode,
  MultiKeyringNode,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  RawRsaKeyringNode,
  buildClient,
  type KeyringNode,
} from '@aws-crypto/client-node';
import { constants, createPublicKey } from 'node:crypto';
import { SimulatedKms } from './simulated-kms.ts';
import { decryptingKeys, encryptPolicy, loadKeys, loadScenarios, scenarioPlaintext, type MasterKeySpec } from './vector-scenarios.ts';

const keys = loadKeys();
const scenarios = new Map(loadScenarios().map((s) => [s.id, s]));
const kms = new SimulatedKms();
const clients = {
  FORBID_ENCRYPT_ALLOW_DECRYPT: buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT),
  REQUIRE_ENCRYPT_REQUIRE_DECRYPT: buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT),
};
const cache = new Map<string, KeyringNode>();

const AES_SUITES = {
  128: RawAesWrappingSuiteIdentifier.AES128_GCM_IV12_TAG16_NO_PADDING,
  192: RawAesWrappingSuiteIdentifier.AES192_GCM_IV12_TAG16_NO_PADDING,
  256: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
} as const;

function keyring(spec: MasterKeySpec, forDecrypt: boolean): KeyringNode {
  const cacheKey = JSON.stringify(spec) + forDecrypt;
  let found = cache.get(cacheKey);
  if (found) return found;
  if (spec.type === 'aws-kms') {
    const keyArn = kms.keyArnFor(keys.get(spec.key)!.keyId);
    // Decrypt is configured with the key ARN the EDK names (what KMS puts in the response).
    found = new KmsKeyringNode({ generatorKeyId: forDecrypt ? keyArn : keys.get(spec.key)!.keyId, clientProvider: () => kms.officialClient() as never });
  } else {
    const key = keys.get(spec.key)!;
    if (spec.encryptionAlgorithm === 'aes') {
      found = new RawAesKeyringNode({
        keyNamespace: spec.providerId!,
        keyName: key.keyId,
        unencryptedMasterKey: new Uint8Array(Buffer.from(key.material!, 'base64')),
        wrappingSuite: AES_SUITES[key.bits as 128],
      });
    } else {
      found = new RawRsaKeyringNode({
        keyNamespace: spec.providerId!,
        keyName: key.keyId,
        // The official keyring encrypts only with a public key given explicitly.
        rsaKey:
          key.type === 'private'
            ? { privateKey: key.material!, publicKey: createPublicKey(key.material!).export({ type: 'spki', format: 'pem' }) as string }
            : { publicKey: key.material! },
        ...(spec.paddingAlgorithm === 'pkcs1'
          ? { padding: constants.RSA_PKCS1_PADDING }
          : { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: spec.paddingHash! }),
      });
    }
  }
  cache.set(cacheKey, found);
  return found;
}

interface Request {
  id: number;
  op: 'encrypt' | 'decrypt';
  scenarioId: string;
  /** For op = encrypt: the frame length to use (the official SDK writes framed bodies only). */
  frameLength?: number;
  message?: Uint8Array;
}

async function handle(request: Request): Promise<Uint8Array> {
  const scenario = scenarios.get(request.scenarioId)!;
  const client = clients[encryptPolicy(scenario.suiteId)];
  if (request.op === 'encrypt') {
    const [generator, ...children] = scenario.masterKeys.map((mk) => keyring(mk, false));
    const encryptKeyring = children.length ? new MultiKeyringNode({ generator, children }) : generator;
    const { result } = await client.encrypt(encryptKeyring, scenarioPlaintext(scenario.plaintextLength), {
      suiteId: scenario.suiteId as AlgorithmSuiteIdentifier,
      encryptionContext: scenario.encryptionContext,
      frameLength: request.frameLength!,
    });
    return result;
  }
  const decryptKeyring = new MultiKeyringNode({ children: decryptingKeys(scenario, keys).map((mk) => keyring(mk, true)) });
  const { plaintext } = await client.decrypt(decryptKeyring, request.message!);
  return plaintext;
}

process.on('message', (request: Request) => {
  handle(request).then(
    (result) => process.send!({ id: request.id, ok: true, result: Buffer.from(result.buffer, result.byteOffset, result.byteLength) }),
    (error: unknown) => process.send!({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.send!({ ready: true });
