import { CryptoError } from '../crypto/errors.ts';
import { rsaOaepMaxPlaintext, type RsaEncryptionAlgorithm, type RsaKeySpec } from '../crypto/index.ts';
import { parseSymmetricCiphertextHeader } from '../crypto/symmetric-ciphertext.ts';
import type { KeyRecord, KeyVersionRecord } from '../storage/types.ts';
import { authorize, requestAliasOf, resolveKeyFor, type AccessRequest } from './authorization.ts';
import type { Caller, ServiceContext } from './context.ts';
import { KmsError, invalidCiphertext } from './errors.ts';
import { requireEnabled, requireKeyUsage, resolveKey } from './key-resolution.ts';
import { profileOf } from './key-specs.ts';
import { currentVersion, versionForDecrypt } from './key-versions.ts';
import { keyStoreFailure, keyStoreFor, requestInfo } from './key-stores.ts';

type EncryptionContext = Record<string, string> | undefined;

// With the u flag a surrogate pair is one code point, so this matches unpaired surrogates only.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * JSON's \u escapes can carry a lone surrogate, which has no UTF-8 form of its own (it would
 * encode like U+FFFD and so alias another context). The transport refuses them already; the
 * service refuses them too, being reachable from other transports. Names the parameter only.
 */
function checkEncryptionContext(context: EncryptionContext, parameter: string): void {
  if (context === undefined) return;
  for (const key in context) {
    if (LONE_SURROGATE.test(key) || LONE_SURROGATE.test(context[key])) {
      throw new KmsError('ValidationException', `${parameter} must contain only well-formed Unicode strings.`);
    }
  }
}

const isSymmetric = (key: KeyRecord): boolean => key.keySpec === 'SYMMETRIC_DEFAULT';

/**
 * The encryption algorithm a request may use with this key: SYMMETRIC_DEFAULT (the default) for
 * symmetric keys; one of the spec's RSAES_OAEP algorithms, named explicitly, for RSA keys.
 */
function encryptionAlgorithmFor(key: KeyRecord, requested: string | undefined): string {
  const algorithm = requested ?? 'SYMMETRIC_DEFAULT';
  if (!(profileOf(key).encryptionAlgorithms ?? []).includes(algorithm)) {
    throw new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
  return algorithm;
}

export interface EncryptionKey {
  key: KeyRecord;
  algorithm: string;
  /** Who asked, for key stores that report it (an XKS proxy's requestMetadata). */
  caller: Caller;
  operation: string;
}

/**
 * The one path every encryption takes (Encrypt, ReEncrypt's second half, GenerateDataKey* and
 * GenerateDataKeyPair* with symmetricOnly): resolve, state, usage, algorithm.
 */
export async function keyForEncrypt(
  context: ServiceContext,
  caller: Caller,
  keyIdParameter: string,
  operation: string,
  encryptionAlgorithm: string | undefined,
  options: { symmetricOnly?: boolean; action?: string; access?: Omit<AccessRequest, 'action' | 'key'> } = {},
): Promise<EncryptionKey> {
  const key = await resolveKeyFor(context, caller, keyIdParameter, {
    allowAlias: true,
    action: options.action ?? `kms:${operation}`,
    ...options.access,
    conditions: { 'kms:EncryptionAlgorithm': encryptionAlgorithm ?? 'SYMMETRIC_DEFAULT', ...options.access?.conditions },
  });
  requireEnabled(context, key);
  requireKeyUsage(context, key, 'ENCRYPT_DECRYPT', operation);
  if (options.symmetricOnly && !isSymmetric(key)) {
    throw new KmsError('InvalidKeyUsageException', `${operation} requires a symmetric encryption KMS key; this key's spec is ${key.keySpec}.`);
  }
  return { key, algorithm: encryptionAlgorithmFor(key, encryptionAlgorithm), caller, operation };
}

export async function encryptWithCurrentVersion(
  context: ServiceContext,
  target: EncryptionKey,
  plaintext: Uint8Array,
  encryptionContext: EncryptionContext,
  contextParameter = 'EncryptionContext',
): Promise<{ ciphertextBlob: Buffer; version: KeyVersionRecord }> {
  checkEncryptionContext(encryptionContext, contextParameter);
  const { key, algorithm } = target;
  const version = await currentVersion(context, key);
  if (isSymmetric(key)) {
    const keyStore = await keyStoreFor(context, key);
    const request = requestInfo(context, key, target.caller, target.operation);
    try {
      return { ciphertextBlob: await keyStore.encrypt(version, plaintext, encryptionContext, request), version };
    } catch (error) {
      throw keyStoreFailure(context, key, error);
    }
  }
  checkNoContext(encryptionContext, contextParameter);
  const limit = rsaOaepMaxPlaintext(key.keySpec as RsaKeySpec, algorithm as RsaEncryptionAlgorithm);
  if (plaintext.length > limit) {
    throw new KmsError(
      'ValidationException',
      `Algorithm ${algorithm} and key spec ${key.keySpec} cannot encrypt data larger than ${limit} bytes.`,
    );
  }
  return { ciphertextBlob: await (await keyStoreFor(context, key)).rsaEncrypt(version, key.keySpec, algorithm, plaintext), version };
}

/** Encryption contexts exist only for symmetric keys (AWS: "not supported for asymmetric keys"). */
function checkNoContext(encryptionContext: EncryptionContext, parameter: string): void {
  if (encryptionContext !== undefined && Object.keys(encryptionContext).length > 0) {
    throw new KmsError('ValidationException', `${parameter} is not supported with asymmetric KMS keys.`);
  }
}

/**
 * Decrypt's one path. A symmetric blob names its key and version; a KeyId parameter, when given,
 * must name that same key (IncorrectKeyException otherwise). RSA ciphertexts carry nothing, so
 * they need the KeyId and the algorithm. Anything wrong with the ciphertext itself — unreadable
 * header, unknown key or version, failed authentication or padding — is the same empty
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
    /** The caller and the policy action this decryption needs on the key (kms:Decrypt, kms:ReEncryptFrom). */
    caller: Caller;
    access: Omit<AccessRequest, 'key' | 'encryptionContext'>;
  },
): Promise<{ key: KeyRecord; version: KeyVersionRecord; plaintext: Buffer; algorithm: string }> {
  const contextParameter = args.contextParameter ?? 'EncryptionContext';
  checkEncryptionContext(args.encryptionContext, contextParameter);
  const named =
    args.keyIdParameter === undefined ? undefined : await resolveKey(context, args.keyIdParameter, { allowAlias: true });
  const access = (key: KeyRecord) =>
    authorize(context, args.caller, {
      ...args.access,
      key,
      encryptionContext: args.encryptionContext,
      requestAlias: key === named ? requestAliasOf(args.keyIdParameter) : undefined,
      conditions: { 'kms:EncryptionAlgorithm': args.encryptionAlgorithm ?? 'SYMMETRIC_DEFAULT', ...args.access.conditions },
    });
  // Only RSA encryption keys have ciphertexts without our header. Any other key named here
  // (HMAC, signing, key agreement) cannot have made the blob: AWS answers IncorrectKeyException,
  // which the header check below gives.
  if (named !== undefined && !isSymmetric(named) && named.keyUsage === 'ENCRYPT_DECRYPT') {
    await access(named);
    return decryptAsymmetric(context, named, args, contextParameter);
  }

  let header: { keyId: string; keyVersion: number };
  try {
    header = parseSymmetricCiphertextHeader(args.ciphertextBlob);
  } catch (error) {
    if (error instanceof CryptoError) throw invalidCiphertext();
    throw error;
  }
  let key = named;
  if (key !== undefined) {
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
  await access(key);
  requireEnabled(context, key);
  requireKeyUsage(context, key, 'ENCRYPT_DECRYPT', args.operation);
  const algorithm = encryptionAlgorithmFor(key, args.encryptionAlgorithm);
  const version = await versionForDecrypt(context, key.keyId, header.keyVersion);
  const keyStore = await keyStoreFor(context, key);
  args.dryRun?.();
  try {
    const request = requestInfo(context, key, args.caller, args.operation);
    const plaintext = await keyStore.decrypt(version, args.ciphertextBlob, args.encryptionContext, request);
    return { key, version, plaintext, algorithm };
  } catch (error) {
    if (error instanceof CryptoError) throw invalidCiphertext();
    throw keyStoreFailure(context, key, error);
  }
}

async function decryptAsymmetric(
  context: ServiceContext,
  key: KeyRecord,
  args: { ciphertextBlob: Uint8Array; encryptionContext: EncryptionContext; encryptionAlgorithm: string | undefined; operation: string; dryRun?: () => void },
  contextParameter: string,
): Promise<{ key: KeyRecord; version: KeyVersionRecord; plaintext: Buffer; algorithm: string }> {
  requireEnabled(context, key);
  requireKeyUsage(context, key, 'ENCRYPT_DECRYPT', args.operation);
  const algorithm = encryptionAlgorithmFor(key, args.encryptionAlgorithm);
  checkNoContext(args.encryptionContext, contextParameter);
  const version = await currentVersion(context, key);
  const keyStore = await keyStoreFor(context, key);
  args.dryRun?.();
  try {
    const plaintext = await keyStore.rsaDecrypt(version, algorithm, args.ciphertextBlob);
    return { key, version, plaintext, algorithm };
  } catch (error) {
    if (error instanceof CryptoError) throw invalidCiphertext();
    throw error;
  }
}
