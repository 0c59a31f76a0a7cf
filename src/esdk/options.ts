import type { CommitmentPolicy, CryptographicMaterialsManager, EncryptedDataKey, Keyring } from './types.ts';

export interface EncryptOptions {
  keyring?: Keyring;
  cmm?: CryptographicMaterialsManager;
  encryptionContext?: Record<string, string>;
  suiteId?: number;
  /** Frame length for framed bodies; default 4096, 1 … 2^32−1. Use contentType for non-framed. */
  frameLength?: number;
  contentType?: 'framed' | 'non-framed';
  /** Default REQUIRE_ENCRYPT_REQUIRE_DECRYPT. */
  commitmentPolicy?: CommitmentPolicy;
  maxEncryptedDataKeys?: number;
  /** Required for non-framed streaming; checked against the real length when given. */
  plaintextLength?: number;
  /** Context keys authenticated but not stored in the header (the decryptor must supply them). */
  requiredEncryptionContextKeys?: string[];
}

export interface DecryptOptions {
  keyring?: Keyring;
  cmm?: CryptographicMaterialsManager;
  commitmentPolicy?: CommitmentPolicy;
  maxEncryptedDataKeys?: number;
  /** Reproduced context: must match header values; supplies required keys. */
  encryptionContext?: Record<string, string>;
  /** decryptStream only: release plaintext of signed messages before the footer is verified. */
  allowUnsignedStreaming?: boolean;
}

export interface MessageHeaderInfo {
  version: 1 | 2;
  suiteId: number;
  messageId: Uint8Array;
  encryptionContext: Record<string, string>;
  encryptedDataKeys: EncryptedDataKey[];
  contentType: 'framed' | 'non-framed';
  frameLength: number;
}
