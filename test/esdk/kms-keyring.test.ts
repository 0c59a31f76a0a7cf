/**
 * The KMS keyring against a real `strongroom serve` through the real @aws-sdk/client-kms: data
 * keys made, wrapped and unwrapped by KMS; which EDKs a keyring may try; the checks on KMS's
 * answers; errors that name the failure without leaking; grant tokens reaching the server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateAliasCommand, CreateGrantCommand, type DecryptCommand, type EncryptCommand, type GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { EsdkError } from '../../src/esdk/errors.ts';
import {
  KmsKeyring,
  isKmsKeyIdentifier,
  mrkMatchForDecrypt,
  parseKmsArn,
  type KmsClientLike,
} from '../../src/esdk/kms-keyring.ts';
import { getAlgorithmSuite } from '../../src/esdk/suites.ts';
import type { DecryptionMaterials, EncryptionMaterials } from '../../src/esdk/types.ts';
import { adminCall } from '../support/admin-api.ts';
import { createKey } from '../support/kms-assertions.ts';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';

type KmsCommand = GenerateDataKeyCommand | EncryptCommand | DecryptCommand;

/** A real client that records each call and may alter KMS's answer (to test the keyring's checks). */
function recordingClient(inner: KMSClient, alter?: (name: string, output: Record<string, unknown>) => void) {
  const calls: { name: string; input: Record<string, unknown> }[] = [];
  const client = {
    config: inner.config,
    send: async (command: KmsCommand) => {
      const name = command.constructor.name.replace(/Command$/, '');
      calls.push({ name, input: command.input as Record<string, unknown> });
      const output = (await inner.send(command as GenerateDataKeyCommand)) as unknown as Record<string, unknown>;
      alter?.(name, output);
      return output;
    },
  } as unknown as KmsClientLike;
  return { client, calls };
}

const CONTEXT = { tenant: 'acme', purpose: 'kms-keyring-test' };

function encryptionMaterials(suiteId = 0x0478, context: Record<string, string> = CONTEXT): EncryptionMaterials {
  return {
    suite: getAlgorithmSuite(suiteId),
    encryptionContext: context,
    encryptedDataKeys: [],
    plaintextDataKey: undefined,
    signingKey: undefined,
    requiredEncryptionContextKeys: [],
  };
}

function decryptionMaterials(suiteId = 0x0478, context: Record<string, string> = CONTEXT): DecryptionMaterials {
  return { suite: getAlgorithmSuite(suiteId), encryptionContext: context, plaintextDataKey: undefined, verificationKey: undefined, requiredEncryptionContextKeys: [] };
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

describe('KMS key identifiers (aws-kms-key-arn.md, aws-kms-mrk-match-for-decrypt.md)', () => {
  const cases: [string, boolean][] = [
    ['arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab', true],
    ['arn:aws:kms:us-east-1:111122223333:alias/app', true],
    ['arn:aws:kms:us-east-1:111122223333:key/', false],
    ['arn:aws:kms:us-east-1::key/abc', false],
    ['arn:aws:s3:us-east-1:111122223333:key/abc', false],
    ['arn:aws:kms:us-east-1:111122223333:key/abc:extra', false],
    ['arn:aws:kms:us-east-1:111122223333:grant/abc', false],
    ['alias/app', true],
    ['alias/', false],
    ['1234abcd-12ab-34cd-56ef-1234567890ab', true],
    ['', false],
  ];
  for (const [identifier, valid] of cases) {
    it(`${valid ? 'accepts' : 'rejects'} ${JSON.stringify(identifier)}`, () => {
      assert.equal(isKmsKeyIdentifier(identifier), valid);
    });
  }

  it('parses the parts of a key ARN', () => {
    assert.deepEqual(parseKmsArn('arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1'), {
      partition: 'aws-cn',
      region: 'cn-north-1',
      account: '111122223333',
      resourceType: 'key',
      resourceId: 'mrk-1',
    });
  });

  it('matches identical ARNs, and multi-Region keys across regions only', () => {
    const mrk = (region: string) => `arn:aws:kms:${region}:111122223333:key/mrk-80bd8ecdcd4342aebd84b7dc9da498a7`;
    const single = (region: string) => `arn:aws:kms:${region}:111122223333:key/80bd8ecd-cd43-42ae-bd84-b7dc9da498a7`;
    assert.equal(mrkMatchForDecrypt(single('us-east-1'), single('us-east-1')), true);
    assert.equal(mrkMatchForDecrypt(single('us-east-1'), single('eu-west-1')), false);
    assert.equal(mrkMatchForDecrypt(mrk('us-east-1'), mrk('eu-west-1')), true);
    assert.equal(mrkMatchForDecrypt(mrk('us-east-1'), mrk('eu-west-1').replace('111122223333', '444455556666')), false);
    assert.equal(mrkMatchForDecrypt('alias/app', single('us-east-1')), false);
  });
});

describe('the KMS keyring against strongroom serve', () => {
  let server: RunningServer;
  let kms: KMSClient;
  let keyArn: string;
  let otherKeyArn: string;
  let accountId: string;

  before(async () => {
    server = await startServer({ timeoutMs: 60_000 }); // generous: the CI machine may be busy
    kms = server.kms();
    const key = await createKey(kms);
    keyArn = key.Arn as string;
    accountId = key.AWSAccountId as string;
    otherKeyArn = (await createKey(kms)).Arn as string;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/keyring-test', TargetKeyId: keyArn }));
  });

  after(async () => {
    await server?.stop();
    if (server) await removeDataDir(server.dataDir);
  });

  it('generates a data key under the generator and decrypts it back', async () => {
    const { client, calls } = recordingClient(kms);
    const keyring = new KmsKeyring({ generatorKeyId: keyArn, client });
    const encrypted = await keyring.onEncrypt(encryptionMaterials());
    assert.equal(encrypted.plaintextDataKey?.length, 32);
    assert.equal(encrypted.encryptedDataKeys.length, 1);
    const [edk] = encrypted.encryptedDataKeys;
    assert.equal(edk.providerId, 'aws-kms');
    assert.equal(text(edk.providerInfo), keyArn);
    assert.deepEqual(calls.map((call) => call.name), ['GenerateDataKey']);
    assert.equal(calls[0].input.NumberOfBytes, 32);
    assert.deepEqual(calls[0].input.EncryptionContext, CONTEXT);

    const decrypted = await keyring.onDecrypt(decryptionMaterials(), encrypted.encryptedDataKeys);
    assert.deepEqual(decrypted.plaintextDataKey, encrypted.plaintextDataKey);
    assert.deepEqual(calls.map((call) => call.name), ['GenerateDataKey', 'Decrypt']);
    assert.equal(calls[1].input.KeyId, keyArn);
  });

  it('asks for as many bytes as the suite key length (AES-128 suite)', async () => {
    const keyring = new KmsKeyring({ generatorKeyId: keyArn, client: kms });
    const encrypted = await keyring.onEncrypt(encryptionMaterials(0x0114));
    assert.equal(encrypted.plaintextDataKey?.length, 16);
    const decrypted = await keyring.onDecrypt(decryptionMaterials(0x0114), encrypted.encryptedDataKeys);
    assert.deepEqual(decrypted.plaintextDataKey, encrypted.plaintextDataKey);
  });

  it('records the key ARN when the generator is named by alias', async () => {
    for (const generatorKeyId of ['alias/keyring-test', keyArn.replace(/key\/.*$/, 'alias/keyring-test'), keyArn.split('/')[1]]) {
      const encrypted = await new KmsKeyring({ generatorKeyId, client: kms }).onEncrypt(encryptionMaterials());
      assert.equal(text(encrypted.encryptedDataKeys[0].providerInfo), keyArn, generatorKeyId);
    }
  });

  it('wraps the same data key under every additional key, each able to decrypt alone', async () => {
    const encrypted = await new KmsKeyring({ generatorKeyId: keyArn, keyIds: [otherKeyArn], client: kms }).onEncrypt(encryptionMaterials());
    assert.deepEqual(encrypted.encryptedDataKeys.map((edk) => text(edk.providerInfo)), [keyArn, otherKeyArn]);
    for (const arn of [keyArn, otherKeyArn]) {
      const decrypted = await new KmsKeyring({ keyIds: [arn], client: kms }).onDecrypt(decryptionMaterials(), encrypted.encryptedDataKeys);
      assert.deepEqual(decrypted.plaintextDataKey, encrypted.plaintextDataKey, arn);
    }
  });

  it('encrypts an existing data key with the generator too (Encrypt, not GenerateDataKey)', async () => {
    const first = await new KmsKeyring({ generatorKeyId: otherKeyArn, client: kms }).onEncrypt(encryptionMaterials());
    const { client, calls } = recordingClient(kms);
    const second = await new KmsKeyring({ generatorKeyId: keyArn, client }).onEncrypt(first);
    assert.deepEqual(calls.map((call) => call.name), ['Encrypt']);
    assert.equal(second.plaintextDataKey, first.plaintextDataKey);
    assert.deepEqual(second.encryptedDataKeys.map((edk) => text(edk.providerInfo)), [otherKeyArn, keyArn]);
  });

  it('refuses to encrypt with no generator and no data key', async () => {
    await assert.rejects(new KmsKeyring({ keyIds: [keyArn], client: kms }).onEncrypt(encryptionMaterials()), { code: 'KeyringFailure' });
  });

  it('tries only EDKs naming a configured key ARN; an alias never matches', async () => {
    const encrypted = await new KmsKeyring({ generatorKeyId: keyArn, client: kms }).onEncrypt(encryptionMaterials());
    const foreign = { providerId: 'raw-aes', providerInfo: Buffer.from(keyArn), ciphertext: encrypted.encryptedDataKeys[0].ciphertext };
    const malformed = { providerId: 'aws-kms', providerInfo: Buffer.from('not an arn'), ciphertext: Buffer.alloc(8) };
    for (const keyIds of [[otherKeyArn], ['alias/keyring-test'], [keyArn.split('/')[1]]]) {
      const { client, calls } = recordingClient(kms);
      const result = await new KmsKeyring({ keyIds, client }).onDecrypt(decryptionMaterials(), [foreign, malformed, ...encrypted.encryptedDataKeys]);
      assert.equal(result.plaintextDataKey, undefined, keyIds[0]);
      assert.deepEqual(calls, [], `no KMS call for ${keyIds[0]}`);
    }
  });

  it('returns materials that already hold a data key untouched, without calling KMS', async () => {
    const encrypted = await new KmsKeyring({ generatorKeyId: keyArn, client: kms }).onEncrypt(encryptionMaterials());
    const { client, calls } = recordingClient(kms);
    const already = { ...decryptionMaterials(), plaintextDataKey: new Uint8Array(32) };
    assert.equal(await new KmsKeyring({ keyIds: [keyArn], client }).onDecrypt(already, encrypted.encryptedDataKeys), already);
    assert.equal(calls.length, 0);
  });

  it('moves on to the next EDK when one fails, and succeeds with it', async () => {
    const encrypted = await new KmsKeyring({ generatorKeyId: keyArn, client: kms }).onEncrypt(encryptionMaterials());
    const broken = { ...encrypted.encryptedDataKeys[0], ciphertext: Buffer.from(encrypted.encryptedDataKeys[0].ciphertext).fill(7, 40, 48) };
    const { client, calls } = recordingClient(kms);
    const decrypted = await new KmsKeyring({ keyIds: [keyArn], client }).onDecrypt(decryptionMaterials(), [broken, ...encrypted.encryptedDataKeys]);
    assert.deepEqual(decrypted.plaintextDataKey, encrypted.plaintextDataKey);
    assert.equal(calls.length, 2);
  });

  it('reports every failed attempt by key and KMS error name, without context values or key bytes', async () => {
    const encrypted = await new KmsKeyring({ generatorKeyId: keyArn, keyIds: [otherKeyArn], client: kms }).onEncrypt(encryptionMaterials());
    const wrongContext = { tenant: 'globex', purpose: 'kms-keyring-test' };
    await assert.rejects(
      new KmsKeyring({ keyIds: [keyArn, otherKeyArn], client: kms }).onDecrypt(decryptionMaterials(0x0478, wrongContext), encrypted.encryptedDataKeys),
      (error: EsdkError) => {
        assert.ok(error instanceof EsdkError);
        assert.equal(error.code, 'KeyringFailure');
        assert.match(error.message, /2 attempt\(s\) failed/);
        assert.match(error.message, new RegExp(`Decrypt with ${keyArn} failed: InvalidCiphertextException`));
        assert.match(error.message, new RegExp(`Decrypt with ${otherKeyArn} failed: InvalidCiphertextException`));
        for (const secret of ['globex', 'acme', Buffer.from(encrypted.plaintextDataKey!).toString('base64'), Buffer.from(encrypted.plaintextDataKey!).toString('hex')]) {
          assert.ok(!error.message.includes(secret));
        }
        return true;
      },
    );
  });

  it('fails encryption with the KMS error name when the generator does not exist', async () => {
    const missing = keyArn.replace(/key\/.*$/, 'key/00000000-0000-0000-0000-000000000000');
    await assert.rejects(new KmsKeyring({ generatorKeyId: missing, client: kms }).onEncrypt(encryptionMaterials()), (error: EsdkError) => {
      assert.equal(error.code, 'KeyringFailure');
      assert.match(error.message, /GenerateDataKey with .* failed: NotFoundException/);
      return true;
    });
  });

  describe('checks on what KMS answers (aws-kms-keyring.md postconditions)', () => {
    it('rejects a Decrypt answer naming another key', async () => {
      const encrypted = await new KmsKeyring({ generatorKeyId: keyArn, client: kms }).onEncrypt(encryptionMaterials());
      const { client } = recordingClient(kms, (_name, output) => (output.KeyId = otherKeyArn));
      await assert.rejects(new KmsKeyring({ keyIds: [keyArn], client }).onDecrypt(decryptionMaterials(), encrypted.encryptedDataKeys), (error: EsdkError) => {
        assert.match(error.message, /names a different key/);
        return true;
      });
    });

    it('rejects a Decrypt answer with a data key of the wrong length', async () => {
      const encrypted = await new KmsKeyring({ generatorKeyId: keyArn, client: kms }).onEncrypt(encryptionMaterials());
      const { client } = recordingClient(kms, (_name, output) => (output.Plaintext = (output.Plaintext as Uint8Array).subarray(0, 16)));
      await assert.rejects(new KmsKeyring({ keyIds: [keyArn], client }).onDecrypt(decryptionMaterials(), encrypted.encryptedDataKeys), /wrong length/);
    });

    it('rejects a GenerateDataKey answer whose KeyId is not a key ARN', async () => {
      const { client } = recordingClient(kms, (_name, output) => (output.KeyId = 'alias/keyring-test'));
      await assert.rejects(new KmsKeyring({ generatorKeyId: keyArn, client }).onEncrypt(encryptionMaterials()), /no key ARN/);
    });

    it('rejects a GenerateDataKey answer with a data key of the wrong length', async () => {
      const { client } = recordingClient(kms, (_name, output) => (output.Plaintext = (output.Plaintext as Uint8Array).subarray(0, 31)));
      await assert.rejects(new KmsKeyring({ generatorKeyId: keyArn, client }).onEncrypt(encryptionMaterials()), /wrong length/);
    });

    it('rejects an Encrypt answer whose KeyId is not a key ARN', async () => {
      const { client } = recordingClient(kms, (name, output) => {
        if (name === 'Encrypt') output.KeyId = undefined;
      });
      await assert.rejects(new KmsKeyring({ generatorKeyId: keyArn, keyIds: [otherKeyArn], client }).onEncrypt(encryptionMaterials()), /Encrypt with .* no key ARN/);
    });
  });

  describe('grant tokens', () => {
    it('lets a principal with only a grant use the keyring, and sends its tokens on every call', async () => {
      await adminCall(server, 'CreateUser', { UserName: 'grantee' });
      const { AccessKey } = await adminCall<{ AccessKey: { AccessKeyId: string; SecretAccessKey: string } }>(server, 'CreateAccessKey', { UserName: 'grantee' });
      const grantee = server.kms({ credentials: { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey } });
      const granteeArn = `arn:aws:iam::${accountId}:user/grantee`;
      const withoutGrant = new KmsKeyring({ generatorKeyId: keyArn, client: grantee });
      await assert.rejects(withoutGrant.onEncrypt(encryptionMaterials()), /AccessDeniedException/);

      const { GrantToken } = await kms.send(
        new CreateGrantCommand({ KeyId: keyArn, GranteePrincipal: granteeArn, Operations: ['GenerateDataKey', 'Decrypt'] }),
      );
      const { client, calls } = recordingClient(grantee);
      const keyring = new KmsKeyring({ generatorKeyId: keyArn, client, grantTokens: [GrantToken as string] });
      const encrypted = await keyring.onEncrypt(encryptionMaterials());
      const decrypted = await keyring.onDecrypt(decryptionMaterials(), encrypted.encryptedDataKeys);
      assert.deepEqual(decrypted.plaintextDataKey, encrypted.plaintextDataKey);
      assert.deepEqual(calls.map((call) => call.input.GrantTokens), [[GrantToken], [GrantToken]]);
    });

    it('passes a malformed token to KMS, which rejects it by name', async () => {
      const keyring = new KmsKeyring({ generatorKeyId: keyArn, client: kms, grantTokens: ['not-a-grant-token'] });
      await assert.rejects(keyring.onEncrypt(encryptionMaterials()), /InvalidGrantTokenException/);
    });
  });

  describe('configuration errors', () => {
    const cases: [string, ConstructorParameters<typeof KmsKeyring>[0]][] = [
      ['no key at all', { client: {} as KmsClientLike }],
      ['a malformed ARN', { generatorKeyId: 'arn:aws:kms:us-east-1:key/abc', client: {} as KmsClientLike }],
      ['no client', { generatorKeyId: 'alias/x' }],
      ['both client and clientSupplier', { generatorKeyId: 'alias/x', client: {} as KmsClientLike, clientSupplier: () => ({}) as KmsClientLike }],
      ['an empty grant token', { generatorKeyId: 'alias/x', client: {} as KmsClientLike, grantTokens: [''] }],
    ];
    for (const [title, options] of cases) {
      it(`rejects ${title}`, () => {
        assert.throws(() => new KmsKeyring(options), { name: 'EsdkError', code: 'InvalidArgument' });
      });
    }
  });

  it('asks the client supplier for the region of each key ARN', async () => {
    const regions: (string | undefined)[] = [];
    const keyring = new KmsKeyring({
      generatorKeyId: 'alias/keyring-test',
      keyIds: [otherKeyArn],
      clientSupplier: (region) => {
        regions.push(region);
        return kms;
      },
    });
    await keyring.onEncrypt(encryptionMaterials());
    assert.deepEqual(regions, [undefined, server.region]);
  });
});
