import type { CreateKeyRequest, CreateKeyResponse } from '@aws-sdk/client-kms';
import { defaultKeyPolicy } from '../../policy/key-policy.ts';
import { authorize, requestTagConditions } from '../authorization.ts';
import { checkNewKeyPolicy } from '../key-policy-checks.ts';
import type { KeyRecord } from '../../storage/types.ts';
import type { Operation } from '../context.ts';
import { KmsError } from '../errors.ts';
import { keyMetadata } from '../key-metadata.ts';
import { makeKeyVersion } from '../key-versions.ts';
import { KEY_SPECS, UNSUPPORTED_KEY_SPECS } from '../key-specs.ts';
import { checkRequestTags } from '../tags.ts';
import { randomUuid } from '../../crypto/random.ts';
import { creationFailure, customKeyStorePlacement } from '../custom-key-stores/placement.ts';

export const createKey: Operation<CreateKeyRequest, CreateKeyResponse> = async (context, input, caller) => {
  await authorize(context, caller, {
    action: 'kms:CreateKey',
    resource: '*',
    conditions: {
      'kms:KeySpec': input.KeySpec ?? input.CustomerMasterKeySpec ?? 'SYMMETRIC_DEFAULT',
      'kms:KeyUsage': input.KeyUsage ?? 'ENCRYPT_DECRYPT',
      'kms:KeyOrigin': input.Origin ?? 'AWS_KMS',
      'kms:MultiRegion': input.MultiRegion ?? false,
      'kms:BypassPolicyLockoutSafetyCheck': input.BypassPolicyLockoutSafetyCheck ?? false,
      ...requestTagConditions(input.Tags),
    },
  });
  if (input.KeySpec !== undefined && input.CustomerMasterKeySpec !== undefined) {
    throw new KmsError(
      'ValidationException',
      'You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.',
    );
  }
  const keySpec = input.KeySpec ?? input.CustomerMasterKeySpec ?? 'SYMMETRIC_DEFAULT';
  if (input.KeyUsage === undefined && keySpec !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError(
      'ValidationException',
      'You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.',
    );
  }
  const keyUsage = input.KeyUsage ?? 'ENCRYPT_DECRYPT';
  if (UNSUPPORTED_KEY_SPECS.has(keySpec)) {
    throw new KmsError('UnsupportedOperationException', `KeySpec ${keySpec} is not supported by Strongroom.`);
  }
  if (!KEY_SPECS[keySpec].usages.includes(keyUsage)) {
    throw new KmsError('ValidationException', `KeyUsage ${keyUsage} is not compatible with KeySpec ${keySpec}`);
  }
  const origin = input.Origin ?? 'AWS_KMS';
  const placement = await customKeyStorePlacement(context, input, origin, keySpec, keyUsage);
  if (input.MultiRegion) {
    throw new KmsError('UnsupportedOperationException', 'Multi-Region keys are not supported by Strongroom.');
  }
  const policy = input.Policy ?? defaultKeyPolicy(context.accountId, context.partition);
  const tags = checkRequestTags(input.Tags);

  const key: KeyRecord = {
    keyId: randomUuid(),
    createdAt: context.now(),
    description: input.Description ?? '',
    keyUsage,
    keySpec,
    origin,
    state: 'Enabled',
    policy,
    rotationEnabled: false,
    currentVersion: 1,
    onDemandRotationCount: 0,
    ...(placement ? { customKeyStoreId: placement.record.customKeyStoreId } : {}),
    ...(input.XksKeyId !== undefined ? { xksKeyId: input.XksKeyId } : {}),
  };
  if (input.Policy !== undefined) {
    await checkNewKeyPolicy(context, caller, key, input.Policy, input.BypassPolicyLockoutSafetyCheck);
  }
  const firstVersion = await makeKeyVersion(context, key, 1, undefined, placement?.keyStore).catch((error: unknown) => {
    throw placement ? creationFailure(placement.record, error) : error;
  });
  await context.store.createKey(key, firstVersion, tags);
  return { KeyMetadata: await keyMetadata(context, key) };
};
