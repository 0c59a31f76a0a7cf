import { CryptoError } from '../crypto/errors.ts';
import { parseSymmetricCiphertextHeader } from '../crypto/symmetric-ciphertext.ts';
import type { KeyRecord, KeyVersionRecord } from '../storage/types.ts';
import type { ServiceContext } from './context.ts';
import { KmsError, invalidCiphertext } from './errors.ts';
import { requireEnabled, requireKeyUsage, resolveKey } from './key-resolution.ts';
import { versionForDecrypt } from './key-versions.ts';

type EncryptionContext = Record<string, string> | undefined;

// With the u flag a surrogate pair is one code point, so this matches unpaired surrogates only.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * JSON's \u escapes can carry a lone surrogate, which has no UTF-8 form of its own (it would
 * encode like U+FFFD and so alias another context). Refuse it as bad input; the message names
 * the parameter, never the value.
 */
function checkEncryptionContext(context: EncryptionContext, parameter: string): void {
  if (context === undefined) return;
  for (const key in context) {
    if (LONE_SURROGATE.test(key) || LONE_SURROGATE.test(context[key])) {
      throw new KmsError('ValidationException', `${parameter} must contain only well-formed Unicode strings.`);
    }
  }
}

/**
 * The one path every symmetric encryption takes (Encrypt, GenerateDataKey*, ReEncrypt's second
 * half): resolve, state check, usage check, then the key store with the current version.
 */
export async function keyForEncrypt(
  context: ServiceContext,
  keyIdParameter: string,
  operation: string,
  encryptionAlgorithm: string | undefined,
): Promise<KeyRecord> {
  const key = await resolveKey(context, keyIdParameter, { allowAlias: true });
  requireEnabled(context, key);
  requireKeyUsage(context, key, 'ENCRYPT_DECRYPT', operation);
  checkSymmetricAlgorithm(key, encryptionAlgorithm);
  return key;
}

export function checkSymmetricAlgorithm(key: KeyRecord, encryptionAlgorithm: string | undefined): void {
  if (encryptionAlgorithm !== undefined && encryptionAlgorithm !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError(
      'InvalidKeyUsageException',
      `Algorithm ${encryptionAlgorithm} is incompatible with key spec ${key.keySpec}.`,
    );
  }
}

export async function encryptWithCurrentVersion(
  context: ServiceContext,
  key: KeyRecord,
  plaintext: Uint8Array,
  encryptionContext: EncryptionContext,
  contextParameter = 'EncryptionContext',
): Promise<{ ciphertextBlob: Buffer; version: KeyVersionRecord }> {
  checkEncryptionContext(encryptionContext, contextParameter);
  const version = await context.store.getKeyVersion(key.keyId, key.currentVersion);
  if (!version) throw new KmsError('KMSInternalException', 'The current key version is missing.');
  const ciphertextBlob = await context.keyStore.encrypt(version, plaintext, encryptionContext);
  return { ciphertextBlob, version };
}

/**
 * Decrypt's one path. The blob names its key and version; a KeyId parameter, when given, must
 * name that same key (IncorrectKeyException otherwise). Anything wrong with the blob itself —
 * unreadable header, unknown key or version, failed authentication — is the same empty
 * InvalidCiphertextException, so a caller learns nothing from which check failed.
 */
export async function decryptCiphertext(
  context: ServiceContext,
  args: {
    ciphertextBlob: Uint8Array;
    encryptionContext: EncryptionContext;
    keyIdParameter: string | undefined;
    encryptionAlgorithm: string | undefined;
    operation: string;
    contextParameter?: string;
    dryRun?: () => void;
  },
): Promise<{ key: KeyRecord; version: KeyVersionRecord; plaintext: Buffer }> {
  checkEncryptionContext(args.encryptionContext, args.contextParameter ?? 'EncryptionContext');
  let header: { keyId: string; keyVersion: number };
  try {
    header = parseSymmetricCiphertextHeader(args.ciphertextBlob);
  } catch (error) {
    if (error instanceof CryptoError) throw invalidCiphertext();
    throw error;
  }
  let key: KeyRecord | undefined;
  if (args.keyIdParameter !== undefined) {
    key = await resolveKey(context, args.keyIdParameter, { allowAlias: true });
    if (key.keyId !== header.keyId) {
      throw new KmsError(
        'IncorrectKeyException',
        'The key ID in the request does not identify a CMK that can perform this operation.',
      );
    }
  } else {
    key = await context.store.getKey(header.keyId);
    if (!key) throw invalidCiphertext();
  }
  requireEnabled(context, key);
  requireKeyUsage(context, key, 'ENCRYPT_DECRYPT', args.operation);
  checkSymmetricAlgorithm(key, args.encryptionAlgorithm);
  const version = await versionForDecrypt(context, key.keyId, header.keyVersion);
  args.dryRun?.();
  try {
    const plaintext = await context.keyStore.decrypt(version, args.ciphertextBlob, args.encryptionContext);
    return { key, version, plaintext };
  } catch (error) {
    if (error instanceof CryptoError) throw invalidCiphertext();
    throw error;
  }
}

