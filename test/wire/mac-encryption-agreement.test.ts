/**
 * HMAC keys (GenerateMac, VerifyMac), RSA encryption keys (Encrypt, Decrypt, ReEncrypt), ECDH key
 * agreement (DeriveSharedSecret) and GenerateDataKeyPair(WithoutPlaintext) over the wire, each
 * checked against node:crypto where the operation has an offline counterpart. Expected errors are
 * AWS's: kms-service-2.json and the LocalStack snapshot recorded against AWS.
 */
import assert from 'node:assert/strict';
import {
  constants,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  CreateKeyCommand,
  type DataKeyPairSpec,
  DecryptCommand,
  DeriveSharedSecretCommand,
  type EncryptionAlgorithmSpec,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateMacCommand,
  GetPublicKeyCommand,
  type KeyAgreementAlgorithmSpec,
  type KeySpec,
  type KeyUsageType,
  type KMSClient,
  type MacAlgorithmSpec,
  ReEncryptCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import { recorded, recordedError } from '../support/kms-assertions.ts';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';
import { assertEnumViolation, assertWireError, keepRawBodies, wireErrorMessage } from '../support/wire-errors.ts';

interface Fixture {
  id: string;
  arn: string;
  publicKey?: Uint8Array;
}

let server: RunningServer;
let kms: KMSClient;
const fixtures = new Map<string, Fixture>();

function fixture(spec: string, usage: KeyUsageType): Fixture {
  const found = fixtures.get(`${spec}/${usage}`);
  assert.ok(found, `a ${spec} ${usage} key was created`);
  return found;
}

const FIXTURES: [string, KeyUsageType][] = [
  ['SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT'],
  ['RSA_2048', 'ENCRYPT_DECRYPT'], ['RSA_3072', 'ENCRYPT_DECRYPT'], ['RSA_4096', 'ENCRYPT_DECRYPT'], ['RSA_2048', 'SIGN_VERIFY'],
  ['HMAC_224', 'GENERATE_VERIFY_MAC'], ['HMAC_256', 'GENERATE_VERIFY_MAC'], ['HMAC_384', 'GENERATE_VERIFY_MAC'], ['HMAC_512', 'GENERATE_VERIFY_MAC'],
  ['ECC_NIST_P256', 'KEY_AGREEMENT'], ['ECC_NIST_P384', 'KEY_AGREEMENT'], ['ECC_NIST_P521', 'KEY_AGREEMENT'], ['ECC_NIST_P256', 'SIGN_VERIFY'],
];

before(async () => {
  server = await startServer();
  kms = server.kms();
  keepRawBodies(kms);
  // Each key once per file: RSA_4096 generation takes seconds.
  for (const [spec, usage] of FIXTURES) {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ KeySpec: spec as KeySpec, KeyUsage: usage }));
    const made: Fixture = { id: KeyMetadata!.KeyId!, arn: KeyMetadata!.Arn! };
    if (spec.startsWith('RSA') || spec.startsWith('ECC')) {
      made.publicKey = (await kms.send(new GetPublicKeyCommand({ KeyId: made.id }))).PublicKey;
    }
    fixtures.set(`${spec}/${usage}`, made);
  }
});

after(async () => {
  await server?.stop();
  if (server) await removeDataDir(server.dataDir);
});

const message = Buffer.from('some important message');
const altered = (bytes: Uint8Array): Buffer => {
  const copy = Buffer.from(bytes);
  copy[copy.length - 1] ^= 0x01;
  return copy;
};

describe('GenerateMac and VerifyMac', () => {
  const HMAC = { HMAC_224: ['HMAC_SHA_224', 28], HMAC_256: ['HMAC_SHA_256', 32], HMAC_384: ['HMAC_SHA_384', 48], HMAC_512: ['HMAC_SHA_512', 64] } as const;
  const generateMac = (keyId: string, algorithm: string, text: Uint8Array = message) =>
    kms.send(new GenerateMacCommand({ KeyId: keyId, Message: text, MacAlgorithm: algorithm as MacAlgorithmSpec }));
  const verifyMac = (keyId: string, algorithm: string, mac: Uint8Array, text: Uint8Array = message) =>
    kms.send(new VerifyMacCommand({ KeyId: keyId, Message: text, MacAlgorithm: algorithm as MacAlgorithmSpec, Mac: mac }));

  for (const [spec, [algorithm, length]] of Object.entries(HMAC)) {
    test(`${spec}: GenerateMac gives a deterministic ${length}-byte ${algorithm} MAC that VerifyMac accepts`, async () => {
      const key = fixture(spec, 'GENERATE_VERIFY_MAC');
      const generated = await generateMac(key.id, algorithm);
      assert.equal(generated.KeyId, key.arn);
      assert.equal(generated.MacAlgorithm, algorithm);
      assert.equal(generated.Mac!.length, length);
      assert.deepEqual((await generateMac(key.id, algorithm)).Mac, generated.Mac, 'HMAC is a function of key and message');
      assert.notDeepEqual((await generateMac(key.id, algorithm, altered(message))).Mac, generated.Mac);
      const verified = await verifyMac(key.arn, algorithm, generated.Mac!);
      assert.deepEqual([verified.MacValid, verified.KeyId, verified.MacAlgorithm], [true, key.arn, algorithm]);
    });

    test(`${spec}: VerifyMac refuses an altered MAC or message with an empty KMSInvalidMacException`, async () => {
      const key = fixture(spec, 'GENERATE_VERIFY_MAC');
      const mac = (await generateMac(key.id, algorithm)).Mac!;
      const invalid = recordedError('test_invalid_verify_mac[HMAC_256-HMAC_SHA_256-some different important message]', 'verify-mac');
      await assertWireError(verifyMac(key.id, algorithm, mac, Buffer.from('some different important message')), invalid);
      await assertWireError(verifyMac(key.id, algorithm, altered(mac)), invalid);
    });

    const wrong = spec === 'HMAC_224' ? 'HMAC_SHA_256' : 'HMAC_SHA_224';
    test(`${spec}: GenerateMac and VerifyMac refuse ${wrong} as incompatible with the key spec`, async () => {
      const key = fixture(spec, 'GENERATE_VERIFY_MAC');
      // Recorded for HMAC_224 with HMAC_SHA_256 (GenerateMac) and HMAC_256 with HMAC_SHA_512 (VerifyMac).
      const expected = { name: 'InvalidKeyUsageException', message: `Algorithm ${wrong} is incompatible with key spec ${spec}.` };
      await assertWireError(generateMac(key.id, wrong), expected);
      await assertWireError(verifyMac(key.id, wrong, randomBytes(28)), expected);
    });
  }

  test('HMAC keys of one spec are distinct keys', async () => {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }));
    const mine = (await generateMac(fixture('HMAC_256', 'GENERATE_VERIFY_MAC').id, 'HMAC_SHA_256')).Mac!;
    const other = (await generateMac(KeyMetadata!.KeyId!, 'HMAC_SHA_256')).Mac!;
    assert.notDeepEqual(other, mine);
    await assertWireError(verifyMac(KeyMetadata!.KeyId!, 'HMAC_SHA_256', mine), { name: 'KMSInvalidMacException', message: '' });
  });

  test('the recorded words for HMAC_SHA_256 on an HMAC_224 key and HMAC_SHA_512 on an HMAC_256 key', async () => {
    await assertWireError(
      generateMac(fixture('HMAC_224', 'GENERATE_VERIFY_MAC').id, 'HMAC_SHA_256'),
      recordedError('test_invalid_generate_mac[HMAC_224-HMAC_SHA_256]', 'generate-mac'),
    );
    await assertWireError(
      verifyMac(fixture('HMAC_256', 'GENERATE_VERIFY_MAC').id, 'HMAC_SHA_512', randomBytes(32)),
      recordedError('test_invalid_verify_mac[HMAC_256-HMAC_SHA_512-some important message]', 'verify-mac'),
    );
  });

  test('refuses MacAlgorithm INVALID with the model enum violation', async () => {
    const keyId = fixture('HMAC_256', 'GENERATE_VERIFY_MAC').id;
    for (const [call, testId] of [
      [generateMac(keyId, 'INVALID'), 'test_invalid_generate_mac[HMAC_256-INVALID]'],
      [verifyMac(keyId, 'INVALID', randomBytes(32)), 'test_invalid_verify_mac[HMAC_256-INVALID-some important message]'],
    ] as const) {
      const expected = recordedError(testId, testId.startsWith('test_invalid_generate') ? 'generate-mac' : 'verify-mac');
      const actual = await wireErrorMessage(call);
      assert.equal(actual.name, expected.name);
      assertEnumViolation(actual.message, expected.message);
    }
  });

  test('GenerateMac with an ENCRYPT_DECRYPT key names the key and its usage (recorded)', async () => {
    const key = fixture('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    await assertWireError(generateMac(key.id, 'HMAC_SHA_224'), recordedError('test_error_messaging_for_invalid_keys', 'generate-mac-invalid-key-id', key.arn));
  });

  test('VerifyMac with a SIGN_VERIFY key names the key and its usage', async () => {
    const key = fixture('ECC_NIST_P256', 'SIGN_VERIFY');
    await assertWireError(verifyMac(key.id, 'HMAC_SHA_256', randomBytes(32)), {
      name: 'InvalidKeyUsageException',
      message: `${key.arn} key usage is SIGN_VERIFY which is not valid for VerifyMac.`,
    });
  });
});

describe('RSA encryption', () => {
  const OAEP_HASH = { RSAES_OAEP_SHA_1: 'sha1', RSAES_OAEP_SHA_256: 'sha256' } as const;
  /** test_encrypt_validate_plaintext_size_per_key_type: k − 2·hLen − 2 bytes. */
  const LIMITS: Record<string, Record<keyof typeof OAEP_HASH, number>> = {
    RSA_2048: { RSAES_OAEP_SHA_1: 214, RSAES_OAEP_SHA_256: 190 },
    RSA_3072: { RSAES_OAEP_SHA_1: 342, RSAES_OAEP_SHA_256: 318 },
    RSA_4096: { RSAES_OAEP_SHA_1: 470, RSAES_OAEP_SHA_256: 446 },
  };
  const encrypt = (keyId: string, algorithm: string, plaintext: Uint8Array) =>
    kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionAlgorithm: algorithm as EncryptionAlgorithmSpec }));
  const decrypt = (keyId: string | undefined, algorithm: string | undefined, ciphertext: Uint8Array) =>
    kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: ciphertext, EncryptionAlgorithm: algorithm as EncryptionAlgorithmSpec }));

  for (const [spec, limits] of Object.entries(LIMITS)) {
    const modulusBytes = Number(spec.slice(4)) / 8;
    for (const [algorithm, limit] of Object.entries(limits)) {
      const oaepHash = OAEP_HASH[algorithm as keyof typeof OAEP_HASH];
      test(`${spec} ${algorithm}: Decrypt opens what node:crypto encrypted to the public key`, async () => {
        const key = fixture(spec, 'ENCRYPT_DECRYPT');
        const plaintext = randomBytes(limit);
        const publicKey = createPublicKey({ key: Buffer.from(key.publicKey!), format: 'der', type: 'spki' });
        const ciphertext = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, plaintext);
        const out = await decrypt(key.id, algorithm, ciphertext);
        assert.deepEqual(Buffer.from(out.Plaintext!), plaintext);
        assert.equal(out.KeyId, key.arn);
        assert.equal(out.EncryptionAlgorithm, algorithm);
      });

      test(`${spec} ${algorithm}: Encrypt makes a fresh ${modulusBytes}-byte ciphertext that Decrypt opens`, async () => {
        const key = fixture(spec, 'ENCRYPT_DECRYPT');
        const plaintext = randomBytes(32);
        const first = await encrypt(key.arn, algorithm, plaintext);
        assert.equal(first.KeyId, key.arn);
        assert.equal(first.EncryptionAlgorithm, algorithm);
        assert.equal(first.CiphertextBlob!.length, modulusBytes);
        const second = await encrypt(key.id, algorithm, plaintext);
        assert.notDeepEqual(second.CiphertextBlob, first.CiphertextBlob, 'OAEP is randomized');
        assert.deepEqual(Buffer.from((await decrypt(key.id, algorithm, first.CiphertextBlob!)).Plaintext!), plaintext);
      });

      test(`${spec} ${algorithm}: encrypts exactly ${limit} bytes and refuses ${limit + 1} with the recorded words`, async () => {
        const key = fixture(spec, 'ENCRYPT_DECRYPT');
        const plaintext = randomBytes(limit);
        const out = await encrypt(key.id, algorithm, plaintext);
        assert.deepEqual(Buffer.from((await decrypt(key.id, algorithm, out.CiphertextBlob!)).Plaintext!), plaintext);
        await assertWireError(
          encrypt(key.id, algorithm, randomBytes(limit + 1)),
          recordedError(`test_encrypt_validate_plaintext_size_per_key_type[${spec}-${algorithm}]`, 'generate-random-exc'),
        );
      });

      const other = algorithm === 'RSAES_OAEP_SHA_1' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
      test(`${spec} ${algorithm}: Decrypt refuses the ciphertext under ${other}, without the algorithm, altered or shortened`, async () => {
        const key = fixture(spec, 'ENCRYPT_DECRYPT');
        const ciphertext = (await encrypt(key.id, algorithm, randomBytes(16))).CiphertextBlob!;
        // Not recorded: an OAEP hash mismatch is a padding failure, so at least a 400 of one of these.
        await assertWireError(decrypt(key.id, other, ciphertext), { name: ['InvalidCiphertextException', 'InvalidKeyUsageException'] });
        await assertWireError(decrypt(key.id, undefined, ciphertext), { name: ['InvalidCiphertextException', 'InvalidKeyUsageException'] });
        await assertWireError(decrypt(key.id, algorithm, altered(ciphertext)), { name: 'InvalidCiphertextException', message: '' });
        await assertWireError(decrypt(key.id, algorithm, ciphertext.subarray(1)), { name: 'InvalidCiphertextException', message: '' });
      });
    }

    test(`${spec}: Decrypt without a KeyId cannot tell whose RSA ciphertext it is`, async () => {
      const key = fixture(spec, 'ENCRYPT_DECRYPT');
      const ciphertext = (await encrypt(key.id, 'RSAES_OAEP_SHA_256', randomBytes(16))).CiphertextBlob!;
      await assertWireError(decrypt(undefined, 'RSAES_OAEP_SHA_256', ciphertext), { name: 'InvalidCiphertextException', message: '' });
      await assertWireError(decrypt(undefined, undefined, ciphertext), { name: 'InvalidCiphertextException', message: '' });
    });
  }

  test('ReEncrypt moves an RSA ciphertext to a symmetric key and back', async () => {
    const rsa = fixture('RSA_2048', 'ENCRYPT_DECRYPT');
    const symmetric = fixture('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const plaintext = randomBytes(64);
    const start = (await encrypt(rsa.id, 'RSAES_OAEP_SHA_256', plaintext)).CiphertextBlob!;
    const toSymmetric = await kms.send(
      new ReEncryptCommand({ CiphertextBlob: start, SourceKeyId: rsa.id, SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DestinationKeyId: symmetric.id }),
    );
    assert.equal(toSymmetric.SourceKeyId, rsa.arn);
    assert.equal(toSymmetric.KeyId, symmetric.arn);
    assert.equal(toSymmetric.SourceEncryptionAlgorithm, 'RSAES_OAEP_SHA_256');
    assert.equal(toSymmetric.DestinationEncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
    assert.deepEqual(Buffer.from((await decrypt(undefined, undefined, toSymmetric.CiphertextBlob!)).Plaintext!), plaintext);

    const back = await kms.send(
      new ReEncryptCommand({
        CiphertextBlob: toSymmetric.CiphertextBlob,
        DestinationKeyId: rsa.arn,
        DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
      }),
    );
    const shape = recorded<Record<string, unknown>>('test_re_encrypt[RSA_2048-RSAES_OAEP_SHA_256]', 'test_re_encrypt');
    for (const field of ['CiphertextBlob', 'KeyId', 'SourceKeyId', 'SourceEncryptionAlgorithm', 'DestinationEncryptionAlgorithm']) {
      assert.ok(field in shape && (back as unknown as Record<string, unknown>)[field] !== undefined, `${field} as AWS answers`);
    }
    assert.deepEqual([back.SourceKeyId, back.KeyId, back.DestinationEncryptionAlgorithm], [symmetric.arn, rsa.arn, 'RSAES_OAEP_SHA_1']);
    assert.deepEqual(Buffer.from((await decrypt(rsa.id, 'RSAES_OAEP_SHA_1', back.CiphertextBlob!)).Plaintext!), plaintext);
  });

  test('GenerateDataKey and GenerateDataKeyWithoutPlaintext refuse an RSA key', async () => {
    const keyId = fixture('RSA_2048', 'ENCRYPT_DECRYPT').id;
    await assertWireError(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })), { name: 'InvalidKeyUsageException' });
    await assertWireError(kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, KeySpec: 'AES_256' })), {
      name: 'InvalidKeyUsageException',
    });
  });

  test('Encrypt with an RSA SIGN_VERIFY key names the key and its usage (recorded)', async () => {
    const key = fixture('RSA_2048', 'SIGN_VERIFY');
    await assertWireError(encrypt(key.id, 'RSAES_OAEP_SHA_256', randomBytes(16)), recordedError('test_error_messaging_for_invalid_keys', 'encrypt-invalid-key-id', key.arn));
  });
});

describe('DeriveSharedSecret', () => {
  const CURVES = { ECC_NIST_P256: ['prime256v1', 32], ECC_NIST_P384: ['secp384r1', 48], ECC_NIST_P521: ['secp521r1', 66] } as const;
  const derive = (keyId: string, publicKey: Uint8Array, algorithm = 'ECDH') =>
    kms.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: algorithm as KeyAgreementAlgorithmSpec, PublicKey: publicKey }));
  const localPair = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve });
  const spkiOf = (pair: ReturnType<typeof localPair>) => pair.publicKey.export({ type: 'spki', format: 'der' });

  for (const [spec, [namedCurve, length]] of Object.entries(CURVES)) {
    test(`${spec}: the shared secret is node:crypto's ECDH of a local key pair and the KMS public key`, async () => {
      const key = fixture(spec, 'KEY_AGREEMENT');
      const local = localPair(namedCurve);
      const out = await derive(key.id, spkiOf(local));
      const expected = diffieHellman({
        privateKey: local.privateKey,
        publicKey: createPublicKey({ key: Buffer.from(key.publicKey!), format: 'der', type: 'spki' }),
      });
      assert.equal(out.SharedSecret!.length, length);
      assert.deepEqual(Buffer.from(out.SharedSecret!), expected);
      assert.deepEqual([out.KeyId, out.KeyAgreementAlgorithm, out.KeyOrigin], [key.arn, 'ECDH', 'AWS_KMS']);
    });

    const otherCurve = namedCurve === 'prime256v1' ? 'secp384r1' : 'prime256v1';
    test(`${spec}: refuses a public key on ${otherCurve} or of another type as ValidationException`, async () => {
      const key = fixture(spec, 'KEY_AGREEMENT');
      await assertWireError(derive(key.id, spkiOf(localPair(otherCurve))), { name: 'ValidationException' });
      const ed25519 = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
      await assertWireError(derive(key.id, ed25519), { name: 'ValidationException' });
      await assertWireError(derive(key.id, fixture('RSA_2048', 'ENCRYPT_DECRYPT').publicKey!), { name: 'ValidationException' });
    });

    test(`${spec}: refuses a point that is not on the curve as ValidationException`, async () => {
      const spki = Buffer.from(spkiOf(localPair(namedCurve)));
      spki[spki.length - 1] ^= 0x01; // y changed: (x, y') is off the curve
      await assertWireError(derive(fixture(spec, 'KEY_AGREEMENT').id, spki), { name: 'ValidationException' });
    });
  }

  test('refuses a PublicKey that is not DER with an empty ValidationException (recorded)', async () => {
    await assertWireError(
      derive(fixture('ECC_NIST_P256', 'KEY_AGREEMENT').id, Buffer.from('InvalidPublicKey')),
      recordedError('test_derive_shared_secret', 'response-invalid-public-key'),
    );
  });

  test('refuses SIGN_VERIFY and ENCRYPT_DECRYPT keys naming the usage (recorded)', async () => {
    const peer = spkiOf(localPair('prime256v1'));
    const signing = fixture('ECC_NIST_P256', 'SIGN_VERIFY');
    await assertWireError(derive(signing.id, peer), recordedError('test_derive_shared_secret', 'response-invalid-key-usage', signing.arn));
    const symmetric = fixture('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    await assertWireError(derive(symmetric.id, peer), recordedError('test_derive_shared_secret', 'response-invalid-key', symmetric.arn));
  });

  test('refuses KeyAgreementAlgorithm INVALID with the model enum violation (recorded)', async () => {
    const expected = recordedError('test_derive_shared_secret', 'response-invalid-key-agreement-algo');
    const actual = await wireErrorMessage(derive(fixture('ECC_NIST_P256', 'KEY_AGREEMENT').id, spkiOf(localPair('prime256v1')), 'INVALID'));
    assert.equal(actual.name, expected.name);
    assertEnumViolation(actual.message, expected.message);
  });
});

describe('GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext', () => {
  const PAIR_SPECS: Record<string, { type: string; hash: string | null }> = {
    RSA_2048: { type: 'rsa', hash: 'sha256' }, RSA_3072: { type: 'rsa', hash: 'sha256' }, RSA_4096: { type: 'rsa', hash: 'sha256' },
    ECC_NIST_P256: { type: 'ec', hash: 'sha256' }, ECC_NIST_P384: { type: 'ec', hash: 'sha384' }, ECC_NIST_P521: { type: 'ec', hash: 'sha512' },
    ECC_SECG_P256K1: { type: 'ec', hash: 'sha256' }, ECC_NIST_EDWARDS25519: { type: 'ed25519', hash: null },
  };
  const context = { purpose: 'wire test', tenant: '42' };

  /** The PKCS#8 private key parses, belongs to `publicKey`, and signs what `publicKey` verifies. */
  function assertPairMatches(spec: string, pkcs8: Uint8Array, publicKey: Uint8Array): void {
    const privateKey = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
    assert.equal(privateKey.asymmetricKeyType, PAIR_SPECS[spec].type);
    assert.deepEqual(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }), Buffer.from(publicKey));
    const signature = nodeSign(PAIR_SPECS[spec].hash, message, privateKey);
    const spki = createPublicKey({ key: Buffer.from(publicKey), format: 'der', type: 'spki' });
    assert.equal(nodeVerify(PAIR_SPECS[spec].hash, message, spki, signature), true);
  }

  for (const spec of Object.keys(PAIR_SPECS)) {
    test(`${spec}: a PKCS#8 private key matching the public key, sealed under the KMS key with the context`, async () => {
      const key = fixture('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
      const out = await kms.send(
        new GenerateDataKeyPairCommand({ KeyId: key.id, KeyPairSpec: spec as DataKeyPairSpec, EncryptionContext: context }),
      );
      assert.deepEqual([out.KeyId, out.KeyPairSpec], [key.arn, spec]);
      assertPairMatches(spec, out.PrivateKeyPlaintext!, out.PublicKey!);
      const opened = await kms.send(new DecryptCommand({ CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: context }));
      assert.equal(opened.KeyId, key.arn);
      assert.deepEqual(Buffer.from(opened.Plaintext!), Buffer.from(out.PrivateKeyPlaintext!));
      await assertWireError(kms.send(new DecryptCommand({ CiphertextBlob: out.PrivateKeyCiphertextBlob })), {
        name: 'InvalidCiphertextException',
        message: '',
      });
    });

    test(`${spec}: WithoutPlaintext returns no private key, only its sealed PKCS#8`, async () => {
      const key = fixture('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
      const out = await kms.send(
        new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: key.arn, KeyPairSpec: spec as DataKeyPairSpec, EncryptionContext: context }),
      );
      assert.equal('PrivateKeyPlaintext' in out, false);
      assert.deepEqual([out.KeyId, out.KeyPairSpec], [key.arn, spec]);
      const opened = await kms.send(new DecryptCommand({ KeyId: key.id, CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: context }));
      assertPairMatches(spec, opened.Plaintext!, out.PublicKey!);
    });
  }

  for (const [spec, usage] of [['RSA_2048', 'ENCRYPT_DECRYPT'], ['ECC_NIST_P256', 'SIGN_VERIFY'], ['HMAC_256', 'GENERATE_VERIFY_MAC']] as const) {
    test(`refuses a ${spec} ${usage} KeyId as InvalidKeyUsageException`, async () => {
      const input = { KeyId: fixture(spec, usage).id, KeyPairSpec: 'ECC_NIST_P256' as const };
      await assertWireError(kms.send(new GenerateDataKeyPairCommand(input)), { name: 'InvalidKeyUsageException' });
      await assertWireError(kms.send(new GenerateDataKeyPairWithoutPlaintextCommand(input)), { name: 'InvalidKeyUsageException' });
    });
  }

  test('refuses KeyPairSpec SM2 as unsupported', async () => {
    const input = { KeyId: fixture('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT').id, KeyPairSpec: 'SM2' as const };
    await assertWireError(kms.send(new GenerateDataKeyPairCommand(input)), { name: 'UnsupportedOperationException' });
    await assertWireError(kms.send(new GenerateDataKeyPairWithoutPlaintextCommand(input)), { name: 'UnsupportedOperationException' });
  });
});
