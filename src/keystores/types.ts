import type { SecretBytes } from '../crypto/secret-bytes.ts';

/**
 * Where key material lives and crypto happens. A key store gets a key version handle and bytes
 * and returns bytes: it never sees HTTP, policy or the database. Software keys now; PKCS#11 HSM
 * clusters and external (XKS) key stores implement the same interface later.
 *
 * Algorithm and spec names are AWS's (`RSASSA_PSS_SHA_256`, `ECC_NIST_P256`, …); the service
 * has already checked that they fit the key.
 */

export interface KeyVersionHandle {
  readonly keyId: string;
  readonly version: number;
  /** What the store returned from createVersionMaterial, as persisted. */
  readonly sealedMaterial: Buffer;
}

export interface SignRequest {
  readonly keySpec: string;
  readonly algorithm: string;
  readonly message: Uint8Array;
  readonly messageType: string;
}

/**
 * Who asked and why, for key stores that report it onward (an XKS proxy logs it as the spec's
 * requestMetadata). Never secret.
 */
export interface KeyStoreRequestInfo {
  readonly principalArn: string;
  /** The KMS operation, e.g. "Encrypt". */
  readonly operation: string;
  readonly requestId: string;
  readonly keyArn: string;
}

/**
 * A key store could not do what was asked for a reason that is not the caller's data: its HSMs or
 * proxy are unreachable, slow, or refuse. The service answers KMSInvalidStateException (AWS's
 * answer for custom key stores), never the message, which is for the operator's log.
 */
export class KeyStoreUnavailableError extends Error {
  /** `cause`: the key store's own error, for the operator's log and for tests (carries no secrets). */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyStoreUnavailableError';
  }
}

export interface KeyStore {
  /**
   * Makes material for a new key version of any supported spec; returns it in the form to persist.
   * `externalKeyId`: the external key backing it (EXTERNAL_KEY_STORE keys only).
   */
  createVersionMaterial(keyId: string, version: number, keySpec: string, externalKeyId?: string): Promise<Buffer>;

  /** SYMMETRIC_DEFAULT: encrypts under the version, producing a self-describing ciphertext blob. */
  encrypt(
    handle: KeyVersionHandle,
    plaintext: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
    request?: KeyStoreRequestInfo,
  ): Promise<Buffer>;
  /** SYMMETRIC_DEFAULT: decrypts a blob made by encrypt; throws CryptoError on any authentication failure. */
  decrypt(
    handle: KeyVersionHandle,
    ciphertextBlob: Uint8Array,
    encryptionContext: Readonly<Record<string, string>> | undefined,
    request?: KeyStoreRequestInfo,
  ): Promise<Buffer>;

  /** Asymmetric specs: the DER SubjectPublicKeyInfo. */
  publicKey(handle: KeyVersionHandle, keySpec: string): Promise<Buffer>;
  sign(handle: KeyVersionHandle, request: SignRequest): Promise<Buffer>;
  verify(handle: KeyVersionHandle, request: SignRequest & { signature: Uint8Array }): Promise<boolean>;
  /** RSA ENCRYPT_DECRYPT keys: RSAES-OAEP. Decrypt throws CryptoError on any failure. */
  rsaEncrypt(handle: KeyVersionHandle, keySpec: string, algorithm: string, plaintext: Uint8Array): Promise<Buffer>;
  rsaDecrypt(handle: KeyVersionHandle, algorithm: string, ciphertext: Uint8Array): Promise<Buffer>;
  /** HMAC keys. */
  generateMac(handle: KeyVersionHandle, algorithm: string, message: Uint8Array): Promise<Buffer>;
  verifyMac(handle: KeyVersionHandle, algorithm: string, message: Uint8Array, mac: Uint8Array): Promise<boolean>;
  /** KEY_AGREEMENT keys: ECDH with a peer's DER SPKI; throws CryptoError for an unusable peer key. */
  deriveSharedSecret(handle: KeyVersionHandle, keySpec: string, peerPublicKey: Uint8Array): Promise<SecretBytes>;

  /** Drops anything held in memory for the key (called when its material is destroyed). */
  forget(keyId: string): void;
}

/**
 * AWS's ConnectionErrorCodeType: why a custom key store could not connect (DescribeCustomKeyStores
 * reports it while the store is FAILED). Messages name the cause, never a PIN or secret.
 */
export class CustomKeyStoreConnectError extends Error {
  constructor(
    readonly connectionErrorCode: string,
    message: string,
  ) {
    super(message);
    this.name = 'CustomKeyStoreConnectError';
  }
}

/** A custom key store's key store while it is connected (one per store per process). */
export interface ConnectedKeyStore extends KeyStore {
  /** Ends the connection: sessions logged out, sockets closed. */
  close(): Promise<void>;
  /** Random bytes from the store's own generator (GenerateRandom with a CloudHSM key store). */
  generateRandom?(length: number, request?: Omit<KeyStoreRequestInfo, 'keyArn'>): Promise<Buffer>;
  /**
   * Destroys the versions' material where it lives (every HSM of a cluster), when the key's
   * deletion is carried out.
   */
  destroyMaterial?(handles: readonly KeyVersionHandle[]): Promise<void>;
  /** EXTERNAL_KEY_STORE: checks an external key exists and can encrypt and decrypt (CreateKey with XksKeyId). */
  checkExternalKey?(xksKeyId: string): Promise<void>;
  /**
   * Checks, without touching key material or the store's audit log, whether what serves the
   * store still answers, and reports each of its parts (AWS_CLOUDHSM: each HSM member). For
   * /readyz and the member gauge; absent where there is no such cheap check.
   */
  checkHealth?(): Promise<KeyStoreHealth>;
}

/** What ConnectedKeyStore.checkHealth found. */
export interface KeyStoreHealth {
  /** At least one part can serve requests now. */
  readonly serving: boolean;
  /** Each part by name (an HSM member's name), and whether it is in service. */
  readonly members: readonly { readonly name: string; readonly up: boolean }[];
}

/** What a custom key store's backend needs to connect: its configuration and its unsealed secret. */
export interface CustomKeyStoreConnectRequest {
  readonly customKeyStoreId: string;
  /** AWS_CLOUDHSM: the Strongroom HSM cluster id. */
  readonly cloudHsmClusterId?: string;
  /** EXTERNAL_KEY_STORE: the proxy. */
  readonly xksProxy?: {
    readonly uriEndpoint: string;
    readonly uriPath: string;
    readonly accessKeyId: string;
  };
  /** The crypto user's PIN, or the proxy's SigV4 secret access key. */
  readonly secret: string;
}

/** One kind of custom key store (AWS_CLOUDHSM, EXTERNAL_KEY_STORE). */
export interface CustomKeyStoreBackend {
  /**
   * Checks a configuration before it is saved (CreateCustomKeyStore, UpdateCustomKeyStore): the
   * cluster exists and has members, the proxy answers and accepts the credential. Throws
   * CustomKeyStoreConnectError with the code of what is wrong.
   */
  check(request: CustomKeyStoreConnectRequest): Promise<void>;
  /** Connects, or throws CustomKeyStoreConnectError with the AWS error code. */
  connect(request: CustomKeyStoreConnectRequest): Promise<ConnectedKeyStore>;
  /**
   * Records, without a connection, that these key versions' material must be destroyed wherever
   * it lives (an HSM cluster: a destroy owed by every member, applied when each is next connected
   * or re-synchronised). Called before the key's row is deleted, so the handles are never lost.
   * The record can be taken back only through what this returns, which knows what it replaced.
   */
  oweDestruction?(target: CustomKeyStoreTarget, handles: readonly KeyVersionHandle[]): Promise<OwedDestruction>;
  /**
   * Removes these key versions from every backup the store manages, without a connection; returns
   * the backup files that were missing (nothing to clean, but the operator should know).
   */
  cleanBackups?(target: CustomKeyStoreTarget, handles: readonly KeyVersionHandle[]): Promise<{ missing: string[] }>;
}

/** A destruction oweDestruction recorded, to be taken back if the key was not deleted after all. */
export interface OwedDestruction {
  /**
   * Puts back what was owed before the destruction was recorded: an HSM member that was down when
   * the key was made still owes its create, and must not be left owing nothing.
   */
  withdraw(): Promise<void>;
}

/** Which store, without its credential. */
export type CustomKeyStoreTarget = Omit<CustomKeyStoreConnectRequest, 'secret'>;
