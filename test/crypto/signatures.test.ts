import { ed25519ph } from '@noble/curves/ed25519.js';
import { shake256 } from '@noble/hashes/sha3.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { generateKeyPair } from '../../src/crypto/asymmetric/key-pairs.ts';
import type { AsymmetricKeySpec, MessageType, SigningAlgorithm } from '../../src/crypto/asymmetric/key-specs.ts';
import { digestLength, sign, verify } from '../../src/crypto/asymmetric/signatures.ts';
import { CryptoError } from '../../src/crypto/errors.ts';

const MESSAGE = Buffer.from('the quick brown fox jumps over the lazy dog');
const ALL_SPECS: readonly AsymmetricKeySpec[] = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  'ECC_NIST_EDWARDS25519',
  'ML_DSA_44',
  'ML_DSA_65',
  'ML_DSA_87',
];
const RSA_ALGORITHMS: readonly SigningAlgorithm[] = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
];
const ECDSA_ALGORITHM: Readonly<Record<string, SigningAlgorithm>> = {
  ECC_NIST_P256: 'ECDSA_SHA_256',
  ECC_NIST_P384: 'ECDSA_SHA_384',
  ECC_NIST_P521: 'ECDSA_SHA_512',
  ECC_SECG_P256K1: 'ECDSA_SHA_256',
};

const keys = new Map(await Promise.all(ALL_SPECS.map(async (spec) => [spec, await generateKeyPair(spec)] as const)));
const keyOf = (spec: AsymmetricKeySpec) => keys.get(spec)!;

function hashOf(algorithm: SigningAlgorithm): string {
  return algorithm.endsWith('256') ? 'sha256' : algorithm.endsWith('384') ? 'sha384' : 'sha512';
}

function signWith(spec: AsymmetricKeySpec, algorithm: SigningAlgorithm, message: Uint8Array, messageType: MessageType) {
  return sign({ spec, algorithm, privateKey: keyOf(spec).privateKey, message, messageType });
}

function verifyWith(spec: AsymmetricKeySpec, algorithm: SigningAlgorithm, message: Uint8Array, messageType: MessageType, signature: Uint8Array) {
  return verify({ spec, algorithm, publicKey: keyOf(spec).publicKey, message, messageType, signature });
}

function altered(bytes: Buffer, index = 0): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] ^= 0x01;
  return copy;
}

const HASH_SIGNED: Array<[AsymmetricKeySpec, SigningAlgorithm]> = [
  ...(['RSA_2048', 'RSA_3072', 'RSA_4096'] as const).flatMap((spec) => RSA_ALGORITHMS.map((algorithm) => [spec, algorithm] as [AsymmetricKeySpec, SigningAlgorithm])),
  ...Object.entries(ECDSA_ALGORITHM).map(([spec, algorithm]) => [spec as AsymmetricKeySpec, algorithm] as [AsymmetricKeySpec, SigningAlgorithm]),
];

describe('sign / verify with RSA and ECDSA keys', () => {
  for (const [spec, algorithm] of HASH_SIGNED) {
    const digest = () => createHash(hashOf(algorithm)).update(MESSAGE).digest();

    test(`${spec} ${algorithm}: a RAW signature verifies through RAW and through DIGEST`, () => {
      const signature = signWith(spec, algorithm, MESSAGE, 'RAW');
      assert.equal(verifyWith(spec, algorithm, MESSAGE, 'RAW', signature), true);
      assert.equal(verifyWith(spec, algorithm, digest(), 'DIGEST', signature), true);
      assert.equal(verifyWith(spec, algorithm, altered(MESSAGE), 'RAW', signature), false);
      assert.equal(verifyWith(spec, algorithm, altered(digest()), 'DIGEST', signature), false);
    });

    test(`${spec} ${algorithm}: a DIGEST signature verifies through DIGEST and through RAW`, () => {
      const signature = signWith(spec, algorithm, digest(), 'DIGEST');
      assert.equal(verifyWith(spec, algorithm, digest(), 'DIGEST', signature), true);
      assert.equal(verifyWith(spec, algorithm, MESSAGE, 'RAW', signature), true);
      assert.equal(verifyWith(spec, algorithm, MESSAGE, 'RAW', altered(signature, signature.length - 1)), false);
      assert.equal(verifyWith(spec, algorithm, digest(), 'DIGEST', altered(signature, signature.length - 1)), false);
    });

    test(`${spec} ${algorithm}: refuses a digest of the wrong length on sign and verify`, () => {
      const short = digest().subarray(1);
      assert.throws(() => signWith(spec, algorithm, short, 'DIGEST'), CryptoError);
      assert.throws(() => verifyWith(spec, algorithm, short, 'DIGEST', Buffer.alloc(64)), CryptoError);
    });
  }

  test('PKCS#1 v1.5 signatures are the same through RAW and DIGEST (deterministic)', () => {
    const digest = createHash('sha384').update(MESSAGE).digest();
    assert.deepEqual(
      signWith('RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_384', MESSAGE, 'RAW'),
      signWith('RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_384', digest, 'DIGEST'),
    );
  });

  test('a PSS signature does not verify as PKCS#1 v1.5, nor under another hash', () => {
    const signature = signWith('RSA_2048', 'RSASSA_PSS_SHA_256', MESSAGE, 'RAW');
    assert.equal(verifyWith('RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256', MESSAGE, 'RAW', signature), false);
    assert.equal(verifyWith('RSA_2048', 'RSASSA_PSS_SHA_384', MESSAGE, 'RAW', signature), false);
  });

  test('verify returns false, never throws, for empty, truncated and oversized signatures', () => {
    for (const [spec, algorithm] of [['RSA_2048', 'RSASSA_PSS_SHA_256'], ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256'], ['ECC_NIST_P256', 'ECDSA_SHA_256']] as const) {
      const signature = signWith(spec, algorithm, MESSAGE, 'RAW');
      const digest = createHash('sha256').update(MESSAGE).digest();
      for (const bad of [Buffer.alloc(0), signature.subarray(1), Buffer.concat([signature, Buffer.alloc(1)]), Buffer.alloc(signature.length, 0xff)]) {
        assert.equal(verifyWith(spec, algorithm, MESSAGE, 'RAW', bad), false);
        assert.equal(verifyWith(spec, algorithm, digest, 'DIGEST', bad), false);
      }
    }
  });

  test('an RSA signature one byte short of the modulus is refused even when the missing byte was zero (RFC 8017 §8.1.2, §8.2.2 step 1)', () => {
    // OpenSSL reads the short signature as the same integer: this case failed 1 run in ~256 above.
    for (const algorithm of ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256'] as const) {
      let message = MESSAGE;
      let signature = signWith('RSA_2048', algorithm, message, 'RAW');
      for (let i = 0; signature[0] !== 0; i++) {
        message = Buffer.concat([MESSAGE, Buffer.from(String(i))]); // PKCS#1 v1.5 is deterministic: vary the message
        signature = signWith('RSA_2048', algorithm, message, 'RAW');
      }
      const digest = createHash('sha256').update(message).digest();
      assert.equal(verifyWith('RSA_2048', algorithm, message, 'RAW', signature), true);
      assert.equal(verifyWith('RSA_2048', algorithm, message, 'RAW', signature.subarray(1)), false, `${algorithm} RAW`);
      assert.equal(verifyWith('RSA_2048', algorithm, digest, 'DIGEST', signature.subarray(1)), false, `${algorithm} DIGEST`);
    }
  });

  test('refuses a public key of another size or type than the spec', () => {
    const signature = signWith('RSA_2048', 'RSASSA_PSS_SHA_256', MESSAGE, 'RAW');
    const wrongKey = (spec: AsymmetricKeySpec) =>
      verify({ spec: 'RSA_2048', algorithm: 'RSASSA_PSS_SHA_256', publicKey: keyOf(spec).publicKey, message: MESSAGE, messageType: 'RAW', signature });
    assert.throws(() => wrongKey('RSA_3072'), CryptoError);
    assert.throws(() => wrongKey('ECC_NIST_P256'), CryptoError);
    assert.throws(
      () => verify({ spec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256', publicKey: keyOf('ECC_SECG_P256K1').publicKey, message: MESSAGE, messageType: 'RAW', signature }),
      CryptoError,
    );
  });

  test('refuses a private key of another spec', () => {
    assert.throws(
      () => sign({ spec: 'RSA_2048', algorithm: 'RSASSA_PSS_SHA_256', privateKey: keyOf('RSA_3072').privateKey, message: MESSAGE, messageType: 'RAW' }),
      CryptoError,
    );
    assert.throws(
      () => sign({ spec: 'ECC_NIST_P384', algorithm: 'ECDSA_SHA_384', privateKey: keyOf('ECC_NIST_P256').privateKey, message: MESSAGE, messageType: 'RAW' }),
      CryptoError,
    );
  });
});

describe('sign / verify with Ed25519 keys', () => {
  const spec = 'ECC_NIST_EDWARDS25519';
  const digest = createHash('sha512').update(MESSAGE).digest();

  test('ED25519_SHA_512 round-trips with RAW and is deterministic', () => {
    const signature = signWith(spec, 'ED25519_SHA_512', MESSAGE, 'RAW');
    assert.equal(signature.length, 64);
    assert.deepEqual(signWith(spec, 'ED25519_SHA_512', MESSAGE, 'RAW'), signature);
    assert.equal(verifyWith(spec, 'ED25519_SHA_512', MESSAGE, 'RAW', signature), true);
    assert.equal(verifyWith(spec, 'ED25519_SHA_512', altered(MESSAGE), 'RAW', signature), false);
  });

  test('ED25519_PH_SHA_512 signs the given digest as the Ed25519ph message, hashing it again', () => {
    const signature = signWith(spec, 'ED25519_PH_SHA_512', digest, 'DIGEST');
    assert.equal(verifyWith(spec, 'ED25519_PH_SHA_512', digest, 'DIGEST', signature), true);
    assert.equal(verifyWith(spec, 'ED25519_PH_SHA_512', altered(digest), 'DIGEST', signature), false);
    const rawPublicKey = keyOf(spec).publicKey.subarray(-32);
    // RFC 8032 §5.1 Ed25519ph over the 64 digest bytes (so SHA-512 is applied to them again) ...
    assert.equal(ed25519ph.verify(signature, digest, rawPublicKey), true);
    // ... and not Ed25519ph over the original message, which would hash only once.
    assert.equal(ed25519ph.verify(signature, MESSAGE, rawPublicKey), false);
    // Nor is it a pure Ed25519 signature of the digest.
    assert.equal(verifyWith(spec, 'ED25519_SHA_512', digest, 'RAW', signature), false);
  });

  test('refuses ED25519_SHA_512 with DIGEST and ED25519_PH_SHA_512 with RAW', () => {
    assert.throws(() => signWith(spec, 'ED25519_SHA_512', digest, 'DIGEST'), CryptoError);
    assert.throws(() => signWith(spec, 'ED25519_PH_SHA_512', MESSAGE, 'RAW'), CryptoError);
    assert.throws(() => verifyWith(spec, 'ED25519_SHA_512', digest, 'DIGEST', Buffer.alloc(64)), CryptoError);
    assert.throws(() => verifyWith(spec, 'ED25519_PH_SHA_512', MESSAGE, 'RAW', Buffer.alloc(64)), CryptoError);
  });
});

describe('sign / verify with ML-DSA keys', () => {
  for (const spec of ['ML_DSA_44', 'ML_DSA_65', 'ML_DSA_87'] as const) {
    const mu = () => {
      const rawPublicKey = keyOf(spec).publicKey.subarray(22); // the SPKI header is 22 bytes for all three
      const tr = shake256(rawPublicKey, { dkLen: 64 });
      return Buffer.from(shake256.create({ dkLen: 64 }).update(tr).update(new Uint8Array([0, 0])).update(MESSAGE).digest());
    };

    test(`${spec}: a RAW signature verifies through RAW and through EXTERNAL_MU`, () => {
      const signature = signWith(spec, 'ML_DSA_SHAKE_256', MESSAGE, 'RAW');
      assert.equal(verifyWith(spec, 'ML_DSA_SHAKE_256', MESSAGE, 'RAW', signature), true);
      assert.equal(verifyWith(spec, 'ML_DSA_SHAKE_256', mu(), 'EXTERNAL_MU', signature), true);
      assert.equal(verifyWith(spec, 'ML_DSA_SHAKE_256', altered(MESSAGE), 'RAW', signature), false);
    });

    test(`${spec}: an EXTERNAL_MU signature verifies through RAW of the message`, () => {
      const signature = signWith(spec, 'ML_DSA_SHAKE_256', mu(), 'EXTERNAL_MU');
      assert.equal(verifyWith(spec, 'ML_DSA_SHAKE_256', MESSAGE, 'RAW', signature), true);
      assert.equal(verifyWith(spec, 'ML_DSA_SHAKE_256', altered(mu()), 'EXTERNAL_MU', signature), false);
    });

    test(`${spec}: refuses DIGEST, a μ that is not 64 bytes, and a seed that is not 32 bytes`, () => {
      assert.throws(() => signWith(spec, 'ML_DSA_SHAKE_256', mu(), 'DIGEST'), CryptoError);
      assert.throws(() => signWith(spec, 'ML_DSA_SHAKE_256', mu().subarray(1), 'EXTERNAL_MU'), CryptoError);
      assert.throws(() => verifyWith(spec, 'ML_DSA_SHAKE_256', mu(), 'DIGEST', Buffer.alloc(10)), CryptoError);
      assert.throws(
        () => sign({ spec, algorithm: 'ML_DSA_SHAKE_256', privateKey: keyOf('ECC_NIST_P256').privateKey, message: MESSAGE, messageType: 'RAW' }),
        CryptoError,
      );
    });

    test(`${spec}: verify returns false for a truncated signature`, () => {
      const signature = signWith(spec, 'ML_DSA_SHAKE_256', MESSAGE, 'RAW');
      assert.equal(verifyWith(spec, 'ML_DSA_SHAKE_256', MESSAGE, 'RAW', signature.subarray(1)), false);
    });
  }
});

describe('algorithm and key spec combinations', () => {
  const refused: Array<[AsymmetricKeySpec, SigningAlgorithm, MessageType]> = [
    ['ECC_NIST_P256', 'ECDSA_SHA_384', 'RAW'],
    ['ECC_NIST_P384', 'ECDSA_SHA_256', 'RAW'],
    ['ECC_NIST_P521', 'ECDSA_SHA_256', 'RAW'],
    ['ECC_SECG_P256K1', 'ECDSA_SHA_512', 'RAW'],
    ['RSA_2048', 'ECDSA_SHA_256', 'RAW'],
    ['RSA_2048', 'RSASSA_PSS_SHA_256', 'EXTERNAL_MU'],
    ['ECC_NIST_P256', 'RSASSA_PSS_SHA_256', 'RAW'],
    ['ECC_NIST_P256', 'ECDSA_SHA_256', 'EXTERNAL_MU'],
    ['ECC_NIST_EDWARDS25519', 'ECDSA_SHA_512', 'RAW'],
    ['ECC_NIST_EDWARDS25519', 'ML_DSA_SHAKE_256', 'RAW'],
    ['ML_DSA_44', 'ED25519_SHA_512', 'RAW'],
    ['ML_DSA_65', 'RSASSA_PSS_SHA_512', 'RAW'],
  ];
  for (const [spec, algorithm, messageType] of refused) {
    test(`refuses ${algorithm} with ${messageType} for a ${spec} key`, () => {
      const message = messageType === 'RAW' ? MESSAGE : Buffer.alloc(64);
      assert.throws(() => signWith(spec, algorithm, message, messageType), CryptoError);
      assert.throws(() => verifyWith(spec, algorithm, message, messageType, Buffer.alloc(64)), CryptoError);
    });
  }

  test('digestLength gives the hash length of each algorithm and 64 for Ed25519ph and ML-DSA', () => {
    const expected: Record<SigningAlgorithm, number> = {
      RSASSA_PSS_SHA_256: 32,
      RSASSA_PSS_SHA_384: 48,
      RSASSA_PSS_SHA_512: 64,
      RSASSA_PKCS1_V1_5_SHA_256: 32,
      RSASSA_PKCS1_V1_5_SHA_384: 48,
      RSASSA_PKCS1_V1_5_SHA_512: 64,
      ECDSA_SHA_256: 32,
      ECDSA_SHA_384: 48,
      ECDSA_SHA_512: 64,
      ED25519_SHA_512: 64,
      ED25519_PH_SHA_512: 64,
      ML_DSA_SHAKE_256: 64,
    };
    for (const [algorithm, length] of Object.entries(expected)) {
      assert.equal(digestLength(algorithm as SigningAlgorithm), length, algorithm);
    }
    assert.throws(() => digestLength('SM2DSA' as SigningAlgorithm), CryptoError);
  });
});
