import { randomUUID } from 'node:crypto';
import { CryptoError } from '../../crypto/errors.ts';
import type { SecretBytes } from '../../crypto/secret-bytes.ts';
import type { SoftwareKeyStore } from '../software/software-key-store.ts';
import {
  CustomKeyStoreConnectError,
  KeyStoreUnavailableError,
  type ConnectedKeyStore,
  type KeyStoreRequestInfo,
  type KeyVersionHandle,
  type SignRequest,
} from '../types.ts';
import { XksProxyError, type XksClient, type XksRequestMetadata } from './xks-client.ts';
import { ciphertextDataIntegrityValue, sameBytes } from '../../crypto/xks-integrity.ts';
import {
  decodeXksBlob,
  decodeXksMaterial,
  encodeXksBlob,
  encodeXksMaterial,
  xksHeader,
} from './xks-ciphertext.ts';

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

function fromB64(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    throw new KeyStoreUnavailableError(`the XKS proxy's ${what} is not base64`);
  }
  return Buffer.from(value, 'base64');
}

const metadataFor = (request: KeyStoreRequestInfo | undefined, operation: string): XksRequestMetadata => ({
  awsPrincipalArn: request?.principalArn ?? 'strongroom',
  kmsOperation: request?.operation ?? operation,
  kmsRequestId: request?.requestId || randomUUID(),
  ...(request?.keyArn ? { kmsKeyArn: request.keyArn } : {}),
});

/** A proxy failure during crypto: the caller gets KMSInvalidStateException, the log gets this. */
function unavailable(error: unknown): Error {
  if (error instanceof XksProxyError) {
    if (error.kind === 'InvalidCiphertextException') return new CryptoError('decryption failed');
    return new KeyStoreUnavailableError(error.message);
  }
  return error as Error;
}

const unsupported = (): never => {
  throw new KeyStoreUnavailableError('external key stores hold symmetric encryption keys only');
};

/**
 * An EXTERNAL_KEY_STORE key store while connected: double encryption. Each key version has its
 * own software material (sealed under the root key, as any software key's) and names an external
 * key in the proxy; encrypt makes a v1 blob with the first, then has the proxy encrypt that blob
 * under the second (format: xks-ciphertext.ts).
 */
export class XksKeyStore implements ConnectedKeyStore {
  constructor(
    private readonly client: XksClient,
    private readonly software: SoftwareKeyStore,
  ) {}

  async createVersionMaterial(keyId: string, version: number, keySpec: string, externalKeyId?: string): Promise<Buffer> {
    if (externalKeyId === undefined) throw new KeyStoreUnavailableError('an external key version needs its XksKeyId');
    const inner = await this.software.createVersionMaterial(keyId, version, keySpec);
    return encodeXksMaterial(externalKeyId, inner);
  }

  private split(handle: KeyVersionHandle): { xksKeyId: string; inner: KeyVersionHandle } {
    const { xksKeyId, innerMaterial } = decodeXksMaterial(handle.sealedMaterial);
    return { xksKeyId, inner: { keyId: handle.keyId, version: handle.version, sealedMaterial: innerMaterial } };
  }

  async encrypt(
    handle: KeyVersionHandle,
    plaintext: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
    request?: KeyStoreRequestInfo,
  ): Promise<Buffer> {
    const { xksKeyId, inner } = this.split(handle);
    const innerBlob = await this.software.encrypt(inner, plaintext, encryptionContext);
    const header = xksHeader(handle.keyId, handle.version);
    let response: Record<string, unknown>;
    try {
      response = await this.client.call(`keys/${encodeURIComponent(xksKeyId)}/encrypt`, {
        requestMetadata: metadataFor(request, 'Encrypt'),
        plaintext: b64(innerBlob),
        encryptionAlgorithm: 'AES_GCM',
        additionalAuthenticatedData: b64(header),
        ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
      });
    } catch (error) {
      throw unavailable(error);
    }
    const parts = {
      header,
      iv: fromB64(response.initializationVector, 'initializationVector'),
      ciphertextMetadata: response.ciphertextMetadata === undefined ? Buffer.alloc(0) : fromB64(response.ciphertextMetadata, 'ciphertextMetadata'),
      tag: fromB64(response.authenticationTag, 'authenticationTag'),
      ciphertext: fromB64(response.ciphertext, 'ciphertext'),
    };
    if (parts.ciphertext.length !== innerBlob.length) {
      throw new KeyStoreUnavailableError('the XKS proxy returned a ciphertext of the wrong length');
    }
    const expected = ciphertextDataIntegrityValue({
      additionalAuthenticatedData: header,
      ciphertextMetadata: parts.ciphertextMetadata,
      initializationVector: parts.iv,
      ciphertext: parts.ciphertext,
      authenticationTag: parts.tag,
    });
    const given = fromB64(response.ciphertextDataIntegrityValue, 'ciphertextDataIntegrityValue');
    if (!sameBytes(given, expected)) {
      throw new KeyStoreUnavailableError('the XKS proxy returned a ciphertextDataIntegrityValue that does not match');
    }
    try {
      return encodeXksBlob(parts);
    } catch {
      throw new KeyStoreUnavailableError('the XKS proxy returned an IV, tag or metadata of the wrong size');
    }
  }

  async decrypt(
    handle: KeyVersionHandle,
    ciphertextBlob: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
    request?: KeyStoreRequestInfo,
  ): Promise<Buffer> {
    const { xksKeyId, inner } = this.split(handle);
    const parts = decodeXksBlob(ciphertextBlob, handle.keyId, handle.version);
    let response: Record<string, unknown>;
    try {
      response = await this.client.call(`keys/${encodeURIComponent(xksKeyId)}/decrypt`, {
        requestMetadata: metadataFor(request, 'Decrypt'),
        ciphertext: b64(parts.ciphertext),
        encryptionAlgorithm: 'AES_GCM',
        initializationVector: b64(parts.iv),
        authenticationTag: b64(parts.tag),
        additionalAuthenticatedData: b64(parts.header),
        ...(parts.ciphertextMetadata.length > 0 ? { ciphertextMetadata: b64(parts.ciphertextMetadata) } : {}),
      });
    } catch (error) {
      throw unavailable(error);
    }
    const innerBlob = fromB64(response.plaintext, 'plaintext');
    return this.software.decrypt(inner, innerBlob, encryptionContext);
  }

  /** CreateKey's check: the external key exists, is AES_256, can encrypt and decrypt, and is enabled. */
  async checkExternalKey(xksKeyId: string): Promise<void> {
    let metadata: Record<string, unknown>;
    try {
      metadata = await this.client.call(`keys/${encodeURIComponent(xksKeyId)}/metadata`, {
        requestMetadata: { awsPrincipalArn: 'strongroom', kmsOperation: 'CreateKey', kmsRequestId: randomUUID() },
      });
    } catch (error) {
      if (error instanceof XksProxyError && error.kind === 'KeyNotFoundException') {
        throw new CustomKeyStoreConnectError('XKS_KEY_NOT_FOUND', `The external key ${xksKeyId} was not found by the proxy.`);
      }
      throw new CustomKeyStoreConnectError('XKS_KEY_INVALID_CONFIGURATION', `The proxy could not describe external key ${xksKeyId}.`);
    }
    const usage = Array.isArray(metadata.keyUsage) ? metadata.keyUsage : [];
    if (metadata.keySpec !== 'AES_256' || !usage.includes('ENCRYPT') || !usage.includes('DECRYPT') || metadata.keyStatus !== 'ENABLED') {
      throw new CustomKeyStoreConnectError(
        'XKS_KEY_INVALID_CONFIGURATION',
        `External key ${xksKeyId} must be an enabled AES_256 key that can encrypt and decrypt.`,
      );
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }

  forget(keyId: string): void {
    this.software.forget(keyId);
  }

  publicKey(): Promise<Buffer> {
    return unsupported();
  }
  sign(_handle: KeyVersionHandle, _request: SignRequest): Promise<Buffer> {
    return unsupported();
  }
  verify(): Promise<boolean> {
    return unsupported();
  }
  rsaEncrypt(): Promise<Buffer> {
    return unsupported();
  }
  rsaDecrypt(): Promise<Buffer> {
    return unsupported();
  }
  generateMac(): Promise<Buffer> {
    return unsupported();
  }
  verifyMac(): Promise<boolean> {
    return unsupported();
  }
  deriveSharedSecret(): Promise<SecretBytes> {
    return unsupported();
  }
}
