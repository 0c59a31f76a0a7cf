import { realpathSync } from 'node:fs';
import pkcs11js from 'pkcs11js';
import type { SecretBytes } from '../../crypto/secret-bytes.ts';
import { CKR_CRYPTOKI_ALREADY_INITIALIZED, Pkcs11Error, call, returnValueOf, translate } from './errors.ts';
import type { Handle } from './session-pool.ts';

/** A loaded PKCS#11 module and the slots' logins (module.ts's Pkcs11Token logs in through it). */

export interface SlotLogin {
  /** The PIN the process is logged in with, to check a second token user's PIN against. */
  readonly pin: SecretBytes;
  tokens: number;
}

interface LoadedModule {
  readonly api: pkcs11js.PKCS11;
  users: number;
  /** False when C_Initialize said CKR_CRYPTOKI_ALREADY_INITIALIZED: then someone else finalizes. */
  readonly finalize: boolean;
  /**
   * Login state is per application and token, shared by all its sessions (v2.40 §5.6 C_Login),
   * so two Pkcs11Tokens on one slot share one login; keyed by slot id.
   */
  readonly logins: Map<string, SlotLogin>;
}

const modules = new Map<string, LoadedModule>();

export type SlotSelector = { readonly tokenLabel: string } | { readonly slotId: number | bigint };

/**
 * A lease on a loaded PKCS#11 module. The library is loaded and C_Initialize'd once per process
 * per module path (v2.40 §5.4: a second C_Initialize is CKR_CRYPTOKI_ALREADY_INITIALIZED) and
 * C_Finalize'd when the last lease closes.
 */
export class Pkcs11Module {
  #closed = false;

  private constructor(
    readonly path: string,
    readonly api: pkcs11js.PKCS11,
    private readonly loaded: LoadedModule,
  ) {}

  static open(modulePath: string): Pkcs11Module {
    let path: string;
    try {
      path = realpathSync(modulePath);
    } catch {
      throw new Pkcs11Error('MODULE_LOAD_FAILED', `PKCS#11 module ${modulePath} not found`);
    }
    let loaded = modules.get(path);
    if (!loaded) {
      const api = new pkcs11js.PKCS11();
      try {
        api.load(path);
      } catch {
        throw new Pkcs11Error('MODULE_LOAD_FAILED', `PKCS#11 module ${path} could not be loaded`);
      }
      let finalize = true;
      try {
        // CKF_OS_LOCKING_OK: calls arrive from libuv's worker threads as well as the main
        // thread; without it (NULL args) a library may assume one thread (v2.40 §5.4, §3.7).
        api.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
      } catch (error) {
        if (returnValueOf(error) !== CKR_CRYPTOKI_ALREADY_INITIALIZED) {
          api.close();
          throw translate(error, 'C_Initialize');
        }
        finalize = false;
      }
      loaded = { api, users: 0, finalize, logins: new Map() };
      modules.set(path, loaded);
    }
    loaded.users++;
    return new Pkcs11Module(path, loaded.api, loaded);
  }

  /** Leases open on a module path (tests check the refcount with it). */
  static users(modulePath: string): number {
    try {
      return modules.get(realpathSync(modulePath))?.users ?? 0;
    } catch {
      return 0;
    }
  }

  /** The slot holding the token with this label (CK_TOKEN_INFO.label, blank-padded, §3.2) or id. */
  findSlot(selector: SlotSelector): Handle {
    const api = this.api;
    const present = call('C_GetSlotList', () => api.C_GetSlotList(true));
    if ('slotId' in selector) {
      const wanted = BigInt(selector.slotId);
      const match = present.find((slot) => slotNumber(slot) === wanted);
      if (match) return match;
      const all = call('C_GetSlotList', () => api.C_GetSlotList(false));
      if (all.some((slot) => slotNumber(slot) === wanted)) {
        throw new Pkcs11Error('TOKEN_NOT_PRESENT', `no token present in PKCS#11 slot ${wanted}`);
      }
      throw new Pkcs11Error('TOKEN_NOT_FOUND', `no PKCS#11 slot ${wanted}`);
    }
    const label = selector.tokenLabel.trimEnd();
    // A slot whose token cannot be read (removed under a running library) is not the one wanted,
    // and must not stop the others from being found.
    const labelOf = (slot: Handle): string | undefined => {
      try {
        return api.C_GetTokenInfo(slot).label.trimEnd();
      } catch {
        return undefined;
      }
    };
    const matches = present.filter((slot) => labelOf(slot) === label);
    if (matches.length === 0) throw new Pkcs11Error('TOKEN_NOT_FOUND', `no PKCS#11 token labelled "${label}"`);
    if (matches.length > 1) {
      throw new Pkcs11Error('TOKEN_AMBIGUOUS', `${matches.length} PKCS#11 tokens are labelled "${label}"; name a slot id`);
    }
    return matches[0];
  }

  /** @internal the shared login record of a slot. */
  loginOf(slot: Handle): SlotLogin | undefined {
    return this.loaded.logins.get(slotKey(slot));
  }

  /** @internal */
  setLogin(slot: Handle, login: SlotLogin | undefined): void {
    if (login) this.loaded.logins.set(slotKey(slot), login);
    else this.loaded.logins.delete(slotKey(slot));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (--this.loaded.users > 0) return;
    modules.delete(this.path);
    try {
      if (this.loaded.finalize) this.api.C_Finalize();
    } finally {
      this.api.close();
    }
  }
}

const slotNumber = (slot: Handle): bigint => (slot.length >= 8 ? slot.readBigUInt64LE(0) : BigInt(slot.readUInt32LE(0)));
const slotKey = (slot: Handle): string => slotNumber(slot).toString();
