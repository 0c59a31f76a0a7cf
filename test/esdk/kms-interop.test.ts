/**
 * Strongroom's SDK and the official AWS Encryption SDK for JavaScript (@aws-crypto/client-node,
 * KmsKeyringNode) against one running `strongroom serve`: a message made by either, with the KMS
 * keyring, decrypts with the other — across suites, framed and non-framed, with several keys.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { AlgorithmSuiteIdentifier, buildClient, CommitmentPolicy, KmsKeyringNode } from '@aws-crypto/client-node';
import { KMS } from '@aws-sdk/client-kms';
import { decrypt, decryptStream, encrypt, encryptStream, type MessageHeaderInfo } from '../../src/esdk/index.ts';
import { CachingCryptographicMaterialsManager, KmsDiscoveryKeyring, KmsKeyring } from '../../src/esdk/kms.ts';
import type { CommitmentPolicy as Policy } from '../../src/esdk/types.ts';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

const CONTEXT = { tenant: 'acme', purpose: 'interop' };

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** 256 KiB chunks, as a file read stream would deliver them. */
const chunked = (bytes: Buffer) => Readable.from(Array.from({ length: Math.ceil(bytes.length / 262_144) }, (_, i) => bytes.subarray(i * 262_144, (i + 1) * 262_144)));

const official = {
  REQUIRE_ENCRYPT_REQUIRE_DECRYPT: buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT),
  REQUIRE_ENCRYPT_ALLOW_DECRYPT: buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT),
  FORBID_ENCRYPT_ALLOW_DECRYPT: buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT),
} as const;

/** [title, suite, policy, body] — every KDF/signature family, both header versions, both body kinds. */
const CASES: [string, number, Policy, { frameLength?: number; nonFramed?: boolean }][] = [
  ['0x0578 (default, committing, signed), 4 KB frames', 0x0578, 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT', {}],
  ['0x0478 (committing, unsigned), 64 KB frames', 0x0478, 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT', { frameLength: 65_536 }],
  ['0x0378 (signed, v1 header), 512-byte frames', 0x0378, 'FORBID_ENCRYPT_ALLOW_DECRYPT', { frameLength: 512 }],
  ['0x0178 (HKDF, v1 header), non-framed', 0x0178, 'FORBID_ENCRYPT_ALLOW_DECRYPT', { nonFramed: true }],
  ['0x0014 (AES-128, identity KDF), non-framed', 0x0014, 'FORBID_ENCRYPT_ALLOW_DECRYPT', { nonFramed: true }],
];

describe('KMS keyring interoperability with @aws-crypto/client-node against strongroom serve', () => {
  let server: RunningServer;
  let kms: KMS;
  let keyArn: string;
  let secondKeyArn: string;

  const officialKeyring = (input: { generatorKeyId?: string; keyIds?: string[] }) => new KmsKeyringNode({ ...input, clientProvider: () => kms });

  before(async () => {
    server = await startServer({ timeoutMs: 60_000 }); // generous: the CI machine may be busy
    kms = new KMS({ endpoint: server.endpoint, region: server.region, credentials: server.credentials, maxAttempts: 1 });
    keyArn = (await kms.createKey({})).KeyMetadata!.Arn!;
    secondKeyArn = (await kms.createKey({})).KeyMetadata!.Arn!;
  });

  after(async () => {
    kms?.destroy();
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  for (const [title, suiteId, policy, body] of CASES) {
    const plaintext = randomBytes(100_000 + suiteId);

    it(`Strongroom encrypts, the official SDK decrypts: ${title}`, async () => {
      const { ciphertext, header } = await encrypt(plaintext, {
        keyring: new KmsKeyring({ generatorKeyId: keyArn, keyIds: [secondKeyArn], client: kms }),
        encryptionContext: CONTEXT,
        suiteId,
        commitmentPolicy: policy,
        ...(body.nonFramed ? { contentType: 'non-framed' as const } : { frameLength: body.frameLength }),
      });
      assert.equal(header.suiteId, suiteId);
      for (const arn of [keyArn, secondKeyArn]) {
        const decrypted = await official[policy].decrypt(officialKeyring({ keyIds: [arn] }), ciphertext);
        assert.ok(decrypted.plaintext.equals(plaintext), `decrypted with ${arn}`);
        assert.equal(decrypted.messageHeader.encryptionContext.tenant, 'acme');
        assert.deepEqual(decrypted.messageHeader.encryptedDataKeys.map((edk) => edk.providerInfo), [keyArn, secondKeyArn]);
      }
    });

    // The official JS SDK writes framed bodies only, so its non-framed cases are framed.
    it(`the official SDK encrypts, Strongroom decrypts (KMS and discovery keyrings): ${title.replace('non-framed', 'framed')}`, async () => {
      const { result } = await official[policy].encrypt(officialKeyring({ generatorKeyId: keyArn, keyIds: [secondKeyArn] }), plaintext, {
        encryptionContext: CONTEXT,
        suiteId: suiteId as AlgorithmSuiteIdentifier,
        ...(body.frameLength ? { frameLength: body.frameLength } : {}),
      });
      for (const keyring of [
        new KmsKeyring({ keyIds: [secondKeyArn], client: kms }),
        new KmsDiscoveryKeyring({ client: kms, discoveryFilter: { partition: 'aws', accountIds: [keyArn.split(':')[4]] } }),
      ]) {
        const decrypted = await decrypt(result, { keyring, commitmentPolicy: policy, encryptionContext: CONTEXT });
        assert.ok(decrypted.plaintext.equals(plaintext), keyring.constructor.name);
        assert.equal(decrypted.header.suiteId, suiteId);
        assert.deepEqual(decrypted.header.encryptedDataKeys.map((edk) => Buffer.from(edk.providerInfo).toString()), [keyArn, secondKeyArn]);
      }
    });
  }

  it('streams: Strongroom’s encryptStream to the official decryptStream, and the official encryptStream to Strongroom’s decryptStream', async () => {
    const plaintext = randomBytes(3 * 1024 * 1024 + 5);
    const ours = encryptStream({ keyring: new KmsKeyring({ generatorKeyId: keyArn, client: kms }), encryptionContext: CONTEXT });
    const [ourMessage] = await Promise.all([collect(ours), pipeline(chunked(plaintext), ours)]);
    const theirDecrypt = official.REQUIRE_ENCRYPT_REQUIRE_DECRYPT.decryptStream(officialKeyring({ keyIds: [keyArn] }));
    const [fromOurs] = await Promise.all([collect(theirDecrypt), pipeline(chunked(ourMessage), theirDecrypt)]);
    assert.ok(fromOurs.equals(plaintext), 'official decryptStream reads our stream');

    const theirs = official.REQUIRE_ENCRYPT_REQUIRE_DECRYPT.encryptStream(officialKeyring({ generatorKeyId: keyArn }), { encryptionContext: CONTEXT });
    const [theirMessage] = await Promise.all([collect(theirs), pipeline(chunked(plaintext), theirs)]);
    const ourDecrypt = decryptStream({ keyring: new KmsKeyring({ keyIds: [keyArn], client: kms }) });
    let header: MessageHeaderInfo | undefined;
    ourDecrypt.once('header', (info: MessageHeaderInfo) => (header = info));
    const [fromTheirs] = await Promise.all([collect(ourDecrypt), pipeline(chunked(theirMessage), ourDecrypt)]);
    assert.ok(fromTheirs.equals(plaintext), 'our decryptStream reads the official stream');
    assert.equal(header?.encryptionContext.tenant, 'acme');
  });

  it('messages made with the caching manager decrypt with the official SDK', async () => {
    const cmm = new CachingCryptographicMaterialsManager({ underlying: new KmsKeyring({ generatorKeyId: keyArn, client: kms }), maxAge: 60_000 });
    const plaintexts = [randomBytes(10), randomBytes(5000), randomBytes(0)];
    for (const plaintext of plaintexts) {
      const { ciphertext } = await encrypt(plaintext, { cmm, encryptionContext: CONTEXT });
      const decrypted = await official.REQUIRE_ENCRYPT_REQUIRE_DECRYPT.decrypt(officialKeyring({ keyIds: [keyArn] }), ciphertext);
      assert.ok(decrypted.plaintext.equals(plaintext));
    }
    assert.equal(cmm.stats.encryptHits, 2);
  });

  it('a keyring naming only another key cannot decrypt the official SDK’s message', async () => {
    const { result } = await official.REQUIRE_ENCRYPT_REQUIRE_DECRYPT.encrypt(officialKeyring({ generatorKeyId: keyArn }), randomBytes(100), {
      encryptionContext: CONTEXT,
    });
    await assert.rejects(decrypt(result, { keyring: new KmsKeyring({ keyIds: [secondKeyArn], client: kms }) }), { code: 'NoDecryptableKey' });
  });
});
