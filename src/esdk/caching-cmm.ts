/**
 * The caching cryptographic materials manager (framework/caching-cmm.md): reuses a data key for
 * several messages, within limits, so that a KMS-backed keyring is called once per cache entry
 * instead of once per message. Entries live in a local LRU cache under ids the spec defines
 * (SHA-512 over the partition, the suite, the encryption context and, on decrypt, the EDKs).
 */
import { createHash, randomUUID } from 'node:crypto';
import { DefaultCryptographicMaterialsManager } from './cmm/default-cmm.ts';
import { EsdkError } from './errors.ts';
import { serializeEncryptionContext } from './serialize/encryption-context.ts';
import { assertDecryptAllowed, checkPolicy, getAlgorithmSuite } from './suites.ts';
import type {
  AlgorithmSuite,
  CommitmentPolicy,
  CryptographicMaterialsManager,
  DecryptionMaterials,
  DecryptionMaterialsRequest,
  EncryptedDataKey,
  EncryptionContext,
  EncryptionMaterials,
  EncryptionMaterialsRequest,
  Keyring,
} from './types.ts';

/** caching-cmm.md "Limit Messages": default and maximum 2^32 messages per data key. */
export const MAX_MESSAGES_PER_CACHED_KEY = 2 ** 32;
/** caching-cmm.md "Limit Bytes" allows up to 2^63−1; a JS number is exact only up to 2^53−1. */
export const MAX_BYTES_PER_CACHED_KEY = Number.MAX_SAFE_INTEGER;

// ---------------------------------------------------------------------------------------------
// The cache

export interface EncryptionCacheEntry {
  kind: 'encrypt';
  materials: EncryptionMaterials;
  createdAt: number;
  messagesEncrypted: number;
  bytesEncrypted: number;
}

export interface DecryptionCacheEntry {
  kind: 'decrypt';
  materials: DecryptionMaterials;
  createdAt: number;
}

export type CacheEntry = EncryptionCacheEntry | DecryptionCacheEntry;

/** What a caching CMM needs of a cache; several CMMs (with distinct partitions) may share one. */
export interface CryptographicMaterialsCache {
  get(id: string): CacheEntry | undefined;
  put(id: string, entry: CacheEntry): void;
  delete(id: string): void;
}

/**
 * A bounded, in-process LRU cache. It owns the data keys of its entries: a removed or evicted
 * entry's key is zeroed, which is safe because the caching CMM only ever hands out copies.
 */
export class LocalCryptographicMaterialsCache implements CryptographicMaterialsCache {
  readonly capacity: number;
  readonly #entries = new Map<string, CacheEntry>();

  constructor(capacity = 1000) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new EsdkError('InvalidArgument', 'cache capacity must be a positive integer');
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(id: string): CacheEntry | undefined {
    const entry = this.#entries.get(id);
    if (entry) {
      // Map order is insertion order: re-inserting marks the entry most recently used.
      this.#entries.delete(id);
      this.#entries.set(id, entry);
    }
    return entry;
  }

  put(id: string, entry: CacheEntry): void {
    this.delete(id);
    this.#entries.set(id, entry);
    while (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next().value as string;
      this.delete(oldest);
    }
  }

  delete(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    entry.materials.plaintextDataKey?.fill(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Cache ids (caching-cmm.md "Appendix A: Cache Entry Identifier Formulas")

function sha512(...parts: Uint8Array[]): Buffer {
  const hash = createHash('sha512');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

function uint16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}

function lengthPrefixed(bytes: Uint8Array): Buffer {
  return Buffer.concat([uint16(bytes.length), bytes]);
}

/** The EDK as serialised in the message header: three uint16-length-prefixed fields. */
function serializeEncryptedDataKey(edk: EncryptedDataKey): Buffer {
  return Buffer.concat([lengthPrefixed(Buffer.from(edk.providerId, 'utf8')), lengthPrefixed(edk.providerInfo), lengthPrefixed(edk.ciphertext)]);
}

const ZERO_512_BITS = Buffer.alloc(64);

/**
 * SHA-512( SHA-512(partition) ‖ 0x00 ‖ SHA-512(context) ) without a requested suite, or
 * SHA-512( SHA-512(partition) ‖ 0x01 ‖ uint16 suite id ‖ SHA-512(context) ) with one.
 */
export function encryptionCacheId(partition: string, suiteId: number | undefined, context: EncryptionContext): Buffer {
  const suitePart = suiteId === undefined ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), uint16(suiteId)]);
  return sha512(sha512(Buffer.from(partition, 'utf8')), suitePart, sha512(serializeEncryptionContext(context)));
}

/**
 * SHA-512( SHA-512(partition) ‖ uint16 suite id ‖ sorted SHA-512 of each serialised EDK ‖ 512 zero
 * bits ‖ SHA-512(context) ). A reproduced context, when given, is hashed in after it: the default
 * CMM checks it against the message and adds required-only keys to the materials, so materials
 * cached for one reproduced context must never serve another.
 */
export function decryptionCacheId(
  partition: string,
  suiteId: number,
  encryptedDataKeys: readonly EncryptedDataKey[],
  context: EncryptionContext,
  reproducedContext?: EncryptionContext,
): Buffer {
  const edkHashes = encryptedDataKeys.map((edk) => sha512(serializeEncryptedDataKey(edk))).sort(Buffer.compare);
  const parts = [sha512(Buffer.from(partition, 'utf8')), uint16(suiteId), ...edkHashes, ZERO_512_BITS, sha512(serializeEncryptionContext(context))];
  if (reproducedContext && Object.keys(reproducedContext).length > 0) parts.push(sha512(serializeEncryptionContext(reproducedContext)));
  return sha512(...parts);
}

// ---------------------------------------------------------------------------------------------
// The materials manager

export interface CachingCmmOptions {
  /** What makes materials on a miss: a CMM, or a keyring (wrapped in the default CMM). */
  underlying: CryptographicMaterialsManager | Keyring;
  /** Required: how long an entry may be used, in milliseconds (as the official JS SDK's maxAge). */
  maxAge: number;
  /** Messages one data key may encrypt; default and maximum 2^32. */
  maxMessagesEncrypted?: number;
  /** Plaintext bytes one data key may encrypt; default and maximum 2^53−1. */
  maxBytesEncrypted?: number;
  /** Separates CMMs sharing a cache; default a random UUID (nothing shared). */
  partition?: string;
  /** A cache to use (possibly shared); default a new local cache of `capacity` entries. */
  cache?: CryptographicMaterialsCache;
  /** Entries of the default local cache; default 1000. */
  capacity?: number;
  /** Milliseconds clock; tests step it to age entries. */
  now?: () => number;
}

export interface CachingCmmStats {
  encryptHits: number;
  encryptMisses: number;
  decryptHits: number;
  decryptMisses: number;
  /** Requests the cache may not serve (identity-KDF suite, unknown plaintext length). */
  bypassed: number;
}

function isCmm(value: CryptographicMaterialsManager | Keyring): value is CryptographicMaterialsManager {
  return typeof (value as CryptographicMaterialsManager).getEncryptionMaterials === 'function';
}

/** caching-cmm.md: suites whose KDF is IDENTITY use the data key directly; it must never be reused. */
function cacheSafe(suite: AlgorithmSuite): boolean {
  return suite.kdf.kind !== 'identity';
}

function allowedForEncrypt(policy: CommitmentPolicy, suite: AlgorithmSuite): boolean {
  return policy === 'FORBID_ENCRYPT_ALLOW_DECRYPT' ? !suite.committing : suite.committing;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\u0000') === [...b].sort().join('\u0000');
}

function limit(value: number | undefined, maximum: number, name: string): number {
  if (value === undefined) return maximum;
  if (!Number.isSafeInteger(value) || value < 1 || value > maximum) throw new EsdkError('InvalidArgument', `${name} must be an integer from 1 to ${maximum}`);
  return value;
}

/** Materials handed out are copies: the SDK zeroes a data key when its message is done. */
function copyEncryptionMaterials(materials: EncryptionMaterials): EncryptionMaterials {
  return {
    ...materials,
    encryptionContext: { ...materials.encryptionContext },
    encryptedDataKeys: [...materials.encryptedDataKeys],
    plaintextDataKey: materials.plaintextDataKey ? Uint8Array.from(materials.plaintextDataKey) : undefined,
    requiredEncryptionContextKeys: [...materials.requiredEncryptionContextKeys],
  };
}

function copyDecryptionMaterials(materials: DecryptionMaterials): DecryptionMaterials {
  return {
    ...materials,
    encryptionContext: { ...materials.encryptionContext },
    plaintextDataKey: materials.plaintextDataKey ? Uint8Array.from(materials.plaintextDataKey) : undefined,
    requiredEncryptionContextKeys: [...materials.requiredEncryptionContextKeys],
  };
}

export class CachingCryptographicMaterialsManager implements CryptographicMaterialsManager {
  readonly partition: string;
  readonly maxAge: number;
  readonly maxMessagesEncrypted: number;
  readonly maxBytesEncrypted: number;
  readonly stats: CachingCmmStats = { encryptHits: 0, encryptMisses: 0, decryptHits: 0, decryptMisses: 0, bypassed: 0 };
  readonly #underlying: CryptographicMaterialsManager;
  readonly #cache: CryptographicMaterialsCache;
  readonly #now: () => number;

  constructor(options: CachingCmmOptions) {
    if (!options.underlying) throw new EsdkError('InvalidArgument', 'the caching materials manager needs a CMM or a keyring');
    // Precondition: nothing may be cached forever (caching-cmm.md "Cache Limit TTL" is required).
    if (typeof options.maxAge !== 'number' || !Number.isFinite(options.maxAge) || options.maxAge <= 0) {
      throw new EsdkError('InvalidArgument', 'maxAge must be a positive number of milliseconds');
    }
    if (options.partition !== undefined && (typeof options.partition !== 'string' || options.partition.length === 0)) {
      throw new EsdkError('InvalidArgument', 'partition must be a non-empty string');
    }
    this.#underlying = isCmm(options.underlying) ? options.underlying : new DefaultCryptographicMaterialsManager(options.underlying);
    this.maxAge = options.maxAge;
    this.maxMessagesEncrypted = limit(options.maxMessagesEncrypted, MAX_MESSAGES_PER_CACHED_KEY, 'maxMessagesEncrypted');
    this.maxBytesEncrypted = limit(options.maxBytesEncrypted, MAX_BYTES_PER_CACHED_KEY, 'maxBytesEncrypted');
    this.partition = options.partition ?? randomUUID();
    this.#cache = options.cache ?? new LocalCryptographicMaterialsCache(options.capacity);
    this.#now = options.now ?? Date.now;
  }

  #expired(createdAt: number): boolean {
    return this.#now() - createdAt > this.maxAge;
  }

  #exceeded(entry: EncryptionCacheEntry): boolean {
    return this.#expired(entry.createdAt) || entry.messagesEncrypted > this.maxMessagesEncrypted || entry.bytesEncrypted > this.maxBytesEncrypted;
  }

  async getEncryptionMaterials(request: EncryptionMaterialsRequest): Promise<EncryptionMaterials> {
    const { plaintextLength, suiteId } = request;
    // Postcondition: what cannot be cached is not even looked up — an identity-KDF suite, or a
    // message of unknown length (the byte limit could not be enforced).
    if (
      (suiteId !== undefined && !cacheSafe(getAlgorithmSuite(suiteId))) ||
      typeof plaintextLength !== 'number' ||
      !Number.isSafeInteger(plaintextLength) ||
      plaintextLength < 0
    ) {
      this.stats.bypassed++;
      return this.#underlying.getEncryptionMaterials(request);
    }
    const required = request.requiredEncryptionContextKeys ?? [];
    const id = encryptionCacheId(this.partition, suiteId, request.encryptionContext).toString('base64');
    const entry = this.#cache.get(id);
    if (entry?.kind === 'encrypt') {
      // The usage is counted before the check: this message is one of the messages limited.
      entry.messagesEncrypted += 1;
      entry.bytesEncrypted += plaintextLength;
      const fits =
        !this.#exceeded(entry) &&
        allowedForEncrypt(request.commitmentPolicy, entry.materials.suite) &&
        sameKeys(entry.materials.requiredEncryptionContextKeys, required);
      if (fits) {
        this.stats.encryptHits++;
        return copyEncryptionMaterials(entry.materials);
      }
    }
    if (entry) this.#cache.delete(id);
    this.stats.encryptMisses++;
    // The length is left out: these materials may encrypt other messages too.
    const { plaintextLength: _omitted, ...withoutLength } = request;
    const materials = await this.#underlying.getEncryptionMaterials(withoutLength);
    if (!cacheSafe(materials.suite)) return materials;
    const fresh: EncryptionCacheEntry = { kind: 'encrypt', materials, createdAt: this.#now(), messagesEncrypted: 1, bytesEncrypted: plaintextLength };
    // An entry over its limits at birth (a message larger than maxBytesEncrypted) is not kept.
    if (this.#exceeded(fresh)) return materials;
    this.#cache.put(id, fresh);
    return copyEncryptionMaterials(materials);
  }

  async decryptMaterials(request: DecryptionMaterialsRequest): Promise<DecryptionMaterials> {
    const suite = getAlgorithmSuite(request.suiteId);
    // A hit skips the underlying CMM, so its policy check is made here for every request.
    assertDecryptAllowed(checkPolicy(request.commitmentPolicy), suite);
    if (!cacheSafe(suite)) {
      this.stats.bypassed++;
      return this.#underlying.decryptMaterials(request);
    }
    const id = decryptionCacheId(
      this.partition,
      request.suiteId,
      request.encryptedDataKeys,
      request.encryptionContext,
      request.reproducedEncryptionContext,
    ).toString('base64');
    const entry = this.#cache.get(id);
    if (entry?.kind === 'decrypt' && !this.#expired(entry.createdAt)) {
      this.stats.decryptHits++;
      return copyDecryptionMaterials(entry.materials);
    }
    if (entry) this.#cache.delete(id);
    this.stats.decryptMisses++;
    const materials = await this.#underlying.decryptMaterials(request);
    this.#cache.put(id, { kind: 'decrypt', materials, createdAt: this.#now() });
    return copyDecryptionMaterials(materials);
  }
}
