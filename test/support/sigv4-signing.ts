/**
 * Signing KMS requests with @smithy/signature-v4 in tests and the bench, hashing on node:crypto
 * (no @aws-crypto/sha256-js installed).
 */
import { createHash, createHmac, type BinaryLike } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

type SourceData = string | ArrayBuffer | ArrayBufferView;

const toBytes = (data: SourceData): BinaryLike =>
  typeof data === 'string'
    ? data
    : data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

/** SHA-256 / HMAC-SHA256 for the smithy signer, on node:crypto. */
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

export interface KmsSignerOptions {
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** `kms` unless a test wants another service's scope. */
  service?: string;
  /** The KMS client sends no x-amz-content-sha256, so off unless asked for. */
  applyChecksum?: boolean;
}

/** A SigV4 signer set up as the KMS client's is: service `kms`, no payload checksum header. */
export function kmsSigner(options: KmsSignerOptions): SignatureV4 {
  return new SignatureV4({
    service: options.service ?? 'kms',
    region: options.region,
    credentials: options.credentials,
    sha256: NodeSha256,
    applyChecksum: options.applyChecksum ?? false,
  });
}
