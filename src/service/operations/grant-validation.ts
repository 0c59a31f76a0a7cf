/**
 * CreateGrant's and RetireGrant's input checks, as AWS answers them: grant operations for the
 * key's type, encryption-context constraints, principals a grant may name, grant ids.
 */
import type { GrantConstraints as GrantConstraintsInput } from '@aws-sdk/client-kms';
import type { GrantConstraints, KeyRecord } from '../../storage/types.ts';
import type { ServiceContext } from '../context.ts';
import { KmsError, validationError } from '../errors.ts';
import { GRANT_OPERATIONS } from '../grant-matching.ts';
import { keyArn } from '../key-resolution.ts';

/** GrantConstraints: "Each constraint value can include up to 8 encryption context pairs". */
const MAX_CONSTRAINT_PAIRS = 8;
/** GrantConstraints: "The encryption context value in each constraint cannot exceed 384 characters". */
const MAX_CONSTRAINT_VALUE_LENGTH = 384;


const GRANT_ID = /^[0-9a-f]{64}$/;


/** Grant operations each kind of key supports (developer guide, "Grants in AWS KMS", grant operations). */
function operationsFor(key: KeyRecord): readonly string[] {
  const always = ['CreateGrant', 'DescribeKey', 'RetireGrant'];
  if (key.keySpec === 'SYMMETRIC_DEFAULT') {
    return [
      ...always,
      'Decrypt',
      'Encrypt',
      'GenerateDataKey',
      'GenerateDataKeyWithoutPlaintext',
      'GenerateDataKeyPair',
      'GenerateDataKeyPairWithoutPlaintext',
      'ReEncryptFrom',
      'ReEncryptTo',
    ];
  }
  switch (key.keyUsage) {
    case 'ENCRYPT_DECRYPT':
      return [...always, 'Decrypt', 'Encrypt', 'ReEncryptFrom', 'ReEncryptTo', 'GetPublicKey'];
    case 'SIGN_VERIFY':
      return [...always, 'Sign', 'Verify', 'GetPublicKey'];
    case 'GENERATE_VERIFY_MAC':
      return [...always, 'GenerateMac', 'VerifyMac'];
    case 'KEY_AGREEMENT':
      return [...always, 'DeriveSharedSecret', 'GetPublicKey'];
    default:
      return always;
  }
}

export function checkOperations(operations: readonly string[] | undefined): string[] {
  if (operations === undefined || operations.length === 0) {
    throw validationError([`Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1`]);
  }
  const known = GRANT_OPERATIONS as readonly string[];
  const problems = operations.flatMap((operation, index) =>
    known.includes(operation)
      ? []
      : [
          `Value '${operation}' at 'operations.${index + 1}.member' failed to satisfy constraint: ` +
            `Member must satisfy enum value set: [${known.join(', ')}]`,
        ],
  );
  if (problems.length > 0) throw validationError(problems);
  // Recorded against AWS (ansible/ansible#31960).
  if (operations.every((operation) => operation === 'CreateGrant')) {
    throw new KmsError('ValidationException', 'Grants must not contain only the CreateGrant operation.');
  }
  return [...operations];
}

export function checkOperationsForKey(context: ServiceContext, key: KeyRecord, operations: readonly string[]): void {
  const supported = operationsFor(key);
  const unsupported = operations.filter((operation) => !supported.includes(operation));
  if (unsupported.length > 0) {
    // API reference, CreateGrant Operations: "If you try, KMS returns a ValidationError exception."
    throw new KmsError(
      'ValidationException',
      `Grant operations [${unsupported.join(', ')}] are not valid for ${keyArn(context, key.keyId)}, ` +
        `whose key spec is ${key.keySpec} and key usage is ${key.keyUsage}.`,
    );
  }
}

/** The encryption-context grant constraint, checked as the GrantConstraints shape documents it. */
export function parseConstraints(input: GrantConstraintsInput | undefined): GrantConstraints | undefined {
  if (input === undefined) return undefined;
  if (input.SourceArn !== undefined) {
    // SourceArn restricts a grant to requests an AWS service makes for a resource; none reach Strongroom.
    throw new KmsError('UnsupportedOperationException', 'The SourceArn grant constraint is not supported by Strongroom.');
  }
  const equals = input.EncryptionContextEquals;
  const subset = input.EncryptionContextSubset;
  // Recorded against AWS (aws/aws-sdk-java#328); an empty map counts as supplied.
  if (equals !== undefined && subset !== undefined) throw new KmsError('ValidationException', 'More than one constraint supplied');
  const pairs = equals ?? subset;
  if (pairs === undefined) return undefined;
  const entries = Object.entries(pairs);
  if (entries.length > MAX_CONSTRAINT_PAIRS) {
    throw new KmsError(
      'ValidationException',
      `A grant constraint can include at most ${MAX_CONSTRAINT_PAIRS} encryption context pairs.`,
    );
  }
  if (entries.some(([, value]) => value.length > MAX_CONSTRAINT_VALUE_LENGTH)) {
    throw new KmsError(
      'ValidationException',
      `An encryption context value in a grant constraint cannot exceed ${MAX_CONSTRAINT_VALUE_LENGTH} characters.`,
    );
  }
  const copy = Object.fromEntries(entries);
  return equals !== undefined ? { encryptionContextEquals: copy } : { encryptionContextSubset: copy };
}

export const constraintPairs = (constraints: GrantConstraints | undefined): Record<string, string> | undefined =>
  constraints?.encryptionContextEquals ?? constraints?.encryptionContextSubset;

const includesPairs = (pairs: Record<string, string>, required: Record<string, string>): boolean =>
  Object.entries(required).every(([name, value]) => Object.hasOwn(pairs, name) && pairs[name] === value);

const samePairs = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length && includesPairs(a, b);

/** Is `child` an "equally strict or stricter encryption context constraint" than `parent` (GrantConstraints)? */
export function atLeastAsStrict(child: GrantConstraints | undefined, parent: GrantConstraints | undefined): boolean {
  if (parent?.encryptionContextEquals) {
    return child?.encryptionContextEquals !== undefined && samePairs(child.encryptionContextEquals, parent.encryptionContextEquals);
  }
  if (parent?.encryptionContextSubset) {
    const pairs = constraintPairs(child);
    return pairs !== undefined && includesPairs(pairs, parent.encryptionContextSubset);
  }
  return true;
}

export function sameConstraints(a: GrantConstraints | undefined, b: GrantConstraints | undefined): boolean {
  const aPairs = constraintPairs(a);
  const bPairs = constraintPairs(b);
  if (aPairs === undefined || bPairs === undefined) return aPairs === bPairs;
  return (a?.encryptionContextEquals !== undefined) === (b?.encryptionContextEquals !== undefined) && samePairs(aPairs, bPairs);
}

export const sameOperations = (a: readonly string[], b: readonly string[]): boolean =>
  a.every((operation) => b.includes(operation)) && b.every((operation) => a.includes(operation));

// Principals a grant may name (CreateGrant GranteePrincipal/RetiringPrincipal): an account, IAM
// user or role, federated user or assumed-role session, by ARN.
const PRINCIPAL_ARN =
  /^arn:([^:]+):(?:iam::(\d{12}):(root|user\/.+|role\/.+)|sts::(\d{12}):(assumed-role\/[^/]+\/.+|federated-user\/.+))$/;

/** ValidationException for a value that is no principal ARN at all. */
export function checkPrincipalShape(context: ServiceContext, value: string, parameter: string): void {
  const match = PRINCIPAL_ARN.exec(value);
  if (!match || match[1] !== context.partition) throw new KmsError('ValidationException', `Invalid ${parameter}: ${value}`);
}

/**
 * InvalidArnException for an ARN that names no principal of this account (AWS answers
 * InvalidArnException for a principal IAM does not know: hashicorp/terraform-provider-aws retries
 * CreateGrant on it for new roles). Other accounts' principals cannot be checked from here.
 */
export async function checkPrincipalExists(context: ServiceContext, value: string): Promise<void> {
  const [, partition, iamAccount, iamResource, stsAccount, stsResource] = PRINCIPAL_ARN.exec(value) ?? [];
  if ((iamAccount ?? stsAccount) !== context.accountId || iamResource === 'root') return;
  let identityArn: string | undefined;
  if (iamResource !== undefined) identityArn = value;
  else if (stsResource?.startsWith('assumed-role/')) identityArn = `arn:${partition}:iam::${stsAccount}:role/${stsResource.split('/')[1]}`;
  // Federated users do not exist in Strongroom.
  if (identityArn === undefined || !(await context.store.getPrincipal(identityArn))) {
    throw new KmsError('InvalidArnException', `ARN does not refer to a valid principal: ${value}`);
  }
}

/** Grant-management KeyId parameters take a key id or key ARN only (boto/boto#3202, recorded against AWS). */
export function rejectAlias(keyIdParameter: string): void {
  if (keyIdParameter.startsWith('alias/') || /^arn:[^:]+:kms:[^:]*:[^:]*:alias\//.test(keyIdParameter)) {
    throw new KmsError('InvalidArnException', 'Key Aliases are not supported for this operation.');
  }
}

export function checkGrantId(grantId: string): void {
  if (!GRANT_ID.test(grantId)) throw new KmsError('InvalidGrantIdException', `Invalid grant ID: ${grantId}`);
}

export const grantNotFound = (grantId: string) => new KmsError('NotFoundException', `Grant ID ${grantId} not found`);

export const servicePrincipalsUnsupported = () =>
  new KmsError('UnsupportedOperationException', 'AWS service principals are not supported by Strongroom.');
