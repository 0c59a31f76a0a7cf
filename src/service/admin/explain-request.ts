/**
 * ExplainRequest: how the policies decide a request a principal might make, with the statements
 * that decided it and the reasons — `strongroom policy explain`. It is IAM's
 * SimulatePrincipalPolicy in spirit (and asks for that permission on the principal), but runs
 * the real decision path, key policy and grants included (authorization.ts explainAccess).
 * Reasons never carry request values.
 */
import type { ContextValue } from '../../policy/evaluate.ts';
import { explainAccess, type AccessExplanation } from '../authorization.ts';
import { identityArnOf } from '../principals.ts';
import type { Caller, ServiceContext } from '../context.ts';
import { KmsError } from '../errors.ts';
import { resolveKey } from '../key-resolution.ts';
import { authorizeAdmin, noSuchEntity } from './identities.ts';
import { AdminInput } from './input.ts';

const PRINCIPAL = /^arn:([^:]+):(?:iam::(\d{12}):(user|role)\/(?:.*\/)?([^/]+)|sts::(\d{12}):assumed-role\/([^/]+)\/.+)$/;

/** IAM's EvalDecision vocabulary. */
const DECISION: Record<AccessExplanation['decision'], string> = {
  allow: 'allowed',
  'explicit-deny': 'explicitDeny',
  'implicit-deny': 'implicitDeny',
};

/** The alias a KeyId names (kms:RequestAlias), if it names one. */
function requestAliasOf(keyId: string): string | undefined {
  if (keyId.startsWith('alias/')) return keyId;
  const arn = /^arn:[^:]+:kms:[^:]*:[^:]*:(alias\/.+)$/.exec(keyId);
  return arn?.[1];
}

export async function explainRequest(context: ServiceContext, body: unknown, caller: Caller): Promise<object> {
  const input = AdminInput.of(body);
  const principalArn = input.string('PrincipalArn', { required: true, min: 20, max: 2048 });
  const action = input.string('Action', {
    required: true,
    min: 3,
    max: 128,
    pattern: /^[A-Za-z0-9-]+:[A-Za-z0-9]+$/,
    patternText: '[A-Za-z0-9-]+:[A-Za-z0-9]+',
  });
  const keyId = input.string('KeyId', { min: 1, max: 2048 });
  const resource = input.string('Resource', { min: 1, max: 2048 });
  const encryptionContext = input.secretStringMap('EncryptionContext');
  const entries = input.structureList('ContextEntries', {}, (entry) => ({
    key: entry.string('Key', { required: true, min: 1, max: 256 }),
    values: entry.stringList('Values', { required: true, min: 1, member: { secret: true } }) as string[],
  }));
  input.check();
  if (keyId !== undefined && resource !== undefined) {
    throw new KmsError('ValidationException', 'Specify KeyId or Resource, not both.');
  }
  const principal = PRINCIPAL.exec(principalArn);
  const account = principal?.[2] ?? principal?.[5];
  if (!principal || principal[1] !== context.partition || account !== context.accountId) {
    throw new KmsError(
      'ValidationException',
      `PrincipalArn must be the ARN of a user, role or assumed-role session of account ${context.accountId}.`,
    );
  }
  const identityArn = identityArnOf(principalArn);
  await authorizeAdmin(context, caller, 'SimulatePrincipalPolicy', identityArn);

  const kind = principal[3] === 'user' ? 'user' : 'role';
  const identity = await context.store.getPrincipal(identityArn);
  if (!identity) throw noSuchEntity(kind, principal[4] ?? principal[6]);
  const key = keyId === undefined ? undefined : await resolveKey(context, keyId, { allowAlias: true });
  const conditions: Record<string, ContextValue> = {};
  for (const entry of entries ?? []) conditions[entry.key] = entry.values.length === 1 ? entry.values[0] : entry.values;

  // The request as the named principal would make it; its decisions are not this caller's.
  const subject: Caller = { principalArn, accessKeyId: '', decisions: [] };
  const explanation = await explainAccess(context, subject, {
    action,
    key,
    resource: key ? undefined : (resource ?? '*'),
    requestAlias: keyId === undefined ? undefined : requestAliasOf(keyId),
    encryptionContext,
    conditions,
  });
  return {
    Decision: DECISION[explanation.decision],
    PrincipalArn: explanation.principalArn,
    Action: explanation.action,
    Resource: explanation.resource,
    MatchedStatements: explanation.matched.map((statement) => ({
      SourcePolicyId: statement.policy,
      ...(statement.sid === undefined ? {} : { Sid: statement.sid }),
      StatementIndex: statement.index,
      Effect: statement.effect,
    })),
    Reasons: explanation.reasons,
    ...(explanation.grantId === undefined ? {} : { GrantId: explanation.grantId }),
  };
}
