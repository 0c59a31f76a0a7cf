import type { SignRequest, SignResponse, VerifyRequest, VerifyResponse } from '@aws-sdk/client-kms';
import { digestLength, type SigningAlgorithm } from '../../crypto/index.ts';
import type { KeyRecord } from '../../storage/types.ts';
import type { Caller, Operation, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { resolveKeyFor } from '../authorization.ts';
import { keyArn, requireEnabled, requireKeyUsage, stopIfDryRun } from '../key-resolution.ts';
import { profileOf } from '../key-specs.ts';
import { keyStoreFor } from '../key-stores.ts';
import { currentVersion } from '../key-versions.ts';

/** EXTERNAL_MU is FIPS 204's 64-byte message representative μ. */
const MU_BYTES = 64;

interface SignatureInput {
  key: KeyRecord;
  algorithm: string;
  messageType: string;
}

/**
 * The checks Sign and Verify share, in AWS's order and words: usage, algorithm for the spec,
 * message type for the algorithm, digest length.
 */
async function prepare(
  context: ServiceContext,
  input: { KeyId?: string; SigningAlgorithm?: string; MessageType?: string; Message?: Uint8Array },
  operation: 'Sign' | 'Verify',
  caller: Caller,
): Promise<SignatureInput> {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, {
    allowAlias: true,
    action: `kms:${operation}`,
    conditions: { 'kms:SigningAlgorithm': input.SigningAlgorithm, 'kms:MessageType': input.MessageType ?? 'RAW' },
  });
  requireEnabled(context, key);
  requireKeyUsage(context, key, 'SIGN_VERIFY', operation);
  const algorithm = input.SigningAlgorithm as string;
  if (!(profileOf(key).signingAlgorithms ?? []).includes(algorithm)) {
    throw new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
  const messageType = input.MessageType ?? 'RAW';
  const message = input.Message as Uint8Array;
  checkMessageType(algorithm, messageType);
  if (messageType === 'DIGEST' && message.length !== digestLength(algorithm as SigningAlgorithm)) {
    throw new KmsError('ValidationException', `Digest is invalid length for algorithm ${algorithm}.`);
  }
  if (messageType === 'EXTERNAL_MU' && message.length !== MU_BYTES) {
    throw new KmsError('ValidationException', `External mu must be ${MU_BYTES} bytes for algorithm ${algorithm}.`);
  }
  return { key, algorithm, messageType };
}

/**
 * Which message types each algorithm takes (SignRequest.MessageType in the API reference):
 * ED25519_SHA_512 only RAW, ED25519_PH_SHA_512 only DIGEST, ML-DSA RAW or EXTERNAL_MU, the rest
 * RAW or DIGEST.
 */
function checkMessageType(algorithm: string, messageType: string): void {
  const allowed =
    algorithm === 'ED25519_SHA_512'
      ? ['RAW']
      : algorithm === 'ED25519_PH_SHA_512'
        ? ['DIGEST']
        : algorithm === 'ML_DSA_SHAKE_256'
          ? ['RAW', 'EXTERNAL_MU']
          : ['RAW', 'DIGEST'];
  if (!allowed.includes(messageType)) {
    throw new KmsError(
      'ValidationException',
      `Signing algorithm ${algorithm} requires MessageType ${allowed.join(' or ')}; got ${messageType}.`,
    );
  }
}

export const sign: Operation<SignRequest, SignResponse> = async (context, input, caller) => {
  const { key, algorithm, messageType } = await prepare(context, input, 'Sign', caller);
  stopIfDryRun(input.DryRun);
  const version = await currentVersion(context, key);
  const signature = await (await keyStoreFor(context, key)).sign(version, {
    keySpec: key.keySpec,
    algorithm,
    message: input.Message as Uint8Array,
    messageType,
  });
  return { KeyId: keyArn(context, key.keyId), Signature: signature, SigningAlgorithm: algorithm as SignResponse['SigningAlgorithm'] };
};

export const verify: Operation<VerifyRequest, VerifyResponse> = async (context, input, caller) => {
  const { key, algorithm, messageType } = await prepare(context, input, 'Verify', caller);
  stopIfDryRun(input.DryRun);
  const version = await currentVersion(context, key);
  const valid = await (await keyStoreFor(context, key)).verify(version, {
    keySpec: key.keySpec,
    algorithm,
    message: input.Message as Uint8Array,
    messageType,
    signature: input.Signature as Uint8Array,
  });
  // AWS answers an invalid signature with this exception and an empty message, never SignatureValid false.
  if (!valid) throw new KmsError('KMSInvalidSignatureException', '');
  return { KeyId: keyArn(context, key.keyId), SignatureValid: true, SigningAlgorithm: algorithm as VerifyResponse['SigningAlgorithm'] };
};
