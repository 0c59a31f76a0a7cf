import type { KeyObject } from 'node:crypto';
import { BodyCrypto, verifyHeaderTag } from './body.ts';
import { assertCommitment, deriveKeys } from './derive.ts';
import { checkMaxEncryptedDataKeys, materialsManager } from './encrypt-session.ts';
import { EsdkError } from './errors.ts';
import type { DecryptOptions, MessageHeaderInfo } from './options.ts';
import { serializeEncryptionContext } from './serialize/encryption-context.ts';
import { CONTENT_TYPE_FRAMED, Incomplete, parseHeader, type ParsedHeader } from './serialize/header.ts';
import { assertDecryptAllowed, checkPolicy } from './suites.ts';

export interface DecryptSession {
  header: ParsedHeader;
  headerInfo: MessageHeaderInfo;
  body: BodyCrypto;
  contentKey: KeyObject;
  verificationKey: KeyObject | undefined;
}

export interface DecryptSettings {
  policy: ReturnType<typeof checkPolicy>;
  maxEncryptedDataKeys: number;
  /** Longest frame (or non-framed content) the caller accepts; Infinity without `maxBodySize`. */
  maxBodySize: number;
}

export function decryptSettings(options: DecryptOptions): DecryptSettings {
  if (!options || typeof options !== 'object') throw new EsdkError('InvalidArgument', 'decrypt options are required');
  materialsManager(options); // fail on a missing keyring before reading any input
  return {
    policy: checkPolicy(options.commitmentPolicy ?? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'),
    maxEncryptedDataKeys: checkMaxEncryptedDataKeys(options.maxEncryptedDataKeys),
    maxBodySize: checkMaxBodySize(options.maxBodySize),
  };
}

function checkMaxBodySize(value: number | undefined): number {
  if (value === undefined) return Infinity;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new EsdkError('InvalidArgument', 'maxBodySize must be a positive integer');
  return value;
}

/** A frame's or a non-framed body's length against the caller's `maxBodySize`. */
export function checkBodySize(length: number, settings: DecryptSettings, what: 'frame length' | 'non-framed content length'): void {
  if (length > settings.maxBodySize) throw new EsdkError('BodyTooLarge', `${what} ${length} exceeds maxBodySize ${settings.maxBodySize}`);
}

function tooMany(count: number): never {
  throw new EsdkError('TooManyEncryptedDataKeys', `${count} encrypted data keys exceed the configured maximum`);
}

/**
 * Parses the header at the start of `bytes`; undefined when more bytes are needed, and then
 * `hint.needed` says how many at least.
 */
export function tryParseHeader(bytes: Buffer, settings: DecryptSettings, hint?: { needed: number }): ParsedHeader | undefined {
  try {
    const header = parseHeader(bytes, settings.maxEncryptedDataKeys, tooMany);
    // Fail on policy before any keyring is asked (client-apis/decrypt.md).
    assertDecryptAllowed(settings.policy, header.suite);
    if (header.contentType === CONTENT_TYPE_FRAMED) checkBodySize(header.frameLength, settings, 'frame length');
    return header;
  } catch (error) {
    if (error instanceof Incomplete) {
      if (hint) hint.needed = error.needed;
      return undefined;
    }
    throw error;
  }
}

/**
 * client-apis/decrypt.md after parsing: get materials, derive the content key, check the key
 * commitment (constant time) and the header tag. Nothing of the body is touched before this passes.
 */
export async function beginDecryption(header: ParsedHeader, options: DecryptOptions, settings: DecryptSettings): Promise<DecryptSession> {
  const cmm = materialsManager(options);
  const materials = await cmm.decryptMaterials({
    suiteId: header.suite.id,
    commitmentPolicy: settings.policy,
    encryptedDataKeys: header.encryptedDataKeys,
    encryptionContext: header.encryptionContext,
    ...(options.encryptionContext ? { reproducedEncryptionContext: options.encryptionContext } : {}),
  });
  if (materials.suite.id !== header.suite.id) throw new EsdkError('KeyringFailure', 'the materials manager returned materials for another suite');
  if (!materials.plaintextDataKey) throw new EsdkError('NoDecryptableKey', 'no keyring could decrypt any of the encrypted data keys');
  if (header.suite.signature && !materials.verificationKey) throw new EsdkError('KeyringFailure', 'signing suite without a verification key');
  const { contentKey, commitment } = deriveKeys(header.suite, materials.plaintextDataKey, header.messageId);
  if (commitment) assertCommitment(commitment, header.suiteData);
  // Reproduced values must match stored ones even with a custom CMM.
  for (const [key, value] of Object.entries(options.encryptionContext ?? {})) {
    if (Object.hasOwn(header.encryptionContext, key) && header.encryptionContext[key] !== value) {
      throw new EsdkError('ContextMismatch', 'the reproduced encryption context does not match the message');
    }
  }
  const authOnly: Record<string, string> = {};
  for (const key of materials.requiredEncryptionContextKeys) {
    if (!Object.hasOwn(header.encryptionContext, key) && Object.hasOwn(materials.encryptionContext, key)) authOnly[key] = materials.encryptionContext[key];
  }
  verifyHeaderTag(header.suite, contentKey, header.headerIv, header.headerBody, serializeEncryptionContext(authOnly), header.headerTag);
  return {
    header,
    headerInfo: {
      version: header.version,
      suiteId: header.suite.id,
      messageId: header.messageId,
      encryptionContext: header.encryptionContext,
      encryptedDataKeys: [...header.encryptedDataKeys],
      contentType: header.contentType === CONTENT_TYPE_FRAMED ? 'framed' : 'non-framed',
      frameLength: header.frameLength,
      commitmentKey: header.suiteData,
      headerAuth: { iv: header.headerIv, tag: header.headerTag },
    },
    body: new BodyCrypto(header.suite, contentKey, header.messageId),
    contentKey,
    verificationKey: materials.verificationKey,
  };
}
