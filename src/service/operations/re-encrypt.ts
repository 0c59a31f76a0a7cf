import type { ReEncryptRequest, ReEncryptResponse } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { KmsError } from '../errors.ts';
import { keyArn, stopIfDryRun } from '../key-resolution.ts';
import { decryptCiphertext, encryptWithCurrentVersion, keyForEncrypt } from '../encryption.ts';

/** Decrypts and encrypts again inside the service: the plaintext never leaves it. */
export const reEncrypt: Operation<ReEncryptRequest, ReEncryptResponse> = async (context, input, caller) => {
  if (input.CiphertextBlob === undefined) {
    throw new KmsError('ValidationException', 'CiphertextBlob is required.');
  }
  const destination = await keyForEncrypt(
    context,
    caller,
    input.DestinationKeyId as string,
    'ReEncrypt',
    input.DestinationEncryptionAlgorithm,
    { action: 'kms:ReEncryptTo', access: { encryptionContext: input.DestinationEncryptionContext } },
  );
  const source = await decryptCiphertext(context, {
    ciphertextBlob: input.CiphertextBlob,
    encryptionContext: input.SourceEncryptionContext,
    keyIdParameter: input.SourceKeyId,
    encryptionAlgorithm: input.SourceEncryptionAlgorithm,
    operation: 'ReEncrypt',
    caller,
    access: { action: 'kms:ReEncryptFrom' },
    contextParameter: 'SourceEncryptionContext',
    dryRun: () => stopIfDryRun(input.DryRun),
  });
  try {
    const { ciphertextBlob, version } = await encryptWithCurrentVersion(
      context,
      destination,
      source.plaintext,
      input.DestinationEncryptionContext,
      'DestinationEncryptionContext',
    );
    return {
      CiphertextBlob: ciphertextBlob,
      SourceKeyId: keyArn(context, source.key.keyId),
      KeyId: keyArn(context, destination.key.keyId),
      SourceEncryptionAlgorithm: source.algorithm as ReEncryptResponse['SourceEncryptionAlgorithm'],
      DestinationEncryptionAlgorithm: destination.algorithm as ReEncryptResponse['DestinationEncryptionAlgorithm'],
      // AWS reports the key material only for symmetric encryption keys.
      SourceKeyMaterialId: source.key.keySpec === 'SYMMETRIC_DEFAULT' ? source.version.keyMaterialId : undefined,
      DestinationKeyMaterialId: destination.key.keySpec === 'SYMMETRIC_DEFAULT' ? version.keyMaterialId : undefined,
    };
  } finally {
    source.plaintext.fill(0);
  }
};
