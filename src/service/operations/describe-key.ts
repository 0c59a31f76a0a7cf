import type { DescribeKeyRequest, DescribeKeyResponse } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { keyMetadata } from '../key-metadata.ts';
import { resolveKeyFor } from '../authorization.ts';

export const describeKey: Operation<DescribeKeyRequest, DescribeKeyResponse> = async (context, input, caller) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: true, action: 'kms:DescribeKey' });
  return { KeyMetadata: await keyMetadata(context, key) };
};
