import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { constants } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EsdkError } from './errors.ts';

/**
 * Plaintext that decryptStream must not release yet (a signed message before its footer verified,
 * a non-framed body before its tag verified), kept in constant memory.
 *
 * Up to `threshold` bytes stay in memory. Beyond that everything goes to a spill file, written as
 * it is decrypted, in records of RECORD_LENGTH bytes sealed with AES-256-GCM under a key made for
 * this one spill and held only in memory. Nothing readable of the plaintext ever reaches the disk,
 * and once the key is gone (end of stream, crash) the file is noise. The file is created 0600 with
 * O_EXCL in the spill directory and unlinked right after it is opened (POSIX; elsewhere when it is
 * closed), so no other process can open it by name and no crash leaves it behind.
 *
 * Record i uses IV = i (big-endian, 12 bytes): unique under a fresh key, and it binds each record
 * to its position, so a record moved, replaced or dropped on disk fails its tag on read-back.
 */
export const RECORD_LENGTH = 64 * 1024;
export const DEFAULT_SPILL_THRESHOLD = 4 * 1024 * 1024;
const TAG_LENGTH = 16;
const SEALED_RECORD_LENGTH = RECORD_LENGTH + TAG_LENGTH;
/** Records read back per read call (1 MiB). */
const READ_RECORDS = 16;

export interface SpillOptions {
  /** Where spill files go; undefined: os.tmpdir(), looked up only when a file is made (it reads the environment). */
  directory: string | undefined;
  /** Bytes held in memory before the spill file is started. */
  threshold: number;
}

/** What decryptStream withholds, whichever way it keeps it (WithheldPlaintext, WithheldFrames). */
export interface Withheld {
  /** True when `write()` has something to put on disk before more input is taken. */
  readonly mustWrite: boolean;
  write(): Promise<void>;
  /** Hands everything withheld, in order, to `emit` (which resolves when the consumer wants more). */
  release(emit: (plaintext: Buffer) => Promise<void>): Promise<void>;
  /** Zeroes what is in memory, closes and removes the spill file. Idempotent. */
  discard(): Promise<void>;
}

export class WithheldPlaintext implements Withheld {
  readonly #options: SpillOptions;
  /** Plaintext not on disk: all of it while below the threshold, after that less than a record plus the last input chunk. */
  #memory: Buffer[] = [];
  #memoryLength = 0;
  #spill: SpillFile | undefined;
  #records = 0;
  #discarded = false;

  constructor(options: SpillOptions) {
    this.#options = options;
  }

  /** Takes ownership of `plaintext` (it is zeroed when discarded). */
  add(plaintext: Buffer): void {
    if (plaintext.length === 0) return;
    this.#memory.push(plaintext);
    this.#memoryLength += plaintext.length;
  }

  /** True when `write()` has records to put on disk. */
  get mustWrite(): boolean {
    // Once spilling, in batches of READ_RECORDS records: one write (one thread-pool hop) per MiB.
    return this.#spill ? this.#memoryLength >= READ_RECORDS * RECORD_LENGTH : this.#memoryLength > this.#options.threshold;
  }

  /** Seals every whole record held in memory and appends them to the spill file (started on first use). */
  async write(): Promise<void> {
    if (this.#discarded || !this.mustWrite) return;
    const file = (this.#spill ?? (await this.#create())).file;
    const pending = Buffer.concat(this.#memory, this.#memoryLength);
    this.#wipeMemory();
    const whole = Math.floor(pending.length / RECORD_LENGTH);
    const sealed = Buffer.allocUnsafe(whole * SEALED_RECORD_LENGTH);
    for (let i = 0; i < whole; i++) {
      this.#seal(this.#records + i, pending.subarray(i * RECORD_LENGTH, (i + 1) * RECORD_LENGTH), sealed, i * SEALED_RECORD_LENGTH);
    }
    const rest = pending.subarray(whole * RECORD_LENGTH);
    if (rest.length > 0) this.add(Buffer.from(rest));
    pending.fill(0);
    const position = this.#records * SEALED_RECORD_LENGTH;
    this.#records += whole;
    await writeAll(file, sealed, position);
  }

  /**
   * Hands everything withheld, in order, to `emit` (which resolves when the consumer wants more):
   * the records on disk one at a time, then what is in memory.
   */
  async release(emit: (plaintext: Buffer) => Promise<void>): Promise<void> {
    const file = this.#spill?.file;
    if (file) {
      // Up to READ_RECORDS records per read: one thread-pool hop per MiB rather than per record.
      const sealed = Buffer.allocUnsafe(READ_RECORDS * SEALED_RECORD_LENGTH);
      for (let first = 0; first < this.#records; first += READ_RECORDS) {
        const count = Math.min(READ_RECORDS, this.#records - first);
        const length = count * SEALED_RECORD_LENGTH;
        const { bytesRead } = await file.read(sealed, 0, length, first * SEALED_RECORD_LENGTH);
        if (this.#discarded) return; // the reader gave up meanwhile: the file and key are gone
        if (bytesRead !== length) throw spillFailure();
        for (let i = 0; i < count; i++) {
          await emit(this.#open(first + i, sealed.subarray(i * SEALED_RECORD_LENGTH, (i + 1) * SEALED_RECORD_LENGTH)));
          if (this.#discarded) return;
        }
      }
    }
    const memory = this.#memory;
    this.#memory = [];
    this.#memoryLength = 0;
    await emitInOrder(memory, emit, () => this.#discarded);
  }

  /** Zeroes what is in memory, forgets the key, closes and removes the spill file. Idempotent. */
  async discard(): Promise<void> {
    this.#discarded = true;
    this.#wipeMemory();
    const spill = this.#spill;
    this.#spill = undefined; // the key goes with it
    await removeSpillFile(spill);
  }

  #wipeMemory(): void {
    for (const plaintext of this.#memory) plaintext.fill(0);
    this.#memory = [];
    this.#memoryLength = 0;
  }

  async #create(): Promise<SpillFile> {
    this.#spill = await createSpillFile(this.#options.directory, () => this.#discarded);
    return this.#spill;
  }

  #seal(index: number, record: Buffer, out: Buffer, offset: number): void {
    const cipher = createCipheriv('aes-256-gcm', (this.#spill as SpillFile).key, spillIv(index), { authTagLength: TAG_LENGTH });
    const ciphertext = cipher.update(record);
    ciphertext.copy(out, offset);
    cipher.final();
    cipher.getAuthTag().copy(out, offset + RECORD_LENGTH);
  }

  #open(index: number, sealed: Buffer): Buffer {
    const decipher = createDecipheriv('aes-256-gcm', (this.#spill as SpillFile).key, spillIv(index), { authTagLength: TAG_LENGTH });
    decipher.setAuthTag(sealed.subarray(RECORD_LENGTH));
    const plaintext = decipher.update(sealed.subarray(0, RECORD_LENGTH));
    try {
      decipher.final();
    } catch {
      plaintext.fill(0);
      throw spillFailure();
    }
    return plaintext;
  }
}

/**
 * A spill file and the key made for it (held only in memory). The file is created 0600 with O_EXCL
 * in `directory` (os.tmpdir() when undefined), never reusing or following something already there
 * (a planted file or symlink), and unlinked at once where the platform allows, so no other process
 * can open it by name and no crash leaves it behind; `path` is kept only when it could not be
 * unlinked, for removeSpillFile.
 */
export interface SpillFile {
  file: FileHandle;
  path: string | undefined;
  key: KeyObject;
}

/** Makes a spill file, unless `abandoned()` says by then that the stream was destroyed meanwhile (it throws). */
export async function createSpillFile(directory: string | undefined, abandoned: () => boolean): Promise<SpillFile> {
  const path = join(directory ?? tmpdir(), `.strongroom-spill-${randomBytes(12).toString('hex')}`);
  const file = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
  let kept: string | undefined;
  try {
    await unlink(path);
  } catch {
    kept = path; // a platform that cannot unlink an open file: removed in removeSpillFile()
  }
  const raw = randomBytes(32);
  const spill = { file, path: kept, key: createSecretKey(raw) };
  raw.fill(0);
  if (abandoned()) {
    // The stream was destroyed while the file was being made: nothing may be written to it.
    await removeSpillFile(spill);
    throw spillFailure();
  }
  return spill;
}

/** Closes and (where it still has a name) removes a spill file; never throws. */
export async function removeSpillFile(spill: SpillFile | undefined): Promise<void> {
  await spill?.file.close().catch(() => undefined);
  if (spill?.path) await unlink(spill.path).catch(() => undefined);
}

/**
 * Hands each buffer of plaintext to `emit` in order and reports whether all went out; when the
 * reader gives up midway (`abandoned()`), the ones not handed out are zeroed.
 */
export async function emitInOrder(
  plaintexts: readonly Buffer[],
  emit: (plaintext: Buffer) => Promise<void>,
  abandoned: () => boolean,
): Promise<boolean> {
  for (let i = 0; i < plaintexts.length; i++) {
    await emit(plaintexts[i]);
    if (abandoned()) {
      for (let j = i + 1; j < plaintexts.length; j++) plaintexts[j].fill(0);
      return false;
    }
  }
  return true;
}

/** The 12-byte IV of record or batch `index` under a spill key: the index, big-endian. */
export function spillIv(index: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUIntBE(index, 6, 6);
  return iv;
}

async function writeAll(file: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await file.write(bytes, written, bytes.length - written, position + written);
    written += bytesWritten;
  }
}

/** The spill file changed under us, or was cut short: nothing of it is released. */
export function spillFailure(): EsdkError {
  return new EsdkError('AuthenticationFailed', 'the spill file of withheld plaintext failed authentication');
}
