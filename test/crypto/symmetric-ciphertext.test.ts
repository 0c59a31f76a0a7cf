import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { aesGcmDecrypt } from '../../src/crypto/aead.ts';
import { canonicalEncryptionContext } from '../../src/crypto/encryption-context.ts';
import { CryptoError } from '../../src/crypto/errors.ts';
import { createHmac } from 'node:crypto';
import { uuidToBytes } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import {
  SYMMETRIC_CIPHERTEXT_OVERHEAD,
  decryptSymmetric,
  encryptSymmetric,
  parseSymmetricCiphertextHeader,
} from '../../src/crypto/symmetric-ciphertext.ts';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER_KEY_ID = '0987dcba-09ab-87cd-65ef-0987654321ab';
const MATERIAL = SecretBytes.from(Buffer.alloc(32, 0x42));
const PLAINTEXT = Buffer.from('attack at dawn');
const CONTEXT = { department: 'finance', purpose: 'payroll' };

function encrypt(overrides: { keyVersion?: number; plaintext?: Uint8Array; context?: Record<string, string> } = {}): Buffer {
  return encryptSymmetric({
    keyId: KEY_ID,
    keyVersion: overrides.keyVersion ?? 3,
    material: MATERIAL,
    plaintext: overrides.plaintext ?? PLAINTEXT,
    encryptionContext: 'context' in overrides ? overrides.context : CONTEXT,
  });
}

function isDecryptionFailure(error: unknown): boolean {
  return error instanceof CryptoError && error.message === 'decryption failed';
}

function flipByte(blob: Buffer, index: number): Buffer {
  const copy = Buffer.from(blob);
  copy[index] ^= 0x01;
  return copy;
}

describe('symmetric ciphertext v1', () => {
  test('round-trips a plaintext under its encryption context', () => {
    const blob = encrypt();
    assert.deepEqual(decryptSymmetric({ material: MATERIAL, blob, encryptionContext: CONTEXT }), PLAINTEXT);
  });

  test('is exactly SYMMETRIC_CIPHERTEXT_OVERHEAD (65) bytes longer than the plaintext', () => {
    assert.equal(SYMMETRIC_CIPHERTEXT_OVERHEAD, 65);
    for (const length of [0, 1, 4096]) {
      const plaintext = Buffer.alloc(length, 0x61);
      const blob = encrypt({ plaintext });
      assert.equal(blob.length, length + 65);
      assert.deepEqual(decryptSymmetric({ material: MATERIAL, blob, encryptionContext: CONTEXT }), plaintext);
    }
  });

  test('lays out version, key id, key version, salt, IV, ciphertext and tag at the documented offsets', () => {
    const blob = encrypt({ keyVersion: 0x01020304 });
    assert.equal(blob[0], 0x01);
    assert.deepEqual(blob.subarray(1, 17), uuidToBytes(KEY_ID));
    assert.deepEqual(blob.subarray(17, 21), Buffer.from([1, 2, 3, 4]));

    // Recompute the per-message key and AAD from the spec alone and decrypt by hand.
    // SP 800-108 counter mode, HMAC-SHA256, one block: [1]_32 || label || 0x00 || context || [256]_32.
    const kdfInput = Buffer.concat([
      Buffer.from([0, 0, 0, 1]),
      Buffer.from('strongroom/kms-symmetric-ciphertext/v1'),
      Buffer.from([0]),
      blob.subarray(0, 37),
      Buffer.from([0, 0, 1, 0]),
    ]);
    const dek = SecretBytes.from(createHmac('sha256', MATERIAL.exposeSecretBytes()).update(kdfInput).digest());
    const aad = Buffer.concat([blob.subarray(0, 49), canonicalEncryptionContext(CONTEXT)]);
    const tagOffset = blob.length - 16;
    const plaintext = aesGcmDecrypt(dek, blob.subarray(37, 49), blob.subarray(49, tagOffset), blob.subarray(tagOffset), aad);
    assert.deepEqual(plaintext, PLAINTEXT);
  });

  test('draws a fresh salt and IV for every message', () => {
    const first = encrypt();
    const second = encrypt();
    assert.notDeepEqual(first.subarray(21, 37), second.subarray(21, 37));
    assert.notDeepEqual(first.subarray(37, 49), second.subarray(37, 49));
    assert.notDeepEqual(first.subarray(49), second.subarray(49));
  });

  test('accepts a plaintext given as a Uint8Array view and a blob given as a Uint8Array view', () => {
    const backing = new Uint8Array(64).fill(0x55);
    const plaintext = backing.subarray(5, 25);
    const blob = encrypt({ plaintext });
    const copy = new Uint8Array(blob.length + 7);
    copy.set(blob, 7);
    const view = copy.subarray(7);
    assert.deepEqual(parseSymmetricCiphertextHeader(view), { keyId: KEY_ID, keyVersion: 3, format: 1 });
    assert.deepEqual(
      decryptSymmetric({ material: MATERIAL, blob: view, encryptionContext: CONTEXT }),
      Buffer.from(plaintext),
    );
  });

  describe('parseSymmetricCiphertextHeader', () => {
    test('reads the key id and key version a blob names', () => {
      const blob = encrypt({ keyVersion: 0xffff_ffff });
      assert.deepEqual(parseSymmetricCiphertextHeader(blob), { keyId: KEY_ID, keyVersion: 0xffff_ffff, format: 1 });
    });

    test('rejects a blob shorter than 65 bytes', () => {
      const blob = encrypt({ plaintext: new Uint8Array(0) });
      assert.doesNotThrow(() => parseSymmetricCiphertextHeader(blob));
      assert.throws(() => parseSymmetricCiphertextHeader(blob.subarray(0, 64)), CryptoError);
      assert.throws(() => parseSymmetricCiphertextHeader(new Uint8Array(0)), CryptoError);
    });

    test('reads the HSM (v2) and external (v3) formats, which share the first 21 bytes, from 49 bytes on', () => {
      for (const format of [0x02, 0x03]) {
        const blob = encrypt({ plaintext: new Uint8Array(0) }).subarray(0, 49);
        blob[0] = format;
        assert.deepEqual(parseSymmetricCiphertextHeader(blob), { keyId: KEY_ID, keyVersion: 3, format });
        assert.throws(() => parseSymmetricCiphertextHeader(blob.subarray(0, 48)), CryptoError);
        // The software format's own reader still refuses them.
        assert.throws(() => decryptSymmetric({ material: MATERIAL, blob, encryptionContext: CONTEXT }), isDecryptionFailure);
      }
    });

    test('rejects an unknown format version', () => {
      for (const version of [0x00, 0x04, 0xff]) {
        const blob = encrypt();
        blob[0] = version;
        assert.throws(() => parseSymmetricCiphertextHeader(blob), CryptoError);
      }
    });

    test('rejects key version 0', () => {
      const blob = encrypt();
      blob.writeUInt32BE(0, 17);
      assert.throws(() => parseSymmetricCiphertextHeader(blob), CryptoError);
    });
  });

  describe('encryptSymmetric', () => {
    test('rejects key versions outside 1 .. 2^32-1', () => {
      for (const keyVersion of [0, -1, 1.5, 2 ** 32, Number.NaN]) {
        assert.throws(() => encrypt({ keyVersion }), CryptoError);
      }
    });

    test('rejects key ids that are not canonical lowercase UUIDs', () => {
      for (const keyId of [KEY_ID.toUpperCase(), 'alias/my-key', '', `arn:aws:kms:eu-west-1:111122223333:key/${KEY_ID}`]) {
        assert.throws(
          () => encryptSymmetric({ keyId, keyVersion: 1, material: MATERIAL, plaintext: PLAINTEXT }),
          CryptoError,
        );
      }
    });

    test('rejects material that is not 32 bytes', () => {
      for (const length of [16, 31, 33, 64]) {
        assert.throws(
          () => encryptSymmetric({ keyId: KEY_ID, keyVersion: 1, material: SecretBytes.random(length), plaintext: PLAINTEXT }),
          CryptoError,
        );
      }
    });
  });

  describe('rejects with CryptoError a blob whose', () => {
    const regions: ReadonlyArray<readonly [string, number]> = [
      ['format version byte was altered', 0],
      ['key id was altered (first byte)', 1],
      ['key id was altered (last byte)', 16],
      ['key version was altered', 20],
      ['salt was altered', 21],
      ['salt was altered (last byte)', 36],
      ['IV was altered', 37],
      ['IV was altered (last byte)', 48],
      ['ciphertext was altered', 49],
      ['ciphertext was altered (last byte)', 49 + PLAINTEXT.length - 1],
      ['tag was altered', 49 + PLAINTEXT.length],
      ['tag was altered (last byte)', 49 + PLAINTEXT.length + 15],
    ];
    for (const [what, index] of regions) {
      test(what, () => {
        const blob = encrypt();
        assert.deepEqual(decryptSymmetric({ material: MATERIAL, blob, encryptionContext: CONTEXT }), PLAINTEXT);
        const tampered = flipByte(blob, index);
        assert.throws(
          () => decryptSymmetric({ material: MATERIAL, blob: tampered, encryptionContext: CONTEXT }),
          isDecryptionFailure,
        );
      });
    }

    test('key version was set to 0', () => {
      const blob = encrypt();
      blob.writeUInt32BE(0, 17);
      assert.throws(() => decryptSymmetric({ material: MATERIAL, blob, encryptionContext: CONTEXT }), isDecryptionFailure);
    });

    test('key id was re-labelled to another key, even when decrypted with the original material', () => {
      const blob = encrypt();
      uuidToBytes(OTHER_KEY_ID).copy(blob, 1);
      assert.deepEqual(parseSymmetricCiphertextHeader(blob), { keyId: OTHER_KEY_ID, keyVersion: 3, format: 1 });
      assert.throws(() => decryptSymmetric({ material: MATERIAL, blob, encryptionContext: CONTEXT }), isDecryptionFailure);
    });

    test('key version was re-labelled to another version of the same key', () => {
      const blob = encrypt({ keyVersion: 1 });
      blob.writeUInt32BE(2, 17);
      assert.throws(() => decryptSymmetric({ material: MATERIAL, blob, encryptionContext: CONTEXT }), isDecryptionFailure);
    });

    test('tag was cut short', () => {
      const blob = encrypt();
      assert.throws(
        () => decryptSymmetric({ material: MATERIAL, blob: blob.subarray(0, blob.length - 4), encryptionContext: CONTEXT }),
        isDecryptionFailure,
      );
    });

    test('length is below the 65-byte minimum', () => {
      const blob = encrypt({ plaintext: new Uint8Array(0) });
      assert.throws(
        () => decryptSymmetric({ material: MATERIAL, blob: blob.subarray(0, 64), encryptionContext: CONTEXT }),
        isDecryptionFailure,
      );
    });

    test('bytes were appended', () => {
      const blob = Buffer.concat([encrypt(), Buffer.from([0])]);
      assert.throws(() => decryptSymmetric({ material: MATERIAL, blob, encryptionContext: CONTEXT }), isDecryptionFailure);
    });

    test('material is that of another key version', () => {
      const blob = encrypt();
      assert.throws(
        () => decryptSymmetric({ material: SecretBytes.random(32), blob, encryptionContext: CONTEXT }),
        isDecryptionFailure,
      );
    });

    test('material has been destroyed', () => {
      const material = SecretBytes.random(32);
      const blob = encryptSymmetric({ keyId: KEY_ID, keyVersion: 1, material, plaintext: PLAINTEXT });
      material.zero();
      assert.throws(() => decryptSymmetric({ material, blob }), isDecryptionFailure);
    });
  });

  describe('binds the encryption context, rejecting a decrypt', () => {
    const contexts: ReadonlyArray<readonly [string, Record<string, string> | undefined]> = [
      ['with a changed value', { department: 'finance', purpose: 'bonus' }],
      ['with a changed key', { department: 'finance', Purpose: 'payroll' }],
      ['with an extra pair', { ...CONTEXT, extra: '' }],
      ['with a pair removed', { department: 'finance' }],
      ['with no context at all', undefined],
      ['with an empty context', {}],
    ];
    for (const [what, encryptionContext] of contexts) {
      test(what, () => {
        const blob = encrypt();
        assert.throws(() => decryptSymmetric({ material: MATERIAL, blob, encryptionContext }), isDecryptionFailure);
      });
    }

    test('with a context that cannot be encoded', () => {
      const blob = encrypt();
      assert.throws(
        () => decryptSymmetric({ material: MATERIAL, blob, encryptionContext: { department: '\ud800' } }),
        isDecryptionFailure,
      );
    });

    test('with a context given where none was used at encryption', () => {
      const blob = encrypt({ context: undefined });
      assert.throws(
        () => decryptSymmetric({ material: MATERIAL, blob, encryptionContext: { a: 'b' } }),
        isDecryptionFailure,
      );
    });
  });

  test('treats an empty encryption context and an absent one as the same', () => {
    const withoutContext = encrypt({ context: undefined });
    const withEmptyContext = encrypt({ context: {} });
    assert.deepEqual(decryptSymmetric({ material: MATERIAL, blob: withoutContext, encryptionContext: {} }), PLAINTEXT);
    assert.deepEqual(decryptSymmetric({ material: MATERIAL, blob: withEmptyContext }), PLAINTEXT);
  });

  test('accepts the context pairs in any order', () => {
    const blob = encrypt({ context: { purpose: 'payroll', department: 'finance' } });
    assert.deepEqual(
      decryptSymmetric({ material: MATERIAL, blob, encryptionContext: { department: 'finance', purpose: 'payroll' } }),
      PLAINTEXT,
    );
  });
});
