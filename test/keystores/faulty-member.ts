/**
 * A real member (LocalHsmMember on a SoftHSM token) behind a switch that makes it fail like a
 * broken HSM: every call errors (DEVICE_ERROR) or never answers. For the in-process failover
 * tests; the agent tests kill a real process instead.
 */
import type { SecretBytes } from '../../src/crypto/secret-bytes.ts';
import { Pkcs11Error } from '../../src/keystores/pkcs11/errors.ts';
import type { HsmMember, KeyObjectInfo, MemberHealth, TransportPublicKey } from '../../src/keystores/pkcs11/cluster/member.ts';

export class FaultyMember implements HsmMember {
  /** slow: answers, but only after `slowMs` (past the cluster's timeout). */
  mode: 'ok' | 'error' | 'hang' | 'slow' = 'ok';
  slowMs = 1_500;
  /** encrypt and decrypt calls that reached the real member. */
  calls = 0;

  constructor(readonly inner: HsmMember) {}

  get name(): string {
    return this.inner.name;
  }

  #gate(): Promise<void> {
    if (this.mode === 'error') return Promise.reject(new Pkcs11Error('DEVICE_ERROR', 'injected failure'));
    if (this.mode === 'hang') return new Promise<void>(() => {});
    if (this.mode === 'slow') return new Promise<void>((resolve) => setTimeout(resolve, this.slowMs));
    return Promise.resolve();
  }

  async connect(): Promise<void> {
    await this.#gate();
    return this.inner.connect();
  }
  async health(): Promise<MemberHealth> {
    if (this.mode === 'error') return { ok: false, code: 'DEVICE_ERROR' };
    await this.#gate();
    return this.inner.health();
  }
  async generateAesKey(objectId: Buffer, label: string): Promise<void> {
    await this.#gate();
    return this.inner.generateAesKey(objectId, label);
  }
  async wrap(objectId: Buffer): Promise<Buffer> {
    await this.#gate();
    return this.inner.wrap(objectId);
  }
  async unwrap(objectId: Buffer, label: string, wrapped: Buffer): Promise<void> {
    await this.#gate();
    return this.inner.unwrap(objectId, label, wrapped);
  }
  async encrypt(objectId: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    await this.#gate();
    this.calls++;
    return this.inner.encrypt(objectId, iv, aad, plaintext);
  }
  async decrypt(objectId: Buffer, iv: Buffer, aad: Buffer, sealed: Buffer): Promise<Buffer> {
    await this.#gate();
    this.calls++;
    return this.inner.decrypt(objectId, iv, aad, sealed);
  }
  async destroy(objectId: Buffer): Promise<boolean> {
    await this.#gate();
    return this.inner.destroy(objectId);
  }
  async listObjects(): Promise<KeyObjectInfo[]> {
    await this.#gate();
    return this.inner.listObjects();
  }
  async generateRandom(length: number): Promise<Buffer> {
    await this.#gate();
    return this.inner.generateRandom(length);
  }
  createClusterKey(soPin: SecretBytes, clusterId: string): Promise<void> {
    return this.inner.createClusterKey(soPin, clusterId);
  }
  beginJoin(soPin: SecretBytes): Promise<TransportPublicKey> {
    return this.inner.beginJoin(soPin);
  }
  wrapClusterKeyFor(soPin: SecretBytes, transport: TransportPublicKey): Promise<Buffer> {
    return this.inner.wrapClusterKeyFor(soPin, transport);
  }
  completeJoin(soPin: SecretBytes, clusterId: string, wrapped: Buffer): Promise<void> {
    return this.inner.completeJoin(soPin, clusterId, wrapped);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
