import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { describe, test } from 'node:test';
import { ecdhSharedSecret } from '../../src/crypto/asymmetric/key-agreement.ts';
import { generateHmacKey, generateKeyPair, publicKeyFromPrivate } from '../../src/crypto/asymmetric/key-pairs.ts';
import type { AsymmetricKeySpec, EccKeySpec, MacAlgorithm, RsaKeySpec } from '../../src/crypto/asymmetric/key-specs.ts';
import { generateMac, verifyMac } from '../../src/crypto/asymmetric/mac.ts';
import { privateKeyToPkcs8 } from '../../src/crypto/asymmetric/pkcs8.ts';
import { rsaOaepDecrypt, rsaOaepEncrypt, rsaOaepMaxPlaintext } from '../../src/crypto/asymmetric/rsa-encryption.ts';
import { CryptoError } from '../../src/crypto/errors.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';

const RSA_SPECS: readonly RsaKeySpec[] = ['RSA_2048', 'RSA_3072', 'RSA_4096'];
const ECC_SPECS: readonly EccKeySpec[] = ['ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1'];
const ML_DSA_SPECS = ['ML_DSA_44', 'ML_DSA_65', 'ML_DSA_87'] as const;
const ALL_SPECS: readonly AsymmetricKeySpec[] = [...RSA_SPECS, ...ECC_SPECS, 'ECC_NIST_EDWARDS25519', ...ML_DSA_SPECS];

const keys = new Map(await Promise.all(ALL_SPECS.map(async (spec) => [spec, await generateKeyPair(spec)] as const)));
const keyOf = (spec: AsymmetricKeySpec) => keys.get(spec)!;

describe('generateKeyPair / publicKeyFromPrivate', () => {
  const nodeDetails: Record<string, [string, Record<string, unknown>]> = {
    RSA_2048: ['rsa', { modulusLength: 2048, publicExponent: 65537n }],
    RSA_3072: ['rsa', { modulusLength: 3072, publicExponent: 65537n }],
    RSA_4096: ['rsa', { modulusLength: 4096, publicExponent: 65537n }],
    ECC_NIST_P256: ['ec', { namedCurve: 'prime256v1' }],
    ECC_NIST_P384: ['ec', { namedCurve: 'secp384r1' }],
    ECC_NIST_P521: ['ec', { namedCurve: 'secp521r1' }],
    ECC_SECG_P256K1: ['ec', { namedCurve: 'secp256k1' }],
    ECC_NIST_EDWARDS25519: ['ed25519', {}],
  };
  for (const [spec, [type, details]] of Object.entries(nodeDetails)) {
    test(`${spec}: the public key is an SPKI node:crypto parses as that key type`, () => {
      const key = createPublicKey({ key: keyOf(spec as AsymmetricKeySpec).publicKey, format: 'der', type: 'spki' });
      assert.equal(key.asymmetricKeyType, type);
      assert.deepEqual({ ...key.asymmetricKeyDetails }, details);
    });
  }

  const mlDsa: Record<(typeof ML_DSA_SPECS)[number], [string, number]> = {
    ML_DSA_44: ['30820532300b0609608648016503040311038205210', 1312],
    ML_DSA_65: ['308207b2300b0609608648016503040312038207a10', 1952],
    ML_DSA_87: ['30820a32300b060960864801650304031303820a210', 2592],
  };
  for (const [spec, [headerHex, publicKeyLength]] of Object.entries(mlDsa)) {
    test(`${spec}: the public key is the RFC 9881 SPKI with OID 2.16.840.1.101.3.4.3.${publicKeyLength === 1312 ? 17 : publicKeyLength === 1952 ? 18 : 19} and no parameters`, () => {
      const spki = keyOf(spec as AsymmetricKeySpec).publicKey;
      // SEQUENCE { SEQUENCE { OID }, BIT STRING { 00 || pk } }, the header ending in the 00 unused-bits byte.
      assert.equal(spki.subarray(0, 22).toString('hex'), `${headerHex}0`);
      assert.equal(spki.length, 22 + publicKeyLength);
      assert.equal(keyOf(spec as AsymmetricKeySpec).privateKey.length, 32);
    });
  }

  for (const spec of ALL_SPECS) {
    test(`${spec}: publicKeyFromPrivate gives back the generated public key`, () => {
      const { privateKey, publicKey } = keyOf(spec);
      assert.deepEqual(publicKeyFromPrivate(spec, privateKey), publicKey);
    });
  }

  test('two key pairs of one spec differ', async () => {
    for (const spec of ['ECC_NIST_P256', 'ECC_NIST_EDWARDS25519', 'ML_DSA_44'] as const) {
      assert.notDeepEqual((await generateKeyPair(spec)).publicKey, keyOf(spec).publicKey);
    }
  });

  test('publicKeyFromPrivate refuses a private key of another spec or one that is not a key', () => {
    assert.throws(() => publicKeyFromPrivate('RSA_2048', keyOf('RSA_3072').privateKey), CryptoError);
    assert.throws(() => publicKeyFromPrivate('ECC_NIST_P256', keyOf('ECC_SECG_P256K1').privateKey), CryptoError);
    assert.throws(() => publicKeyFromPrivate('ECC_NIST_EDWARDS25519', SecretBytes.random(32)), CryptoError);
    assert.throws(() => publicKeyFromPrivate('ML_DSA_44', SecretBytes.random(31)), CryptoError);
  });

  test('a refused private key does not appear in the error', () => {
    const privateKey = keyOf('ECC_NIST_P256').privateKey;
    try {
      publicKeyFromPrivate('ECC_NIST_P384', privateKey);
      assert.fail('expected a CryptoError');
    } catch (error) {
      assert.ok(error instanceof CryptoError);
      assert.equal(error.message, 'invalid private key');
      assert.equal((error as Error).cause, undefined);
    }
  });
});

describe('privateKeyToPkcs8', () => {
  for (const spec of [...RSA_SPECS, ...ECC_SPECS, 'ECC_NIST_EDWARDS25519'] as const) {
    test(`${spec}: is the stored PKCS#8 key, as a new SecretBytes`, () => {
      const { privateKey } = keyOf(spec);
      const pkcs8 = privateKeyToPkcs8(spec, privateKey);
      assert.notEqual(pkcs8, privateKey);
      assert.ok(pkcs8.equals(privateKey));
    });
  }

  test('ML-DSA: is the seed-only PrivateKeyInfo of RFC 9881', () => {
    const seed = SecretBytes.from(Buffer.alloc(32, 0x2a));
    assert.equal(
      privateKeyToPkcs8('ML_DSA_44', seed).exposeSecretBytes().toString('hex'),
      `3034020100300b060960864801650304031104228020${'2a'.repeat(32)}`,
    );
  });

  test('refuses a key of another spec', () => {
    assert.throws(() => privateKeyToPkcs8('ECC_NIST_P521', keyOf('ECC_NIST_P384').privateKey), CryptoError);
    assert.throws(() => privateKeyToPkcs8('ML_DSA_65', SecretBytes.random(64)), CryptoError);
  });
});

describe('generateHmacKey / generateMac / verifyMac', () => {
  const cases: Array<['HMAC_224' | 'HMAC_256' | 'HMAC_384' | 'HMAC_512', MacAlgorithm, number]> = [
    ['HMAC_224', 'HMAC_SHA_224', 28],
    ['HMAC_256', 'HMAC_SHA_256', 32],
    ['HMAC_384', 'HMAC_SHA_384', 48],
    ['HMAC_512', 'HMAC_SHA_512', 64],
  ];
  for (const [spec, algorithm, length] of cases) {
    test(`${spec} keys are ${length} bytes and ${algorithm} MACs round-trip`, () => {
      const key = generateHmacKey(spec);
      assert.equal(key.length, length);
      const message = Buffer.from('message');
      const mac = generateMac({ algorithm, key, message });
      assert.equal(mac.length, length);
      assert.equal(verifyMac({ algorithm, key, message, mac }), true);
      assert.equal(verifyMac({ algorithm, key, message: Buffer.from('messagf'), mac }), false);
      assert.equal(verifyMac({ algorithm, key, message, mac: mac.subarray(0, length / 2) }), false);
      assert.equal(verifyMac({ algorithm, key: generateHmacKey(spec), message, mac }), false);
    });
  }

  test('refuses an unknown MAC algorithm and key spec', () => {
    assert.throws(() => generateMac({ algorithm: 'HMAC_SHA_1' as MacAlgorithm, key: SecretBytes.random(32), message: Buffer.alloc(0) }), CryptoError);
    assert.throws(() => generateHmacKey('HMAC_128' as 'HMAC_256'), CryptoError);
  });
});

describe('rsaOaepEncrypt / rsaOaepDecrypt', () => {
  test('the maximum plaintext is k - 2·hLen - 2', () => {
    assert.deepEqual(
      RSA_SPECS.map((spec) => [rsaOaepMaxPlaintext(spec, 'RSAES_OAEP_SHA_1'), rsaOaepMaxPlaintext(spec, 'RSAES_OAEP_SHA_256')]),
      [[214, 190], [342, 318], [470, 446]],
    );
  });

  for (const spec of RSA_SPECS) {
    for (const algorithm of ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] as const) {
      test(`${spec} ${algorithm}: round-trips the empty and the largest plaintext and refuses one byte more`, () => {
        const { privateKey, publicKey } = keyOf(spec);
        const max = rsaOaepMaxPlaintext(spec, algorithm);
        for (const plaintext of [Buffer.alloc(0), Buffer.alloc(max, 0xa5)]) {
          const ciphertext = rsaOaepEncrypt({ publicKey, algorithm, plaintext });
          assert.equal(ciphertext.length, Number(spec.slice(4)) / 8);
          assert.deepEqual(rsaOaepDecrypt({ privateKey, algorithm, ciphertext }), plaintext);
        }
        assert.throws(() => rsaOaepEncrypt({ publicKey, algorithm, plaintext: Buffer.alloc(max + 1) }), CryptoError);
      });
    }
  }

  const isDecryptionFailure = (error: unknown) => error instanceof CryptoError && error.message === 'decryption failed';

  test('any decryption failure is the one "decryption failed" error', () => {
    const { privateKey, publicKey } = keyOf('RSA_2048');
    const ciphertext = rsaOaepEncrypt({ publicKey, algorithm: 'RSAES_OAEP_SHA_256', plaintext: Buffer.from('secret') });
    const flipped = Buffer.from(ciphertext);
    flipped[100] ^= 1;
    const attempts = [
      () => rsaOaepDecrypt({ privateKey, algorithm: 'RSAES_OAEP_SHA_1', ciphertext }),
      () => rsaOaepDecrypt({ privateKey, algorithm: 'RSAES_OAEP_SHA_256', ciphertext: flipped }),
      () => rsaOaepDecrypt({ privateKey, algorithm: 'RSAES_OAEP_SHA_256', ciphertext: ciphertext.subarray(1) }),
      () => rsaOaepDecrypt({ privateKey: keyOf('RSA_3072').privateKey, algorithm: 'RSAES_OAEP_SHA_256', ciphertext }),
      () => rsaOaepDecrypt({ privateKey: keyOf('ECC_NIST_P256').privateKey, algorithm: 'RSAES_OAEP_SHA_256', ciphertext }),
    ];
    for (const attempt of attempts) {
      assert.throws(attempt, isDecryptionFailure);
    }
  });

  test('refuses a public key that is not an RSA key', () => {
    assert.throws(
      () => rsaOaepEncrypt({ publicKey: keyOf('ECC_NIST_P256').publicKey, algorithm: 'RSAES_OAEP_SHA_256', plaintext: Buffer.alloc(1) }),
      CryptoError,
    );
  });
});

describe('ecdhSharedSecret', () => {
  for (const spec of ECC_SPECS) {
    test(`${spec}: both parties derive the same secret`, async () => {
      const alice = keyOf(spec);
      const bob = await generateKeyPair(spec);
      const aliceSecret = ecdhSharedSecret({ spec, privateKey: alice.privateKey, peerPublicKey: bob.publicKey });
      const bobSecret = ecdhSharedSecret({ spec, privateKey: bob.privateKey, peerPublicKey: alice.publicKey });
      assert.ok(aliceSecret.equals(bobSecret));
      assert.equal(aliceSecret.length, spec === 'ECC_NIST_P521' ? 66 : spec === 'ECC_NIST_P384' ? 48 : 32);
    });
  }

  test('refuses a peer key on another curve, of another type, malformed, or off the curve', () => {
    const { privateKey } = keyOf('ECC_NIST_P256');
    const offCurve = Buffer.from(keyOf('ECC_NIST_P256').publicKey);
    offCurve[offCurve.length - 1] ^= 1; // change y: the point leaves the curve
    for (const peerPublicKey of [
      keyOf('ECC_NIST_P384').publicKey,
      keyOf('ECC_SECG_P256K1').publicKey,
      keyOf('ECC_NIST_EDWARDS25519').publicKey,
      keyOf('RSA_2048').publicKey,
      keyOf('ECC_NIST_P256').publicKey.subarray(1),
      Buffer.alloc(0),
      offCurve,
    ]) {
      assert.throws(() => ecdhSharedSecret({ spec: 'ECC_NIST_P256', privateKey, peerPublicKey }), CryptoError);
    }
  });

  test('refuses a private key of another curve', () => {
    assert.throws(
      () => ecdhSharedSecret({ spec: 'ECC_NIST_P256', privateKey: keyOf('ECC_NIST_P384').privateKey, peerPublicKey: keyOf('ECC_NIST_P256').publicKey }),
      CryptoError,
    );
  });
});
