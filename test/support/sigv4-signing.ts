/** Signing KMS requests with @smithy/signature-v4 in tests and the bench, hashing on node:crypto. */
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../../src/crypto/node-sha256.ts';

export { NodeSha256 };

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

/** A POST of `body` to a running server's endpoint, signed as `credentials` (service kms unless named). */
export async function signedPost(
  target: { endpoint: string; region: string; credentials: KmsSignerOptions['credentials'] },
  headers: Record<string, string>,
  body: string,
  service?: string,
): Promise<HttpRequest> {
  const url = new URL(target.endpoint);
  const signer = kmsSigner({ region: target.region, credentials: target.credentials, ...(service ? { service } : {}) });
  return (await signer.sign(
    new HttpRequest({ method: 'POST', protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path: '/', headers: { host: url.host, ...headers }, body }),
  )) as HttpRequest;
}
