import type { SecretBytes } from '../crypto/secret-bytes.ts';
import type { ConnectedKeyStore, KeyStoreRequestInfo, KeyVersionHandle, SignRequest } from '../keystores/types.ts';
import type { CustomKeyStoreRecord } from '../storage/types.ts';
import type { ServiceContext } from './context.ts';

/** One call into a custom key store finished: which store kind, which call, whether it succeeded, how long. */
export type KeyStoreCallObserver = (storeType: string, call: string, succeeded: boolean, seconds: number) => void;

/** Per process: the observer for a context's custom key store connections (metrics). */
const observers = new WeakMap<object, KeyStoreCallObserver>();
/** One timing wrapper per live connection, made at its first use: a call allocates nothing more. */
const wrappers = new WeakMap<ConnectedKeyStore, TimedKeyStore>();

/** From now on, every call this context makes into a custom key store is timed and reported. */
export function observeCustomKeyStoreCalls(context: ServiceContext, observer: KeyStoreCallObserver): void {
  observers.set(context.customKeyStores, observer);
}

/**
 * The connection as the service should call it: itself when nobody observes (the default: no
 * cost), else a wrapper that times each call. Software keys never come here.
 */
export function timedKeyStore(context: ServiceContext, record: CustomKeyStoreRecord, store: ConnectedKeyStore): ConnectedKeyStore {
  const observer = observers.get(context.customKeyStores);
  if (!observer) return store;
  let timed = wrappers.get(store);
  if (!timed) {
    timed = new TimedKeyStore(store, record.type, observer);
    wrappers.set(store, timed);
  }
  return timed;
}

/** Delegates every call, reporting its duration; results and errors pass through untouched. */
class TimedKeyStore implements ConnectedKeyStore {
  readonly generateRandom?: (length: number, request?: Omit<KeyStoreRequestInfo, 'keyArn'>) => Promise<Buffer>;
  readonly destroyMaterial?: (handles: readonly KeyVersionHandle[]) => Promise<void>;
  readonly checkExternalKey?: (xksKeyId: string) => Promise<void>;

  constructor(
    private readonly inner: ConnectedKeyStore,
    private readonly storeType: string,
    private readonly observer: KeyStoreCallObserver,
  ) {
    // Optional capabilities stay optional: callers test for their presence.
    if (inner.generateRandom) this.generateRandom = (length, request) => this.time('generateRandom', performance.now(), inner.generateRandom!(length, request));
    if (inner.destroyMaterial) this.destroyMaterial = (handles) => this.time('destroyMaterial', performance.now(), inner.destroyMaterial!(handles));
    if (inner.checkExternalKey) this.checkExternalKey = (id) => this.time('checkExternalKey', performance.now(), inner.checkExternalKey!(id));
  }

  /** `startedAt` is an argument so it is read before the inner call starts (arguments run in order). */
  private async time<T>(call: string, startedAt: number, pending: Promise<T>): Promise<T> {
    try {
      const result = await pending;
      this.observer(this.storeType, call, true, (performance.now() - startedAt) / 1000);
      return result;
    } catch (error) {
      this.observer(this.storeType, call, false, (performance.now() - startedAt) / 1000);
      throw error;
    }
  }

  createVersionMaterial(keyId: string, version: number, keySpec: string, externalKeyId?: string): Promise<Buffer> {
    return this.time('createVersionMaterial', performance.now(), this.inner.createVersionMaterial(keyId, version, keySpec, externalKeyId));
  }
  encrypt(handle: KeyVersionHandle, plaintext: Uint8Array, context: Readonly<Record<string, string>> | undefined, request?: KeyStoreRequestInfo): Promise<Buffer> {
    return this.time('encrypt', performance.now(), this.inner.encrypt(handle, plaintext, context, request));
  }
  decrypt(handle: KeyVersionHandle, blob: Uint8Array, context: Readonly<Record<string, string>> | undefined, request?: KeyStoreRequestInfo): Promise<Buffer> {
    return this.time('decrypt', performance.now(), this.inner.decrypt(handle, blob, context, request));
  }
  publicKey(handle: KeyVersionHandle, keySpec: string): Promise<Buffer> {
    return this.time('publicKey', performance.now(), this.inner.publicKey(handle, keySpec));
  }
  sign(handle: KeyVersionHandle, request: SignRequest): Promise<Buffer> {
    return this.time('sign', performance.now(), this.inner.sign(handle, request));
  }
  verify(handle: KeyVersionHandle, request: SignRequest & { signature: Uint8Array }): Promise<boolean> {
    return this.time('verify', performance.now(), this.inner.verify(handle, request));
  }
  rsaEncrypt(handle: KeyVersionHandle, keySpec: string, algorithm: string, plaintext: Uint8Array): Promise<Buffer> {
    return this.time('rsaEncrypt', performance.now(), this.inner.rsaEncrypt(handle, keySpec, algorithm, plaintext));
  }
  rsaDecrypt(handle: KeyVersionHandle, algorithm: string, ciphertext: Uint8Array): Promise<Buffer> {
    return this.time('rsaDecrypt', performance.now(), this.inner.rsaDecrypt(handle, algorithm, ciphertext));
  }
  generateMac(handle: KeyVersionHandle, algorithm: string, message: Uint8Array): Promise<Buffer> {
    return this.time('generateMac', performance.now(), this.inner.generateMac(handle, algorithm, message));
  }
  verifyMac(handle: KeyVersionHandle, algorithm: string, message: Uint8Array, mac: Uint8Array): Promise<boolean> {
    return this.time('verifyMac', performance.now(), this.inner.verifyMac(handle, algorithm, message, mac));
  }
  deriveSharedSecret(handle: KeyVersionHandle, keySpec: string, peerPublicKey: Uint8Array): Promise<SecretBytes> {
    return this.time('deriveSharedSecret', performance.now(), this.inner.deriveSharedSecret(handle, keySpec, peerPublicKey));
  }
  forget(keyId: string): void {
    this.inner.forget(keyId);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
