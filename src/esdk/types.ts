/**
 * The AWS Encryption SDK's materials model (aws-encryption-sdk-specification, framework/):
 * keyrings produce and consume encrypted data keys; a cryptographic materials manager (CMM)
 * assembles the materials an encrypt or decrypt call needs. Keyrings and CMMs written against these
 * types are interchangeable with each other, as in the official SDKs.
 */
import type { KeyObject } from 'node:crypto';

/** Two-byte algorithm suite ids from the specification (0x0014 … 0x0378, 0x0478, 0x0578). */
export type AlgorithmSuiteId = number;

export type CommitmentPolicy = 'FORBID_ENCRYPT_ALLOW_DECRYPT' | 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' | 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT';

/** Encryption-context key under which a signing suite carries its public verification key. */
export const PUBLIC_KEY_CONTEXT_KEY = 'aws-crypto-public-key';

export interface AlgorithmSuite {
  id: AlgorithmSuiteId;
  /** Message format version the suite writes: 1 (non-committing) or 2 (committing). */
  messageFormatVersion: 1 | 2;
  /** AES-GCM data key length in bytes: 16, 24 or 32. */
  keyLength: 16 | 24 | 32;
  ivLength: 12;
  tagLength: 16;
  /** How the data key becomes the content key: IDENTITY (0x0014…0x0078) or HKDF with this hash. */
  kdf: { kind: 'identity' } | { kind: 'hkdf'; hash: 'sha256' | 'sha384' | 'sha512' };
  /** Key commitment (message format 2): 32-byte suite data in the header. */
  committing: boolean;
  /** ECDSA footer signature, or none. */
  signature: { curve: 'P-256' | 'P-384'; hash: 'sha256' | 'sha384' } | undefined;
}

export interface EncryptedDataKey {
  /** UTF-8 provider id ("aws-kms", or a raw keyring's namespace). */
  providerId: string;
  providerInfo: Uint8Array;
  ciphertext: Uint8Array;
}

export type EncryptionContext = Readonly<Record<string, string>>;

export interface EncryptionMaterials {
  suite: AlgorithmSuite;
  /** Includes PUBLIC_KEY_CONTEXT_KEY for signing suites (added by the CMM). */
  encryptionContext: EncryptionContext;
  encryptedDataKeys: readonly EncryptedDataKey[];
  /** Set by the first keyring that generates it; never logged. */
  plaintextDataKey: Uint8Array | undefined;
  /** ECDSA private key for signing suites (set by the CMM). */
  signingKey: KeyObject | undefined;
  /** Keys of the context that are authenticated but not stored in the message header. */
  requiredEncryptionContextKeys: readonly string[];
}

export interface DecryptionMaterials {
  suite: AlgorithmSuite;
  encryptionContext: EncryptionContext;
  /** Set by the first keyring that decrypts one of the message's encrypted data keys. */
  plaintextDataKey: Uint8Array | undefined;
  /** ECDSA public key for signing suites (set by the CMM from the context). */
  verificationKey: KeyObject | undefined;
  requiredEncryptionContextKeys: readonly string[];
}

export interface Keyring {
  /** Returns new materials with a data key generated (if none yet) and/or one more encrypted data key. */
  onEncrypt(materials: EncryptionMaterials): Promise<EncryptionMaterials>;
  /** Returns the materials with plaintextDataKey set if this keyring could decrypt one of the keys; otherwise unchanged. */
  onDecrypt(materials: DecryptionMaterials, encryptedDataKeys: readonly EncryptedDataKey[]): Promise<DecryptionMaterials>;
}

export interface EncryptionMaterialsRequest {
  encryptionContext: EncryptionContext;
  commitmentPolicy: CommitmentPolicy;
  /** Requested suite; the CMM picks its default otherwise (0x0578 under REQUIRE_*, 0x0378 under FORBID). */
  suiteId?: AlgorithmSuiteId;
  /** Plaintext length when known (caching CMMs count bytes with it). */
  plaintextLength?: number;
  requiredEncryptionContextKeys?: readonly string[];
}

export interface DecryptionMaterialsRequest {
  suiteId: AlgorithmSuiteId;
  commitmentPolicy: CommitmentPolicy;
  encryptedDataKeys: readonly EncryptedDataKey[];
  /** The context stored in the message header. */
  encryptionContext: EncryptionContext;
  /** Context the caller supplies at decrypt (for required keys not stored in the header). */
  reproducedEncryptionContext?: EncryptionContext;
}

export interface CryptographicMaterialsManager {
  getEncryptionMaterials(request: EncryptionMaterialsRequest): Promise<EncryptionMaterials>;
  decryptMaterials(request: DecryptionMaterialsRequest): Promise<DecryptionMaterials>;
}
