import { createHash, timingSafeEqual } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { SecretBytes } from '../../../crypto/secret-bytes.ts';
import { Pkcs11Error, call, callAsync } from '../errors.ts';
import { Pkcs11Module, Pkcs11Token, type Handle, type SlotSelector } from '../module.ts';
import { checkBooleanAttributes, findSecretKeys } from '../objects.ts';
import { OBJECT_ID_LENGTH } from '../reference.ts';
import { AES_256_KEY_BYTES, clusterKeyVersionTemplate, expectedBooleanAttributes, forUnwrap } from '../templates.ts';
import { CLUSTER_KEY_ID, CLUSTER_KEY_LABEL_PREFIX, TOKEN_SET, checkTransportKey, clusterKeyMissing, clusterKeyProtected } from './ceremony-steps.ts';
import { generateClusterKey, generateTransportKey, unwrapClusterKey, wrapClusterKey } from './ceremony-steps.ts';
import { MemberCrypto } from './member-crypto.ts';
import { copyConverging, keepOnlyCopy, listKeyObjects } from './token-objects.ts';
import { NOT_NOW, checkRandomLength, startOrGiveUp, type CallProgress, type HsmMember, type KeyObjectInfo, type MemberHealth, type TransportPublicKey } from './member.ts';

export { CLUSTER_KEY_ID };

/** RFC 3394 AES key wrap (CKM_AES_KEY_WRAP, v2.40 Mechanisms §2.14): every HSM vendor has it. */
const AES_KEY_WRAP: pkcs11js.Mechanism = { mechanism: pkcs11js.CKM_AES_KEY_WRAP };
/** Pkcs11Token's default pool size. */
const DEFAULT_SESSIONS = 8;

export interface LocalMemberOptions {
  readonly name: string;
  readonly modulePath: string;
  readonly tokenLabel?: string;
  readonly slotId?: number | bigint;
  /** The crypto user's PIN; copied. */
  readonly pin: SecretBytes | Buffer;
  readonly sessions?: number;
  readonly acquireTimeoutMs?: number;
  /**
   * C_Encrypt/C_Decrypt on the calling thread, not libuv's pool: for a token computing in-process
   * (SoftHSM), where the pool's hop costs ~3× the call; never a network HSM (docs/hsm-cluster.md).
   */
  readonly inlineCalls?: boolean;
}

/**
 * A cluster member whose token is loaded in this process (a local SoftHSM, or a network HSM whose
 * vendor library does the networking). Crypto runs on the pooled user sessions of a Pkcs11Token;
 * ceremony steps log in as the Security Officer on a session of their own, which PKCS#11 allows
 * only while the application has no user login on the token (v2.40 §5.6 C_Login,
 * CKR_USER_ANOTHER_ALREADY_LOGGED_IN), so the pool is closed for the step and reopened after it.
 */
export class LocalHsmMember implements HsmMember {
  readonly name: string;
  readonly #options: LocalMemberOptions;
  readonly #pin: SecretBytes;
  #token: Pkcs11Token | undefined;
  #opening: Promise<void> | undefined;
  /** Set while an SO step runs: user operations wait for it. */
  #maintenance: Promise<void> | undefined;
  #closed = false;
  readonly #crypto: MemberCrypto;

  /** The session pool's size: calls this member runs at once. */
  get sessions(): number {
    return this.#options.sessions ?? DEFAULT_SESSIONS;
  }

  constructor(options: LocalMemberOptions) {
    if (options.tokenLabel === undefined && options.slotId === undefined) throw new RangeError('name the token by tokenLabel or slotId');
    this.name = options.name;
    this.#options = options;
    this.#pin = SecretBytes.from(options.pin instanceof SecretBytes ? options.pin.exposeSecretBytes() : options.pin);
    this.#crypto = new MemberCrypto(options.name, options.inlineCalls === true);
  }

  async connect(): Promise<void> {
    while (this.#maintenance) await this.#maintenance;
    if (this.#closed) throw new Pkcs11Error('CLOSED', `HSM member ${this.name} has been closed`);
    if (this.#token) return;
    this.#opening ??= this.#open().finally(() => (this.#opening = undefined));
    await this.#opening;
  }

  async health(): Promise<MemberHealth> {
    try {
      await this.connect();
      const token = this.#token!;
      const found = await token.withSession((session) => {
        const [key] = findSecretKeys(token.api, session, CLUSTER_KEY_ID, 1);
        if (!key) {
          // No cluster key: a fresh token, or one that is gone. SoftHSM 2.6.1 keeps sessions open
          // when its token directory disappears but finds no objects and fails C_GetTokenInfo
          // (CKR_GENERAL_ERROR), as a removed token does (docs/hsm-cluster.md, "Token removal").
          try {
            token.api.C_GetTokenInfo(token.slot);
          } catch {
            throw new Pkcs11Error('TOKEN_NOT_PRESENT', `the token of HSM member ${this.name} can no longer be read (removed?)`);
          }
          return undefined;
        }
        const [attribute] = call('C_GetAttributeValue', () => token.api.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_LABEL }]));
        return { text: (attribute?.value as Buffer | undefined)?.toString('utf8'), protected: clusterKeyProtected(token.api, session, key) };
      });
      const clusterId = found?.text?.startsWith(CLUSTER_KEY_LABEL_PREFIX) ? found.text.slice(CLUSTER_KEY_LABEL_PREFIX.length) : undefined;
      return clusterId === undefined ? { ok: true } : { ok: true, clusterId, clusterKeyProtected: found!.protected };
    } catch (error) {
      // A lost token is reopened from scratch on the next probe (a removed and reinserted token
      // has new sessions and a new login). A busy pool (POOL_TIMEOUT) is not a lost token: the
      // calls holding its sessions are still running.
      if (error instanceof Pkcs11Error && ['DEVICE_REMOVED', 'TOKEN_NOT_PRESENT', 'SESSION_INVALID', 'DEVICE_ERROR'].includes(error.code)) {
        await this.#dropToken();
      }
      return { ok: false, code: error instanceof Pkcs11Error ? error.code : 'FAILED' };
    }
  }

  async generateAesKey(objectId: Buffer, label: string): Promise<void> {
    checkObjectId(objectId);
    const token = await this.#ready();
    const template = clusterKeyVersionTemplate(label, objectId);
    await token.withSession(async (session) => {
      if (findSecretKeys(token.api, session, objectId, 1).length > 0) throw objectExists(this.name);
      const object = await callAsync('C_GenerateKey', () => token.api.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, template));
      try {
        checkBooleanAttributes(token.api, session, object, expectedBooleanAttributes(template), AES_256_KEY_BYTES);
      } catch (error) {
        call('C_DestroyObject', () => token.api.C_DestroyObject(session, object));
        throw error;
      }
      this.#crypto.handles.remember(objectId, object, token.handleEpoch);
    });
  }

  async wrap(objectId: Buffer): Promise<Buffer> {
    const token = await this.#ready();
    return token.withSession(async (session) => {
      const clusterKey = this.#clusterKey(token, session);
      const object = this.#crypto.object(token, session, objectId);
      return callAsync('C_WrapKey', () => token.api.C_WrapKeyAsync(session, AES_KEY_WRAP, clusterKey, object, Buffer.alloc(AES_256_KEY_BYTES + 8)));
    });
  }

  async unwrap(objectId: Buffer, label: string, wrapped: Buffer): Promise<void> {
    checkObjectId(objectId);
    // RFC 3394 §2.2.1: a 32-byte key wraps to 40 bytes; the token's CKA_VALUE_LEN of an
    // unwrapped key cannot be trusted (see checkBooleanAttributes), so the length is checked here.
    if (wrapped.length !== AES_256_KEY_BYTES + 8) throw new Pkcs11Error('FAILED', 'a wrapped AES-256 key is 40 bytes');
    const template = clusterKeyVersionTemplate(label, objectId);
    // Looked for before and after: one object per CKA_ID, whoever else copies it now (token-objects.ts).
    const outcome = await copyConverging(async () => {
      const token = await this.#ready();
      return token.withSession(async (session) => {
        if (findSecretKeys(token.api, session, objectId, 1).length > 0) return 'exists';
        const clusterKey = this.#clusterKey(token, session);
        const object = await callAsync('C_UnwrapKey', () => token.api.C_UnwrapKeyAsync(session, AES_KEY_WRAP, clusterKey, wrapped, forUnwrap(template)));
        try {
          // What the template set; CKA_LOCAL and the ALWAYS/NEVER pair are the token's and false for an unwrapped key (§4.10).
          const expected = expectedBooleanAttributes(template).filter(({ type }) => !TOKEN_SET.has(type));
          checkBooleanAttributes(token.api, session, object, expected, undefined);
        } catch (error) {
          call('C_DestroyObject', () => token.api.C_DestroyObject(session, object));
          throw error;
        }
        const kept = keepOnlyCopy(token.api, session, objectId, object);
        if (kept === 'kept') this.#crypto.handles.remember(objectId, object, token.handleEpoch);
        return kept;
      });
    });
    if (outcome === 'exists' || outcome === 'yielded') throw objectExists(this.name);
    if (outcome === 'withdrawn') throw new Pkcs11Error('FAILED', `HSM member ${this.name}: copies of one object kept colliding`);
  }

  async encrypt(objectId: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer, progress?: CallProgress): Promise<Buffer> {
    return this.#crypto.call(this.#token ?? (await this.#ready()), 'encrypt', objectId, iv, aad, plaintext, progress);
  }

  encryptNow(objectId: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): Buffer | typeof NOT_NOW {
    return this.#crypto.now(this.#token, 'encrypt', objectId, iv, aad, plaintext);
  }

  async decrypt(objectId: Buffer, iv: Buffer, aad: Buffer, sealed: Buffer, progress?: CallProgress): Promise<Buffer> {
    return this.#crypto.call(this.#token ?? (await this.#ready()), 'decrypt', objectId, iv, aad, sealed, progress);
  }

  decryptNow(objectId: Buffer, iv: Buffer, aad: Buffer, sealed: Buffer): Buffer | typeof NOT_NOW {
    return this.#crypto.now(this.#token, 'decrypt', objectId, iv, aad, sealed);
  }

  async destroy(objectId: Buffer): Promise<boolean> {
    checkObjectId(objectId);
    const token = await this.#ready();
    this.#crypto.handles.forget(objectId);
    return token.withSession((session) => {
      const objects = findSecretKeys(token.api, session, objectId, 16);
      for (const object of objects) call('C_DestroyObject', () => token.api.C_DestroyObject(session, object));
      return objects.length > 0;
    });
  }

  async listObjects(): Promise<KeyObjectInfo[]> {
    const token = await this.#ready();
    return token.withSession((session) => listKeyObjects(token.api, session));
  }

  async destroyClusterKey(): Promise<boolean> {
    // A public token object (the SO made it), destroyable (templates.ts): a R/W user session may destroy it.
    const token = await this.#ready();
    return token.withSession((session) => {
      const keys = findSecretKeys(token.api, session, CLUSTER_KEY_ID, 16);
      for (const key of keys) call('C_DestroyObject', () => token.api.C_DestroyObject(session, key));
      return keys.length > 0;
    });
  }

  async generateRandom(length: number, progress?: CallProgress): Promise<Buffer> {
    checkRandomLength(length);
    const token = await this.#ready();
    progress?.queued();
    return token.withSession((session) => {
      startOrGiveUp(progress, this.name);
      return call('C_GenerateRandom', () => token.api.C_GenerateRandom(session, Buffer.alloc(length)));
    });
  }

  /**
   * Constant time over fixed-length digests (SHA-256 of each PIN), so neither the bytes nor the
   * length of the PIN this member holds shows in the time taken. Nothing is logged.
   */
  async verifyPin(pin: SecretBytes): Promise<boolean> {
    if (this.#closed) throw new Pkcs11Error('CLOSED', `HSM member ${this.name} has been closed`);
    const digest = (bytes: Buffer): Buffer => createHash('sha256').update(bytes).digest();
    return timingSafeEqual(digest(pin.exposeSecretBytes()), digest(this.#pin.exposeSecretBytes()));
  }

  async createClusterKey(soPin: SecretBytes, clusterId: string): Promise<void> {
    await this.#asSecurityOfficer(soPin, (api, session) => generateClusterKey(api, session, this.name, clusterId));
  }

  async beginJoin(soPin: SecretBytes): Promise<TransportPublicKey> {
    return this.#asSecurityOfficer(soPin, (api, session) => generateTransportKey(api, session, this.name));
  }

  async wrapClusterKeyFor(soPin: SecretBytes, transport: TransportPublicKey): Promise<Buffer> {
    checkTransportKey(transport); // before the SO step closes the user sessions
    return this.#asSecurityOfficer(soPin, (api, session) => wrapClusterKey(api, session, this.name, transport));
  }

  async completeJoin(soPin: SecretBytes, clusterId: string, wrappedClusterKey: Buffer): Promise<void> {
    await this.#asSecurityOfficer(soPin, (api, session) => unwrapClusterKey(api, session, this.name, clusterId, wrappedClusterKey));
  }

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#maintenance) await this.#maintenance;
    await this.#dropToken();
    this.#pin.zero();
  }

  async #open(): Promise<void> {
    const token = await Pkcs11Token.open({
      modulePath: this.#options.modulePath,
      ...slotSelector(this.#options),
      pin: this.#pin,
      ...(this.#options.sessions !== undefined ? { sessions: this.#options.sessions } : {}),
      acquireTimeoutMs: this.#options.acquireTimeoutMs ?? 5_000,
    });
    if (this.#closed) {
      await token.close();
      throw new Pkcs11Error('CLOSED', `HSM member ${this.name} has been closed`);
    }
    this.#token = token;
  }

  async #dropToken(): Promise<void> {
    const token = this.#token;
    this.#token = undefined;
    this.#crypto.handles.clear();
    await token?.close();
  }

  async #ready(): Promise<Pkcs11Token> {
    while (this.#maintenance) await this.#maintenance;
    if (!this.#token) throw new Pkcs11Error('CLOSED', `HSM member ${this.name} is not connected`);
    return this.#token;
  }

  /**
   * Runs fn in a Security Officer session. The user pool is closed first (it waits for the
   * operations in flight) and reopened after; a module lease is held throughout so the library is
   * not finalized in between. The SO PIN goes to C_Login and nowhere else.
   */
  async #asSecurityOfficer<T>(soPin: SecretBytes, fn: (api: pkcs11js.PKCS11, session: Handle) => Promise<T>): Promise<T> {
    while (this.#maintenance) await this.#maintenance;
    if (this.#closed) throw new Pkcs11Error('CLOSED', `HSM member ${this.name} has been closed`);
    let done!: () => void;
    this.#maintenance = new Promise<void>((resolve) => (done = resolve));
    const module = Pkcs11Module.open(this.#options.modulePath);
    const wasOpen = this.#token !== undefined;
    try {
      await this.#dropToken();
      const api = module.api;
      const slot = module.findSlot(slotSelector(this.#options));
      const session = call('C_OpenSession', () => api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
      try {
        const pinText = soPin.exposeSecretBytes().toString('utf8');
        call('C_Login', () => api.C_Login(session, pkcs11js.CKU_SO, pinText));
        try {
          return await fn(api, session);
        } finally {
          try {
            api.C_Logout(session);
          } catch {
            // closing the session logs out anyway
          }
        }
      } finally {
        try {
          api.C_CloseSession(session);
        } catch {
          // already gone
        }
      }
    } finally {
      try {
        if (wasOpen && !this.#closed) await this.#open();
      } finally {
        module.close();
        this.#maintenance = undefined;
        done();
      }
    }
  }

  #clusterKey(token: Pkcs11Token, session: Handle): Handle {
    const cached = this.#crypto.handles.get(CLUSTER_KEY_ID, token.handleEpoch);
    if (cached) return cached;
    const [key] = findSecretKeys(token.api, session, CLUSTER_KEY_ID, 1);
    if (!key) throw clusterKeyMissing(this.name);
    this.#crypto.handles.remember(CLUSTER_KEY_ID, key, token.handleEpoch);
    return key;
  }
}

function slotSelector(options: LocalMemberOptions): SlotSelector {
  return options.tokenLabel !== undefined ? { tokenLabel: options.tokenLabel } : { slotId: options.slotId! };
}

function checkObjectId(objectId: Buffer): void {
  if (objectId.length !== OBJECT_ID_LENGTH) throw new Pkcs11Error('REFERENCE_INVALID', 'an HSM object id is 28 bytes');
}

const objectExists = (member: string): Pkcs11Error => new Pkcs11Error('OBJECT_EXISTS', `HSM member ${member} already has an object with this id`);
