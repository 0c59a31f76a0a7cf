import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { test } from 'node:test';
import { ecdhSharedSecret } from '../../src/crypto/asymmetric/key-agreement.ts';
import type { EccKeySpec } from '../../src/crypto/asymmetric/key-specs.ts';
import { CryptoError } from '../../src/crypto/errors.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { checkEveryCase, hex, label, type WycheproofVector } from './wycheproof.ts';

/**
 * Wycheproof's ECDH files with DER SubjectPublicKeyInfo peer keys (encoding "asn") through
 * src/crypto's ecdhSharedSecret. The private scalar is wrapped here in a PKCS#8 key, the form
 * the API takes.
 *
 * - valid: the shared secret must be exactly `shared`.
 * - invalid (points not on the curve, keys on another curve, broken DER): CryptoError.
 * - acceptable: either CryptoError or exactly `shared` — never another secret. Strongroom
 *   accepts exactly one per file, the compressed point (tcId 2; RFC 5480 §2.2 lets it be
 *   supported, and OpenSSL does), and refuses the rest: explicit curve parameters, even when equal
 *   to the named curve's (RFC 5480 §2.1.1 requires the named-curve OID), and every non-DER
 *   encoding (InvalidAsn; OpenSSL's decoder lets some through, keys.ts requires the canonical DER
 *   OpenSSL itself writes). The split is asserted exactly, so a change in what is accepted shows.
 *
 * ecdh_secp256k1_test.json is included: ecdhSharedSecret takes every EccKeySpec, even though
 * KMS's KEY_AGREEMENT keys are NIST curves only.
 */

interface EcdhGroup {
  curve: string;
  encoding: string;
  tests: Array<WycheproofVector & { public: string; private: string; shared: string }>;
}

interface Curve {
  readonly spec: EccKeySpec;
  readonly oid: string;
  readonly scalarLength: number;
}

const FILES: ReadonlyArray<readonly [string, Curve, { accepted: number; refused: number }]> = [
  ['ecdh_secp256r1_test.json', { spec: 'ECC_NIST_P256', oid: '06082a8648ce3d030107', scalarLength: 32 }, { accepted: 1, refused: 229 }],
  ['ecdh_secp384r1_test.json', { spec: 'ECC_NIST_P384', oid: '06052b81040022', scalarLength: 48 }, { accepted: 1, refused: 229 }],
  ['ecdh_secp521r1_test.json', { spec: 'ECC_NIST_P521', oid: '06052b81040023', scalarLength: 66 }, { accepted: 1, refused: 227 }],
  ['ecdh_secp256k1_test.json', { spec: 'ECC_SECG_P256K1', oid: '06052b8104000a', scalarLength: 32 }, { accepted: 1, refused: 229 }],
];

/** PKCS#8 for a private scalar: an RFC 5915 ECPrivateKey built here, re-exported by OpenSSL. */
function pkcs8FromScalar(curve: Curve, scalarHex: string): SecretBytes {
  const scalar = hex(scalarHex.replace(/^(00)+/, '').padStart(curve.scalarLength * 2, '0'));
  const body = Buffer.concat([
    hex('020101'),
    Buffer.from([0x04, scalar.length]),
    scalar,
    Buffer.from([0xa0, curve.oid.length / 2]),
    hex(curve.oid),
  ]);
  const lengthOctets = body.length < 0x80 ? Buffer.from([body.length]) : Buffer.from([0x81, body.length]);
  const sec1 = Buffer.concat([Buffer.from([0x30]), lengthOctets, body]);
  const key = createPrivateKey({ key: sec1, format: 'der', type: 'sec1' });
  return SecretBytes.from(key.export({ format: 'der', type: 'pkcs8' }));
}

for (const [fileName, curve, expectedAcceptable] of FILES) {
  test(`${fileName}: every case gives the expected secret or is refused`, () => {
    const acceptable = { accepted: 0, refused: 0 };
    const privateKeys = new Map<string, SecretBytes>(); // most cases share a few private keys
    checkEveryCase<EcdhGroup>(fileName, 'ECDH', (group, failures) => {
      assert.equal(group.encoding, 'asn');
      return (vector) => {
        let privateKey = privateKeys.get(vector.private);
        if (privateKey === undefined) {
          privateKey = pkcs8FromScalar(curve, vector.private);
          privateKeys.set(vector.private, privateKey);
        }
        let shared: Buffer | undefined;
        let refused = false;
        try {
          shared = ecdhSharedSecret({ spec: curve.spec, privateKey, peerPublicKey: hex(vector.public) }).exposeSecretBytes();
        } catch (error) {
          if (!(error instanceof CryptoError)) {
            throw error;
          }
          refused = true;
        }
        const correct = shared !== undefined && shared.equals(hex(vector.shared));
        if (shared !== undefined && !correct) {
          failures.push(`${label(vector)}: derived a different secret`);
        } else if (vector.result === 'valid' && refused) {
          failures.push(`${label(vector)}: refused a valid public key`);
        } else if (vector.result === 'invalid' && !refused) {
          failures.push(`${label(vector)}: accepted an invalid public key`);
        } else if (vector.result === 'acceptable') {
          acceptable[refused ? 'refused' : 'accepted']++;
        }
      };
    });
    assert.deepEqual(acceptable, expectedAcceptable);
  });
}
