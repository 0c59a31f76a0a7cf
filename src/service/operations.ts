import { isReadOnlyOperation } from './audit-events.ts';
import type { Caller, ServiceContext } from './context.ts';
import { KmsError } from './errors.ts';
import { checkGrantTokens } from './grant-tokens.ts';
import { createAlias, deleteAlias, listAliases, updateAlias } from './operations/aliases.ts';
import { createKey } from './operations/create-key.ts';
import {
  connectCustomKeyStore,
  createCustomKeyStore,
  deleteCustomKeyStore,
  describeCustomKeyStores,
  disconnectCustomKeyStore,
  updateCustomKeyStore,
} from './operations/custom-key-stores.ts';
import { decrypt } from './operations/decrypt.ts';
import { deriveSharedSecret } from './operations/derive-shared-secret.ts';
import { describeKey } from './operations/describe-key.ts';
import { disableKey, enableKey } from './operations/enable-disable-key.ts';
import { encrypt } from './operations/encrypt.ts';
import { generateDataKey, generateDataKeyWithoutPlaintext } from './operations/generate-data-key.ts';
import { generateDataKeyPair, generateDataKeyPairWithoutPlaintext } from './operations/generate-data-key-pair.ts';
import { generateRandom } from './operations/generate-random.ts';
import { createGrant, listGrants, listRetirableGrants, retireGrant, revokeGrant } from './operations/grants.ts';
import { getKeyLastUsage } from './operations/get-key-last-usage.ts';
import { getPublicKey } from './operations/get-public-key.ts';
import { generateMac, verifyMac } from './operations/mac.ts';
import { sign, verify } from './operations/signatures.ts';
import { cancelKeyDeletion, scheduleKeyDeletion } from './operations/key-deletion.ts';
import { getKeyPolicy, listKeyPolicies, putKeyPolicy } from './operations/key-policies.ts';
import { listKeys } from './operations/list-keys.ts';
import { reEncrypt } from './operations/re-encrypt.ts';
import {
  disableKeyRotation,
  enableKeyRotation,
  getKeyRotationStatus,
  listKeyRotations,
  rotateKeyOnDemand,
} from './operations/rotation.ts';
import { listResourceTags, tagResource, untagResource } from './operations/tags.ts';
import { updateKeyDescription } from './operations/update-key-description.ts';

// Inputs arrive validated against the KMS model by the transport, so each operation's input is
// its AWS request type; the table erases that to one signature for dispatch.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyOperation = (context: ServiceContext, input: any, caller: Caller) => Promise<object>;

/** Every operation this service implements, by its AWS name. */
export const OPERATIONS: ReadonlyMap<string, AnyOperation> = new Map<string, AnyOperation>([
  ['CancelKeyDeletion', cancelKeyDeletion],
  ['ConnectCustomKeyStore', connectCustomKeyStore],
  ['CreateCustomKeyStore', createCustomKeyStore],
  ['DeleteCustomKeyStore', deleteCustomKeyStore],
  ['DescribeCustomKeyStores', describeCustomKeyStores],
  ['DisconnectCustomKeyStore', disconnectCustomKeyStore],
  ['UpdateCustomKeyStore', updateCustomKeyStore],
  ['CreateAlias', createAlias],
  ['CreateGrant', createGrant],
  ['CreateKey', createKey],
  ['Decrypt', decrypt],
  ['DeleteAlias', deleteAlias],
  ['DeriveSharedSecret', deriveSharedSecret],
  ['DescribeKey', describeKey],
  ['DisableKey', disableKey],
  ['DisableKeyRotation', disableKeyRotation],
  ['EnableKey', enableKey],
  ['EnableKeyRotation', enableKeyRotation],
  ['Encrypt', encrypt],
  ['GenerateDataKey', generateDataKey],
  ['GenerateDataKeyPair', generateDataKeyPair],
  ['GenerateDataKeyPairWithoutPlaintext', generateDataKeyPairWithoutPlaintext],
  ['GenerateDataKeyWithoutPlaintext', generateDataKeyWithoutPlaintext],
  ['GenerateMac', generateMac],
  ['GenerateRandom', generateRandom],
  ['GetKeyLastUsage', getKeyLastUsage],
  ['GetKeyPolicy', getKeyPolicy],
  ['GetPublicKey', getPublicKey],
  ['GetKeyRotationStatus', getKeyRotationStatus],
  ['ListAliases', listAliases],
  ['ListGrants', listGrants],
  ['ListKeyPolicies', listKeyPolicies],
  ['ListKeyRotations', listKeyRotations],
  ['ListKeys', listKeys],
  ['ListResourceTags', listResourceTags],
  ['ListRetirableGrants', listRetirableGrants],
  ['PutKeyPolicy', putKeyPolicy],
  ['ReEncrypt', reEncrypt],
  ['RetireGrant', retireGrant],
  ['RevokeGrant', revokeGrant],
  ['RotateKeyOnDemand', rotateKeyOnDemand],
  ['ScheduleKeyDeletion', scheduleKeyDeletion],
  ['Sign', sign],
  ['TagResource', tagResource],
  ['UntagResource', untagResource],
  ['UpdateAlias', updateAlias],
  ['UpdateKeyDescription', updateKeyDescription],
  ['Verify', verify],
  ['VerifyMac', verifyMac],
]);

/**
 * Runs an operation for a caller. Every operation asks for a policy decision before it acts
 * (authorization.ts); one that returns without having asked is a bug, and its answer is withheld
 * as an internal error rather than handed to a caller nobody checked.
 */
export async function invokeOperation(
  name: string,
  context: ServiceContext,
  input: object,
  caller: Caller,
): Promise<object> {
  const operation = OPERATIONS.get(name);
  if (!operation) throw new KmsError('UnknownOperationException', '');
  // Every operation with a GrantTokens parameter checks the tokens' form; grants themselves are
  // visible at once, so a valid token needs nothing more (grant-tokens.ts).
  if ('GrantTokens' in input) checkGrantTokens((input as { GrantTokens?: string[] }).GrantTokens);
  // Fail closed: nothing changes unless the audit trail can record it (docs/audit.md).
  if (!isReadOnlyOperation(name)) await context.audit.probe();
  const output = await operation(context, input, caller);
  if (caller.decisions.length === 0) {
    throw new Error(`operation ${name} returned without a policy decision`);
  }
  return output;
}
