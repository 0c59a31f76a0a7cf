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
  /**
   * Refuse a message whose frames (non-framed: whose content) are longer than this many bytes,
   * before any keyring is asked for a framed one: what decryptStream must hold before it can
   * authenticate a frame. A positive integer; default no limit (as the official SDK's `maxBodySize`).
   */
  maxBodySize?: number;
  /** Reproduced context: must match header values; supplies required keys. */
  encryptionContext?: Record<string, string>;
  /**
   * decryptStream only: release each frame of a signed message once its tag verified, before the
   * footer signature is checked (a bad signature is then reported after plaintext was emitted).
   */
  allowUnsignedStreaming?: boolean;
  /**
   * decryptStream only: where what must be withheld until it is authenticated is spilled once it
   * outgrows `spillThreshold` (a signed message's frames as they came, MACed; a non-framed body's
   * plaintext, encrypted; either under a key held only in memory; the file is unlinked as soon as
   * it is open). Default: os.tmpdir().
   */
  spillDirectory?: string;
  /** decryptStream only: withheld plaintext kept in memory before spilling; default 4 MiB. */
  spillThreshold?: number;
}

export interface MessageHeaderInfo {
  version: 1 | 2;
  suiteId: number;
  messageId: Uint8Array;
  encryptionContext: Record<string, string>;
  encryptedDataKeys: EncryptedDataKey[];
  contentType: 'framed' | 'non-framed';
  frameLength: number;
  /** Committing suites (format version 2): the header's 32-byte commitment key (suite data); else undefined. */
  commitmentKey: Uint8Array | undefined;
  /** The header's authentication: its IV (version 1: as in the message; version 2: 12 zero bytes) and tag. */
  headerAuth: { iv: Uint8Array; tag: Uint8Array };
}
