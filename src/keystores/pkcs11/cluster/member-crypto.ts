import type pkcs11js from 'pkcs11js';
import { decryptionFailed } from '../ciphertext.ts';
import { CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_GENERAL_ERROR, Pkcs11Error, call, callAsync, returnValueOf, translate } from '../errors.ts';
import { NO_SESSION_FREE, type Handle, type Pkcs11Token } from '../module.ts';
import { findSecretKeys, gcmMechanism } from '../objects.ts';
import { NOT_NOW, startOrGiveUp, type CallProgress } from './member.ts';
import { ObjectHandles } from './object-handles.ts';

// See pkcs11-key-store.ts: SoftHSM reports a failed GCM tag as CKR_GENERAL_ERROR.
const AUTHENTICATION_FAILURES = new Set([CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_GENERAL_ERROR]);
const EMPTY_INPUT = Buffer.alloc(1).subarray(0, 0);
const GCM_TAG_BYTES = 16;

type Direction = 'encrypt' | 'decrypt';

/**
 * A local member's AES-GCM path (local-member.ts): the object handle (cached per CKA_ID, checked
 * against the token's handle epoch), C_EncryptInit/C_DecryptInit, then the single-part call, on
 * the event loop (`inline`, for a token computing in-process) or on libuv's pool. `now` runs the
 * whole call synchronously when a session is free, with no promise in between: on the hot path of
 * an inline member that is most of what the cluster adds to the token's own time.
 */
export class MemberCrypto {
  readonly handles = new ObjectHandles();

  constructor(
    private readonly member: string,
    private readonly inline: boolean,
  ) {}

  /** encrypt: ciphertext || tag; decrypt: CryptoError('decryption failed') for any authentication failure. */
  async call(token: Pkcs11Token, direction: Direction, objectId: Buffer, iv: Buffer, aad: Buffer, input: Buffer, progress?: CallProgress): Promise<Buffer> {
    const out = outputFor(direction, input);
    const mechanism = gcmMechanism(iv, aad, GCM_TAG_BYTES);
    progress?.queued();
    return token.withSession(async (session) => {
      if (this.inline) return this.#run(token, session, direction, mechanism, objectId, input, out, progress);
      startOrGiveUp(progress, this.member);
      this.#init(token, session, direction, mechanism, objectId);
      if (direction === 'encrypt') return callAsync('C_Encrypt', () => token.api.C_EncryptAsync(session, nonEmpty(input), out));
      try {
        return await token.api.C_DecryptAsync(session, input, out);
      } catch (error) {
        throw decryptFailure(error, out);
      }
    });
  }

  /** The same call, now: NOT_NOW (nothing done) unless inline, connected, and a session is free. */
  now(token: Pkcs11Token | undefined, direction: Direction, objectId: Buffer, iv: Buffer, aad: Buffer, input: Buffer): Buffer | typeof NOT_NOW {
    if (!token || !this.inline) return NOT_NOW;
    const out = outputFor(direction, input);
    const mechanism = gcmMechanism(iv, aad, GCM_TAG_BYTES);
    const done = token.trySession((session) => this.#run(token, session, direction, mechanism, objectId, input, out, undefined));
    return done === NO_SESSION_FREE ? NOT_NOW : done;
  }

  /** The object with this CKA_ID: from the cache, else found (and remembered). */
  object(token: Pkcs11Token, session: Handle, objectId: Buffer): Handle {
    const cached = this.handles.get(objectId, token.handleEpoch);
    if (cached) return cached;
    const found = findSecretKeys(token.api, session, objectId, 2);
    if (found.length === 0) throw new Pkcs11Error('KEY_NOT_FOUND', `HSM member ${this.member} has no object with this id (destroyed, or not yet synchronised)`);
    if (found.length > 1) throw new Pkcs11Error('KEY_AMBIGUOUS', `HSM member ${this.member} has ${found.length} objects with one id`);
    this.handles.remember(objectId, found[0]!, token.handleEpoch);
    return found[0]!;
  }

  /** Init and the single-part call, both on the event loop. */
  #run(
    token: Pkcs11Token,
    session: Handle,
    direction: Direction,
    mechanism: pkcs11js.Mechanism,
    objectId: Buffer,
    input: Buffer,
    out: Buffer,
    progress: CallProgress | undefined,
  ): Buffer {
    startOrGiveUp(progress, this.member);
    this.#init(token, session, direction, mechanism, objectId);
    if (direction === 'encrypt') return call('C_Encrypt', () => token.api.C_Encrypt(session, nonEmpty(input), out));
    try {
      return token.api.C_Decrypt(session, input, out);
    } catch (error) {
      throw decryptFailure(error, out);
    }
  }

  /**
   * C_EncryptInit/C_DecryptInit. A handle the token no longer knows (the object was destroyed by
   * another process) leaves the cache, so the next call looks the object up again.
   */
  #init(token: Pkcs11Token, session: Handle, direction: Direction, mechanism: pkcs11js.Mechanism, objectId: Buffer): void {
    const object = this.object(token, session, objectId);
    const fn = direction === 'encrypt' ? 'C_EncryptInit' : 'C_DecryptInit';
    try {
      if (direction === 'encrypt') token.api.C_EncryptInit(session, mechanism, object);
      else token.api.C_DecryptInit(session, mechanism, object);
    } catch (error) {
      const translated = translate(error, fn);
      if (translated instanceof Pkcs11Error && translated.code === 'KEY_NOT_FOUND') this.handles.forget(objectId);
      throw translated;
    }
  }
}

/** Where the output goes: ciphertext || tag, or the plaintext (a ciphertext shorter than a tag never reaches the token). */
function outputFor(direction: Direction, input: Buffer): Buffer {
  if (direction === 'encrypt') return Buffer.allocUnsafe(input.length + GCM_TAG_BYTES);
  if (input.length < GCM_TAG_BYTES) throw decryptionFailed();
  return Buffer.alloc(input.length);
}

/** pkcs11js refuses an empty buffer; a zero-length view of a non-empty one passes. */
function nonEmpty(input: Buffer): Buffer {
  return input.length === 0 ? EMPTY_INPUT : input;
}

/** A failed C_Decrypt: the tag did not verify (the caller's ciphertext or context), or the token's own failure. */
function decryptFailure(error: unknown, out: Buffer): Error {
  out.fill(0);
  const rv = returnValueOf(error);
  if (rv !== undefined && AUTHENTICATION_FAILURES.has(rv)) return decryptionFailed();
  return translate(error, 'C_Decrypt');
}
