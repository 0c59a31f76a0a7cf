import type { GenerateMacRequest, GenerateMacResponse, VerifyMacRequest, VerifyMacResponse } from '@aws-sdk/client-kms';
import type { Caller, Operation, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { resolveKeyFor } from '../authorization.ts';
import { keyArn, requireEnabled, requireKeyUsage, stopIfDryRun } from '../key-resolution.ts';
import { profileOf } from '../key-specs.ts';
import { keyStoreFor } from '../key-stores.ts';
import { currentVersion } from '../key-versions.ts';

async function macKey(context: ServiceContext, caller: Caller, keyIdParameter: string, algorithm: string, operation: string) {
  const key = await resolveKeyFor(context, caller, keyIdParameter, {
    allowAlias: true,
    action: `kms:${operation}`,
    conditions: { 'kms:MacAlgorithm': algorithm },
  });
  requireEnabled(context, key);
  requireKeyUsage(context, key, 'GENERATE_VERIFY_MAC', operation);
  if (!(profileOf(key).macAlgorithms ?? []).includes(algorithm)) {
    throw new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
  return { key, version: await currentVersion(context, key) };
}

export const generateMac: Operation<GenerateMacRequest, GenerateMacResponse> = async (context, input, caller) => {
  const algorithm = input.MacAlgorithm as string;
  const { key, version } = await macKey(context, caller, input.KeyId as string, algorithm, 'GenerateMac');
  stopIfDryRun(input.DryRun);
  const mac = await (await keyStoreFor(context, key)).generateMac(version, algorithm, input.Message as Uint8Array);
  return { Mac: mac, MacAlgorithm: algorithm as GenerateMacResponse['MacAlgorithm'], KeyId: keyArn(context, key.keyId) };
};

export const verifyMac: Operation<VerifyMacRequest, VerifyMacResponse> = async (context, input, caller) => {
  const algorithm = input.MacAlgorithm as string;
  const { key, version } = await macKey(context, caller, input.KeyId as string, algorithm, 'VerifyMac');
  stopIfDryRun(input.DryRun);
  const valid = await (await keyStoreFor(context, key)).verifyMac(version, algorithm, input.Message as Uint8Array, input.Mac as Uint8Array);
  // As AWS: a MAC that does not verify is this exception with an empty message.
  if (!valid) throw new KmsError('KMSInvalidMacException', '');
  return { KeyId: keyArn(context, key.keyId), MacValid: true, MacAlgorithm: algorithm as VerifyMacResponse['MacAlgorithm'] };
};
