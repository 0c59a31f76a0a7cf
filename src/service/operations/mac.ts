import type { GenerateMacRequest, GenerateMacResponse, VerifyMacRequest, VerifyMacResponse } from '@aws-sdk/client-kms';
import type { Operation, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { keyArn, requireEnabled, requireKeyUsage, resolveKey, stopIfDryRun } from '../key-resolution.ts';
import { profileOf } from '../key-specs.ts';
import { currentVersion } from '../key-versions.ts';

async function macKey(context: ServiceContext, keyIdParameter: string, algorithm: string, operation: string) {
  const key = await resolveKey(context, keyIdParameter, { allowAlias: true });
  requireEnabled(context, key);
  requireKeyUsage(context, key, 'GENERATE_VERIFY_MAC', operation);
  if (!(profileOf(key).macAlgorithms ?? []).includes(algorithm)) {
    throw new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
  return { key, version: await currentVersion(context, key) };
}

export const generateMac: Operation<GenerateMacRequest, GenerateMacResponse> = async (context, input) => {
  const algorithm = input.MacAlgorithm as string;
  const { key, version } = await macKey(context, input.KeyId as string, algorithm, 'GenerateMac');
  stopIfDryRun(input.DryRun);
  const mac = await context.keyStore.generateMac(version, algorithm, input.Message as Uint8Array);
  return { Mac: mac, MacAlgorithm: algorithm as GenerateMacResponse['MacAlgorithm'], KeyId: keyArn(context, key.keyId) };
};

export const verifyMac: Operation<VerifyMacRequest, VerifyMacResponse> = async (context, input) => {
  const algorithm = input.MacAlgorithm as string;
  const { key, version } = await macKey(context, input.KeyId as string, algorithm, 'VerifyMac');
  stopIfDryRun(input.DryRun);
  const valid = await context.keyStore.verifyMac(version, algorithm, input.Message as Uint8Array, input.Mac as Uint8Array);
  // As AWS: a MAC that does not verify is this exception with an empty message.
  if (!valid) throw new KmsError('KMSInvalidMacException', '');
  return { KeyId: keyArn(context, key.keyId), MacValid: true, MacAlgorithm: algorithm as VerifyMacResponse['MacAlgorithm'] };
};
