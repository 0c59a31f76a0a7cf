/**
 * OpenSSL as an independent second implementation: what Strongroom signs, encrypts to and agrees
 * on over the real @aws-sdk/client-kms must be what the `openssl` command line (OpenSSL 3) makes of
 * the same bytes, given only the public key GetPublicKey returns.
 *
 * - Sign through Strongroom, verify with `openssl dgst -verify` (RSA PKCS#1 v1.5, RSA-PSS with the
 *   salt length equal to the digest length as KMS uses, ECDSA) or `openssl pkeyutl -verify -rawin`
 *   (Ed25519); a one-byte change to the message must make OpenSSL refuse the signature.
 * - Encrypt with `openssl pkeyutl -encrypt` (RSAES-OAEP, MGF1 over the OAEP hash), decrypt through
 *   Strongroom.
 * - ECDH: `openssl pkeyutl -derive` with a peer key OpenSSL generated equals DeriveSharedSecret
 *   given that peer's SubjectPublicKeyInfo.
 *
 * Not covered here, because the OpenSSL this suite targets (Debian 12's 3.0) cannot check them:
 * ML-DSA (ML_DSA_44/65/87, in OpenSSL from 3.5 on) and ED25519_PH_SHA_512 (Ed25519ph in pkeyutl from
 * 3.2 on). Those are checked against other implementations in test/crypto (Wycheproof, noble).
 * Nothing is skipped at run time: without a working `openssl` these tests fail.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateKeyCommand,
  DecryptCommand,
  DeriveSharedSecretCommand,
  GetPublicKeyCommand,
  SignCommand,
  type EncryptionAlgorithmSpec,
  type KeySpec,
  type KeyUsageType,
  type KMSClient,
  type MessageType,
  type SigningAlgorithmSpec,
} from '@aws-sdk/client-kms';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

const OPENSSL_TIMEOUT_MS = 10_000;

interface OpensslResult {
  code: number;
  output: string;
}

/** Runs openssl; resolves with its exit code and output, rejects only if it could not run or timed out. */
function openssl(args: string[]): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: OPENSSL_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (error === null) {
        resolve({ code: 0, output });
      } else if (typeof error.code === 'number' && !error.killed) {
        resolve({ code: error.code, output });
      } else {
        reject(new Error(`openssl ${args.join(' ')} did not finish: ${error.message}\n${output}`));
      }
    });
  });
}

async function opensslOk(args: string[]): Promise<string> {
  const { code, output } = await openssl(args);
  assert.equal(code, 0, `openssl ${args.join(' ')} exited ${code}:\n${output}`);
  return output;
}

function pemPublicKey(der: Uint8Array): string {
  const base64 = Buffer.from(der).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join('\n')}\n-----END PUBLIC KEY-----\n`;
}

interface SigningCase {
  keySpec: KeySpec;
  algorithm: SigningAlgorithmSpec;
  /** openssl dgst's digest option; undefined for Ed25519 (pkeyutl -rawin, the scheme's own SHA-512). */
  digest?: 'sha256' | 'sha384' | 'sha512';
  pss?: boolean;
}

const RSA_SPECS = ['RSA_2048', 'RSA_3072', 'RSA_4096'] as const;
const HASHES = [
  ['SHA_256', 'sha256'],
  ['SHA_384', 'sha384'],
  ['SHA_512', 'sha512'],
] as const;

const SIGNING_CASES: SigningCase[] = [
  ...RSA_SPECS.flatMap((keySpec) =>
    HASHES.flatMap(([suffix, digest]) => [
      { keySpec, algorithm: `RSASSA_PKCS1_V1_5_${suffix}` as SigningAlgorithmSpec, digest },
      { keySpec, algorithm: `RSASSA_PSS_${suffix}` as SigningAlgorithmSpec, digest, pss: true },
    ]),
  ),
  { keySpec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256', digest: 'sha256' },
  { keySpec: 'ECC_NIST_P384', algorithm: 'ECDSA_SHA_384', digest: 'sha384' },
  { keySpec: 'ECC_NIST_P521', algorithm: 'ECDSA_SHA_512', digest: 'sha512' },
  { keySpec: 'ECC_SECG_P256K1', algorithm: 'ECDSA_SHA_256', digest: 'sha256' },
  { keySpec: 'ECC_NIST_EDWARDS25519', algorithm: 'ED25519_SHA_512' },
];

const ENCRYPTION_CASES = RSA_SPECS.flatMap((keySpec) => [
  { keySpec, algorithm: 'RSAES_OAEP_SHA_1' as EncryptionAlgorithmSpec, hash: 'sha1', hashLength: 20 },
  { keySpec, algorithm: 'RSAES_OAEP_SHA_256' as EncryptionAlgorithmSpec, hash: 'sha256', hashLength: 32 },
]);

const AGREEMENT_CASES = [
  { keySpec: 'ECC_NIST_P256', curve: 'P-256' },
  { keySpec: 'ECC_NIST_P384', curve: 'P-384' },
  { keySpec: 'ECC_NIST_P521', curve: 'P-521' },
] as const;

let server: RunningServer;
let kms: KMSClient;
let workDir: string;
let fileCounter = 0;

/** A fresh path in the work dir, so no test reads another test's file. */
const tempPath = (name: string) => join(workDir, `${++fileCounter}-${name}`);

interface KmsKey {
  keyId: string;
  publicKeyPem: string;
}

// One key per (spec, usage), created on first use and shared by the cases that need it.
const keys = new Map<string, Promise<KmsKey>>();
function kmsKey(keySpec: KeySpec, keyUsage: KeyUsageType): Promise<KmsKey> {
  const id = `${keySpec}/${keyUsage}`;
  let key = keys.get(id);
  if (key === undefined) {
    key = (async () => {
      const created = await kms.send(new CreateKeyCommand({ KeySpec: keySpec, KeyUsage: keyUsage }));
      const keyId = created.KeyMetadata?.KeyId as string;
      const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
      assert.ok(PublicKey, 'GetPublicKey returned no PublicKey');
      const publicKeyPem = tempPath(`${keySpec}-${keyUsage}.pub.pem`);
      await writeFile(publicKeyPem, pemPublicKey(PublicKey));
      return { keyId, publicKeyPem };
    })();
    keys.set(id, key);
  }
  return key;
}

before(async () => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  workDir = await mkdtemp(join(tmpdir(), 'strongroom-openssl-'));
  server = await startServer();
  kms = server.kms();
});

after(async () => {
  await server?.stop();
  if (server) await removeDataDir(server.dataDir);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

test('the openssl on this machine is OpenSSL 3', async () => {
  assert.match(await opensslOk(['version']), /^OpenSSL 3\./);
});

describe('OpenSSL verifies what Strongroom signs', () => {
  for (const { keySpec, algorithm, digest, pss } of SIGNING_CASES) {
    // KMS's DIGEST type (the message is the hash) must give the same signature as RAW over the
    // message; Ed25519 (ED25519_SHA_512) takes RAW only.
    const messageTypes: MessageType[] = digest ? ['RAW', 'DIGEST'] : ['RAW'];
    for (const messageType of messageTypes) {
      test(`${keySpec} ${algorithm} over a ${messageType} message verifies, and fails over a tampered message`, async () => {
        const { keyId, publicKeyPem } = await kmsKey(keySpec, 'SIGN_VERIFY');
        const message = randomBytes(100);
        const messageFile = tempPath('message.bin');
        const tamperedFile = tempPath('tampered.bin');
        const signatureFile = tempPath('signature.bin');
        const tampered = Buffer.from(message);
        tampered[17] ^= 0x01;
        await writeFile(messageFile, message);
        await writeFile(tamperedFile, tampered);

        const { Signature } = await kms.send(
          new SignCommand({
            KeyId: keyId,
            SigningAlgorithm: algorithm,
            MessageType: messageType,
            Message: messageType === 'DIGEST' ? createHash(digest!).update(message).digest() : message,
          }),
        );
        assert.ok(Signature, 'Sign returned no Signature');
        await writeFile(signatureFile, Signature);

        const verifyArgs = (file: string) =>
          digest
            ? [
                'dgst',
                `-${digest}`,
                ...(pss ? ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest'] : []),
                '-verify',
                publicKeyPem,
                '-signature',
                signatureFile,
                file,
              ]
            : ['pkeyutl', '-verify', '-pubin', '-inkey', publicKeyPem, '-rawin', '-in', file, '-sigfile', signatureFile];
        const success = digest ? /Verified OK/ : /Signature Verified Successfully/;

        const genuine = await openssl(verifyArgs(messageFile));
        assert.equal(genuine.code, 0, `openssl refused the signature:\n${genuine.output}`);
        assert.match(genuine.output, success);

        const forged = await openssl(verifyArgs(tamperedFile));
        assert.notEqual(forged.code, 0, `openssl accepted a signature over a different message:\n${forged.output}`);
        assert.doesNotMatch(forged.output, success);
      });
    }
  }
});

describe('Strongroom decrypts what OpenSSL encrypts to its public key', () => {
  for (const { keySpec, algorithm, hash, hashLength } of ENCRYPTION_CASES) {
    test(`${keySpec} ${algorithm}: a longest-possible plaintext encrypted by openssl decrypts to itself`, async () => {
      const { keyId, publicKeyPem } = await kmsKey(keySpec, 'ENCRYPT_DECRYPT');
      const modulusBytes = Number(/\d+/.exec(keySpec)![0]) / 8;
      // RFC 8017 §7.1.1: at most k - 2·hLen - 2 bytes.
      const plaintext = randomBytes(modulusBytes - 2 * hashLength - 2);
      const plaintextFile = tempPath('plaintext.bin');
      const ciphertextFile = tempPath('ciphertext.bin');
      await writeFile(plaintextFile, plaintext);
      await opensslOk([
        'pkeyutl',
        '-encrypt',
        '-pubin',
        '-inkey',
        publicKeyPem,
        '-pkeyopt',
        'rsa_padding_mode:oaep',
        '-pkeyopt',
        `rsa_oaep_md:${hash}`,
        '-pkeyopt',
        `rsa_mgf1_md:${hash}`,
        '-in',
        plaintextFile,
        '-out',
        ciphertextFile,
      ]);
      const ciphertext = await readFile(ciphertextFile);
      assert.equal(ciphertext.length, modulusBytes);

      const decrypted = await kms.send(
        new DecryptCommand({ KeyId: keyId, EncryptionAlgorithm: algorithm, CiphertextBlob: ciphertext }),
      );
      assert.deepEqual(Buffer.from(decrypted.Plaintext ?? []), plaintext);
      assert.equal(decrypted.EncryptionAlgorithm, algorithm);

      // The other OAEP hash must not decrypt it: the algorithm is really applied, not guessed.
      const otherAlgorithm: EncryptionAlgorithmSpec = algorithm === 'RSAES_OAEP_SHA_1' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
      await assert.rejects(
        kms.send(new DecryptCommand({ KeyId: keyId, EncryptionAlgorithm: otherAlgorithm, CiphertextBlob: ciphertext })),
        { name: 'InvalidCiphertextException' },
      );
    });
  }
});

describe('DeriveSharedSecret agrees with OpenSSL ECDH', () => {
  for (const { keySpec, curve } of AGREEMENT_CASES) {
    test(`${keySpec}: the secret openssl derives from its peer key and the KMS public key is DeriveSharedSecret's`, async () => {
      const { keyId, publicKeyPem } = await kmsKey(keySpec, 'KEY_AGREEMENT');
      const peerKey = tempPath('peer.pem');
      const peerPublicDer = tempPath('peer.pub.der');
      const sharedFile = tempPath('shared.bin');
      await opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-out', peerKey]);
      await opensslOk(['pkey', '-in', peerKey, '-pubout', '-outform', 'DER', '-out', peerPublicDer]);
      await opensslOk(['pkeyutl', '-derive', '-inkey', peerKey, '-peerkey', publicKeyPem, '-out', sharedFile]);
      const expected = await readFile(sharedFile);

      const derived = await kms.send(
        new DeriveSharedSecretCommand({
          KeyId: keyId,
          KeyAgreementAlgorithm: 'ECDH',
          PublicKey: await readFile(peerPublicDer),
        }),
      );
      assert.equal(expected.length, Math.ceil(Number(/\d+/.exec(curve)![0]) / 8));
      assert.deepEqual(Buffer.from(derived.SharedSecret ?? []), expected);
    });
  }
});
