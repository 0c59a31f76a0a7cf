/**
 * CloudTrail-shaped audit events (docs/audit.md): one per request, built from what the transport
 * knew and what the service decided. Parameters are copied by allowlist only; encryption-context
 * values are replaced unless the operator opted in. The event's compact JSON text is what the
 * trail stores, hashes and exports.
 */
import { randomUUID } from 'node:crypto';
import { identityArnOf } from './principals.ts';
import type { Caller, ServiceContext } from './context.ts';
import type { KmsError } from './errors.ts';

export type EventSource = 'kms.amazonaws.com' | 'iam.amazonaws.com' | 'sts.amazonaws.com';

export const REDACTED = '[REDACTED]';

/** The operations CloudTrail marks readOnly; every other operation changes state. */
const READ_ONLY = new Set([
  'DescribeKey', 'GetKeyPolicy', 'GetKeyRotationStatus', 'GetPublicKey', 'GetKeyLastUsage', 'ListAliases',
  'ListGrants', 'ListKeyPolicies', 'ListKeyRotations', 'ListKeys', 'ListResourceTags', 'ListRetirableGrants',
  'GenerateRandom', 'Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext', 'Sign', 'Verify', 'GenerateMac', 'VerifyMac',
  'DeriveSharedSecret', 'GetUser', 'ListUsers', 'GetRole', 'ListRoles', 'GetUserPolicy', 'ListUserPolicies',
  'GetRolePolicy', 'ListRolePolicies', 'ListAccessKeys', 'GetAccessKeyLastUsed', 'GetCallerIdentity',
  'ExplainRequest', 'DescribeCustomKeyStores',
]);

/** Cryptographic operations: what GetKeyLastUsage reports. */
export const CRYPTO_OPERATIONS = new Set([
  'Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext', 'Sign', 'Verify', 'GenerateMac', 'VerifyMac', 'DeriveSharedSecret',
]);

export const isReadOnlyOperation = (name: string): boolean => READ_ONLY.has(name);

// ---------------------------------------------------------------------------------------------
// Allowlists. A member not named here is left out of the event, whatever it holds.

/** Request and response members copied as they are: names, ids, algorithms, counts, flags. */
const PLAIN_MEMBERS = new Set([
  'KeyId', 'SourceKeyId', 'DestinationKeyId', 'TargetKeyId', 'AliasName', 'KeySpec', 'KeyUsage', 'KeyPairSpec',
  'CustomerMasterKeySpec', 'Origin', 'MultiRegion', 'Description', 'EncryptionAlgorithm', 'SourceEncryptionAlgorithm',
  'DestinationEncryptionAlgorithm', 'SigningAlgorithm', 'MessageType', 'MacAlgorithm', 'KeyAgreementAlgorithm',
  'NumberOfBytes', 'PendingWindowInDays', 'RotationPeriodInDays', 'BypassPolicyLockoutSafetyCheck', 'PolicyName',
  'Limit', 'Marker', 'DryRun', 'IncludeKeyMaterial', 'GrantId', 'Name', 'GranteePrincipal', 'RetiringPrincipal',
  'Operations', 'TagKeys', 'UserName', 'RoleName', 'AccessKeyId', 'Status', 'MaxSessionDuration', 'MaxItems',
  'PrincipalArn', 'Action', 'Resource', 'RoleArn', 'RoleSessionName', 'DurationSeconds', 'KeyMaterialId',
  'SourceKeyMaterialId', 'DestinationKeyMaterialId', 'SignatureValid', 'MacValid', 'DeletionDate', 'KeyState',
  'Arn', 'AssumedRoleId', 'Expiration', 'Decision', 'Account', 'UserId', 'CustomKeyStoreId', 'CustomKeyStoreName',
  'NewCustomKeyStoreName', 'CustomKeyStoreType', 'CloudHsmClusterId', 'XksProxyUriEndpoint', 'XksProxyUriPath',
  'XksProxyConnectivity', 'XksKeyId',
]);

/** Encryption-context-shaped members: keys kept, values redacted unless opted in. */
const CONTEXT_MEMBERS = new Set([
  'EncryptionContext', 'SourceEncryptionContext', 'DestinationEncryptionContext', 'EncryptionContextEquals',
  'EncryptionContextSubset',
]);

/** Members that are objects whose own allowlisted members are kept. */
const NESTED_MEMBERS = new Set(['Constraints', 'KeyMetadata', 'AccessKey', 'AssumedRoleUser', 'Credentials', 'User', 'Role']);

/** Credentials carry a secret and a token: only these of their members are kept. */
const CREDENTIAL_MEMBERS = new Set(['AccessKeyId', 'Expiration', 'UserName', 'Status', 'CreateDate']);

const camel = (name: string): string => name.charAt(0).toLowerCase() + name.slice(1);

function plainValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value) && value.every((entry) => typeof entry === 'string')) return [...value];
  return undefined;
}

function copyAllowed(source: unknown, withContextValues: boolean, members = PLAIN_MEMBERS): Record<string, unknown> | null {
  if (typeof source !== 'object' || source === null || Array.isArray(source) || Buffer.isBuffer(source)) return null;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined || value === null) continue;
    if (members.has(name)) {
      const plain = plainValue(value);
      if (plain !== undefined) out[camel(name)] = plain;
    } else if (CONTEXT_MEMBERS.has(name) && typeof value === 'object' && !Array.isArray(value)) {
      const context: Record<string, unknown> = {};
      for (const [key, contextValue] of Object.entries(value)) {
        context[key] = withContextValues && typeof contextValue === 'string' ? contextValue : REDACTED;
      }
      out[camel(name)] = context;
    } else if (NESTED_MEMBERS.has(name)) {
      const nested = copyAllowed(value, withContextValues, name === 'Credentials' || name === 'AccessKey' ? CREDENTIAL_MEMBERS : PLAIN_MEMBERS);
      if (nested && Object.keys(nested).length > 0) out[camel(name)] = nested;
    } else if (name === 'Tags' && Array.isArray(value)) {
      // Tags are not secret in AWS's model, and CloudTrail records them.
      out.tags = value
        .filter((tag) => typeof tag === 'object' && tag !== null)
        .map((tag: Record<string, unknown>) => ({
          tagKey: String(tag.TagKey ?? tag.Key ?? ''),
          tagValue: String(tag.TagValue ?? tag.Value ?? ''),
        }));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

export interface AuditRequest {
  eventSource: EventSource;
  /** The operation, or "Unknown" when the request never named one we serve. */
  eventName: string;
  time: Date;
  requestId: string;
  sourceIp?: string;
  userAgent?: string;
  /** The authenticated caller; absent when authentication failed. */
  caller?: Caller;
  /** The access key id the request claimed, when it never authenticated. */
  claimedAccessKeyId?: string;
  input?: unknown;
  output?: unknown;
  error?: KmsError;
}

/** What the trail indexes beside the text (store columns). */
export interface AuditEntry {
  text: string;
  time: Date;
  eventName: string;
  principalArn?: string;
  keyIds: string[];
  errorCode?: string;
  cryptoSuccess: boolean;
}

const KEY_ARN = /^arn:[^:]+:kms:[^:]*:(\d{12}):key\/([0-9a-f-]{36})$/;

async function userIdentity(context: ServiceContext, request: AuditRequest): Promise<Record<string, unknown>> {
  const caller = request.caller;
  if (!caller) {
    return { type: 'Unknown', ...(request.claimedAccessKeyId ? { accessKeyId: request.claimedAccessKeyId } : {}) };
  }
  const identityArn = identityArnOf(caller.principalArn);
  // The record this request's authorization read (context.ts, Caller.principal); a read only when
  // no authorization ran (a request that failed validation before any decision).
  const principal =
    caller.principal !== undefined ? (caller.principal ?? undefined) : await context.store.getPrincipal(identityArn);
  const session = /:assumed-role\/([^/]+)\/(.+)$/.exec(caller.principalArn);
  if (session) {
    return {
      type: 'AssumedRole',
      principalId: `${principal?.principalId ?? ''}:${session[2]}`,
      arn: caller.principalArn,
      accountId: context.accountId,
      accessKeyId: caller.accessKeyId,
      sessionContext: {
        sessionIssuer: { type: 'Role', principalId: principal?.principalId, arn: identityArn, accountId: context.accountId, userName: session[1] },
      },
    };
  }
  return {
    type: 'IAMUser',
    principalId: principal?.principalId,
    arn: caller.principalArn,
    accountId: context.accountId,
    accessKeyId: caller.accessKeyId,
    ...(principal ? { userName: principal.name } : {}),
  };
}

const isoSeconds = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Builds the event for one request. */
export async function buildRequestEvent(
  context: ServiceContext,
  request: AuditRequest,
  options: { encryptionContextValues: boolean },
): Promise<AuditEntry> {
  // The keys a request touched are the key resources its policy decisions were made on.
  const keyArns = [...new Set((request.caller?.decisions ?? []).map((d) => d.resource).filter((r) => KEY_ARN.test(r)))];
  const keyIds = keyArns.map((arn) => (KEY_ARN.exec(arn) as RegExpExecArray)[2]);
  const succeeded = request.error === undefined;
  const event: Record<string, unknown> = {
    eventVersion: '1.08',
    userIdentity: await userIdentity(context, request),
    eventTime: isoSeconds(request.time),
    eventSource: request.eventSource,
    eventName: request.eventName,
    awsRegion: context.region,
    sourceIPAddress: request.sourceIp ?? null,
    userAgent: request.userAgent === undefined ? null : request.userAgent.slice(0, 256),
    requestParameters: copyAllowed(request.input, options.encryptionContextValues),
    responseElements: succeeded ? copyAllowed(request.output, options.encryptionContextValues) : null,
    ...(request.error ? { errorCode: request.error.errorName, errorMessage: request.error.message } : {}),
    requestID: request.requestId,
    eventID: randomUUID(),
    readOnly: isReadOnlyOperation(request.eventName),
    resources: keyArns.map((arn) => ({ accountId: context.accountId, type: 'AWS::KMS::Key', ARN: arn })),
    eventType: 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: context.accountId,
    eventCategory: 'Management',
  };
  return {
    text: JSON.stringify(event),
    time: request.time,
    eventName: request.eventName,
    principalArn: request.caller?.principalArn,
    keyIds,
    errorCode: request.error?.errorName,
    cryptoSuccess: succeeded && CRYPTO_OPERATIONS.has(request.eventName),
  };
}

/** An event for a background action (automatic rotation, deletion carried out). */
export function buildServiceEvent(
  context: ServiceContext,
  eventName: 'RotateKey' | 'DeleteKey',
  keyId: string,
  time: Date,
  error?: { errorCode: string; errorMessage: string },
  details?: Record<string, unknown>,
): AuditEntry {
  const arn = `arn:${context.partition}:kms:${context.region}:${context.accountId}:key/${keyId}`;
  const event = {
    eventVersion: '1.08',
    userIdentity: { type: 'AWSService', invokedBy: 'kms.amazonaws.com' },
    eventTime: isoSeconds(time),
    eventSource: 'kms.amazonaws.com',
    eventName,
    awsRegion: context.region,
    sourceIPAddress: 'kms.amazonaws.com',
    userAgent: 'kms.amazonaws.com',
    requestParameters: null,
    responseElements: null,
    ...(error ?? {}),
    eventID: randomUUID(),
    readOnly: false,
    resources: [{ accountId: context.accountId, type: 'AWS::KMS::Key', ARN: arn }],
    eventType: 'AwsServiceEvent',
    managementEvent: true,
    recipientAccountId: context.accountId,
    serviceEventDetails: { keyId, ...details },
    eventCategory: 'Management',
  };
  return { text: JSON.stringify(event), time, eventName, keyIds: [keyId], errorCode: error?.errorCode, cryptoSuccess: false };
}
