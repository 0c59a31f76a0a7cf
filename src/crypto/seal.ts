import { randomFillSync } from 'node:crypto';
import { aesGcmDecrypt, aesGcmEncrypt } from './aead.ts';
import { CryptoError } from './errors.ts';
import { hkdf } from './kdf.ts';
import { SecretBytes } from './secret-bytes.ts';

/**
 * Sealing secrets at rest (software key versions, access-key secrets) under the root key.
 *
 *   offset  length  field
 *   0       1       format version, 0x01
 *   1       32      salt, random
 *   33      12      IV, random
 *   45      n       AES-256-GCM ciphertext of the secret (n = secret length)
 *   45+n    16      GCM tag
 *
 *   key = HKDF-SHA256(root key, salt, "strongroom/seal/v1", 32), fresh for every seal
 *   AAD = "strongroom/seal/v1" || 0x00 || binding, UTF-8
 *
 * The binding names the record the secret belongs to (`key-version:<keyId>:<version>`,
 * `access-key:<id>`). Unsealing under any other binding fails, so a database writer who copies
 * sealed material from one row to another gets an error, not another key's material.
 *
 * The header is not in the AAD, and need not be: the version byte must be 0x01 and the v1 label is
 * in both the KDF info and the AAD, so a blob opens only as the format it was sealed in; changing
 * the salt changes the key and changing the IV changes every counter block, the tag mask included,
 * so either fails the tag.
 *
 * Nonce bound: as in symmetric-ciphertext.ts, each seal uses its own derived key (256-bit random
 * salt), so barring a 256-bit salt collision no AES key ever sees a second IV, and the 2^32
 * random-IV limit does not arise.
 *
 * The Sealer does not own the root key: it keeps a reference, and zeroing the root key disables it.
 *
 * A root key that lives in an HSM (non-extractable) seals through a SealingBackend instead
 * (keystores/pkcs11/root-key.ts): the same bindings and AAD, its own format version byte, the AES
 * operation done inside the token. Either way a sealed blob opens only under the root key, and
 * the binding, it was sealed with.
 */

/**
 * Sealing done elsewhere (inside an HSM). Synchronous, like the key-file sealer: sealing happens
 * when keys and credentials are made, unsealing on a cache miss, both rare and short.
 */
export interface SealingBackend {
  /** The format version byte its blobs start with (never 0x01, the key-file format). */
  readonly formatVersion: number;
  /** Seals `plaintext` bound to `aad`; the blob starts with formatVersion. */
  seal(plaintext: Uint8Array, aad: Buffer): Buffer;
  /** Opens a blob it made; throws on any failure. */
  unseal(sealed: Uint8Array, aad: Buffer): Buffer;
}

const FORMAT_VERSION = 0x01;
const SALT_OFFSET = 1;
const IV_OFFSET = 33;
const HEADER_LENGTH = 45;
const TAG_LENGTH = 16;
const MIN_SEALED_LENGTH = HEADER_LENGTH + TAG_LENGTH;
const MIN_ROOT_KEY_LENGTH = 32;

const LABEL = 'strongroom/seal/v1';
const KDF_INFO = Buffer.from(LABEL, 'utf8');
const AAD_PREFIX = `${LABEL}\0`;

export class Sealer {
  readonly #rootKey: SecretBytes | undefined;
  readonly #backend: SealingBackend | undefined;

  /** A root key in memory (the key file), or a backend that holds it (an HSM). */
  constructor(rootKey: SecretBytes | SealingBackend) {
    if (rootKey instanceof SecretBytes) {
      if (rootKey.length < MIN_ROOT_KEY_LENGTH) {
        throw new CryptoError('invalid root key');
      }
      this.#rootKey = rootKey;
    } else {
      if (rootKey.formatVersion === FORMAT_VERSION) throw new CryptoError('invalid sealing backend');
      this.#backend = rootKey;
    }
  }

  seal(secret: SecretBytes | Uint8Array, binding: string): Buffer {
    const aad = bindingAad(binding);
    if (aad === undefined) {
      throw new CryptoError('invalid binding');
    }
    if (this.#backend) {
      try {
        return this.#backend.seal(secret instanceof SecretBytes ? secret.exposeSecretBytes() : secret, aad);
      } catch {
        throw new CryptoError('seal failed');
      }
    }
    const header = Buffer.allocUnsafe(HEADER_LENGTH);
    header[0] = FORMAT_VERSION;
    randomFillSync(header, SALT_OFFSET, HEADER_LENGTH - SALT_OFFSET); // salt and IV in one call

    const plaintext = secret instanceof SecretBytes ? secret.exposeSecretBytes() : secret;
    const key = this.#deriveKey(header);
    let sealed: { ciphertext: Buffer; tag: Buffer };
    try {
      sealed = aesGcmEncrypt(key, header.subarray(IV_OFFSET, HEADER_LENGTH), plaintext, aad);
    } finally {
      key.zero();
    }
    return Buffer.concat([header, sealed.ciphertext, sealed.tag]);
  }

  unseal(sealed: Uint8Array, binding: string): SecretBytes {
    const aad = bindingAad(binding);
    if (this.#backend) {
      if (aad === undefined || sealed.byteLength === 0 || sealed[0] !== this.#backend.formatVersion) {
        throw new CryptoError('unseal failed');
      }
      let opened: Buffer | undefined;
      try {
        opened = this.#backend.unseal(sealed, aad);
        return SecretBytes.from(opened);
      } catch {
        throw new CryptoError('unseal failed');
      } finally {
        opened?.fill(0);
      }
    }
    if (aad === undefined || sealed.byteLength < MIN_SEALED_LENGTH || sealed[0] !== FORMAT_VERSION) {
      throw new CryptoError('unseal failed');
    }
    const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const tagOffset = bytes.length - TAG_LENGTH;
    let key: SecretBytes | undefined;
    let plaintext: Buffer | undefined;
    try {
      key = this.#deriveKey(bytes);
      plaintext = aesGcmDecrypt(
        key,
        bytes.subarray(IV_OFFSET, HEADER_LENGTH),
        bytes.subarray(HEADER_LENGTH, tagOffset),
        bytes.subarray(tagOffset),
        aad,
      );
      return SecretBytes.from(plaintext);
    } catch {
      throw new CryptoError('unseal failed');
    } finally {
      key?.zero();
      plaintext?.fill(0); // SecretBytes.from copied it
    }
  }

  #deriveKey(header: Buffer): SecretBytes {
    return hkdf('sha256', this.#rootKey as SecretBytes, header.subarray(SALT_OFFSET, IV_OFFSET), KDF_INFO, 32);
  }
}

// An empty binding would bind to nothing. A lone surrogate encodes like U+FFFD, so two different
// binding strings could share one AAD; refuse both rather than seal ambiguously.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

function bindingAad(binding: string): Buffer | undefined {
  if (typeof binding !== 'string' || binding.length === 0 || LONE_SURROGATE.test(binding)) {
    return undefined;
  }
  return Buffer.from(AAD_PREFIX + binding, 'utf8');
}
