/**
 * Asymmetric keys over the wire: CreateKey for every spec and usage, DescribeKey's and
 * GetPublicKey's algorithm lists, and Sign/Verify for every spec × signing algorithm × message
 * type, each signature checked offline from GetPublicKey's SubjectPublicKeyInfo (node:crypto,
 * @noble/curves, @noble/post-quantum). Expected errors are AWS's: kms-service-2.json and the
 * LocalStack snapshot recorded against AWS (test/reference/localstack-kms.snapshot.json).
 */
import assert from 'node:assert/strict';
import { randomBytes, verify as nodeVerify } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyRotationCommand,
  GetPublicKeyCommand,
  type KeyMetadata,
  type KeySpec,
  type KeyUsageType,
  type KMSClient,
  type MessageType,
  RotateKeyOnDemandCommand,
  SignCommand,
  type SigningAlgorithmSpec,
  VerifyCommand,
} from '@aws-sdk/client-kms';
import { recordedError } from '../support/kms-assertions.ts';
import {
  digestOf,
  DIGEST_LENGTH,
  ecdsaWithNegatedS,
  ed25519RawPublicKey,
  externalMu,
  hashOf,
  isMlDsa,
  ML_DSA,
  mlDsaRawPublicKey,
  spkiKey,
  verifyLocally,
} from '../support/local-signatures.ts';
import { removeDataDir, startServer, type RunningServer } from '../support/server.ts';
import { assertWireError, keepRawBodies } from '../support/wire-errors.ts';

const RSA_SIGNING = [
  'RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512',
];
const RSA_ENCRYPTION = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'];

/** AWS KMS developer guide, "Key spec reference": each spec's usages and the algorithms of each. */
const SPECS: Record<string, Partial<Record<KeyUsageType, string[]>>> = {
  SYMMETRIC_DEFAULT: { ENCRYPT_DECRYPT: ['SYMMETRIC_DEFAULT'] },
  RSA_2048: { ENCRYPT_DECRYPT: RSA_ENCRYPTION, SIGN_VERIFY: RSA_SIGNING },
  RSA_3072: { ENCRYPT_DECRYPT: RSA_ENCRYPTION, SIGN_VERIFY: RSA_SIGNING },
  RSA_4096: { ENCRYPT_DECRYPT: RSA_ENCRYPTION, SIGN_VERIFY: RSA_SIGNING },
  ECC_NIST_P256: { SIGN_VERIFY: ['ECDSA_SHA_256'], KEY_AGREEMENT: ['ECDH'] },
  ECC_NIST_P384: { SIGN_VERIFY: ['ECDSA_SHA_384'], KEY_AGREEMENT: ['ECDH'] },
  ECC_NIST_P521: { SIGN_VERIFY: ['ECDSA_SHA_512'], KEY_AGREEMENT: ['ECDH'] },
  ECC_SECG_P256K1: { SIGN_VERIFY: ['ECDSA_SHA_256'] },
  ECC_NIST_EDWARDS25519: { SIGN_VERIFY: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'] },
  ML_DSA_44: { SIGN_VERIFY: ['ML_DSA_SHAKE_256'] },
  ML_DSA_65: { SIGN_VERIFY: ['ML_DSA_SHAKE_256'] },
  ML_DSA_87: { SIGN_VERIFY: ['ML_DSA_SHAKE_256'] },
  HMAC_224: { GENERATE_VERIFY_MAC: ['HMAC_SHA_224'] },
  HMAC_256: { GENERATE_VERIFY_MAC: ['HMAC_SHA_256'] },
  HMAC_384: { GENERATE_VERIFY_MAC: ['HMAC_SHA_384'] },
  HMAC_512: { GENERATE_VERIFY_MAC: ['HMAC_SHA_512'] },
};
const LIST_OF_USAGE = {
  ENCRYPT_DECRYPT: 'EncryptionAlgorithms',
  SIGN_VERIFY: 'SigningAlgorithms',
  KEY_AGREEMENT: 'KeyAgreementAlgorithms',
  GENERATE_VERIFY_MAC: 'MacAlgorithms',
} as const;
const SIGNING_SPECS = Object.keys(SPECS).filter((spec) => SPECS[spec].SIGN_VERIFY);

/** SignRequest.MessageType in the model: Ed25519 RAW xor DIGEST by algorithm, ML-DSA RAW or μ, the rest RAW or DIGEST. */
function messageTypesOf(algorithm: string): MessageType[] {
  if (algorithm === 'ED25519_SHA_512') return ['RAW'];
  if (algorithm === 'ED25519_PH_SHA_512') return ['DIGEST'];
  if (algorithm === 'ML_DSA_SHAKE_256') return ['RAW', 'EXTERNAL_MU'];
  return ['RAW', 'DIGEST'];
}

interface Fixture {
  id: string;
  arn: string;
  created: KeyMetadata;
  publicKey?: Uint8Array;
}

let server: RunningServer;
let kms: KMSClient;
const fixtures = new Map<string, Fixture>();
let disabled: Fixture;

function fixture(spec: string, usage: KeyUsageType = 'SIGN_VERIFY'): Fixture {
  const found = fixtures.get(`${spec}/${usage}`);
  assert.ok(found, `a ${spec} ${usage} key was created`);
  return found;
}

async function createFixture(spec: string, usage: KeyUsageType): Promise<Fixture> {
  const { KeyMetadata: created } = await kms.send(new CreateKeyCommand({ KeySpec: spec as KeySpec, KeyUsage: usage }));
  assert.ok(created?.KeyId && created.Arn);
  return { id: created.KeyId, arn: created.Arn, created };
}

before(async () => {
  server = await startServer();
  kms = server.kms();
  keepRawBodies(kms);
  // Every spec with every usage it allows, once per file: RSA_4096 generation takes seconds.
  for (const [spec, usages] of Object.entries(SPECS)) {
    for (const usage of Object.keys(usages) as KeyUsageType[]) {
      const made = await createFixture(spec, usage);
      if (spec !== 'SYMMETRIC_DEFAULT' && !spec.startsWith('HMAC')) {
        made.publicKey = (await kms.send(new GetPublicKeyCommand({ KeyId: made.id }))).PublicKey;
      }
      fixtures.set(`${spec}/${usage}`, made);
    }
  }
  disabled = await createFixture('ECC_NIST_P256', 'SIGN_VERIFY');
});

after(async () => {
  await server?.stop();
  if (server) await removeDataDir(server.dataDir);
});

/** What KMS is given for `message`: the message, its digest, or its ML-DSA μ. */
function kmsMessage(spec: string, algorithm: string, messageType: MessageType, message: Uint8Array): Uint8Array {
  if (messageType === 'DIGEST') return digestOf(algorithm, message);
  if (messageType === 'EXTERNAL_MU' && isMlDsa(spec)) return externalMu(spec, fixture(spec).publicKey!, message);
  return message;
}

async function sign(spec: string, algorithm: string, messageType: MessageType, message: Uint8Array): Promise<Buffer> {
  const key = fixture(spec);
  const out = await kms.send(
    new SignCommand({
      KeyId: key.id,
      Message: kmsMessage(spec, algorithm, messageType, message),
      MessageType: messageType,
      SigningAlgorithm: algorithm as SigningAlgorithmSpec,
    }),
  );
  assert.equal(out.KeyId, key.arn);
  assert.equal(out.SigningAlgorithm, algorithm);
  return Buffer.from(out.Signature!);
}

function verify(spec: string, algorithm: string, messageType: MessageType, message: Uint8Array, signature: Uint8Array) {
  return kms.send(
    new VerifyCommand({
      KeyId: fixture(spec).id,
      Message: kmsMessage(spec, algorithm, messageType, message),
      MessageType: messageType,
      Signature: signature,
      SigningAlgorithm: algorithm as SigningAlgorithmSpec,
    }),
  );
}

async function assertVerifies(spec: string, algorithm: string, messageType: MessageType, message: Uint8Array, signature: Uint8Array) {
  const out = await verify(spec, algorithm, messageType, message, signature);
  assert.equal(out.SignatureValid, true);
  assert.equal(out.KeyId, fixture(spec).arn);
  assert.equal(out.SigningAlgorithm, algorithm);
}

const altered = (bytes: Uint8Array): Buffer => {
  const copy = Buffer.from(bytes);
  copy[copy.length - 1] ^= 0x01;
  return copy;
};
const INVALID_SIGNATURE = { name: 'KMSInvalidSignatureException', message: '' };
const message = Buffer.from('wire test message: pay 100 to account 12345');

describe('CreateKey and DescribeKey for every key spec', () => {
  for (const [spec, usages] of Object.entries(SPECS)) {
    for (const [usage, algorithms] of Object.entries(usages)) {
      test(`creates a ${spec} key for ${usage} listing only that usage's algorithms`, async () => {
        const { id, created } = fixture(spec, usage as KeyUsageType);
        const described = (await kms.send(new DescribeKeyCommand({ KeyId: id }))).KeyMetadata!;
        for (const metadata of [created, described]) {
          assert.equal(metadata.KeySpec, spec);
          assert.equal(metadata.CustomerMasterKeySpec, spec, 'the deprecated field has the same value (model docs)');
          assert.equal(metadata.KeyUsage, usage);
          assert.equal(metadata.KeyState, 'Enabled');
          assert.equal(metadata.Origin, 'AWS_KMS');
          for (const [listUsage, list] of Object.entries(LIST_OF_USAGE)) {
            if (listUsage === usage) assert.deepEqual([...(metadata[list] ?? [])].sort(), [...algorithms].sort());
            else assert.equal(metadata[list], undefined, `${list} absent for ${usage}`);
          }
        }
      });
    }
  }

  for (const spec of Object.keys(SPECS).filter((name) => name !== 'SYMMETRIC_DEFAULT')) {
    test(`refuses a ${spec} key without a KeyUsage`, async () => {
      await assertWireError(
        kms.send(new CreateKeyCommand({ KeySpec: spec as KeySpec })),
        recordedError('test_hmac_create_key_invalid_operations', 'create-hmac-key-without-key-usage'),
      );
    });
  }

  const incompatible: [string, KeyUsageType][] = [
    ['RSA_2048', 'KEY_AGREEMENT'], ['RSA_4096', 'GENERATE_VERIFY_MAC'], ['ECC_NIST_P256', 'ENCRYPT_DECRYPT'],
    ['ECC_SECG_P256K1', 'KEY_AGREEMENT'], ['ECC_NIST_EDWARDS25519', 'KEY_AGREEMENT'], ['ECC_NIST_EDWARDS25519', 'ENCRYPT_DECRYPT'],
    ['ML_DSA_65', 'ENCRYPT_DECRYPT'], ['ML_DSA_44', 'KEY_AGREEMENT'], ['HMAC_256', 'SIGN_VERIFY'], ['SYMMETRIC_DEFAULT', 'SIGN_VERIFY'],
  ];
  for (const [spec, usage] of incompatible) {
    test(`refuses a ${spec} key for ${usage}`, async () => {
      // The snapshot records RSA_2048 with KEY_AGREEMENT; the others share its form.
      await assertWireError(kms.send(new CreateKeyCommand({ KeySpec: spec as KeySpec, KeyUsage: usage })), {
        name: 'ValidationException',
        message: `KeyUsage ${usage} is not compatible with KeySpec ${spec}`,
      });
    });
  }

  test('answers the recorded words for an RSA key agreement key', async () => {
    await assertWireError(
      kms.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'KEY_AGREEMENT' })),
      recordedError('test_derive_shared_secret', 'response-invalid-key-spec'),
    );
  });

  test('refuses an SM2 key as unsupported', async () => {
    await assertWireError(kms.send(new CreateKeyCommand({ KeySpec: 'SM2', KeyUsage: 'SIGN_VERIFY' })), {
      name: 'UnsupportedOperationException',
    });
  });
});

describe('GetPublicKey', () => {
  const KEY_DETAILS: Record<string, { type: string; modulusLength?: number; namedCurve?: string }> = {
    RSA_2048: { type: 'rsa', modulusLength: 2048 },
    RSA_3072: { type: 'rsa', modulusLength: 3072 },
    RSA_4096: { type: 'rsa', modulusLength: 4096 },
    ECC_NIST_P256: { type: 'ec', namedCurve: 'prime256v1' },
    ECC_NIST_P384: { type: 'ec', namedCurve: 'secp384r1' },
    ECC_NIST_P521: { type: 'ec', namedCurve: 'secp521r1' },
    ECC_SECG_P256K1: { type: 'ec', namedCurve: 'secp256k1' },
    ECC_NIST_EDWARDS25519: { type: 'ed25519' },
  };
  for (const [spec, usages] of Object.entries(SPECS)) {
    if (spec === 'SYMMETRIC_DEFAULT' || spec.startsWith('HMAC')) continue;
    for (const [usage, algorithms] of Object.entries(usages)) {
      test(`returns a ${spec} ${usage} key's DER SubjectPublicKeyInfo and its ${LIST_OF_USAGE[usage as keyof typeof LIST_OF_USAGE]}`, async () => {
        const key = fixture(spec, usage as KeyUsageType);
        const out = await kms.send(new GetPublicKeyCommand({ KeyId: key.arn }));
        assert.equal(out.KeyId, key.arn);
        assert.equal(out.KeySpec, spec);
        assert.equal(out.CustomerMasterKeySpec, spec);
        assert.equal(out.KeyUsage, usage);
        for (const [listUsage, list] of Object.entries(LIST_OF_USAGE)) {
          if (list === 'MacAlgorithms') continue;
          const actual = out[list];
          if (listUsage === usage) assert.deepEqual([...(actual ?? [])].sort(), [...algorithms].sort());
          else assert.equal(actual, undefined, `${list} absent for ${usage}`);
        }
        const spki = Buffer.from(out.PublicKey!);
        if (isMlDsa(spec)) {
          assert.equal(mlDsaRawPublicKey(spec, spki).length, ML_DSA[spec].publicKeyLength);
        } else {
          const publicKey = spkiKey(spki);
          const expected = KEY_DETAILS[spec];
          assert.equal(publicKey.asymmetricKeyType, expected.type);
          if (expected.modulusLength) assert.equal(publicKey.asymmetricKeyDetails?.modulusLength, expected.modulusLength);
          if (expected.namedCurve) assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, expected.namedCurve);
          assert.deepEqual(publicKey.export({ type: 'spki', format: 'der' }), spki, 'canonical DER');
        }
      });
    }
  }

  for (const [spec, usage] of [['SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT'], ['HMAC_256', 'GENERATE_VERIFY_MAC']] as const) {
    test(`refuses a ${spec} key, which has no public key`, async () => {
      await assertWireError(kms.send(new GetPublicKeyCommand({ KeyId: fixture(spec, usage).id })), {
        name: 'UnsupportedOperationException',
      });
    });
  }
});

for (const spec of SIGNING_SPECS) {
  describe(`Sign and Verify with ${spec}`, () => {
    for (const algorithm of SPECS[spec].SIGN_VERIFY!) {
      const messageTypes = messageTypesOf(algorithm);
      for (const messageType of messageTypes) {
        test(`${algorithm} ${messageType}: the public key verifies the signature offline, not for another message`, async () => {
          const signature = await sign(spec, algorithm, messageType, message);
          const spki = fixture(spec).publicKey!;
          assert.equal(verifyLocally({ spec, algorithm, spki, message, signature }), true);
          assert.equal(verifyLocally({ spec, algorithm, spki, message: altered(message), signature }), false);
        });

        test(`${algorithm} ${messageType}: Verify accepts the signature and refuses an altered message or signature`, async () => {
          const signature = await sign(spec, algorithm, messageType, message);
          await assertVerifies(spec, algorithm, messageType, message, signature);
          await assertWireError(verify(spec, algorithm, messageType, altered(message), signature), INVALID_SIGNATURE);
          await assertWireError(verify(spec, algorithm, messageType, message, altered(signature)), INVALID_SIGNATURE);
        });
      }

      test(`${algorithm}: Verify refuses a truncated or one-byte signature with an empty KMSInvalidSignatureException`, async () => {
        const [messageType] = messageTypes;
        const signature = await sign(spec, algorithm, messageType, message);
        await assertWireError(verify(spec, algorithm, messageType, message, signature.subarray(0, signature.length - 1)), INVALID_SIGNATURE);
        await assertWireError(verify(spec, algorithm, messageType, message, Buffer.alloc(1)), INVALID_SIGNATURE);
      });

      if (messageTypes.length === 2) {
        const [raw, other] = messageTypes;
        test(`${algorithm}: a ${other} signature verifies as a ${raw} one and back`, async () => {
          await assertVerifies(spec, algorithm, raw, message, await sign(spec, algorithm, other, message));
          await assertVerifies(spec, algorithm, other, message, await sign(spec, algorithm, raw, message));
        });
      }

      if (messageTypes.includes('DIGEST')) {
        const length = DIGEST_LENGTH[hashOf(algorithm)];
        for (const wrongLength of [length - 1, length + 1, 20]) {
          test(`${algorithm}: refuses a DIGEST of ${wrongLength} bytes on Sign and Verify`, async () => {
            const expected = { name: 'ValidationException', message: `Digest is invalid length for algorithm ${algorithm}.` };
            const digest = randomBytes(wrongLength);
            const input = { KeyId: fixture(spec).id, Message: digest, MessageType: 'DIGEST' as const, SigningAlgorithm: algorithm as SigningAlgorithmSpec };
            await assertWireError(kms.send(new SignCommand(input)), expected);
            await assertWireError(kms.send(new VerifyCommand({ ...input, Signature: randomBytes(64) })), expected);
          });
        }
      }
    }
  });
}

describe('Sign and Verify, scheme details', () => {
  for (const algorithm of RSA_SIGNING.filter((name) => name.startsWith('RSASSA_PSS'))) {
    test(`${algorithm} uses a salt exactly as long as the digest`, async () => {
      const signature = await sign('RSA_2048', algorithm, 'RAW', message);
      const spki = fixture('RSA_2048').publicKey!;
      const digestLength = DIGEST_LENGTH[hashOf(algorithm)];
      assert.equal(verifyLocally({ spec: 'RSA_2048', algorithm, spki, message, signature, pssSaltLength: digestLength }), true);
      for (const saltLength of [0, digestLength - 1, digestLength + 1]) {
        assert.equal(verifyLocally({ spec: 'RSA_2048', algorithm, spki, message, signature, pssSaltLength: saltLength }), false);
      }
    });
  }

  for (const spec of ['ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1']) {
    const algorithm = SPECS[spec].SIGN_VERIFY![0];
    test(`${spec}: Verify accepts the other valid ECDSA signature (r, n − s), made offline`, async () => {
      const signature = await sign(spec, algorithm, 'RAW', message);
      const negated = ecdsaWithNegatedS(spec, signature);
      assert.notDeepEqual(negated, signature);
      assert.equal(verifyLocally({ spec, algorithm, spki: fixture(spec).publicKey!, message, signature: negated }), true);
      await assertVerifies(spec, algorithm, 'RAW', message, negated);
      await assertVerifies(spec, algorithm, 'DIGEST', message, negated);
    });
  }

  test('ED25519_PH_SHA_512 hashes the given digest again (Ed25519ph), so it is no Ed25519 signature of the digest', async () => {
    const signature = await sign('ECC_NIST_EDWARDS25519', 'ED25519_PH_SHA_512', 'DIGEST', message);
    const spki = fixture('ECC_NIST_EDWARDS25519').publicKey!;
    assert.equal(nodeVerify(null, digestOf('ED25519_PH_SHA_512', message), spkiKey(spki), signature), false);
    assert.equal(nodeVerify(null, message, spkiKey(spki), signature), false);
    assert.equal(ed25519RawPublicKey(spki).length, 32);
  });

  for (const spec of Object.keys(ML_DSA)) {
    test(`${spec}: an EXTERNAL_MU signature made offline from μ verifies through RAW`, async () => {
      // μ computed here from the public key: KMS must bind it to this very key (tr = H(pk)).
      const signature = await sign(spec, 'ML_DSA_SHAKE_256', 'EXTERNAL_MU', message);
      await assertVerifies(spec, 'ML_DSA_SHAKE_256', 'RAW', message, signature);
    });
  }

  test('signs a RAW message of exactly 4096 bytes', async () => {
    const long = randomBytes(4096);
    const signature = await sign('ECC_NIST_P256', 'ECDSA_SHA_256', 'RAW', long);
    assert.equal(verifyLocally({ spec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256', spki: fixture('ECC_NIST_P256').publicKey!, message: long, signature }), true);
  });
});

describe('Sign and Verify refuse', () => {
  const wrongAlgorithms: [string, string][] = [
    ['ECC_NIST_P256', 'ECDSA_SHA_384'], ['ECC_NIST_P384', 'ECDSA_SHA_256'], ['ECC_NIST_P521', 'ECDSA_SHA_384'],
    ['ECC_SECG_P256K1', 'ECDSA_SHA_512'], ['ECC_NIST_P256', 'RSASSA_PSS_SHA_256'], ['ECC_NIST_P384', 'RSASSA_PKCS1_V1_5_SHA_384'],
    ['RSA_2048', 'ECDSA_SHA_256'], ['RSA_3072', 'ED25519_SHA_512'], ['RSA_2048', 'ML_DSA_SHAKE_256'],
    ['ECC_NIST_EDWARDS25519', 'ECDSA_SHA_512'], ['ECC_NIST_EDWARDS25519', 'ML_DSA_SHAKE_256'], ['ML_DSA_44', 'ED25519_SHA_512'],
    ['ML_DSA_87', 'ECDSA_SHA_512'], ['ECC_NIST_P521', 'ED25519_PH_SHA_512'],
  ];
  for (const [spec, algorithm] of wrongAlgorithms) {
    test(`${algorithm} with a ${spec} key as InvalidKeyUsageException`, async () => {
      const input = { KeyId: fixture(spec).id, Message: message, SigningAlgorithm: algorithm as SigningAlgorithmSpec };
      await assertWireError(kms.send(new SignCommand(input)), { name: 'InvalidKeyUsageException' });
      await assertWireError(kms.send(new VerifyCommand({ ...input, Signature: randomBytes(64) })), { name: 'InvalidKeyUsageException' });
    });
  }

  const wrongMessageTypes: [string, string, MessageType, number][] = [
    ['ECC_NIST_EDWARDS25519', 'ED25519_SHA_512', 'DIGEST', 64],
    ['ECC_NIST_EDWARDS25519', 'ED25519_SHA_512', 'EXTERNAL_MU', 64],
    ['ECC_NIST_EDWARDS25519', 'ED25519_PH_SHA_512', 'RAW', 64],
    ['ML_DSA_44', 'ML_DSA_SHAKE_256', 'DIGEST', 64],
    ['ML_DSA_87', 'ML_DSA_SHAKE_256', 'DIGEST', 32],
    ['ECC_NIST_P256', 'ECDSA_SHA_256', 'EXTERNAL_MU', 64],
    ['RSA_2048', 'RSASSA_PSS_SHA_512', 'EXTERNAL_MU', 64],
  ];
  for (const [spec, algorithm, messageType, length] of wrongMessageTypes) {
    test(`${algorithm} with MessageType ${messageType} as ValidationException`, async () => {
      const input = { KeyId: fixture(spec).id, Message: randomBytes(length), MessageType: messageType, SigningAlgorithm: algorithm as SigningAlgorithmSpec };
      await assertWireError(kms.send(new SignCommand(input)), { name: 'ValidationException' });
      await assertWireError(kms.send(new VerifyCommand({ ...input, Signature: randomBytes(64) })), { name: 'ValidationException' });
    });
  }

  for (const length of [63, 65, 32]) {
    test(`an EXTERNAL_MU of ${length} bytes as ValidationException`, async () => {
      const input = { KeyId: fixture('ML_DSA_65').id, Message: randomBytes(length), MessageType: 'EXTERNAL_MU' as const, SigningAlgorithm: 'ML_DSA_SHAKE_256' as const };
      await assertWireError(kms.send(new SignCommand(input)), { name: 'ValidationException' });
      await assertWireError(kms.send(new VerifyCommand({ ...input, Signature: randomBytes(2420) })), { name: 'ValidationException' });
    });
  }

  test('a RAW message of 4097 bytes with the model validation form, not echoing it', async () => {
    const expected = {
      name: 'ValidationException',
      message: "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096",
    };
    const input = { KeyId: fixture('ECC_NIST_P256').id, Message: randomBytes(4097), SigningAlgorithm: 'ECDSA_SHA_256' as const };
    await assertWireError(kms.send(new SignCommand(input)), expected);
    await assertWireError(kms.send(new VerifyCommand({ ...input, Signature: randomBytes(72) })), expected);
  });

  test('the recorded digest-length words for RSASSA_PSS_SHA_256', async () => {
    const input = { KeyId: fixture('RSA_2048').id, Message: randomBytes(20), MessageType: 'DIGEST' as const, SigningAlgorithm: 'RSASSA_PSS_SHA_256' as const };
    await assertWireError(kms.send(new SignCommand(input)), recordedError('test_sign_verify[RSA_2048-RSASSA_PSS_SHA_256]', 'bad-digest'));
  });

  const usageCases: [string, KeyUsageType, 'Sign' | 'Verify', [string, string]?][] = [
    ['RSA_2048', 'ENCRYPT_DECRYPT', 'Sign'],
    ['RSA_4096', 'ENCRYPT_DECRYPT', 'Verify'],
    ['SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', 'Verify', ['test_error_messaging_for_invalid_keys', 'verify-invalid-key-id']],
    ['HMAC_224', 'GENERATE_VERIFY_MAC', 'Sign', ['test_error_messaging_for_invalid_keys', 'sign-invalid-key-id']],
    ['ECC_NIST_P256', 'KEY_AGREEMENT', 'Sign'],
    ['ECC_NIST_P384', 'KEY_AGREEMENT', 'Verify'],
  ];
  for (const [spec, usage, operation, recording] of usageCases) {
    test(`${operation} with a ${spec} ${usage} key as InvalidKeyUsageException naming the usage`, async () => {
      const key = fixture(spec, usage);
      const input = { KeyId: key.id, Message: message, SigningAlgorithm: 'RSASSA_PSS_SHA_256' as const };
      const call = operation === 'Sign' ? kms.send(new SignCommand(input)) : kms.send(new VerifyCommand({ ...input, Signature: randomBytes(256) }));
      await assertWireError(
        call,
        recording
          ? recordedError(recording[0], recording[1], key.arn)
          : { name: 'InvalidKeyUsageException', message: `${key.arn} key usage is ${usage} which is not valid for ${operation}.` },
      );
    });
  }

  test('a disabled key as DisabledException on Sign, Verify and GetPublicKey', async () => {
    const signature = (await kms.send(new SignCommand({ KeyId: disabled.id, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }))).Signature!;
    await kms.send(new DisableKeyCommand({ KeyId: disabled.id }));
    const expected = recordedError('test_rotate_key_on_demand_raises_error_given_key_is_disabled', 'error-response', disabled.arn);
    await assertWireError(kms.send(new SignCommand({ KeyId: disabled.id, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' })), expected);
    await assertWireError(
      kms.send(new VerifyCommand({ KeyId: disabled.id, Message: message, Signature: signature, SigningAlgorithm: 'ECDSA_SHA_256' })),
      expected,
    );
    await assertWireError(kms.send(new GetPublicKeyCommand({ KeyId: disabled.id })), expected);
  });
});

describe('Rotation of keys that cannot rotate', () => {
  const cases: [string, KeyUsageType][] = [
    ['RSA_4096', 'ENCRYPT_DECRYPT'], ['RSA_2048', 'SIGN_VERIFY'], ['ECC_NIST_P256', 'KEY_AGREEMENT'],
    ['ECC_NIST_EDWARDS25519', 'SIGN_VERIFY'], ['ML_DSA_44', 'SIGN_VERIFY'], ['HMAC_512', 'GENERATE_VERIFY_MAC'],
  ];
  for (const [spec, usage] of cases) {
    test(`EnableKeyRotation and RotateKeyOnDemand refuse a ${spec} ${usage} key`, async () => {
      const key = fixture(spec, usage);
      await assertWireError(kms.send(new EnableKeyRotationCommand({ KeyId: key.id })), { name: 'UnsupportedOperationException' });
      await assertWireError(
        kms.send(new RotateKeyOnDemandCommand({ KeyId: key.id })),
        // Recorded for RSA_4096 ENCRYPT_DECRYPT: an empty message.
        spec === 'RSA_4096'
          ? recordedError('test_rotate_key_on_demand_raises_error_given_non_symmetric_key', 'error-response')
          : { name: 'UnsupportedOperationException' },
      );
    });
  }
});
