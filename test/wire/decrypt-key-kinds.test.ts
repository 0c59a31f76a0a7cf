import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  ReEncryptCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { assertKmsError } from '../support/kms-assertions.ts';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

/** Decrypt and ReEncrypt across key kinds, as recorded against AWS. */
describe('Decrypt and ReEncrypt with keys of other kinds', () => {
  let server: RunningServer;
  let kms: KMSClient;
  let symmetricKeyId: string;
  let rsaKeyId: string;
  let ciphertext: Uint8Array;

  before(async () => {
    server = await startServer();
    kms = server.kms();
    symmetricKeyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    rsaKeyId = (await kms.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }))).KeyMetadata!.KeyId!;
    ciphertext = (await kms.send(new EncryptCommand({ KeyId: symmetricKeyId, Plaintext: Buffer.from('x') }))).CiphertextBlob!;
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  const incorrectKey = {
    name: 'IncorrectKeyException',
    message: 'The key ID in the request does not identify a CMK that can perform this operation.',
  };

  for (const [keySpec, keyUsage] of [
    ['HMAC_224', 'GENERATE_VERIFY_MAC'],
    ['ECC_NIST_P256', 'SIGN_VERIFY'],
    ['ECC_NIST_P256', 'KEY_AGREEMENT'],
  ] as const) {
    it(`Decrypt naming a ${keySpec} ${keyUsage} key is IncorrectKeyException (recorded for HMAC_224)`, async () => {
      const other = (await kms.send(new CreateKeyCommand({ KeySpec: keySpec, KeyUsage: keyUsage }))).KeyMetadata!.KeyId!;
      await assertKmsError(kms.send(new DecryptCommand({ KeyId: other, CiphertextBlob: ciphertext })), incorrectKey);
      await assertKmsError(
        kms.send(new ReEncryptCommand({ SourceKeyId: other, CiphertextBlob: ciphertext, DestinationKeyId: symmetricKeyId })),
        incorrectKey,
      );
    });
  }

  it('reports KeyMaterialId only for symmetric keys (absent for RSA, as recorded for ReEncrypt)', async () => {
    const rsaCiphertext = (
      await kms.send(new EncryptCommand({ KeyId: rsaKeyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))
    ).CiphertextBlob!;
    const decrypted = await kms.send(
      new DecryptCommand({ KeyId: rsaKeyId, CiphertextBlob: rsaCiphertext, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
    );
    assert.equal(decrypted.KeyMaterialId, undefined);
    const reEncrypted = await kms.send(
      new ReEncryptCommand({
        SourceKeyId: rsaKeyId,
        SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
        CiphertextBlob: rsaCiphertext,
        DestinationKeyId: rsaKeyId,
        DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
      }),
    );
    assert.equal(reEncrypted.SourceKeyMaterialId, undefined);
    assert.equal(reEncrypted.DestinationKeyMaterialId, undefined);
    const symmetric = await kms.send(new DecryptCommand({ CiphertextBlob: ciphertext }));
    assert.match(symmetric.KeyMaterialId ?? '', /^[0-9a-f]{64}$/);
  });
});
