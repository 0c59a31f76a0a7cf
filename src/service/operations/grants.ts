/**
 * CreateGrant, ListGrants, ListRetirableGrants, RetireGrant and RevokeGrant, as AWS KMS answers
 * them (API reference; developer guide "Grants in AWS KMS", "Retiring and revoking grants").
 * How a grant lets its grantee in is authorization.ts's grantCovers; this file makes and
 * removes grants.
 */
import type {
  CreateGrantRequest,
  CreateGrantResponse,
  GrantListEntry,
  ListGrantsRequest,
  ListGrantsResponse,
  ListRetirableGrantsRequest,
  RetireGrantRequest,
  RevokeGrantRequest,
} from '@aws-sdk/client-kms';
import { randomBytes } from '../../crypto/random.ts';
import { principalNames } from '../../policy/evaluate.ts';
import {
  StoreKeyNotFoundError,
  StoreLimitError,
  type GrantConstraints,
  type GrantRecord,
  type KeyRecord,
  type KeyState,
  type Page,
} from '../../storage/types.ts';
import {
  authorize,
  explainAccess,
  resolveKeyFor,
  type AccessRequest,
} from '../authorization.ts';
import { grantCovers } from '../grant-matching.ts';
import { accountOf } from '../principals.ts';
import type { Caller, Operation, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { checkGrantTokens, grantIdOfToken, invalidGrantToken, newGrantToken } from '../grant-tokens.ts';
import { keyArn, keyNotFound, keyStateError, resolveKey, stopIfDryRun } from '../key-resolution.ts';
import { decodeNumericMarker, encodeMarker, pageLimit } from '../pagination.ts';
import {
  atLeastAsStrict,
  checkGrantId,
  checkOperations,
  checkOperationsForKey,
  checkPrincipalExists,
  checkPrincipalShape,
  constraintPairs,
  grantNotFound,
  parseConstraints,
  rejectAlias,
  sameConstraints,
  sameOperations,
  servicePrincipalsUnsupported,
} from './grant-validation.ts';

/** AWS KMS quota "Grants per KMS key". */
export const MAX_GRANTS_PER_KEY = 50_000;
/** Key states CreateGrant accepts (developer guide, "Key states of AWS KMS keys"). */
const CREATE_GRANT_STATES: readonly KeyState[] = ['Enabled', 'Disabled', 'PendingImport'];


// ---------------------------------------------------------------------------------------------
// Authorization

/** arn:<partition>:iam::<account>:root, AWS's form of an account principal (and of IssuingAccount). */
const accountRootArn = (context: ServiceContext, accountId: string): string => `arn:${context.partition}:iam::${accountId}:root`;

function accessDenied(caller: Caller, action: string, resource: string, clause: string): KmsError {
  return new KmsError('AccessDeniedException', `User: ${caller.principalArn} is not authorized to perform: ${action} on resource: ${resource} ${clause}`);
}

/**
 * kms:CreateGrant on the key. A caller let in only by a grant's CreateGrant operation may create
 * grants no broader than that grant: a subset of its operations (developer guide, "Grants in AWS
 * KMS": CreateGrant grant operation) and an equally strict or stricter encryption-context
 * constraint (API reference, GrantConstraints).
 */
async function authorizeCreateGrant(
  context: ServiceContext,
  caller: Caller,
  request: AccessRequest & { key: KeyRecord },
  operations: readonly string[],
  constraints: GrantConstraints | undefined,
): Promise<void> {
  const explanation = await explainAccess(context, caller, request);
  if (explanation.grantId !== undefined) {
    const parents = (await context.store.grantsForKey(request.key.keyId)).filter((grant) => grantCovers(grant, caller, request));
    const within = parents.some(
      (parent) =>
        operations.every((operation) => parent.operations.includes(operation)) && atLeastAsStrict(constraints, parent.constraints),
    );
    if (!within) {
      const resource = keyArn(context, request.key.keyId);
      caller.decisions.push({ action: 'kms:CreateGrant', resource, allowed: false });
      throw accessDenied(caller, 'kms:CreateGrant', resource, 'because no resource-based policy allows the kms:CreateGrant action');
    }
  }
  await authorize(context, caller, request);
}

/**
 * RetireGrant is decided by the grant, not by key policy (developer guide, "Retiring and revoking
 * grants"): its retiring principal, its grantee principal when the grant includes RetireGrant,
 * and the account that created it may retire it. An account named by its root ARN, and the
 * issuing account, act through principals whose IAM policies allow kms:RetireGrant; an explicit
 * deny of kms:RetireGrant in IAM policies denies. kms:RetireGrant in a key policy has no effect.
 */
async function authorizeRetireGrant(context: ServiceContext, caller: Caller, grant: GrantRecord): Promise<void> {
  const resource = keyArn(context, grant.keyId);
  const identity = await explainAccess(context, caller, { action: 'kms:RetireGrant', resource });
  const names = principalNames(caller.principalArn);
  const callerAccount = accountOf(caller.principalArn);
  const callerIsRoot = callerAccount !== undefined && caller.principalArn === accountRootArn(context, callerAccount);
  const delegated = identity.decision === 'allow' || callerIsRoot;
  const actsAs = (principal: string | undefined): boolean =>
    principal !== undefined &&
    (names.includes(principal) || (callerAccount !== undefined && principal === accountRootArn(context, callerAccount) && delegated));
  const allowed =
    identity.decision !== 'explicit-deny' &&
    (actsAs(grant.retiringPrincipal) ||
      (grant.operations.includes('RetireGrant') && actsAs(grant.granteePrincipal)) ||
      (callerAccount === grant.issuingAccount && delegated));
  caller.decisions.push({ action: 'kms:RetireGrant', resource, allowed });
  if (!allowed) {
    const clause =
      identity.decision === 'explicit-deny'
        ? 'with an explicit deny in an identity-based policy'
        : 'because no identity-based policy allows the kms:RetireGrant action';
    throw accessDenied(caller, 'kms:RetireGrant', resource, clause);
  }
}

// ---------------------------------------------------------------------------------------------
// Operations

export const createGrant: Operation<CreateGrantRequest, CreateGrantResponse> = async (context, input, caller) => {
  checkGrantTokens(input.GrantTokens);
  const operations = checkOperations(input.Operations);
  if (input.GranteeServicePrincipal !== undefined || input.RetiringServicePrincipal !== undefined) {
    throw servicePrincipalsUnsupported();
  }
  const grantee = input.GranteePrincipal;
  if (grantee === undefined) {
    throw new KmsError('ValidationException', 'You must specify either GranteePrincipal or GranteeServicePrincipal.');
  }
  checkPrincipalShape(context, grantee, 'GranteePrincipal');
  const retiring = input.RetiringPrincipal;
  if (retiring !== undefined) checkPrincipalShape(context, retiring, 'RetiringPrincipal');
  const constraints = parseConstraints(input.Constraints);
  const keyIdParameter = input.KeyId as string;
  rejectAlias(keyIdParameter);

  const key = await resolveKey(context, keyIdParameter, { allowAlias: false });
  await authorizeCreateGrant(
    context,
    caller,
    {
      action: 'kms:CreateGrant',
      key,
      // kms:EncryptionContext:<key> and kms:EncryptionContextKeys apply to the grant's constraint.
      encryptionContext: constraintPairs(constraints),
      conditions: {
        'kms:GrantOperations': operations,
        'kms:GranteePrincipal': grantee,
        'kms:RetiringPrincipal': retiring,
        'kms:GrantIsForAWSResource': false,
        'kms:GrantConstraintType': constraints?.encryptionContextEquals
          ? 'EncryptionContextEquals'
          : constraints?.encryptionContextSubset
            ? 'EncryptionContextSubset'
            : undefined,
      },
    },
    operations,
    constraints,
  );
  if (!CREATE_GRANT_STATES.includes(key.state)) throw keyStateError(context, key);
  checkOperationsForKey(context, key, operations);
  if (constraints !== undefined && key.keySpec !== 'SYMMETRIC_DEFAULT') {
    // GrantConstraints: encryption context constraints only for symmetric encryption keys.
    throw new KmsError(
      'ValidationException',
      'Encryption context grant constraints are supported only for symmetric encryption KMS keys.',
    );
  }
  await checkPrincipalExists(context, grantee);
  if (retiring !== undefined) await checkPrincipalExists(context, retiring);

  const existing = await context.store.grantsForKey(key.keyId);
  if (input.Name !== undefined) {
    // Same Name and parameters: the original grant, with a new token (API reference, CreateGrant Name).
    const same = existing.find(
      (grant) =>
        grant.name === input.Name &&
        grant.granteePrincipal === grantee &&
        grant.retiringPrincipal === retiring &&
        sameOperations(grant.operations, operations) &&
        sameConstraints(grant.constraints, constraints),
    );
    if (same) {
      stopIfDryRun(input.DryRun);
      return { GrantToken: newGrantToken(same.grantId), GrantId: same.grantId };
    }
  }
  if (existing.length >= MAX_GRANTS_PER_KEY) throw grantLimitExceeded();
  stopIfDryRun(input.DryRun);

  const grant: GrantRecord = {
    grantId: randomBytes(32).toString('hex'),
    keyId: key.keyId,
    ...(input.Name !== undefined ? { name: input.Name } : {}),
    granteePrincipal: grantee,
    ...(retiring !== undefined ? { retiringPrincipal: retiring } : {}),
    operations,
    ...(constraints !== undefined ? { constraints } : {}),
    issuingAccount: accountOf(caller.principalArn) ?? context.accountId,
    createdAt: context.now(),
  };
  try {
    await context.store.createGrant(grant, MAX_GRANTS_PER_KEY);
  } catch (error) {
    if (error instanceof StoreLimitError) throw grantLimitExceeded();
    if (error instanceof StoreKeyNotFoundError) throw keyNotFound(context, key.keyId);
    throw error;
  }
  return { GrantToken: newGrantToken(grant.grantId), GrantId: grant.grantId };
};

const grantLimitExceeded = () =>
  new KmsError('LimitExceededException', `A KMS key can have at most ${MAX_GRANTS_PER_KEY} grants.`);

function grantListEntry(context: ServiceContext, grant: GrantRecord): GrantListEntry {
  const constraints = grant.constraints?.encryptionContextEquals
    ? { EncryptionContextEquals: grant.constraints.encryptionContextEquals }
    : grant.constraints?.encryptionContextSubset
      ? { EncryptionContextSubset: grant.constraints.encryptionContextSubset }
      : undefined;
  return {
    KeyId: keyArn(context, grant.keyId),
    GrantId: grant.grantId,
    ...(grant.name !== undefined ? { Name: grant.name } : {}),
    CreationDate: grant.createdAt,
    GranteePrincipal: grant.granteePrincipal,
    ...(grant.retiringPrincipal !== undefined ? { RetiringPrincipal: grant.retiringPrincipal } : {}),
    IssuingAccount: accountRootArn(context, grant.issuingAccount),
    Operations: grant.operations as GrantListEntry['Operations'],
    ...(constraints ? { Constraints: constraints } : {}),
  };
}

function grantList(context: ServiceContext, page: Page<GrantRecord>): ListGrantsResponse {
  return {
    Grants: page.items.map((grant) => grantListEntry(context, grant)),
    Truncated: page.nextAfter !== undefined,
    ...(page.nextAfter !== undefined ? { NextMarker: encodeMarker(page.nextAfter) } : {}),
  };
}

/** A page position: the store's sequence number, or InvalidMarkerException. */
const positionOf = (marker: string | undefined): string | undefined => {
  const seq = decodeNumericMarker(marker);
  return seq === undefined ? undefined : String(seq);
};

export const listGrants: Operation<ListGrantsRequest, ListGrantsResponse> = async (context, input, caller) => {
  const limit = pageLimit(input.Limit, { defaultLimit: 50, max: 100 });
  const after = positionOf(input.Marker);
  if (input.GrantId !== undefined) checkGrantId(input.GrantId);
  if (input.GranteeServicePrincipal !== undefined) throw servicePrincipalsUnsupported();
  const keyIdParameter = input.KeyId as string;
  rejectAlias(keyIdParameter);
  // Any key state: grants of a key pending deletion can still be listed.
  const key = await resolveKeyFor(context, caller, keyIdParameter, { allowAlias: false, action: 'kms:ListGrants' });
  const page = await context.store.listGrants(key.keyId, limit, after, {
    ...(input.GrantId !== undefined ? { grantId: input.GrantId } : {}),
    ...(input.GranteePrincipal !== undefined ? { granteePrincipal: input.GranteePrincipal } : {}),
  });
  return grantList(context, page);
};

export const listRetirableGrants: Operation<ListRetirableGrantsRequest, ListGrantsResponse> = async (
  context,
  input,
  caller,
) => {
  const limit = pageLimit(input.Limit, { defaultLimit: 50, max: 100 });
  const after = positionOf(input.Marker);
  if (input.RetiringServicePrincipal !== undefined) throw servicePrincipalsUnsupported();
  const retiring = input.RetiringPrincipal;
  if (retiring === undefined) {
    throw new KmsError('ValidationException', 'You must specify either RetiringPrincipal or RetiringServicePrincipal.');
  }
  checkPrincipalShape(context, retiring, 'RetiringPrincipal');
  // Identity policies only: "kms:ListRetirableGrants (IAM policy)" (API reference).
  await authorize(context, caller, { action: 'kms:ListRetirableGrants', resource: '*' });
  return grantList(context, await context.store.listRetirableGrants(retiring, limit, after));
};

export const retireGrant: Operation<RetireGrantRequest, Record<string, never>> = async (context, input, caller) => {
  let grantId: string;
  if (input.GrantToken !== undefined) {
    const fromToken = grantIdOfToken(input.GrantToken);
    if (fromToken === undefined) throw invalidGrantToken();
    if (input.GrantId !== undefined && input.GrantId !== fromToken) {
      throw new KmsError('ValidationException', 'The GrantId does not match the grant the GrantToken identifies.');
    }
    grantId = fromToken;
  } else {
    if (input.GrantId === undefined || input.KeyId === undefined) {
      throw new KmsError('ValidationException', 'Grant token OR (grant ID, key ID) must be specified');
    }
    checkGrantId(input.GrantId);
    grantId = input.GrantId;
  }
  let key: KeyRecord | undefined;
  if (input.KeyId !== undefined) {
    rejectAlias(input.KeyId);
    key = await resolveKey(context, input.KeyId, { allowAlias: false });
  }
  const grant = await context.store.getGrant(grantId);
  // A grant is found only on its own key.
  if (!grant || (key !== undefined && grant.keyId !== key.keyId)) throw grantNotFound(grantId);
  await authorizeRetireGrant(context, caller, grant);
  stopIfDryRun(input.DryRun);
  if (!(await context.store.deleteGrant(grant.grantId))) throw grantNotFound(grantId);
  return {};
};

export const revokeGrant: Operation<RevokeGrantRequest, Record<string, never>> = async (context, input, caller) => {
  const grantId = input.GrantId as string;
  checkGrantId(grantId);
  const keyIdParameter = input.KeyId as string;
  rejectAlias(keyIdParameter);
  // Any key state (developer guide, key state table).
  const key = await resolveKeyFor(context, caller, keyIdParameter, { allowAlias: false, action: 'kms:RevokeGrant' });
  const grant = await context.store.getGrant(grantId);
  if (!grant || grant.keyId !== key.keyId) throw grantNotFound(grantId);
  stopIfDryRun(input.DryRun);
  if (!(await context.store.deleteGrant(grantId))) throw grantNotFound(grantId);
  return {};
};
