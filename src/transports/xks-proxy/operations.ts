/**
 * The four XKS operations (XKS Proxy API spec v1.0.3: GetKeyMetadata, Encrypt, Decrypt,
 * GetHealthStatus) over an HsmBackend. Requests arrive parsed and size-checked (wire.ts); results
 * leave as the spec's JSON objects with base64 fields.
 */
import type { XksKeyMapping, XksKeyStoreConfig } from './config.ts';
import { XksError, invalidCiphertext } from './errors.ts';
import { HsmFailure, type EkmHealth, type HsmBackend, type HsmKeyInfo } from './hsm-backend.ts';
import { ciphertextDataIntegrityValue, gcmAad, sameBytes } from '../../crypto/xks-integrity.ts';
import type { DecryptRequest, EncryptRequest, RequestMetadata } from './wire.ts';

export const XKS_PROXY_VENDOR = 'Strongroom';
export const XKS_PROXY_MODEL = 'strongroom xks-proxy';

export interface XksOperationsOptions {
  readonly backend: HsmBackend;
  readonly ciphertextMetadata: Buffer;
  readonly fleetSize: number;
  /** How long a deep health result is reused (spec: at most a minute old). */
  readonly healthCacheMs: number;
  readonly now?: () => number;
}

export class XksOperations {
  private readonly backend: HsmBackend;
  private readonly now: () => number;
  private cachedHealth: { at: number; health: EkmHealth } | undefined;
  private pendingHealth: Promise<EkmHealth> | undefined;

  constructor(private readonly options: XksOperationsOptions) {
    this.backend = options.backend;
    this.now = options.now ?? Date.now;
  }

  async getKeyMetadata(store: XksKeyStoreConfig, externalKeyId: string, metadata: RequestMetadata): Promise<object> {
    const key = this.mappedKey(store, externalKeyId, metadata);
    const info = await this.describe(key);
    if (!info.aes256) throw new XksError('UnsupportedOperationException', 'The key is not an AES-256 key');
    const keyUsage: string[] = [];
    if (info.canEncrypt) keyUsage.push('ENCRYPT');
    if (info.canDecrypt) keyUsage.push('DECRYPT');
    if (info.canWrap) keyUsage.push('WRAP');
    if (info.canUnwrap) keyUsage.push('UNWRAP');
    return { keySpec: 'AES_256', keyUsage, keyStatus: key.enabled ? 'ENABLED' : 'DISABLED' };
  }

  async encrypt(store: XksKeyStoreConfig, externalKeyId: string, request: EncryptRequest): Promise<object> {
    const key = this.usableKey(store, externalKeyId, request.requestMetadata);
    await this.checkUsage(key, 'canEncrypt');
    const ciphertextMetadata = this.options.ciphertextMetadata;
    const aad = gcmAad(request.additionalAuthenticatedData, ciphertextMetadata);
    const sealed = await this.hsm(() => this.backend.encrypt(key.label, request.plaintext, aad));
    const response: Record<string, string> = {
      authenticationTag: sealed.authenticationTag.toString('base64'),
      ciphertext: sealed.ciphertext.toString('base64'),
      initializationVector: sealed.initializationVector.toString('base64'),
    };
    if (ciphertextMetadata.length > 0) response.ciphertextMetadata = ciphertextMetadata.toString('base64');
    if (request.integrityValueRequested) {
      // Spec: computed over what is returned, *before* the self-check, so it vouches for exactly
      // the bytes that were checked. The self-check decrypts them in the HSM and compares with
      // the request's plaintext: a faulty HSM or memory error is caught here, not at a later
      // Decrypt when the plaintext is gone.
      const integrityValue = ciphertextDataIntegrityValue({
        additionalAuthenticatedData: request.additionalAuthenticatedData,
        ciphertextMetadata,
        ...sealed,
      });
      const roundTrip = await this.hsm(() => this.backend.decrypt(key.label, sealed, aad)).catch(() => undefined);
      const intact = roundTrip !== undefined && sameBytes(roundTrip, request.plaintext);
      roundTrip?.fill(0);
      if (!intact) throw new XksError('InternalException', 'The HSM output failed the proxy self-check');
      response.ciphertextDataIntegrityValue = integrityValue.toString('base64');
    }
    return response;
  }

  async decrypt(store: XksKeyStoreConfig, externalKeyId: string, request: DecryptRequest): Promise<object> {
    const key = this.usableKey(store, externalKeyId, request.requestMetadata);
    await this.checkUsage(key, 'canDecrypt');
    const aad = gcmAad(request.additionalAuthenticatedData, request.ciphertextMetadata);
    const plaintext = await this.hsm(() =>
      this.backend.decrypt(
        key.label,
        { initializationVector: request.initializationVector, ciphertext: request.ciphertext, authenticationTag: request.authenticationTag },
        aad,
      ),
    );
    const encoded = plaintext.toString('base64');
    plaintext.fill(0);
    return { plaintext: encoded };
  }

  /** A deep check through the HSM, cached for healthCacheMs; concurrent probes share one check. */
  async getHealthStatus(): Promise<object> {
    const now = this.now();
    let health: EkmHealth;
    if (this.cachedHealth && now - this.cachedHealth.at < this.options.healthCacheMs) {
      health = this.cachedHealth.health;
    } else {
      this.pendingHealth ??= this.backend.health().finally(() => (this.pendingHealth = undefined));
      health = await this.pendingHealth;
      this.cachedHealth = { at: now, health };
    }
    return {
      xksProxyFleetSize: this.options.fleetSize,
      xksProxyVendor: XKS_PROXY_VENDOR,
      xksProxyModel: XKS_PROXY_MODEL,
      ekmVendor: health.vendor,
      ekmFleetDetails: health.members.slice(0, 10).map((member) => ({ id: member.id, model: member.model, healthStatus: member.healthStatus })),
    };
  }

  /** The key store's mapping for the id, with secondary authorisation of the principal. */
  private mappedKey(store: XksKeyStoreConfig, externalKeyId: string, metadata: RequestMetadata): XksKeyMapping {
    const key = store.keys.get(externalKeyId);
    if (!key) throw new XksError('KeyNotFoundException', 'No key with this external key id in this key store');
    if (store.allowedPrincipalArns && !principalAllowed(store.allowedPrincipalArns, metadata.awsPrincipalArn ?? '')) {
      throw new XksError('AccessDeniedException', 'The principal is not allowed to use this external key store');
    }
    return key;
  }

  private usableKey(store: XksKeyStoreConfig, externalKeyId: string, metadata: RequestMetadata): XksKeyMapping {
    const key = this.mappedKey(store, externalKeyId, metadata);
    if (!key.enabled) throw new XksError('InvalidStateException', 'The external key is disabled');
    return key;
  }

  private async describe(key: XksKeyMapping): Promise<HsmKeyInfo> {
    const info = await this.hsm(() => this.backend.describeKey(key.label));
    if (!info) throw new XksError('KeyNotFoundException', 'The HSM has no key with the label this external key id maps to');
    return info;
  }

  private async checkUsage(key: XksKeyMapping, usage: 'canEncrypt' | 'canDecrypt'): Promise<void> {
    const info = await this.describe(key);
    if (!info.aes256) throw new XksError('InvalidKeyUsageException', 'The key is not an AES-256 key');
    if (!info[usage]) {
      throw new XksError('InvalidKeyUsageException', `The key may not be used to ${usage === 'canEncrypt' ? 'encrypt' : 'decrypt'}`);
    }
  }

  /** HSM failures in the spec's vocabulary. */
  private async hsm<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof HsmFailure)) throw error;
      switch (error.kind) {
        case 'AUTHENTICATION_FAILED':
          throw invalidCiphertext();
        case 'KEY_NOT_FOUND':
          throw new XksError('KeyNotFoundException', 'The HSM has no key with the label this external key id maps to');
        case 'KEY_AMBIGUOUS':
          throw new XksError('InvalidStateException', 'More than one HSM key has the label this external key id maps to');
        case 'BUSY':
          throw new XksError('ThrottlingException', 'Every HSM session is busy; retry');
        case 'UNAVAILABLE':
          throw new XksError('DependencyTimeoutException', 'The HSM is not reachable');
        default:
          throw new XksError('InternalException', 'The HSM operation failed');
      }
    }
  }
}

/** Exact match, or a prefix match for an entry ending in `*`. */
export function principalAllowed(allowed: readonly string[], principalArn: string): boolean {
  for (const entry of allowed) {
    if (entry.endsWith('*') ? principalArn.startsWith(entry.slice(0, -1)) : principalArn === entry) return true;
  }
  return false;
}
