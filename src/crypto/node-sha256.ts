/**
 * SHA-256 and HMAC-SHA256 on node:crypto, in the shape @smithy/signature-v4 asks for (its
 * `sha256` option), so signing needs no @aws-crypto/sha256-js. Used by the CLI's SigV4 client
 * and by the tests' and bench's signers.
 */
import { createHash, createHmac, type BinaryLike } from 'node:crypto';

type SourceData = string | ArrayBuffer | ArrayBufferView;

const toBytes = (data: SourceData): BinaryLike =>
  typeof data === 'string' ? data : data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

/** SHA-256 and HMAC-SHA256 for the smithy signer, on node:crypto. */
export class NodeSha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    throw new Error('not needed by SignatureV4');
  }
}
