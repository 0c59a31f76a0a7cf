/**
 * Pkcs11KeyStore against real SoftHSMv2 tokens (no mocks), with opensc's pkcs11-tool as an
 * independent witness of what is on the token.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pkcs11js from 'pkcs11js';
import { CryptoError } from '../../src/crypto/errors.ts';
import { randomUuid } from '../../src/crypto/random.ts';
import { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { HSM_CIPHERTEXT_OVERHEAD } from '../../src/keystores/pkcs11/ciphertext.ts';
import { Pkcs11Error, Pkcs11NotSupportedError } from '../../src/keystores/pkcs11/errors.ts';
import { Pkcs11Module, Pkcs11Token, type Handle } from '../../src/keystores/pkcs11/module.ts';
import { Pkcs11KeyStore } from '../../src/keystores/pkcs11/pkcs11-key-store.ts';
import { keyVersionLabel } from '../../src/keystores/pkcs11/templates.ts';
import type { KeyVersionHandle } from '../../src/keystores/types.ts';
import { isDecryptionFailure } from './conformance.ts';
import { SOFTHSM_MODULE, SoftHsm, listObjects, type TestToken } from './softhsm.ts';

const P = pkcs11js;
const WRONG_PIN = 'wrong-pin-7f3a9c51';

// Every token this file uses exists before the module is first initialized (softhsm.ts).
const hsm = SoftHsm.get();
const main = hsm.createToken('main', '2468-main-pin');
const second = hsm.createToken('second', '1357-second-pin');
const pinTest = hsm.createToken('pin-test', 'right-pin-4242');

const open = (token: TestToken, options: { sessions?: number; acquireTimeoutMs?: number } = {}) =>
  Pkcs11KeyStore.open({ modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: SecretBytes.from(Buffer.from(token.pin)), ...options });

async function newVersion(store: Pkcs11KeyStore, keyId = randomUuid(), version = 1): Promise<KeyVersionHandle> {
  return { keyId, version, sealedMaterial: await store.createVersionMaterial(keyId, version, 'SYMMETRIC_DEFAULT') };
}

/** The object of a key version, found by its label in a session of the store's own token. */
function findByLabel(store: Pkcs11KeyStore, session: Handle, label: string): Handle[] {
  const api = store.token.api;
  api.C_FindObjectsInit(session, [{ type: P.CKA_LABEL, value: label }]);
  const found = api.C_FindObjects(session, 10);
  api.C_FindObjectsFinal(session);
  return found;
}

describe('Pkcs11KeyStore on SoftHSMv2', () => {
  let store: Pkcs11KeyStore;

  before(async () => {
    store = await open(main, { sessions: 4 });
  });
  after(async () => {
    await store?.close();
  });

  test('round trip; the blob is format v2 with 49 bytes of overhead', async () => {
    const handle = await newVersion(store);
    const plaintext = Buffer.from('attack at dawn');
    const context = { purpose: 'test' };
    const blob = await store.encrypt(handle, plaintext, context);
    assert.equal(blob[0], 0x02);
    assert.equal(blob.length, plaintext.length + HSM_CIPHERTEXT_OVERHEAD);
    assert.deepEqual(await store.decrypt(handle, blob, context), plaintext);
  });

  test('what is persisted is a 34-byte reference, never key bytes', async () => {
    const keyId = randomUuid();
    const handle = await newVersion(store, keyId, 5);
    const reference = handle.sealedMaterial;
    assert.equal(reference.length, 34);
    assert.equal(reference.subarray(0, 4).toString('latin1'), 'SP11');
    const objectId = reference.subarray(6);
    assert.equal(objectId.subarray(0, 16).toString('hex'), keyId.replaceAll('-', ''));
    assert.equal(objectId.readUInt32BE(16), 5);
  });

  test('tampering: any altered byte, wrong context, wrong key → CryptoError', async () => {
    const handle = await newVersion(store);
    const other = await newVersion(store);
    const blob = await store.encrypt(handle, Buffer.alloc(100, 7), { a: 'b' });
    for (let index = 0; index < blob.length; index++) {
      const altered = Buffer.from(blob);
      altered[index] ^= 0x20;
      await assert.rejects(store.decrypt(handle, altered, { a: 'b' }), isDecryptionFailure, `byte ${index}`);
    }
    await assert.rejects(store.decrypt(handle, blob, { a: 'c' }), isDecryptionFailure);
    await assert.rejects(store.decrypt(handle, blob, undefined), isDecryptionFailure);
    await assert.rejects(store.decrypt(other, blob, { a: 'b' }), isDecryptionFailure);
    // Even with the blob relabelled for the other key, the token's tag check refuses it.
    const relabelled = Buffer.from(blob);
    Buffer.from(other.keyId.replaceAll('-', ''), 'hex').copy(relabelled, 1);
    await assert.rejects(store.decrypt(other, relabelled, { a: 'b' }), isDecryptionFailure);
  });

  test('the key cannot be read: C_GetAttributeValue(CKA_VALUE) is refused', async () => {
    const handle = await newVersion(store);
    const label = keyVersionLabel(handle.keyId, handle.version);
    await store.token.withSession((session) => {
      const [object] = findByLabel(store, session, label);
      assert.ok(object, 'the object is on the token');
      assert.throws(
        () => store.token.api.C_GetAttributeValue(session, object, [{ type: P.CKA_VALUE }]),
        (error: Error & { code?: number }) => error.code === 0x11, // CKR_ATTRIBUTE_SENSITIVE
      );
      const [sensitive, extractable, neverExtractable, local] = store.token.api
        .C_GetAttributeValue(session, object, [
          { type: P.CKA_SENSITIVE },
          { type: P.CKA_EXTRACTABLE },
          { type: P.CKA_NEVER_EXTRACTABLE },
          { type: P.CKA_LOCAL },
        ])
        .map((attribute) => attribute.value[0]);
      assert.deepEqual([sensitive, extractable, neverExtractable, local], [1, 0, 1, 1]);
    });
  });

  test('pkcs11-tool lists the object with its label, id and protections', async () => {
    const handle = await newVersion(store);
    const label = keyVersionLabel(handle.keyId, handle.version);
    const listed = listObjects(main).find((object) => object.label === label);
    assert.ok(listed, `pkcs11-tool lists ${label}`);
    assert.match(listed.kind, /^Secret Key Object; AES length 32/);
    assert.equal(listed.id, handle.sealedMaterial.subarray(6).toString('hex'));
    assert.deepEqual(listed.usage, ['encrypt', 'decrypt']);
    for (const flag of ['sensitive', 'always sensitive', 'never extractable', 'local']) {
      assert.ok(listed.access.includes(flag), `access includes "${flag}": ${listed.access.join(', ')}`);
    }
    assert.ok(!listed.access.includes('extractable'));
  });

  test('destroyVersionMaterial removes the object: pkcs11-tool no longer lists it, decrypt fails', async () => {
    const handle = await newVersion(store);
    const label = keyVersionLabel(handle.keyId, handle.version);
    const blob = await store.encrypt(handle, Buffer.from('soon unreadable'), undefined);
    assert.ok(listObjects(main).some((object) => object.label === label));

    assert.equal(await store.destroyVersionMaterial(handle), true);
    assert.ok(!listObjects(main).some((object) => object.label === label), 'pkcs11-tool no longer lists it');
    await assert.rejects(store.decrypt(handle, blob, undefined), (error: unknown) => {
      assert.ok(error instanceof Pkcs11Error, String(error));
      assert.equal(error.code, 'KEY_NOT_FOUND');
      return true;
    });
    await assert.rejects(store.encrypt(handle, Buffer.from('x'), undefined), (error: unknown) => error instanceof Pkcs11Error && error.code === 'KEY_NOT_FOUND');
    assert.equal(await store.destroyVersionMaterial(handle), false, 'destroying again finds nothing');
  });

  test('a handle found in one session works in every other (token objects, SoftHSM)', async () => {
    const handle = await newVersion(store);
    const label = keyVersionLabel(handle.keyId, handle.version);
    const object = await store.token.withSession((session) => findByLabel(store, session, label)[0]);
    // Hold one session while asking on others: they are different sessions.
    const seen = new Set<string>();
    await Promise.all(
      Array.from({ length: 4 }, () =>
        store.token.withSession(async (session) => {
          seen.add(session.toString('hex'));
          const [labelAttribute] = store.token.api.C_GetAttributeValue(session, object, [{ type: P.CKA_LABEL }]);
          assert.equal(labelAttribute.value.toString(), label);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }),
      ),
    );
    assert.equal(seen.size, 4);
  });

  test('a cached handle the token invalidated is found again by CKA_ID', async () => {
    const handle = await newVersion(store);
    const blob = await store.encrypt(handle, Buffer.from('cached'), undefined);
    // SoftHSM invalidates private objects' handles on logout and numbers them anew after login,
    // while the sessions (and the store's handle epoch) live on.
    await store.token.withSession((session) => {
      store.token.api.C_Logout(session);
      store.token.api.C_Login(session, P.CKU_USER, main.pin);
    });
    assert.deepEqual(await store.decrypt(handle, blob, undefined), Buffer.from('cached'));
  });

  test('a pooled session closed under the store is discarded and replaced', async () => {
    const handle = await newVersion(store);
    const before = store.token.stats.discarded;
    await store.token.withSession((session) => store.token.api.C_CloseSession(session));
    for (let i = 0; i < 8; i++) {
      const blob = await store.encrypt(handle, Buffer.from(`after ${i}`), undefined);
      assert.deepEqual(await store.decrypt(handle, blob, undefined), Buffer.from(`after ${i}`));
    }
    assert.ok(store.token.stats.discarded > before, 'the dead session was discarded');
    assert.ok(store.token.stats.open <= store.token.stats.size);
  });

  test('losing every session and the login (C_CloseAllSessions) is recovered: re-open, re-login, re-find', async () => {
    const handle = await newVersion(store);
    const blob = await store.encrypt(handle, Buffer.from('survives'), undefined);
    const epoch = store.token.handleEpoch;
    store.token.api.C_CloseAllSessions(store.token.slot);
    assert.deepEqual(await store.decrypt(handle, blob, undefined), Buffer.from('survives'));
    assert.ok(store.token.handleEpoch > epoch);
    const again = await store.encrypt(handle, Buffer.from('and works'), undefined);
    assert.deepEqual(await store.decrypt(handle, again, undefined), Buffer.from('and works'));
  });

  test('200 concurrent encrypts through a pool of 4: all succeed, never more than 4 sessions', async () => {
    const handles = await Promise.all([newVersion(store), newVersion(store)]);
    let maxOpen = 0;
    let maxWaiting = 0;
    const sample = setInterval(() => {
      const stats = store.token.stats;
      maxOpen = Math.max(maxOpen, stats.open);
      maxWaiting = Math.max(maxWaiting, stats.waiting);
    }, 0);
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, async (_, index) => {
        const handle = handles[index % 2];
        const plaintext = Buffer.alloc(index % 3 === 0 ? 4096 : 32, index);
        const blob = await store.encrypt(handle, plaintext, { index: String(index) });
        const stats = store.token.stats;
        maxOpen = Math.max(maxOpen, stats.open);
        maxWaiting = Math.max(maxWaiting, stats.waiting);
        return { handle, plaintext, blob, index };
      }),
    );
    clearInterval(sample);
    const failures = results.filter((result) => result.status === 'rejected');
    assert.equal(failures.length, 0, inspect(failures.slice(0, 3)));
    for (const result of results) {
      if (result.status !== 'fulfilled') continue;
      const { handle, plaintext, blob, index } = result.value;
      assert.deepEqual(await store.decrypt(handle, blob, { index: String(index) }), plaintext);
    }
    const stats = store.token.stats;
    assert.equal(stats.size, 4);
    assert.ok(stats.maxInUse <= 4, `max in use ${stats.maxInUse}`);
    assert.ok(maxOpen <= 4, `max open ${maxOpen}`);
    assert.ok(maxWaiting > 0, 'requests queued for sessions');
    assert.equal(stats.inUse, 0);
    assert.equal(stats.waiting, 0);
  });

  test('non-symmetric operations are refused as not supported yet', async () => {
    await assert.rejects(store.createVersionMaterial(randomUuid(), 1, 'RSA_2048'), Pkcs11NotSupportedError);
    const calls: Array<() => Promise<unknown>> = [
      () => store.publicKey(),
      () => store.sign(),
      () => store.verify(),
      () => store.rsaEncrypt(),
      () => store.rsaDecrypt(),
      () => store.generateMac(),
      () => store.verifyMac(),
      () => store.deriveSharedSecret(),
    ];
    for (const call of calls) {
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof Pkcs11NotSupportedError);
        assert.equal(error.code, 'NOT_SUPPORTED');
        assert.match(error.message, /not supported by the PKCS#11 key store yet/);
        return true;
      });
    }
  });

  test('a reference moved to another key version is refused, not used', async () => {
    const handle = await newVersion(store);
    const moved = { keyId: randomUuid(), version: 1, sealedMaterial: handle.sealedMaterial };
    await assert.rejects(store.encrypt(moved, Buffer.from('x'), undefined), (error: unknown) => error instanceof Pkcs11Error && error.code === 'REFERENCE_INVALID');
    const otherVersion = { ...handle, version: 2 };
    await assert.rejects(store.decrypt(otherVersion, Buffer.alloc(60), undefined), (error: unknown) => error instanceof Pkcs11Error && error.code === 'REFERENCE_INVALID');
    const truncated = { ...handle, sealedMaterial: handle.sealedMaterial.subarray(0, 20) };
    await assert.rejects(store.encrypt(truncated, Buffer.from('x'), undefined), (error: unknown) => error instanceof Pkcs11Error && error.code === 'REFERENCE_INVALID');
  });

  test('an unauthentic blob never reaches the caller as plaintext, and bad input is CryptoError', async () => {
    const handle = await newVersion(store);
    await assert.rejects(store.encrypt(handle, Buffer.from('x'), { bad: '\udc00' }), CryptoError);
    await assert.rejects(store.decrypt(handle, Buffer.alloc(0), undefined), isDecryptionFailure);
  });
});

describe('Pkcs11Token: PIN, slots, module lifetime', () => {
  test('a wrong PIN is Pkcs11Error PIN_INCORRECT, and the PIN appears in no error text', async () => {
    let caught: unknown;
    try {
      await Pkcs11KeyStore.open({ modulePath: SOFTHSM_MODULE, tokenLabel: pinTest.label, pin: Buffer.from(WRONG_PIN) });
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof Pkcs11Error, String(caught));
    assert.equal(caught.code, 'PIN_INCORRECT');
    assert.equal(caught.returnValue, 'CKR_PIN_INCORRECT');
    assert.equal(caught.function, 'C_Login');
    for (const text of [caught.message, String(caught.stack), String(caught), inspect(caught, { depth: 10 }), JSON.stringify(caught)]) {
      assert.ok(!text.includes(WRONG_PIN), 'the wrong PIN is not in the error');
      assert.ok(!text.includes(pinTest.pin), 'nor the right one');
    }
    assert.equal(Pkcs11Module.users(SOFTHSM_MODULE), 0, 'the failed open released the module');
    // The failed open left nothing behind: the right PIN still works.
    const store = await Pkcs11KeyStore.open({ modulePath: SOFTHSM_MODULE, tokenLabel: pinTest.label, pin: SecretBytes.from(Buffer.from(pinTest.pin)) });
    const handle = await newVersion(store);
    assert.deepEqual(await store.decrypt(handle, await store.encrypt(handle, Buffer.from('ok'), undefined), undefined), Buffer.from('ok'));

    // While that token is logged in, a second opener with a wrong PIN is still refused (the
    // token itself would only say CKR_USER_ALREADY_LOGGED_IN), and the right PIN shares the login.
    await assert.rejects(
      Pkcs11KeyStore.open({ modulePath: SOFTHSM_MODULE, tokenLabel: pinTest.label, pin: Buffer.from(WRONG_PIN) }),
      (error: unknown) => error instanceof Pkcs11Error && error.code === 'PIN_INCORRECT' && !inspect(error).includes(WRONG_PIN),
    );
    const sharing = await Pkcs11KeyStore.open({ modulePath: SOFTHSM_MODULE, tokenLabel: pinTest.label, pin: Buffer.from(pinTest.pin), sessions: 2 });
    const blob = await sharing.encrypt(handle, Buffer.from('shared'), undefined);
    await sharing.close();
    // Closing one user of the login leaves the other logged in.
    assert.deepEqual(await store.decrypt(handle, blob, undefined), Buffer.from('shared'));
    await store.close();
  });

  test('the PIN is not in the token, store or options as printed', async () => {
    const pin = SecretBytes.from(Buffer.from(second.pin));
    const options = { modulePath: SOFTHSM_MODULE, tokenLabel: second.label, pin };
    const token = await Pkcs11Token.open(options);
    try {
      const store = new Pkcs11KeyStore(token);
      for (const text of [inspect(token, { depth: 5 }), inspect(store, { depth: 5 }), inspect(options), JSON.stringify(options)]) {
        assert.ok(!text.includes(second.pin));
      }
      pin.zero(); // the caller's copy: the token keeps its own
      const handle = await newVersion(store);
      assert.ok(await store.encrypt(handle, Buffer.from('x'), undefined));
    } finally {
      await token.close();
    }
  });

  test('tokens are found by label or slot id; unknown ones are typed errors', async () => {
    const bySlot = await Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, slotId: second.slotId, pin: Buffer.from(second.pin), sessions: 1 });
    assert.equal(bySlot.api.C_GetTokenInfo(bySlot.slot).label.trimEnd(), second.label);
    await bySlot.close();
    await assert.rejects(
      Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: 'no-such-token', pin: Buffer.from('x') }),
      (error: unknown) => error instanceof Pkcs11Error && error.code === 'TOKEN_NOT_FOUND',
    );
    await assert.rejects(
      Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, slotId: 4242, pin: Buffer.from('x') }),
      (error: unknown) => error instanceof Pkcs11Error && error.code === 'TOKEN_NOT_FOUND',
    );
    await assert.rejects(
      Pkcs11Token.open({ modulePath: '/nonexistent/libpkcs11.so', tokenLabel: 'x', pin: Buffer.from('x') }),
      (error: unknown) => error instanceof Pkcs11Error && error.code === 'MODULE_LOAD_FAILED',
    );
  });

  test('C_Initialize once per module path, C_Finalize when the last user closes', async () => {
    assert.equal(Pkcs11Module.users(SOFTHSM_MODULE), 0);
    const first = await open(main, { sessions: 2 });
    const other = await open(second, { sessions: 2 });
    assert.equal(Pkcs11Module.users(SOFTHSM_MODULE), 2, 'two tokens share one initialized module');
    const handle = await newVersion(first);
    const blob = await first.encrypt(handle, Buffer.from('persisted'), undefined);
    await first.close();
    assert.equal(Pkcs11Module.users(SOFTHSM_MODULE), 1);
    await other.close();
    assert.equal(Pkcs11Module.users(SOFTHSM_MODULE), 0, 'finalized');
    // Initialized again from scratch: the token object persisted, found again by CKA_ID.
    const reopened = await open(main, { sessions: 1 });
    assert.deepEqual(await reopened.decrypt(handle, blob, undefined), Buffer.from('persisted'));
    await reopened.close();
  });

  test('the pool hands sessions out first come, first served, and times out', async () => {
    const token = await Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: second.label, pin: Buffer.from(second.pin), sessions: 1, acquireTimeoutMs: 100 });
    try {
      const order: number[] = [];
      let release!: () => void;
      const held = token.withSession(() => new Promise<void>((resolve) => (release = resolve)));
      const queued = Array.from({ length: 5 }, (_, index) => token.withSession(() => void order.push(index)));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(token.stats.waiting, 5);
      release();
      await held;
      await Promise.all(queued);
      assert.deepEqual(order, [0, 1, 2, 3, 4]);

      let releaseAgain!: () => void;
      const holding = token.withSession(() => new Promise<void>((resolve) => (releaseAgain = resolve)));
      await assert.rejects(token.withSession(() => undefined), (error: unknown) => error instanceof Pkcs11Error && error.code === 'POOL_TIMEOUT');
      releaseAgain();
      await holding;
      assert.equal(token.stats.maxInUse, 1);
    } finally {
      await token.close();
    }
    await assert.rejects(token.withSession(() => undefined), (error: unknown) => error instanceof Pkcs11Error && error.code === 'CLOSED');
  });
});
