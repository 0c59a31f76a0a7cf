/**
 * The proxy's own audit log: one JSON line per request, appended to a file only its owner may
 * read (created 0600; an existing file is narrowed to 0600). What a line holds is fixed here:
 * the requestMetadata fields KMS sends (who, which KMS operation and request, which KMS key), the
 * XKS operation, key id, outcome and timing. Never plaintext, AAD, ciphertext, IVs, key bytes,
 * credentials' secrets or encryption-context values (those only ever reach the proxy inside AAD).
 *
 * Fail closed: a request's response is sent only after its line was written; a line that cannot
 * be written turns the request into an InternalException.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { RequestMetadata } from './wire.ts';

export interface XksAuditEvent {
  readonly time: string;
  /** The proxy's id for this request (KMS's own is requestMetadata.kmsRequestId). */
  readonly requestId: string;
  /** GetKeyMetadata, Encrypt, Decrypt, GetHealthStatus, or "Unknown" for an unroutable request. */
  readonly operation: string;
  readonly uriPathPrefix?: string;
  readonly externalKeyId?: string;
  /** The access key id that signed the request, once its signature verified. */
  readonly accessKeyId?: string;
  readonly sourceIp?: string;
  /** Only after authentication: before it, the body is whatever anyone sent. */
  readonly requestMetadata?: RequestMetadata;
  readonly httpStatus: number;
  readonly errorName?: string;
  readonly durationMs: number;
}

export class XksAuditLog {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
  ) {}

  static async open(path: string): Promise<XksAuditLog> {
    // O_APPEND: each line is one write() at the end of the file, so concurrent requests' lines
    // never interleave.
    const handle = await open(path, 'a', 0o600);
    try {
      const { mode } = await handle.stat();
      if ((mode & 0o077) !== 0) await handle.chmod(0o600);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new XksAuditLog(handle, path);
  }

  async record(event: XksAuditEvent): Promise<void> {
    await this.handle.write(`${JSON.stringify(event)}\n`);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
