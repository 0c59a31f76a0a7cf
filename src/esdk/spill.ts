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
  #file: FileHandle | undefined;
  #path: string | undefined;
  #key: KeyObject | undefined;
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
    return this.#file ? this.#memoryLength >= READ_RECORDS * RECORD_LENGTH : this.#memoryLength > this.#options.threshold;
  }

  /** Seals every whole record held in memory and appends them to the spill file (started on first use). */
  async write(): Promise<void> {
    if (this.#discarded || !this.mustWrite) return;
    const file = this.#file ?? (await this.#create());
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
    if (this.#file) {
      // Up to READ_RECORDS records per read: one thread-pool hop per MiB rather than per record.
      const sealed = Buffer.allocUnsafe(READ_RECORDS * SEALED_RECORD_LENGTH);
      for (let first = 0; first < this.#records; first += READ_RECORDS) {
        const count = Math.min(READ_RECORDS, this.#records - first);
        const length = count * SEALED_RECORD_LENGTH;
        const { bytesRead } = await this.#file.read(sealed, 0, length, first * SEALED_RECORD_LENGTH);
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
    for (let i = 0; i < memory.length; i++) {
      await emit(memory[i]);
      if (this.#discarded) {
        for (let j = i + 1; j < memory.length; j++) memory[j].fill(0);
        return;
      }
    }
  }

  /** Zeroes what is in memory, forgets the key, closes and removes the spill file. Idempotent. */
  async discard(): Promise<void> {
    this.#discarded = true;
    this.#wipeMemory();
    this.#key = undefined;
    const file = this.#file;
    const path = this.#path;
    this.#file = undefined;
    this.#path = undefined;
    await file?.close().catch(() => undefined);
    if (path) await unlink(path).catch(() => undefined);
  }

  #wipeMemory(): void {
    for (const plaintext of this.#memory) plaintext.fill(0);
    this.#memory = [];
    this.#memoryLength = 0;
  }

  async #create(): Promise<FileHandle> {
    const { file, path } = await createSpillFile(this.#options.directory);
    this.#file = file;
    this.#path = path;
    if (this.#discarded) {
      await this.discard();
      throw spillFailure();
    }
    const raw = randomBytes(32);
    this.#key = createSecretKey(raw);
    raw.fill(0);
    return file;
  }

  #iv(index: number): Buffer {
    const iv = Buffer.alloc(12);
    iv.writeUIntBE(index, 6, 6);
    return iv;
  }

  #seal(index: number, record: Buffer, out: Buffer, offset: number): void {
    const cipher = createCipheriv('aes-256-gcm', this.#key as KeyObject, this.#iv(index), { authTagLength: TAG_LENGTH });
    const ciphertext = cipher.update(record);
    ciphertext.copy(out, offset);
    cipher.final();
    cipher.getAuthTag().copy(out, offset + RECORD_LENGTH);
  }

  #open(index: number, sealed: Buffer): Buffer {
    const decipher = createDecipheriv('aes-256-gcm', this.#key as KeyObject, this.#iv(index), { authTagLength: TAG_LENGTH });
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
 * A new spill file in `directory` (os.tmpdir() when undefined): created 0600 with O_EXCL (never
 * reusing or following something already there: a planted file or symlink), and unlinked at once
 * where the platform allows, so no other process can open it by name and no crash leaves it
 * behind. `path` is set only when it could not be unlinked (then discard() removes it).
 */
export async function createSpillFile(directory: string | undefined): Promise<{ file: FileHandle; path: string | undefined }> {
  const path = join(directory ?? tmpdir(), `.strongroom-spill-${randomBytes(12).toString('hex')}`);
  const file = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await unlink(path);
    return { file, path: undefined };
  } catch {
    return { file, path }; // a platform that cannot unlink an open file: removed in discard()
  }
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
