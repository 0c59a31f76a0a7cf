import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { buildClient, CommitmentPolicy, KmsKeyringNode, type MessageHeader } from '@aws-crypto/client-node';
import { KMS } from '@aws-sdk/client-kms';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

const { encrypt, decrypt, encryptStream, decryptStream } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

const MiB = 1024 * 1024;
const ENCRYPTION_CONTEXT = { tenant: 'acme', purpose: 'esdk-wire-test' };

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every pair of ours must be in the message header's context (the ESDK adds its own, e.g. the signing key). */
function assertCarriesContext(header: MessageHeader): void {
  for (const [name, value] of Object.entries(ENCRYPTION_CONTEXT)) {
    assert.equal(header.encryptionContext[name], value, `header context ${name}`);
  }
}

describe('AWS Encryption SDK (KmsKeyringNode) against strongroom serve', () => {
  let server: RunningServer;
  /** The ESDK calls kms.generateDataKey() etc., so it needs the aggregated client, not the bare KMSClient. */
  let kms: KMS;
  let keyArn: string;
  let aliasArn: string;
  let otherKeyArn: string;
  const regionsAsked: string[] = [];

  /** The keyring reaches KMS only through clientProvider: every region goes to our server. */
  const keyring = (input: { generatorKeyId?: string; keyIds?: string[] }) =>
    new KmsKeyringNode({
      ...input,
      clientProvider: (region: string) => {
        regionsAsked.push(region);
        return kms;
      },
    });

  before(async () => {
    server = await startServer();
    kms = new KMS({ endpoint: server.endpoint, region: server.region, credentials: server.credentials, maxAttempts: 1 });
    const created = await kms.createKey({ Description: 'esdk wire test' });
    keyArn = created.KeyMetadata!.Arn!;
    aliasArn = keyArn.replace(/key\/.*$/, 'alias/esdk-test');
    await kms.createAlias({ AliasName: 'alias/esdk-test', TargetKeyId: created.KeyMetadata!.KeyId });
    otherKeyArn = (await kms.createKey({})).KeyMetadata!.Arn!;
  });

  after(async () => {
    kms?.destroy();
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  test('round-trips 1 MiB of random data with an encryption context under a key ARN', async () => {
    const plaintext = randomBytes(MiB);
    const encrypted = await encrypt(keyring({ generatorKeyId: keyArn }), plaintext, {
      encryptionContext: ENCRYPTION_CONTEXT,
    });
    assertCarriesContext(encrypted.messageHeader);
    assert.deepEqual(
      encrypted.messageHeader.encryptedDataKeys.map((edk) => [edk.providerId, edk.providerInfo]),
      [['aws-kms', keyArn]],
    );
    assert.ok(regionsAsked.every((region) => region === server.region), `regions asked: ${regionsAsked.join(', ')}`);

    const decrypted = await decrypt(keyring({ keyIds: [keyArn] }), encrypted.result);
    assert.ok(decrypted.plaintext.equals(plaintext), 'decrypted bytes equal the original');
    assertCarriesContext(decrypted.messageHeader);
  });

  test('accepts an alias ARN as generatorKeyId and records the key ARN in the message', async () => {
    const plaintext = randomBytes(64 * 1024);
    const encrypted = await encrypt(keyring({ generatorKeyId: aliasArn }), plaintext, {
      encryptionContext: ENCRYPTION_CONTEXT,
    });
    // KMS answers with the key ARN, which is what a decrypting keyring must name.
    assert.deepEqual(
      encrypted.messageHeader.encryptedDataKeys.map((edk) => edk.providerInfo),
      [keyArn],
    );
    const decrypted = await decrypt(keyring({ keyIds: [keyArn] }), encrypted.result);
    assert.ok(decrypted.plaintext.equals(plaintext));
    assertCarriesContext(decrypted.messageHeader);
  });

  test('a message for two keys decrypts with a keyring naming either of them', async () => {
    const plaintext = randomBytes(4096);
    const encrypted = await encrypt(keyring({ generatorKeyId: keyArn, keyIds: [otherKeyArn] }), plaintext, {
      encryptionContext: ENCRYPTION_CONTEXT,
    });
    assert.equal(encrypted.messageHeader.encryptedDataKeys.length, 2);
    for (const arn of [keyArn, otherKeyArn]) {
      const decrypted = await decrypt(keyring({ keyIds: [arn] }), encrypted.result);
      assert.ok(decrypted.plaintext.equals(plaintext), `decrypt with ${arn}`);
    }
  });

  test('streams a few MiB through encryptStream and decryptStream', async () => {
    const plaintext = randomBytes(5 * MiB + 123);
    const chunks = Array.from({ length: Math.ceil(plaintext.length / (256 * 1024)) }, (_, index) =>
      plaintext.subarray(index * 256 * 1024, (index + 1) * 256 * 1024),
    );

    const encrypting = encryptStream(keyring({ generatorKeyId: keyArn }), {
      encryptionContext: ENCRYPTION_CONTEXT,
    });
    const [ciphertext] = await Promise.all([collect(encrypting), pipeline(Readable.from(chunks), encrypting)]);
    assert.ok(ciphertext.length > plaintext.length);

    const decrypting = decryptStream(keyring({ keyIds: [keyArn] }));
    let header: MessageHeader | undefined;
    decrypting.once('MessageHeader', (messageHeader: MessageHeader) => (header = messageHeader));
    const source = Readable.from(Array.from({ length: Math.ceil(ciphertext.length / 65_536) }, (_, index) =>
      ciphertext.subarray(index * 65_536, (index + 1) * 65_536),
    ));
    const [decrypted] = await Promise.all([collect(decrypting), pipeline(source, decrypting)]);
    assert.ok(decrypted.equals(plaintext), 'streamed decryption equals the original');
    assert.ok(header, 'decryptStream emitted the message header');
    assertCarriesContext(header);
  });

  describe('a tampered or foreign message fails to decrypt', () => {
    let message: Buffer;
    let edkCiphertextOffset: number;

    before(async () => {
      const encrypted = await encrypt(keyring({ generatorKeyId: keyArn }), randomBytes(10_000), {
        encryptionContext: ENCRYPTION_CONTEXT,
      });
      message = encrypted.result;
      // The KMS ciphertext blob of the data key sits in the header; find it to tamper with it.
      edkCiphertextOffset = message.indexOf(Buffer.from(encrypted.messageHeader.encryptedDataKeys[0].encryptedDataKey));
      assert.ok(edkCiphertextOffset > 0);
    });

    const flipByteAt = (offset: (length: number) => number) => (original: Buffer) => {
      const tampered = Buffer.from(original);
      const at = offset(tampered.length);
      tampered[at] ^= 0x01;
      return tampered;
    };

    const cases: [title: string, tamper: (original: Buffer) => Buffer][] = [
      ['one bit flipped in the encrypted body', flipByteAt((length) => Math.floor(length / 2))],
      ['one bit flipped in the signature', flipByteAt((length) => length - 1)],
      ['the message truncated', (original) => original.subarray(0, original.length - 200)],
    ];
    for (const [title, tamper] of cases) {
      test(`rejects ${title}`, async () => {
        await assert.rejects(decrypt(keyring({ keyIds: [keyArn] }), tamper(message)));
      });
    }

    test('rejects a message whose KMS-encrypted data key was altered', async () => {
      const tampered = Buffer.from(message);
      tampered[edkCiphertextOffset + 40] ^= 0x01;
      await assert.rejects(decrypt(keyring({ keyIds: [keyArn] }), tampered));
    });

    test('a keyring naming another key cannot decrypt', async () => {
      await assert.rejects(decrypt(keyring({ keyIds: [otherKeyArn] }), message));
    });

    test('the untampered message still decrypts (the cases above fail for the tampering alone)', async () => {
      const decrypted = await decrypt(keyring({ keyIds: [keyArn] }), message);
      assert.equal(decrypted.plaintext.length, 10_000);
    });
  });
});
