/**
 * The behaviour every KeyStore owes the service for SYMMETRIC_DEFAULT keys, whatever holds the
 * key (sealed software material, a PKCS#11 token, later an HSM cluster or an external store).
 * A store's test file calls symmetricConformance once with a way to open it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CryptoError } from '../../src/crypto/errors.ts';
import { randomUuid, uuidToBytes } from '../../src/crypto/random.ts';
import type { KeyStore, KeyVersionHandle } from '../../src/keystores/types.ts';

export interface ConformanceSubject {
  readonly store: KeyStore;
  /** Bytes a blob adds to the plaintext: fixed per format (65 for v1, 49 for the HSM's v2). */
  readonly overhead: number;
  /** The format version byte its blobs start with. */
  readonly formatVersion: number;
  close(): Promise<void>;
}

const CONTEXT = { department: 'finance', purpose: 'payroll', 'emoji 🔑': 'värde ✓' };
const SIZES = [0, 1, 15, 16, 17, 32, 1000, 4096, 65_536];

export function isDecryptionFailure(error: unknown): boolean {
  return error instanceof CryptoError && error.message === 'decryption failed';
}

export function symmetricConformance(name: string, open: () => Promise<ConformanceSubject>): void {
  describe(`KeyStore conformance (SYMMETRIC_DEFAULT): ${name}`, () => {
    let subject: ConformanceSubject;
    let store: KeyStore;

    const newVersion = async (keyId = randomUuid(), version = 1): Promise<KeyVersionHandle> => ({
      keyId,
      version,
      sealedMaterial: await store.createVersionMaterial(keyId, version, 'SYMMETRIC_DEFAULT'),
    });

    before(async () => {
      subject = await open();
      store = subject.store;
    });
    after(async () => {
      await subject?.close();
    });

    test('round-trips every size, with and without an encryption context', async () => {
      const handle = await newVersion();
      for (const size of SIZES) {
        const plaintext = Buffer.alloc(size, size % 251);
        for (const context of [undefined, CONTEXT]) {
          const blob = await store.encrypt(handle, plaintext, context);
          assert.equal(blob.length, size + subject.overhead, `blob length for ${size} bytes`);
          assert.deepEqual(await store.decrypt(handle, blob, context), plaintext);
        }
      }
    });

    test('takes a Uint8Array as well as a Buffer', async () => {
      const handle = await newVersion();
      const plaintext = new Uint8Array([1, 2, 3, 250, 251, 252]);
      const blob = await store.encrypt(handle, plaintext, undefined);
      assert.deepEqual(new Uint8Array(await store.decrypt(handle, new Uint8Array(blob), undefined)), plaintext);
    });

    test('blobs are self-describing: format byte, then key id and version at offsets 1 and 17', async () => {
      const handle = await newVersion(randomUuid(), 7);
      const blob = await store.encrypt(handle, Buffer.from('hello'), undefined);
      assert.equal(blob[0], subject.formatVersion);
      assert.deepEqual(blob.subarray(1, 17), uuidToBytes(handle.keyId));
      assert.equal(blob.readUInt32BE(17), 7);
    });

    test('encrypting the same plaintext twice gives different blobs', async () => {
      const handle = await newVersion();
      const first = await store.encrypt(handle, Buffer.from('same'), CONTEXT);
      const second = await store.encrypt(handle, Buffer.from('same'), CONTEXT);
      assert.notDeepEqual(first, second);
      assert.deepEqual(first.subarray(0, 21), second.subarray(0, 21));
    });

    test('an absent and an empty context are the same; pair order does not matter', async () => {
      const handle = await newVersion();
      const plaintext = Buffer.from('context');
      assert.deepEqual(await store.decrypt(handle, await store.encrypt(handle, plaintext, undefined), {}), plaintext);
      assert.deepEqual(await store.decrypt(handle, await store.encrypt(handle, plaintext, {}), undefined), plaintext);
      const blob = await store.encrypt(handle, plaintext, { a: '1', b: '2' });
      assert.deepEqual(await store.decrypt(handle, blob, { b: '2', a: '1' }), plaintext);
    });

    test('a different encryption context fails as "decryption failed"', async () => {
      const handle = await newVersion();
      const blob = await store.encrypt(handle, Buffer.from('bound'), { a: 'bc' });
      const contexts: Array<Record<string, string> | undefined> = [undefined, {}, { a: 'bd' }, { a: 'bc', x: '' }, { ab: 'c' }, { A: 'bc' }, { a: 'bc ' }];
      for (const context of contexts) {
        await assert.rejects(store.decrypt(handle, blob, context), isDecryptionFailure, JSON.stringify(context));
      }
      const unbound = await store.encrypt(handle, Buffer.from('unbound'), undefined);
      await assert.rejects(store.decrypt(handle, unbound, { a: 'bc' }), isDecryptionFailure);
    });

    test('altering any byte of the blob fails as "decryption failed"', async () => {
      const handle = await newVersion();
      const blob = await store.encrypt(handle, Buffer.alloc(32, 0x5a), CONTEXT);
      for (let index = 0; index < blob.length; index++) {
        for (const mask of [0x01, 0x80]) {
          const altered = Buffer.from(blob);
          altered[index] ^= mask;
          await assert.rejects(store.decrypt(handle, altered, CONTEXT), isDecryptionFailure, `byte ${index} ^ ${mask}`);
        }
      }
    });

    test('truncated, extended and empty blobs fail as "decryption failed"', async () => {
      const handle = await newVersion();
      const blob = await store.encrypt(handle, Buffer.alloc(40, 1), undefined);
      for (const length of [0, 1, 16, 21, subject.overhead - 1, subject.overhead, blob.length - 16, blob.length - 1]) {
        await assert.rejects(store.decrypt(handle, blob.subarray(0, length), undefined), isDecryptionFailure, `length ${length}`);
      }
      await assert.rejects(store.decrypt(handle, Buffer.concat([blob, Buffer.alloc(1)]), undefined), isDecryptionFailure);
    });

    test('another key, or another version of the same key, cannot decrypt', async () => {
      const keyId = randomUuid();
      const version1 = await newVersion(keyId, 1);
      const version2 = await newVersion(keyId, 2);
      const otherKey = await newVersion();
      const blob = await store.encrypt(version1, Buffer.from('mine'), CONTEXT);
      await assert.rejects(store.decrypt(version2, blob, CONTEXT), isDecryptionFailure);
      await assert.rejects(store.decrypt(otherKey, blob, CONTEXT), isDecryptionFailure);
      // Relabelled to claim the other key: still fails, under either key.
      const relabelled = Buffer.from(blob);
      uuidToBytes(otherKey.keyId).copy(relabelled, 1);
      await assert.rejects(store.decrypt(otherKey, relabelled, CONTEXT), isDecryptionFailure);
      await assert.rejects(store.decrypt(version1, relabelled, CONTEXT), isDecryptionFailure);
      assert.deepEqual(await store.decrypt(version1, blob, CONTEXT), Buffer.from('mine'));
    });

    test('each call makes new material, even for the same key version', async () => {
      const keyId = randomUuid();
      const first = await newVersion(keyId, 1);
      // e.g. material made for a rotation whose compare-and-set then lost: never used by the
      // service, but it must not be the winner's material either.
      const again = await newVersion(keyId, 1);
      assert.notDeepEqual(first.sealedMaterial, again.sealedMaterial);
      const blob = await store.encrypt(first, Buffer.from('x'), undefined);
      // Stores may cache per key version (the software store does), so drop that first.
      store.forget(keyId);
      await assert.rejects(store.decrypt(again, blob, undefined), isDecryptionFailure);
    });

    test('an encryption context that has no faithful UTF-8 form is refused with CryptoError', async () => {
      const handle = await newVersion();
      await assert.rejects(store.encrypt(handle, Buffer.from('x'), { key: '\ud800' }), CryptoError);
      const blob = await store.encrypt(handle, Buffer.from('x'), { key: '\ufffd' });
      await assert.rejects(store.decrypt(handle, blob, { key: '\ud800' }), isDecryptionFailure);
    });

    test('forget drops cached state without losing the key', async () => {
      const handle = await newVersion();
      const blob = await store.encrypt(handle, Buffer.from('kept'), undefined);
      store.forget(handle.keyId);
      assert.deepEqual(await store.decrypt(handle, blob, undefined), Buffer.from('kept'));
      store.forget(randomUuid());
      assert.deepEqual(await store.decrypt(handle, await store.encrypt(handle, Buffer.from('again'), undefined), undefined), Buffer.from('again'));
    });

    test('concurrent encrypts and decrypts on many keys all round-trip', async () => {
      const handles = await Promise.all(Array.from({ length: 4 }, () => newVersion()));
      await Promise.all(
        Array.from({ length: 64 }, async (_, index) => {
          const handle = handles[index % handles.length];
          const plaintext = Buffer.from(`message ${index}`);
          const context = { index: String(index) };
          const blob = await store.encrypt(handle, plaintext, context);
          assert.deepEqual(await store.decrypt(handle, blob, context), plaintext);
        }),
      );
    });
  });
}
