/**
 * Symmetric cryptography over the wire: the real @aws-sdk/client-kms against a real
 * `strongroom serve` process. Expected errors are AWS's (kms-service-2.json, and the LocalStack
 * snapshot recorded against AWS in test/reference/localstack-kms.snapshot.json).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  ReEncryptCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';
import { keepRawBodies } from '../support/wire-errors.ts';

const INCORRECT_KEY = 'The key ID in the request does not identify a CMK that can perform this operation.';
const DRY_RUN = 'The request would have succeeded, but the DryRun option is set.';
const KEY_MATERIAL_ID = /^[0-9a-f]{64}$/;

interface ExpectedError {
  name: string;
  status?: number;
  /** Exact text, or a pattern where AWS's wording is not recorded. */
  message?: string | RegExp;
}

type SdkError = Error & { $metadata?: { httpStatusCode?: number }; $response?: { body?: Uint8Array } };

async function assertKmsError(call: Promise<unknown>, expected: ExpectedError): Promise<void> {
  await assert.rejects(call, (error: SdkError) => {
    assert.equal(error.name, expected.name, `unexpected ${error.name}: ${error.message}`);
    assert.equal(error.$metadata?.httpStatusCode, expected.status ?? 400);
    const wire = JSON.parse(Buffer.from(error.$response?.body ?? []).toString('utf8')) as Record<string, unknown>;
    assert.equal(wire.__type, expected.name);
    if (typeof expected.message === 'string') {
      assert.equal(wire.message, expected.message);
      if (expected.message !== '') assert.equal(error.message, expected.message);
    } else if (expected.message !== undefined) {
      assert.match(String(wire.message), expected.message);
    }
    return true;
  });
}

const invalidCiphertext: ExpectedError = { name: 'InvalidCiphertextException', message: '' };
const numberOfBytesTooSmall = (value: number) =>
  `1 validation error detected: Value '${value}' at 'numberOfBytes' failed to satisfy constraint: ` +
  'Member must have value greater than or equal to 1';
const numberOfBytesTooLarge = (value: number) =>
  `1 validation error detected: Value '${value}' at 'numberOfBytes' failed to satisfy constraint: ` +
  'Member must have value less than or equal to 1024';

let server: RunningServer;
let kms: KMSClient;
/** The main key, with alias `alias/wire-crypto`. */
let keyId: string;
let keyArn: string;
let aliasArn: string;
const aliasName = 'alias/wire-crypto';
let otherKeyId: string;
let otherKeyArn: string;

async function createKey(): Promise<{ id: string; arn: string }> {
  const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
  return { id: KeyMetadata!.KeyId!, arn: KeyMetadata!.Arn! };
}

async function encrypt(plaintext: Uint8Array, encryptionContext?: Record<string, string>, key = keyId) {
  const out = await kms.send(new EncryptCommand({ KeyId: key, Plaintext: plaintext, EncryptionContext: encryptionContext }));
  return Buffer.from(out.CiphertextBlob!);
}

before(async () => {
  server = await startServer();
  kms = server.kms();
  keepRawBodies(kms);
  ({ id: keyId, arn: keyArn } = await createKey());
  ({ id: otherKeyId, arn: otherKeyArn } = await createKey());
  await kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: keyId }));
  aliasArn = keyArn.replace(`key/${keyId}`, aliasName);
});

after(async () => {
  await server?.stop();
  if (server) await removeDataDir(server.dataDir);
});

describe('Encrypt and Decrypt', () => {
  for (const size of [1, 32, 4096]) {
    test(`round-trips a ${size}-byte plaintext`, async () => {
      const plaintext = randomBytes(size);
      const blob = await encrypt(plaintext);
      const out = await kms.send(new DecryptCommand({ CiphertextBlob: blob }));
      assert.deepEqual(Buffer.from(out.Plaintext!), plaintext);
      assert.equal(out.KeyId, keyArn);
      assert.equal(out.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
      assert.match(out.KeyMaterialId ?? '', KEY_MATERIAL_ID);
    });
  }

  test('rejects a 4097-byte plaintext without echoing it', async () => {
    const plaintext = Buffer.alloc(4097, 'P');
    await assertKmsError(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext })), {
      name: 'ValidationException',
      message:
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: " +
        'Member must have length less than or equal to 4096',
    });
  });

  test('answers the key ARN and SYMMETRIC_DEFAULT', async () => {
    const out = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
    assert.equal(out.KeyId, keyArn);
    assert.equal(out.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
  });

  const keyReferences: Array<[string, () => string]> = [
    ['key id', () => keyId],
    ['key ARN', () => keyArn],
    ['alias name', () => aliasName],
    ['alias ARN', () => aliasArn],
  ];
  for (const [form, reference] of keyReferences) {
    test(`encrypts with the key named by its ${form}`, async () => {
      const out = await kms.send(new EncryptCommand({ KeyId: reference(), Plaintext: Buffer.from('by reference') }));
      assert.equal(out.KeyId, keyArn);
      const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob }));
      assert.equal(Buffer.from(decrypted.Plaintext!).toString(), 'by reference');
    });

    test(`decrypts when KeyId names the right key by its ${form}`, async () => {
      const blob = await encrypt(Buffer.from('checked key'));
      const out = await kms.send(new DecryptCommand({ CiphertextBlob: blob, KeyId: reference() }));
      assert.equal(Buffer.from(out.Plaintext!).toString(), 'checked key');
      assert.equal(out.KeyId, keyArn);
    });
  }

  test('decrypts without a KeyId: the blob names its key', async () => {
    const blob = await encrypt(Buffer.from('self-describing'));
    const out = await kms.send(new DecryptCommand({ CiphertextBlob: blob }));
    assert.equal(Buffer.from(out.Plaintext!).toString(), 'self-describing');
  });

  test('rejects a KeyId that names another key with IncorrectKeyException', async () => {
    const blob = await encrypt(Buffer.from('wrong key'));
    for (const other of [otherKeyId, otherKeyArn]) {
      await assertKmsError(kms.send(new DecryptCommand({ CiphertextBlob: blob, KeyId: other })), {
        name: 'IncorrectKeyException',
        message: INCORRECT_KEY,
      });
    }
  });

  test('rejects RSAES_OAEP_SHA_256 on a symmetric key', async () => {
    const blob = await encrypt(Buffer.from('algorithm'));
    await assertKmsError(
      kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })),
      { name: 'InvalidKeyUsageException' },
    );
    await assertKmsError(
      kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })),
      { name: 'InvalidKeyUsageException' },
    );
  });

  test('refuses Encrypt and Decrypt with a disabled key', async () => {
    const key = await createKey();
    const blob = await encrypt(Buffer.from('before disabling'), undefined, key.id);
    await kms.send(new DisableKeyCommand({ KeyId: key.id }));
    const disabled = { name: 'DisabledException', message: `${key.arn} is disabled.` };
    await assertKmsError(kms.send(new EncryptCommand({ KeyId: key.id, Plaintext: Buffer.from('x') })), disabled);
    await assertKmsError(kms.send(new DecryptCommand({ CiphertextBlob: blob })), disabled);
  });
});

describe('encryption context', () => {
  const context = { purpose: 'wire-test', tenant: 'acme' };

  test('decrypts with the same context given in another order', async () => {
    const blob = await encrypt(Buffer.from('bound'), context);
    const out = await kms.send(
      new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { tenant: 'acme', purpose: 'wire-test' } }),
    );
    assert.equal(Buffer.from(out.Plaintext!).toString(), 'bound');
  });

  test('treats an empty context as no context', async () => {
    const blob = await encrypt(Buffer.from('unbound'));
    const out = await kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: {} }));
    assert.equal(Buffer.from(out.Plaintext!).toString(), 'unbound');
  });

  const wrongContexts: Array<[string, Record<string, string> | undefined]> = [
    ['missing', undefined],
    ['empty', {}],
    ['with a different value', { purpose: 'wire-test', tenant: 'other' }],
    ['with a different key', { purpose: 'wire-test', Tenant: 'acme' }],
    ['with an extra pair', { ...context, extra: 'pair' }],
    ['with a pair missing', { purpose: 'wire-test' }],
  ];
  for (const [description, given] of wrongContexts) {
    test(`rejects a context that is ${description} with an empty InvalidCiphertextException`, async () => {
      const blob = await encrypt(Buffer.from('bound'), context);
      await assertKmsError(kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: given })), invalidCiphertext);
    });
  }

  test('rejects a context on a blob that was encrypted without one', async () => {
    const blob = await encrypt(Buffer.from('unbound'));
    await assertKmsError(kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context })), invalidCiphertext);
  });
});

describe('a tampered ciphertext', () => {
  // Blob layout (src/crypto/symmetric-ciphertext.ts): version 0, key id 1..16, key version 17..20,
  // salt 21..36, IV 37..48, body 49..49+n, tag last 16. The plaintext here is 32 bytes.
  const flip = (offset: number | ((blob: Buffer) => number)) => (blob: Buffer) => {
    const copy = Buffer.from(blob);
    const at = typeof offset === 'number' ? offset : offset(blob);
    copy[at] ^= 0x01;
    return copy;
  };
  const withKeyVersion = (version: number) => (blob: Buffer) => {
    const copy = Buffer.from(blob);
    copy.writeUInt32BE(version, 17);
    return copy;
  };
  const tamperings: Array<[string, (blob: Buffer) => Buffer]> = [
    ['a bit flipped in the format version byte', flip(0)],
    ['a bit flipped in the first key id byte', flip(1)],
    ["a bit flipped in the key id UUID's version nibble", flip(7)],
    ["a bit flipped in the key id UUID's variant bits", flip(9)],
    ['a bit flipped in the last key id byte', flip(16)],
    ['a bit flipped in the high key version byte', flip(17)],
    ['a bit flipped in the low key version byte', flip(20)],
    ['a key version that does not exist yet', withKeyVersion(2)],
    ['a key version of 0', withKeyVersion(0)],
    ['a bit flipped in the salt', flip(21)],
    ['a bit flipped at the end of the salt', flip(36)],
    ['a bit flipped in the IV', flip(37)],
    ['a bit flipped at the end of the IV', flip(48)],
    ['a bit flipped in the body', flip(49)],
    ['a bit flipped at the end of the body', flip((blob) => blob.length - 17)],
    ['a bit flipped in the tag', flip((blob) => blob.length - 16)],
    ['a bit flipped in the last tag byte', flip((blob) => blob.length - 1)],
    ['its key id replaced by another existing key', (blob) => {
      const copy = Buffer.from(blob);
      Buffer.from(otherKeyId.replaceAll('-', ''), 'hex').copy(copy, 1);
      return copy;
    }],
    ['its last byte cut off', (blob) => blob.subarray(0, blob.length - 1)],
    ['its tag cut off', (blob) => blob.subarray(0, blob.length - 16)],
    ['only its header', (blob) => blob.subarray(0, 49)],
    ['one byte appended', (blob) => Buffer.concat([blob, Buffer.from([0])])],
    ['a block appended', (blob) => Buffer.concat([blob, randomBytes(16)])],
    ['random bytes of the same length', (blob) => randomBytes(blob.length)],
    ['random bytes after a genuine header', (blob) => Buffer.concat([blob.subarray(0, 49), randomBytes(48)])],
    ['a single byte', () => Buffer.from([0x01])],
    ['sixty-five zero bytes', () => Buffer.alloc(65)],
    ['64 bytes (one short of the smallest blob)', (blob) => blob.subarray(0, 64)],
  ];
  for (const [description, tamper] of tamperings) {
    test(`is rejected with an empty InvalidCiphertextException: ${description}`, async () => {
      const blob = await encrypt(randomBytes(32));
      await assertKmsError(kms.send(new DecryptCommand({ CiphertextBlob: tamper(blob) })), invalidCiphertext);
    });
  }

  test('an empty CiphertextBlob fails the model (length >= 1) as a ValidationException', async () => {
    await assertKmsError(kms.send(new DecryptCommand({ CiphertextBlob: new Uint8Array(0) })), {
      name: 'ValidationException',
      message: /at 'ciphertextBlob' failed to satisfy constraint: Member must have length greater than or equal to 1$/,
    });
  });

  test('decrypts untampered, so the cases above can fail', async () => {
    const plaintext = randomBytes(32);
    const out = await kms.send(new DecryptCommand({ CiphertextBlob: await encrypt(plaintext) }));
    assert.deepEqual(Buffer.from(out.Plaintext!), plaintext);
  });
});

describe('DryRun', () => {
  const cases: Array<[string, (blob: Buffer) => Promise<unknown>]> = [
    ['Encrypt', () => kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), DryRun: true }))],
    ['Decrypt', (blob) => kms.send(new DecryptCommand({ CiphertextBlob: blob, DryRun: true }))],
    ['GenerateDataKey', () => kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', DryRun: true }))],
    [
      'GenerateDataKeyWithoutPlaintext',
      () => kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, KeySpec: 'AES_256', DryRun: true })),
    ],
    ['ReEncrypt', (blob) => kms.send(new ReEncryptCommand({ CiphertextBlob: blob, DestinationKeyId: otherKeyId, DryRun: true }))],
  ];
  for (const [operation, call] of cases) {
    test(`${operation} with DryRun answers DryRunOperationException`, async () => {
      const blob = await encrypt(Buffer.from('dry'));
      await assertKmsError(call(blob), { name: 'DryRunOperationException', message: DRY_RUN });
    });
  }
});

describe('ReEncrypt', () => {
  test('moves a ciphertext to another key and reports both keys and materials', async () => {
    const blob = await encrypt(Buffer.from('moving'));
    const out = await kms.send(new ReEncryptCommand({ CiphertextBlob: blob, DestinationKeyId: otherKeyId }));
    assert.equal(out.SourceKeyId, keyArn);
    assert.equal(out.KeyId, otherKeyArn);
    assert.equal(out.SourceEncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
    assert.equal(out.DestinationEncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
    const source = await kms.send(new DecryptCommand({ CiphertextBlob: blob }));
    const destination = await kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob }));
    assert.equal(Buffer.from(destination.Plaintext!).toString(), 'moving');
    assert.equal(destination.KeyId, otherKeyArn);
    assert.match(out.SourceKeyMaterialId ?? '', KEY_MATERIAL_ID);
    assert.equal(out.SourceKeyMaterialId, source.KeyMaterialId);
    assert.equal(out.DestinationKeyMaterialId, destination.KeyMaterialId);
    assert.notEqual(out.SourceKeyMaterialId, out.DestinationKeyMaterialId);
    await assertKmsError(kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, KeyId: keyId })), {
      name: 'IncorrectKeyException',
      message: INCORRECT_KEY,
    });
  });

  test('changes the encryption context', async () => {
    const blob = await encrypt(Buffer.from('recontext'), { stage: 'one' });
    const out = await kms.send(
      new ReEncryptCommand({
        CiphertextBlob: blob,
        SourceEncryptionContext: { stage: 'one' },
        DestinationKeyId: aliasName,
        DestinationEncryptionContext: { stage: 'two' },
      }),
    );
    assert.equal(out.KeyId, keyArn);
    const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: { stage: 'two' } }));
    assert.equal(Buffer.from(decrypted.Plaintext!).toString(), 'recontext');
    await assertKmsError(
      kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: { stage: 'one' } })),
      invalidCiphertext,
    );
  });

  test('rejects a wrong source context with an empty InvalidCiphertextException', async () => {
    const blob = await encrypt(Buffer.from('recontext'), { stage: 'one' });
    await assertKmsError(
      kms.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: { stage: 'zero' }, DestinationKeyId: otherKeyId })),
      invalidCiphertext,
    );
  });

  test('accepts a SourceKeyId that names the source key', async () => {
    const blob = await encrypt(Buffer.from('checked source'));
    const out = await kms.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceKeyId: aliasName, DestinationKeyId: otherKeyArn }));
    assert.equal(out.SourceKeyId, keyArn);
  });

  test('rejects a SourceKeyId that names another key with IncorrectKeyException', async () => {
    const blob = await encrypt(Buffer.from('wrong source'));
    await assertKmsError(
      kms.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceKeyId: otherKeyId, DestinationKeyId: otherKeyId })),
      { name: 'IncorrectKeyException', message: INCORRECT_KEY },
    );
  });
});

describe('GenerateDataKey', () => {
  const context = { use: 'data-key' };
  const specs: Array<[string, { KeySpec?: 'AES_256' | 'AES_128'; NumberOfBytes?: number }, number]> = [
    ['KeySpec AES_256', { KeySpec: 'AES_256' }, 32],
    ['KeySpec AES_128', { KeySpec: 'AES_128' }, 16],
    ['NumberOfBytes 1', { NumberOfBytes: 1 }, 1],
    ['NumberOfBytes 64', { NumberOfBytes: 64 }, 64],
    ['NumberOfBytes 1024', { NumberOfBytes: 1024 }, 1024],
  ];
  for (const [description, spec, length] of specs) {
    test(`makes a ${length}-byte key for ${description} whose blob decrypts to it`, async () => {
      const out = await kms.send(new GenerateDataKeyCommand({ KeyId: aliasName, EncryptionContext: context, ...spec }));
      assert.equal(out.Plaintext?.length, length);
      assert.equal(out.KeyId, keyArn);
      assert.match(out.KeyMaterialId ?? '', KEY_MATERIAL_ID);
      const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: context }));
      assert.deepEqual(Buffer.from(decrypted.Plaintext!), Buffer.from(out.Plaintext!));
      await assertKmsError(kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob })), invalidCiphertext);
    });
  }

  const invalid: Array<[string, { KeySpec?: 'AES_256'; NumberOfBytes?: number }, ExpectedError]> = [
    ['neither KeySpec nor NumberOfBytes', {}, { name: 'ValidationException' }],
    ['both KeySpec and NumberOfBytes', { KeySpec: 'AES_256', NumberOfBytes: 32 }, { name: 'ValidationException' }],
    ['NumberOfBytes 0', { NumberOfBytes: 0 }, { name: 'ValidationException', message: numberOfBytesTooSmall(0) }],
    ['NumberOfBytes 1025', { NumberOfBytes: 1025 }, { name: 'ValidationException', message: numberOfBytesTooLarge(1025) }],
  ];
  for (const [description, spec, expected] of invalid) {
    test(`rejects ${description}`, async () => {
      await assertKmsError(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, ...spec })), expected);
      await assertKmsError(kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, ...spec })), expected);
    });
  }

  const withoutPlaintext: Array<[string, { KeySpec?: 'AES_256' | 'AES_128'; NumberOfBytes?: number }, number]> = [
    ['KeySpec AES_256', { KeySpec: 'AES_256' }, 32],
    ['KeySpec AES_128', { KeySpec: 'AES_128' }, 16],
    ['NumberOfBytes 7', { NumberOfBytes: 7 }, 7],
  ];
  for (const [description, spec, length] of withoutPlaintext) {
    test(`WithoutPlaintext returns no Plaintext and a blob of a ${length}-byte key for ${description}`, async () => {
      const out = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, EncryptionContext: context, ...spec }));
      assert.equal('Plaintext' in out, false);
      assert.equal(out.KeyId, keyArn);
      const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: context }));
      assert.equal(decrypted.Plaintext?.length, length);
    });
  }
});

describe('GenerateRandom', () => {
  for (const size of [1, 1024]) {
    test(`returns ${size} random bytes`, async () => {
      const out = await kms.send(new GenerateRandomCommand({ NumberOfBytes: size }));
      assert.equal(out.Plaintext?.length, size);
    });
  }

  test('returns different bytes each call', async () => {
    const [first, second] = await Promise.all([
      kms.send(new GenerateRandomCommand({ NumberOfBytes: 32 })),
      kms.send(new GenerateRandomCommand({ NumberOfBytes: 32 })),
    ]);
    assert.notDeepEqual(Buffer.from(first.Plaintext!), Buffer.from(second.Plaintext!));
  });

  const invalid: Array<[string, number | undefined, string]> = [
    ['0 bytes', 0, numberOfBytesTooSmall(0)],
    ['1025 bytes', 1025, numberOfBytesTooLarge(1025)],
    ['a missing NumberOfBytes', undefined, 'NumberOfBytes is required.'],
  ];
  for (const [description, numberOfBytes, message] of invalid) {
    test(`rejects ${description} with AWS's message`, async () => {
      await assertKmsError(kms.send(new GenerateRandomCommand({ NumberOfBytes: numberOfBytes })), {
        name: 'ValidationException',
        message,
      });
    });
  }
});

describe('concurrency', () => {
  test('200 parallel Encrypt and Decrypt round trips all succeed', async () => {
    const plaintexts = Array.from({ length: 200 }, (_, index) => Buffer.from(`parallel-${index}-${randomBytes(8).toString('hex')}`));
    const results = await Promise.all(
      plaintexts.map(async (plaintext, index) => {
        const blob = await encrypt(plaintext, { index: String(index) });
        const out = await kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { index: String(index) } }));
        return Buffer.from(out.Plaintext!);
      }),
    );
    assert.deepEqual(results, plaintexts);
  });
});
