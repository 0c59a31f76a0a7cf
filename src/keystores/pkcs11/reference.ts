import { randomBytes, uuidToBytes } from '../../crypto/random.ts';
import { Pkcs11Error } from './errors.ts';

/**
 * What the PKCS#11 key store gives the service to persist for a key version, in place of sealed
 * material: a reference to the token object, never key bytes.
 *
 *   offset  length  field
 *   0       4       magic "SP11"
 *   4       1       reference format version, 0x01
 *   5       1       CKA_ID length, 28
 *   6       28      CKA_ID = key id (16 raw UUID bytes) || key version (uint32 BE) || 8 random bytes
 *
 * The random tail makes every object's CKA_ID unique even for the same key version: material
 * made for a version whose compare-and-set then lost (a concurrent rotation) leaves an orphan
 * object, which must never be confused with the winner's. The key id and version prefix binds the
 * reference to its row, as the sealing binding does for software material: a reference moved to
 * another key's row is refused, not used.
 */

const MAGIC = Buffer.from('SP11', 'latin1');
const FORMAT_VERSION = 0x01;
const ID_PREFIX_LENGTH = 20;
const ID_NONCE_LENGTH = 8;
export const OBJECT_ID_LENGTH = ID_PREFIX_LENGTH + ID_NONCE_LENGTH;
const REFERENCE_LENGTH = MAGIC.length + 2 + OBJECT_ID_LENGTH;

/** A fresh CKA_ID for a new object of this key version. */
export function newObjectId(keyId: string, version: number): Buffer {
  const id = Buffer.alloc(OBJECT_ID_LENGTH);
  idPrefix(keyId, version).copy(id, 0);
  randomBytes(ID_NONCE_LENGTH).copy(id, ID_PREFIX_LENGTH);
  return id;
}

export function encodeReference(objectId: Buffer): Buffer {
  const reference = Buffer.alloc(REFERENCE_LENGTH);
  MAGIC.copy(reference, 0);
  reference[4] = FORMAT_VERSION;
  reference[5] = OBJECT_ID_LENGTH;
  objectId.copy(reference, 6);
  return reference;
}

/** The CKA_ID a stored reference names; refuses one that is malformed or bound to another version. */
export function decodeReference(reference: Buffer, keyId: string, version: number): Buffer {
  if (
    reference.length !== REFERENCE_LENGTH ||
    !reference.subarray(0, 4).equals(MAGIC) ||
    reference[4] !== FORMAT_VERSION ||
    reference[5] !== OBJECT_ID_LENGTH
  ) {
    throw referenceInvalid(keyId, version);
  }
  const objectId = reference.subarray(6);
  let prefix: Buffer;
  try {
    prefix = idPrefix(keyId, version);
  } catch {
    throw referenceInvalid(keyId, version);
  }
  if (!objectId.subarray(0, ID_PREFIX_LENGTH).equals(prefix)) throw referenceInvalid(keyId, version);
  return objectId;
}

/**
 * decodeReference for the crypto path: remembers each key version's object id and reuses it while
 * the stored reference is byte for byte the one decoded, so a call costs a 34-byte compare rather
 * than a UUID parse. Bounded: past `maxEntries` the oldest entry goes. The object ids it returns
 * are shared: read them, never write them.
 */
export class ReferenceDecoder {
  readonly #entries = new Map<string, { readonly reference: Buffer; readonly objectId: Buffer }>();

  constructor(private readonly maxEntries = 4_096) {}

  objectId(reference: Buffer, keyId: string, version: number): Buffer {
    const key = `${keyId}/${version}`;
    const entry = this.#entries.get(key);
    if (entry && entry.reference.equals(reference)) return entry.objectId;
    const objectId = Buffer.from(decodeReference(reference, keyId, version));
    if (entry) this.#entries.delete(key);
    else if (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, { reference: Buffer.from(reference), objectId });
    return objectId;
  }
}

function idPrefix(keyId: string, version: number): Buffer {
  if (!Number.isInteger(version) || version < 1 || version > 0xffff_ffff) throw new RangeError('invalid key version');
  const prefix = Buffer.alloc(ID_PREFIX_LENGTH);
  uuidToBytes(keyId).copy(prefix, 0);
  prefix.writeUInt32BE(version, 16);
  return prefix;
}

// A storage fault (damaged or swapped row), never the caller's: like SealedMaterialError.
function referenceInvalid(keyId: string, version: number): Pkcs11Error {
  return new Pkcs11Error(
    'REFERENCE_INVALID',
    `stored PKCS#11 reference of key ${keyId} version ${version} is malformed or belongs to another key version`,
  );
}
