import { shake256 } from '@noble/hashes/sha3.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { publicKeyFromPrivate } from '../../src/crypto/asymmetric/key-pairs.ts';
import type { AsymmetricKeySpec } from '../../src/crypto/asymmetric/key-specs.ts';
import { privateKeyToPkcs8 } from '../../src/crypto/asymmetric/pkcs8.ts';
import { sign, verify } from '../../src/crypto/asymmetric/signatures.ts';
import { CryptoError } from '../../src/crypto/errors.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { hex, label, loadWycheproof, outcomeOf, type WycheproofVector } from './wycheproof.ts';

/**
 * Wycheproof's ML-DSA files through src/crypto's sign and verify (ML_DSA_SHAKE_256).
 *
 * The API has no context string: RAW is ML-DSA.Sign/Verify with the empty context, and a
 * non-empty context can only be expressed through EXTERNAL_MU, with μ = SHAKE256(tr || 0x00 ||
 * len(ctx) || ctx || msg, 64) and tr = SHAKE256(pk, 64) (FIPS 204 Algorithms 2 and 7), computed
 * here.
 *
 * mldsa_{44,65,87}_verify_test.json:
 * - cases without a context (or with an empty one) are verified twice, RAW and EXTERNAL_MU;
 *   cases with a 1..255-byte context through EXTERNAL_MU only (counted);
 * - valid must be accepted, invalid rejected. verify returns false, except for the
 *   IncorrectPublicKeyLength cases, whose SPKI is not an ML-DSA key of the spec: verify refuses
 *   those with CryptoError (counted);
 * - InvalidContext cases (a 256-byte context, which FIPS 204 forbids) cannot be expressed at all:
 *   a length byte cannot encode 256. Counted.
 * - acceptable: the files have none; any other result kind fails the test.
 *
 * mldsa_{44,65,87}_sign_seed_test.json: sign() is hedged (fresh randomness per signature, FIPS 204
 * §3.4), so signatures cannot be compared with the deterministic ones in the file. Instead, per
 * group, publicKeyFromPrivate(seed) must be the SPKI of the file's public key and
 * privateKeyToPkcs8(seed) its privateKeyPkcs8 (where the group gives one); per valid case, sign() (RAW for msg without
 * context, EXTERNAL_MU with the file's μ otherwise — the "Internal" cases have only μ) must give
 * a signature that verify() accepts, and verify() must accept the file's signature too.
 * - invalid IncorrectPrivateKeyLength: sign must throw CryptoError.
 * - invalid InvalidContext: not expressible, counted.
 */

type MlDsaSpec = Extract<AsymmetricKeySpec, `ML_DSA_${string}`>;

interface VerifyGroup {
  publicKey: string;
  publicKeyDer: string;
  tests: Array<WycheproofVector & { msg: string; sig: string; ctx?: string }>;
}

interface SignGroup {
  privateSeed: string;
  privateKeyPkcs8?: string;
  publicKey?: string;
  tests: Array<WycheproofVector & { msg?: string; mu?: string; sig?: string; ctx?: string }>;
}

const ALGORITHM = 'ML_DSA_SHAKE_256';

function externalMu(publicKey: Uint8Array, ctx: Uint8Array, msg: Uint8Array): Uint8Array {
  const tr = shake256(publicKey, { dkLen: 64 });
  return shake256
    .create({ dkLen: 64 })
    .update(tr)
    .update(new Uint8Array([0, ctx.length]))
    .update(ctx)
    .update(msg)
    .digest();
}

const PARAMETER_SETS: ReadonlyArray<
  readonly [MlDsaSpec, string, { verify: { contextOnly: number; refusedKeys: number; inexpressible: number }; sign: number }]
> = [
  ['ML_DSA_44', '44', { verify: { contextOnly: 2, refusedKeys: 4, inexpressible: 5 }, sign: 1 }],
  ['ML_DSA_65', '65', { verify: { contextOnly: 2, refusedKeys: 4, inexpressible: 5 }, sign: 1 }],
  ['ML_DSA_87', '87', { verify: { contextOnly: 2, refusedKeys: 4, inexpressible: 5 }, sign: 1 }],
];

for (const [spec, size, expectedCounts] of PARAMETER_SETS) {
  const verifyFile = `mldsa_${size}_verify_test.json`;
  test(`${verifyFile}: every case verifies as expected through RAW and EXTERNAL_MU`, () => {
    const file = loadWycheproof<VerifyGroup>(verifyFile);
    assert.equal(file.algorithm, `ML-DSA-${size}`);
    const failures: string[] = [];
    const counts = { contextOnly: 0, refusedKeys: 0, inexpressible: 0 };
    let checked = 0;
    for (const group of file.testGroups) {
      const publicKey = hex(group.publicKeyDer);
      for (const vector of group.tests) {
        checked++;
        const ctx = hex(vector.ctx ?? '');
        if (ctx.length > 255) {
          assert.equal(vector.result, 'invalid', label(vector));
          counts.inexpressible++;
          continue;
        }
        const msg = hex(vector.msg);
        const signature = hex(vector.sig);
        const outcomes = [
          outcomeOf(() =>
            verify({ spec, algorithm: ALGORITHM, publicKey, messageType: 'EXTERNAL_MU', signature, message: externalMu(hex(group.publicKey), ctx, msg) }),
          ),
        ];
        if (ctx.length === 0) {
          outcomes.push(outcomeOf(() => verify({ spec, algorithm: ALGORITHM, publicKey, messageType: 'RAW', signature, message: msg })));
        } else {
          counts.contextOnly++;
        }
        const keyRefusable = vector.flags.includes('IncorrectPublicKeyLength');
        if (keyRefusable) {
          counts.refusedKeys++;
        }
        const expected = vector.result === 'valid' ? 'accepted' : keyRefusable ? 'refused' : 'rejected';
        if (vector.result !== 'valid' && vector.result !== 'invalid') {
          failures.push(`${label(vector)}: result kind has no decided handling`);
        } else if (outcomes.some((outcome) => outcome !== expected)) {
          failures.push(`${label(vector)}: ${outcomes.join(', ')}`);
        }
      }
    }
    assert.deepEqual(failures, []);
    assert.equal(checked, file.numberOfTests);
    assert.deepEqual(counts, expectedCounts.verify);
  });

  const signFile = `mldsa_${size}_sign_seed_test.json`;
  test(`${signFile}: every signature made from the seed verifies, and the keys match`, () => {
    const file = loadWycheproof<SignGroup>(signFile);
    assert.equal(file.algorithm, `ML-DSA-${size}`);
    const failures: string[] = [];
    let checked = 0;
    let inexpressible = 0;
    let pkcs8Compared = 0;
    for (const group of file.testGroups) {
      const seed = SecretBytes.from(hex(group.privateSeed));
      let spki: Buffer | undefined;
      if (seed.length === 32 && group.publicKey !== undefined) {
        spki = publicKeyFromPrivate(spec, seed);
        if (!spki.subarray(spki.length - group.publicKey.length / 2).equals(hex(group.publicKey))) {
          failures.push(`group of tcId ${group.tests[0].tcId}: publicKeyFromPrivate gave another key`);
        }
        pkcs8Compared += group.privateKeyPkcs8 === undefined ? 0 : 1;
        if (group.privateKeyPkcs8 !== undefined && !privateKeyToPkcs8(spec, seed).exposeSecretBytes().equals(hex(group.privateKeyPkcs8))) {
          failures.push(`group of tcId ${group.tests[0].tcId}: privateKeyToPkcs8 gave another encoding`);
        }
      }
      for (const vector of group.tests) {
        checked++;
        const ctx = hex(vector.ctx ?? '');
        if (vector.result === 'invalid' && ctx.length > 255) {
          inexpressible++;
          continue;
        }
        if (vector.result === 'invalid') {
          assert.deepEqual(vector.flags, ['IncorrectPrivateKeyLength'], label(vector));
          try {
            sign({ spec, algorithm: ALGORITHM, privateKey: seed, message: hex(vector.msg ?? ''), messageType: 'RAW' });
            failures.push(`${label(vector)}: signed with a seed of the wrong length`);
          } catch (error) {
            if (!(error instanceof CryptoError)) {
              failures.push(`${label(vector)}: threw something other than CryptoError`);
            }
          }
          continue;
        }
        if (vector.result !== 'valid' || spki === undefined || vector.mu === undefined || vector.sig === undefined) {
          failures.push(`${label(vector)}: case shape has no decided handling`);
          continue;
        }
        const mu = hex(vector.mu);
        if (vector.msg !== undefined && !Buffer.from(externalMu(hex(group.publicKey!), ctx, hex(vector.msg))).equals(mu)) {
          failures.push(`${label(vector)}: the μ computed here differs from the file's`);
        }
        const request =
          vector.msg !== undefined && ctx.length === 0
            ? { message: hex(vector.msg), messageType: 'RAW' as const }
            : { message: mu, messageType: 'EXTERNAL_MU' as const };
        const signature = sign({ spec, algorithm: ALGORITHM, privateKey: seed, ...request });
        if (!verify({ spec, algorithm: ALGORITHM, publicKey: spki, signature, ...request })) {
          failures.push(`${label(vector)}: verify rejected the signature sign made`);
        }
        if (!verify({ spec, algorithm: ALGORITHM, publicKey: spki, signature: hex(vector.sig), ...request })) {
          failures.push(`${label(vector)}: verify rejected the file's signature`);
        }
        if (request.messageType === 'RAW' && !verify({ spec, algorithm: ALGORITHM, publicKey: spki, signature, message: mu, messageType: 'EXTERNAL_MU' })) {
          failures.push(`${label(vector)}: a RAW signature did not verify through EXTERNAL_MU`);
        }
      }
    }
    assert.deepEqual(failures, []);
    assert.equal(checked, file.numberOfTests);
    assert.equal(inexpressible, expectedCounts.sign);
    assert.ok(pkcs8Compared > 0);
  });
}
