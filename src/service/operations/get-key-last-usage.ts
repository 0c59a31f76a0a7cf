import type { GetKeyLastUsageRequest, GetKeyLastUsageResponse } from '@aws-sdk/client-kms';
import { resolveKeyFor } from '../authorization.ts';
import type { Operation } from '../context.ts';

/**
 * The last successful cryptographic operation with the key, read from the audit trail (AWS:
 * "backed by CloudTrail"). TrackingStartDate is the later of the key's creation and the trail's
 * start; no KeyLastUsage means no such use since then.
 */
export const getKeyLastUsage: Operation<GetKeyLastUsageRequest, GetKeyLastUsageResponse> = async (context, input, caller) => {
  const key = await resolveKeyFor(context, caller, input.KeyId as string, { allowAlias: false, action: 'kms:GetKeyLastUsage' });
  const [lastUse, trackingStart] = await Promise.all([context.audit.lastCryptoUse(key.keyId), context.audit.trackingStart()]);
  return {
    KeyId: key.keyId,
    KeyCreationDate: key.createdAt,
    TrackingStartDate: trackingStart > key.createdAt ? trackingStart : key.createdAt,
    ...(lastUse
      ? {
          KeyLastUsage: {
            Operation: lastUse.eventName as NonNullable<GetKeyLastUsageResponse['KeyLastUsage']>['Operation'],
            Timestamp: lastUse.time,
            CloudTrailEventId: lastUse.eventId,
          },
        }
      : {}),
  };
};
