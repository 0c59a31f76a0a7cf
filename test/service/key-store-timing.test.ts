/**
 * Timing of custom key store calls (service/key-store-timing.ts): unobserved, a connection is used
 * as it is; observed, every call is reported with its duration and outcome while results, errors
 * and optional capabilities pass through unchanged.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectedKeyStore, KeyVersionHandle } from '../../src/keystores/types.ts';
import { KeyStoreUnavailableError } from '../../src/keystores/types.ts';
import type { ServiceContext } from '../../src/service/context.ts';
import { observeCustomKeyStoreCalls, timedKeyStore } from '../../src/service/key-store-timing.ts';
import type { CustomKeyStoreRecord } from '../../src/storage/types.ts';

const handle: KeyVersionHandle = { keyId: 'k', version: 1, sealedMaterial: Buffer.alloc(0) };
const record = { type: 'EXTERNAL_KEY_STORE' } as CustomKeyStoreRecord;
const unused = () => Promise.reject(new Error('not used'));

/** A connection whose encrypt answers after a delay and whose decrypt fails as an unreachable proxy would. */
function slowStore(): ConnectedKeyStore {
  return {
    createVersionMaterial: unused,
    encrypt: (_handle, plaintext) => new Promise((resolve) => setTimeout(() => resolve(Buffer.from(plaintext)), 30)),
    decrypt: () => Promise.reject(new KeyStoreUnavailableError('proxy unreachable')),
    publicKey: unused,
    sign: unused,
    verify: unused,
    rsaEncrypt: unused,
    rsaDecrypt: unused,
    generateMac: unused,
    verifyMac: unused,
    deriveSharedSecret: unused,
    forget: () => {},
    close: async () => {},
    checkExternalKey: async () => {},
  };
}

const contextWith = () => ({ customKeyStores: {} }) as unknown as ServiceContext;

describe('custom key store call timing', () => {
  it('leaves the connection untouched when nothing observes it', () => {
    const store = slowStore();
    assert.equal(timedKeyStore(contextWith(), record, store), store);
  });

  it('reports each call with its store type, duration and outcome, passing results and errors through', async () => {
    const context = contextWith();
    const calls: { storeType: string; call: string; succeeded: boolean; seconds: number }[] = [];
    observeCustomKeyStoreCalls(context, (storeType, call, succeeded, seconds) => calls.push({ storeType, call, succeeded, seconds }));
    const store = slowStore();
    const timed = timedKeyStore(context, record, store);
    assert.notEqual(timed, store);
    assert.equal(timedKeyStore(context, record, store), timed, 'one wrapper per connection');

    assert.deepEqual(await timed.encrypt(handle, Buffer.from('abc'), undefined), Buffer.from('abc'));
    await assert.rejects(timed.decrypt(handle, Buffer.alloc(1), undefined), KeyStoreUnavailableError);
    assert.equal(calls.length, 2);
    assert.deepEqual({ ...calls[0], seconds: undefined }, { storeType: 'EXTERNAL_KEY_STORE', call: 'encrypt', succeeded: true, seconds: undefined });
    assert.ok(calls[0].seconds >= 0.025 && calls[0].seconds < 5, `encrypt took ${calls[0].seconds} s`);
    assert.deepEqual({ ...calls[1], seconds: undefined }, { storeType: 'EXTERNAL_KEY_STORE', call: 'decrypt', succeeded: false, seconds: undefined });
  });

  it('keeps optional capabilities optional', async () => {
    const context = contextWith();
    observeCustomKeyStoreCalls(context, () => {});
    const timed = timedKeyStore(context, record, slowStore()) as ConnectedKeyStore;
    assert.equal(typeof timed.checkExternalKey, 'function');
    assert.equal(timed.generateRandom, undefined);
    assert.equal(timed.destroyMaterial, undefined);
    await timed.checkExternalKey?.('external-key');
  });
});
