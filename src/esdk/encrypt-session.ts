import type { KeyObject } from 'node:crypto';
import { randomBytes } from './random.ts';
import { BodyCrypto, MAX_FRAME_LENGTH, MAX_NON_FRAMED_LENGTH, headerTag } from './body.ts';
import { DefaultCryptographicMaterialsManager } from './cmm/default-cmm.ts';
import { deriveKeys } from './derive.ts';
import { EsdkError } from './errors.ts';
import type { EncryptOptions, MessageHeaderInfo } from './options.ts';
import { serializeEncryptionContext } from './serialize/encryption-context.ts';
import { CONTENT_TYPE_FRAMED, CONTENT_TYPE_NON_FRAMED, serializeHeaderBody } from './serialize/header.ts';
import { assertEncryptAllowed, checkPolicy, hex4 } from './suites.ts';
import type { AlgorithmSuite, CryptographicMaterialsManager, EncryptionContext } from './types.ts';

/** Everything the body writer needs once the header is made (client-apis/encrypt.md steps 1–5). */
export interface EncryptSession {
  suite: AlgorithmSuite;
  header: Buffer;
  headerInfo: MessageHeaderInfo;
  framed: boolean;
  frameLength: number;
  body: BodyCrypto;
  /** The derived content key and message id (for helper threads on large messages). */
  contentKey: KeyObject;
  messageId: Uint8Array;
  signingKey: KeyObject | undefined;
}

export const DEFAULT_FRAME_LENGTH = 4096;
const RESERVED_PREFIX = 'aws-crypto-';

export function materialsManager(options: { keyring?: unknown; cmm?: CryptographicMaterialsManager }): CryptographicMaterialsManager {
  if (options.cmm && options.keyring) throw new EsdkError('InvalidArgument', 'pass either a keyring or a materials manager, not both');
  if (options.cmm) return options.cmm;
  if (options.keyring) return new DefaultCryptographicMaterialsManager(options.keyring as never);
  throw new EsdkError('InvalidArgument', 'a keyring or a materials manager is required');
}

export function checkMaxEncryptedDataKeys(value: number | undefined): number {
  if (value === undefined) return Infinity;
  if (!Number.isInteger(value) || value < 1) throw new EsdkError('InvalidArgument', 'maxEncryptedDataKeys must be a positive integer');
  return value;
}

export async function beginEncryption(options: EncryptOptions, plaintextLength: number | undefined): Promise<EncryptSession> {
  if (!options || typeof options !== 'object') throw new EsdkError('InvalidArgument', 'encrypt options are required');
  const policy = checkPolicy(options.commitmentPolicy ?? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT');
  const maxEdks = checkMaxEncryptedDataKeys(options.maxEncryptedDataKeys);
  const framed = (options.contentType ?? 'framed') === 'framed';
  if (options.contentType !== undefined && options.contentType !== 'framed' && options.contentType !== 'non-framed') {
    throw new EsdkError('InvalidArgument', 'contentType must be "framed" or "non-framed"');
  }
  const frameLength = framed ? (options.frameLength ?? DEFAULT_FRAME_LENGTH) : 0;
  if (framed && (!Number.isInteger(frameLength) || frameLength < 1 || frameLength > MAX_FRAME_LENGTH)) {
    throw new EsdkError('InvalidArgument', 'frameLength must be an integer from 1 to 2^32-1');
  }
  if (!framed && options.frameLength !== undefined) throw new EsdkError('InvalidArgument', 'frameLength does not apply to non-framed messages');
  if (plaintextLength !== undefined && (typeof plaintextLength !== 'number' || !Number.isSafeInteger(plaintextLength) || plaintextLength < 0)) {
    throw new EsdkError('InvalidArgument', 'plaintextLength must be a non-negative integer');
  }
  if (plaintextLength !== undefined && !framed && plaintextLength > MAX_NON_FRAMED_LENGTH) {
    throw new EsdkError('InvalidArgument', 'plaintext too long for a non-framed message');
  }
  const context: EncryptionContext = { ...(options.encryptionContext ?? {}) };
  for (const key of Object.keys(context)) {
    if (key.startsWith(RESERVED_PREFIX)) throw new EsdkError('InvalidArgument', `encryption context keys starting with ${RESERVED_PREFIX} are reserved`);
  }
  const cmm = materialsManager(options);
  const materials = await cmm.getEncryptionMaterials({
    encryptionContext: context,
    commitmentPolicy: policy,
    ...(options.suiteId !== undefined ? { suiteId: options.suiteId } : {}),
    ...(plaintextLength !== undefined ? { plaintextLength } : {}),
    ...(options.requiredEncryptionContextKeys ? { requiredEncryptionContextKeys: options.requiredEncryptionContextKeys } : {}),
  });
  // A custom CMM is trusted for key material but not for the caller's choices.
  const suite = materials.suite;
  if (options.suiteId !== undefined && suite.id !== options.suiteId) {
    throw new EsdkError('PolicyViolation', `the materials manager chose suite 0x${hex4(suite.id)} instead of the requested one`);
  }
  assertEncryptAllowed(policy, suite);
  if (materials.encryptedDataKeys.length > maxEdks) {
    throw new EsdkError('TooManyEncryptedDataKeys', `${materials.encryptedDataKeys.length} encrypted data keys exceed the maximum of ${maxEdks}`);
  }
  if (materials.encryptedDataKeys.length > 0xffff) throw new EsdkError('TooManyEncryptedDataKeys', 'more than 65535 encrypted data keys');
  if (!materials.plaintextDataKey) throw new EsdkError('KeyringFailure', 'the materials have no data key');
  if (suite.signature && !materials.signingKey) throw new EsdkError('KeyringFailure', 'signing suite without a signing key');
  const messageId = randomBytes(suite.messageFormatVersion === 1 ? 16 : 32);
  const { contentKey, commitment } = deriveKeys(suite, materials.plaintextDataKey, messageId);

  // Required keys are authenticated but not stored (client-apis/encrypt.md, "encryption context to only authenticate").
  const required = new Set(materials.requiredEncryptionContextKeys);
  const stored: Record<string, string> = {};
  const authOnly: Record<string, string> = {};
  for (const [key, value] of Object.entries(materials.encryptionContext)) (required.has(key) ? authOnly : stored)[key] = value;
  const headerBody = serializeHeaderBody({
    suite,
    messageId,
    serializedContext: serializeEncryptionContext(stored),
    encryptedDataKeys: materials.encryptedDataKeys,
    contentType: framed ? CONTENT_TYPE_FRAMED : CONTENT_TYPE_NON_FRAMED,
    frameLength,
    suiteData: commitment,
  });
  const headerIv = Buffer.alloc(12); // message-header.md: the header IV is all zeros
  const tag = headerTag(suite, contentKey, headerIv, headerBody, serializeEncryptionContext(authOnly));
  const header = suite.messageFormatVersion === 1 ? Buffer.concat([headerBody, headerIv, tag]) : Buffer.concat([headerBody, tag]);
  return {
    suite,
    header,
    headerInfo: {
      version: suite.messageFormatVersion,
      suiteId: suite.id,
      messageId,
      encryptionContext: stored,
      encryptedDataKeys: [...materials.encryptedDataKeys],
      contentType: framed ? 'framed' : 'non-framed',
      frameLength,
      commitmentKey: commitment,
      headerAuth: { iv: headerIv, tag },
    },
    framed,
    frameLength,
    body: new BodyCrypto(suite, contentKey, messageId),
    contentKey,
    messageId,
    signingKey: materials.signingKey,
  };
}
