import pkcs11js from 'pkcs11js';
import { CryptoError } from '../../crypto/errors.ts';
import { SecretBytes } from '../../crypto/secret-bytes.ts';
import { Pkcs11Error, call } from './errors.ts';
import { Pkcs11Module, type SlotSelector } from './pkcs11-module.ts';
import { SessionPool, type Handle, type PoolStats } from './session-pool.ts';

export type { Handle, PoolStats };
export { Pkcs11Module, type SlotSelector } from './pkcs11-module.ts';

/**
 * PKCS#11 modules, tokens and session pools.
 *
 * Blocking. pkcs11js runs every call on the calling thread, blocking the event loop, except those
 * it also offers as callback/`…Async` forms, which run on libuv's thread pool (UV_THREADPOOL_SIZE,
 * default 4, bounds how many run at once). In pkcs11js 2.1.7 these are: C_Encrypt, C_Decrypt,
 * C_EncryptFinal, C_DecryptFinal, C_Digest(Final), C_Sign(Final), C_Verify(Final),
 * C_GenerateKey, C_GenerateKeyPair, C_DeriveKey, C_WrapKey, C_UnwrapKey and the four
 * dual-function updates. Everything else is synchronous: C_Initialize/C_Finalize, slot and token
 * queries, C_OpenSession/C_CloseSession, C_Login/C_Logout, C_EncryptInit/C_DecryptInit,
 * C_FindObjects*, C_GetAttributeValue, C_DestroyObject, C_GenerateRandom. The store uses the
 * async forms for all crypto and key generation; the synchronous calls left are short in SoftHSM.
 * Against a network HSM (Luna, CloudHSM), C_OpenSession, C_Login and C_FindObjects are round
 * trips: they happen at start, on session replacement and on a handle-cache miss only.
 */


// CK_STATE (PKCS#11 v2.40 §3.3; pkcs11js does not export the CKS_ constants).
const CKS_RW_USER_FUNCTIONS = 3;
// CK_TOKEN_INFO flags (v2.40 §3.2).
const CKF_USER_PIN_INITIALIZED = 0x0000_0008;
const CKF_TOKEN_INITIALIZED = 0x0000_0400;
const CKF_USER_PIN_LOCKED = 0x0004_0000;


export interface Pkcs11TokenOptions {
  readonly modulePath: string;
  /** Which token: by label (must be unique) or by slot id. */
  readonly tokenLabel?: string;
  readonly slotId?: number | bigint;
  /** The crypto user's PIN. Copied; the caller may wipe its own copy after open() returns. */
  readonly pin: SecretBytes | Buffer;
  /** Read-write sessions in the pool (default 8). */
  readonly sessions?: number;
  /** How long acquire waits for a free session before POOL_TIMEOUT (default 10 s). */
  readonly acquireTimeoutMs?: number;
}


/**
 * A logged-in token with a bounded pool of read-write sessions. One session runs one operation
 * at a time (v2.40 §5.6 "a single session can perform only one operation at a time"), so each
 * operation borrows a session for its duration; concurrency is the pool's size.
 */
export class Pkcs11Token {
  readonly #module: Pkcs11Module;
  readonly #slot: Handle;
  readonly #pin: SecretBytes;
  readonly #pool: SessionPool;
  #epoch = 0;
  #closed = false;
  /** Counted in the module's shared login record of the slot. */
  #registered = false;

  private constructor(module: Pkcs11Module, slot: Handle, pin: SecretBytes, options: Pkcs11TokenOptions) {
    this.#module = module;
    this.#slot = slot;
    this.#pin = pin;
    this.#pool = new SessionPool({
      size: options.sessions ?? 8,
      acquireTimeoutMs: options.acquireTimeoutMs ?? 10_000,
      open: () => this.#openSession(),
      close: (session) => {
        try {
          this.#module.api.C_CloseSession(session);
        } catch {
          // Already gone (device removed, session invalid): nothing left to close.
        }
      },
    });
  }

  static async open(options: Pkcs11TokenOptions): Promise<Pkcs11Token> {
    const size = options.sessions ?? 8;
    if (!Number.isInteger(size) || size < 1) throw new RangeError('sessions must be a positive integer');
    const selector: SlotSelector | undefined =
      options.tokenLabel !== undefined ? { tokenLabel: options.tokenLabel } : options.slotId !== undefined ? { slotId: options.slotId } : undefined;
    if (!selector) throw new RangeError('name the token by tokenLabel or slotId');
    const pin = SecretBytes.from(options.pin instanceof SecretBytes ? options.pin.exposeSecretBytes() : options.pin);
    let module: Pkcs11Module | undefined;
    let token: Pkcs11Token | undefined;
    try {
      module = Pkcs11Module.open(options.modulePath);
      const slot = module.findSlot(selector);
      const api = module.api;
      const info = call('C_GetTokenInfo', () => api.C_GetTokenInfo(slot));
      if ((info.flags & CKF_TOKEN_INITIALIZED) === 0 || (info.flags & CKF_USER_PIN_INITIALIZED) === 0) {
        throw new Pkcs11Error('TOKEN_NOT_INITIALIZED', 'the PKCS#11 token or its user PIN is not initialized');
      }
      if ((info.flags & CKF_USER_PIN_LOCKED) !== 0) {
        throw new Pkcs11Error('PIN_LOCKED', 'the PKCS#11 token has locked the user PIN');
      }
      token = new Pkcs11Token(module, slot, pin, options);
      const shared = module.loginOf(slot);
      if (shared) {
        // Logged in already by another Pkcs11Token of this process: C_Login would only say
        // CKR_USER_ALREADY_LOGGED_IN and accept any PIN, so compare with the one that logged in.
        if (!shared.pin.equals(pin)) throw new Pkcs11Error('PIN_INCORRECT', 'PKCS#11 login failed: incorrect PIN');
        shared.tokens++;
        token.#registered = true;
        token.#pool.fill();
      } else {
        token.#pool.fill(() => token!.#openSession(true));
        module.setLogin(slot, { pin: SecretBytes.from(pin.exposeSecretBytes()), tokens: 1 });
        token.#registered = true;
      }
      return token;
    } catch (error) {
      if (token) await token.close();
      else {
        pin.zero();
        module?.close();
      }
      throw error;
    }
  }

  /** The pkcs11js binding (for tests and the later cluster code; the PIN is not reachable from it). */
  get api(): pkcs11js.PKCS11 {
    return this.#module.api;
  }

  get slot(): Handle {
    return this.#slot;
  }

  /**
   * Changes whenever object handles may have become invalid: a session was lost (device removed,
   * session closed under us) or the login had to be redone. Object handles stay valid only while
   * a session that can see the object lives (v2.40 §3.4, CK_OBJECT_HANDLE), and a token may reuse
   * the number, so handle caches compare this before trusting an entry.
   */
  get handleEpoch(): number {
    return this.#epoch;
  }

  get stats(): PoolStats {
    return this.#pool.stats;
  }

  /**
   * Runs fn with a session of its own. A session that fn's error may have left unusable (anything
   * but a clean authentication failure or a refused lookup) is closed and replaced. When the
   * session itself was gone (CKR_SESSION_HANDLE_INVALID, CKR_USER_NOT_LOGGED_IN), fn is run once
   * more on another session; fn must be safe to repeat.
   */
  async withSession<T>(fn: (session: Handle) => Promise<T> | T): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.#pool.acquire();
      let discard = false;
      try {
        return await fn(session);
      } catch (error) {
        discard = this.#failed(error);
        if (attempt > 0 || !sessionWasGone(error)) throw error;
      } finally {
        this.#pool.release(session, discard);
      }
    }
  }

  /**
   * withSession for a synchronous fn while a session is free now: no promise, no wait (the
   * crypto path of members that call the token inline). Returns NO_SESSION_FREE without running
   * fn when the call would have to wait, and when fn found its session gone: the caller then goes
   * through withSession, which waits and runs fn once more on another session.
   */
  trySession<T>(fn: (session: Handle) => T): T | typeof NO_SESSION_FREE {
    const session = this.#pool.tryAcquire();
    if (session === undefined) return NO_SESSION_FREE;
    let discard = false;
    try {
      return fn(session);
    } catch (error) {
      discard = this.#failed(error);
      if (sessionWasGone(error)) return NO_SESSION_FREE;
      throw error;
    } finally {
      this.#pool.release(session, discard);
    }
  }

  /** After fn failed on a session: whether to discard that session; a lost session or login invalidates every handle. */
  #failed(error: unknown): boolean {
    if (error instanceof Pkcs11Error && LOSS_CODES.has(error.code)) {
      this.#epoch++;
      this.#pool.purgeIdle();
    }
    return !leavesSessionUsable(error);
  }

  /** Closes every session (the last one logs the process out, v2.40 §5.6 C_CloseSession) and the module lease. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let logout = false;
    if (this.#registered) {
      const shared = this.#module.loginOf(this.#slot);
      if (shared && --shared.tokens === 0) {
        this.#module.setLogin(this.#slot, undefined);
        shared.pin.zero();
        logout = true;
      }
    }
    await this.#pool.close(
      logout
        ? (session) => {
            try {
              this.#module.api.C_Logout(session);
            } catch {
              // Closing the last session logs out anyway.
            }
          }
        : undefined,
    );
    this.#pin.zero();
    this.#module.close();
  }

  #openSession(loginRequired = false): Handle {
    const api = this.#module.api;
    // CKF_SERIAL_SESSION is mandatory (v2.40 §5.6 C_OpenSession); RW to create and destroy objects.
    const session = call('C_OpenSession', () => api.C_OpenSession(this.#slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
    try {
      const { state } = call('C_GetSessionInfo', () => api.C_GetSessionInfo(session));
      if (state !== CKS_RW_USER_FUNCTIONS) {
        if (!loginRequired) this.#epoch++; // the login was lost since the pool started
        this.#login(session);
      } else if (loginRequired) {
        // Logged in by a user of this library outside this registry: the PIN cannot be checked.
        throw new Pkcs11Error('ALREADY_LOGGED_IN', 'the PKCS#11 token is already logged in by other code in this process');
      }
      return session;
    } catch (error) {
      try {
        api.C_CloseSession(session);
      } catch {
        // ignore: the error being thrown is the one that matters
      }
      throw error;
    }
  }

  #login(session: Handle): void {
    // pkcs11js takes the PIN only as a JS string, which cannot be wiped: it lives until garbage
    // collection. It is made here, for this one call, and goes nowhere else.
    const pinText = this.#pin.exposeSecretBytes().toString('utf8');
    call('C_Login', () => this.#module.api.C_Login(session, pkcs11js.CKU_USER, pinText));
  }
}

// Errors after which the session is known to be fine: an authentication failure (C_Decrypt
// ends the operation whatever it returns but CKR_BUFFER_TOO_SMALL, v2.40 §5.9), and failures of
// calls that start nothing (a lookup that found nothing, an *Init or C_GenerateKey refused).
const CLEAN_CODES = new Set<string>([
  'KEY_NOT_FOUND',
  'KEY_AMBIGUOUS',
  'KEY_ATTRIBUTES_WRONG',
  'REFERENCE_INVALID',
  'NOT_SUPPORTED',
  'TEMPLATE_REJECTED',
  'MECHANISM_INVALID',
  // A call given up while it waited for its session (startOrGiveUp) started nothing on it.
  'POOL_TIMEOUT',
]);
const LOSS_CODES = new Set<string>(['SESSION_INVALID', 'NOT_LOGGED_IN', 'DEVICE_REMOVED', 'TOKEN_NOT_PRESENT']);

/** What Pkcs11Token.trySession answers when it did not run fn. */
export const NO_SESSION_FREE: unique symbol = Symbol('no PKCS#11 session free');

/** The session itself was gone: worth one more try on another session. */
function sessionWasGone(error: unknown): boolean {
  return error instanceof Pkcs11Error && (error.code === 'SESSION_INVALID' || error.code === 'NOT_LOGGED_IN');
}

function leavesSessionUsable(error: unknown): boolean {
  return error instanceof CryptoError || (error instanceof Pkcs11Error && CLEAN_CODES.has(error.code));
}
