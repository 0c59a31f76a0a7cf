/**
 * SigV4 for the XKS proxy (spec "Authentication"; PROTOCOL-NOTES §2.1): service `kms-xks-proxy`,
 * the KMS region, signed with one of the key store's (one or two) credentials. The verification
 * itself is the KMS transport's SigV4Verifier — canonical request rebuilt from what was received,
 * constant-time signature comparison, ±5 minutes of clock skew — given this service name and a
 * lookup over the key store's credentials. Every way to fail is AuthenticationFailedException.
 */
import { isKmsError } from '../../service/errors.ts';
import { SigV4Verifier, type SigningSecret } from '../kms-json/sigv4.ts';
import type { XksKeyStoreConfig } from './config.ts';
import { XksError } from './errors.ts';

export const XKS_SIGNING_SERVICE = 'kms-xks-proxy';

export interface XksSignedRequest {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  readonly headers: Map<string, string[]>;
  readonly body: Buffer;
}

export class XksAuthenticator {
  private readonly verifier: SigV4Verifier;

  constructor(store: XksKeyStoreConfig, region: string, options: { now?: () => number; maxSkewMs?: number } = {}) {
    const secrets = new Map<string, SigningSecret>();
    for (const credential of store.credentials) {
      secrets.set(credential.accessKeyId, { secretAccessKey: credential.secretAccessKey.exposeSecretBytes() });
    }
    this.verifier = new SigV4Verifier({
      region,
      service: XKS_SIGNING_SERVICE,
      lookup: (accessKeyId) => secrets.get(accessKeyId),
      now: options.now,
      maxSkewMs: options.maxSkewMs ?? 5 * 60_000,
      signingKeyCacheEntries: 16,
    });
  }

  /** The access key id that signed the request, or AuthenticationFailedException. */
  async authenticate(request: XksSignedRequest): Promise<string> {
    // KMS signs with long-term credentials only; a session token means something else is calling.
    if (request.headers.has('x-amz-security-token')) {
      throw new XksError('AuthenticationFailedException', 'Session tokens are not accepted by this XKS proxy');
    }
    try {
      const caller = await this.verifier.verify(request);
      return caller.accessKeyId;
    } catch (error) {
      // The verifier's messages carry no secret and no expected signature (see sigv4.ts).
      if (isKmsError(error)) throw new XksError('AuthenticationFailedException', `${error.errorName}: ${error.message}`);
      throw error;
    }
  }
}
