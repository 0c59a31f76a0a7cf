/**
 * What the proxy needs from the HSM, and nothing more: look up a key by its label, AES-GCM
 * encrypt and decrypt with it, and report health. The transport may not import the key stores
 * (test/architecture/layers.test.ts), so the PKCS#11 implementation is composed in by the CLI
 * (src/cli/xks-proxy.ts), and unit tests can supply node:crypto instead.
 */

/** What a key is, as far as the XKS metadata call asks. */
export interface HsmKeyInfo {
  /** True for an AES key of 32 bytes: the only key spec of XKS v1. */
  readonly aes256: boolean;
  readonly canEncrypt: boolean;
  readonly canDecrypt: boolean;
  readonly canWrap: boolean;
  readonly canUnwrap: boolean;
}

export interface GcmSealed {
  readonly initializationVector: Buffer;
  readonly ciphertext: Buffer;
  readonly authenticationTag: Buffer;
}

export type EkmHealthStatus = 'ACTIVE' | 'DEGRADED' | 'UNAVAILABLE';

export interface EkmHealth {
  /** ekmVendor: the token's manufacturer. */
  readonly vendor: string;
  readonly members: ReadonlyArray<{ readonly id: string; readonly model: string; readonly healthStatus: EkmHealthStatus }>;
}

/**
 * Why a backend call failed, as the proxy must answer it. Backends translate their own errors to
 * these kinds; messages must be free of key bytes, plaintext and PINs.
 */
export type HsmFailureKind =
  /** The label names no key in the HSM. */
  | 'KEY_NOT_FOUND'
  /** More than one key has the label: the proxy refuses to guess. */
  | 'KEY_AMBIGUOUS'
  /** The tag did not verify (wrong key, IV, AAD, ciphertext or tag). */
  | 'AUTHENTICATION_FAILED'
  /** No session became free in time. */
  | 'BUSY'
  /** The HSM is not reachable (removed, logged out, link down). */
  | 'UNAVAILABLE'
  | 'FAILED';

export class HsmFailure extends Error {
  override readonly name = 'HsmFailure';

  constructor(
    readonly kind: HsmFailureKind,
    message: string,
  ) {
    super(message);
  }
}

export interface HsmBackend {
  /** undefined when no key has the label. */
  describeKey(label: string): Promise<HsmKeyInfo | undefined>;
  /** AES-256-GCM under the labelled key with a fresh IV, 16-byte tag, `aad` as associated data. */
  encrypt(label: string, plaintext: Buffer, aad: Buffer): Promise<GcmSealed>;
  /** Throws HsmFailure('AUTHENTICATION_FAILED') when the tag does not verify. */
  decrypt(label: string, sealed: GcmSealed, aad: Buffer): Promise<Buffer>;
  /** A deep check: real crypto in the HSM, not only a session. */
  health(): Promise<EkmHealth>;
  close(): Promise<void>;
}
