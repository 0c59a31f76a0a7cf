import type { DescribeKeyRequest, DescribeKeyResponse } from '@aws-sdk/client-kms';
import type { Operation } from '../context.ts';
import { keyMetadata } from '../key-metadata.ts';
import { resolveKey } from '../key-resolution.ts';

export const describeKey: Operation<DescribeKeyRequest, DescribeKeyResponse> = async (context, input) => {
  const key = await resolveKey(context, input.KeyId as string, { allowAlias: true });
  return { KeyMetadata: await keyMetadata(context, key) };
};
