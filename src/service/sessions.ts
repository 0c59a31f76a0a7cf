/**
 * Temporary credentials, as AWS STS issues them: AssumeRole returns an access key (ASIA…), a
 * secret and a session token that expire together. The session acts as
 * arn:aws:sts::<acct>:assumed-role/<role>/<session> and answers to the role's identity policies;
 * key policies and grants naming the role apply to its sessions.
 */
import { newAccessKey, newSessionToken, storeAccessKey } from './access-keys.ts';
import { authorize } from './authorization.ts';
import { identityArnOf } from './principals.ts';
import type { Caller, ServiceContext } from './context.ts';
import { KmsError } from './errors.ts';

export interface AssumeRoleInput {
  RoleArn?: string;
  RoleSessionName?: string;
  DurationSeconds?: number;
  Policy?: string;
  PolicyArns?: unknown;
  Tags?: unknown;
}

export interface TemporaryCredentials {
  AccessKeyId: string;
  SecretAccessKey: string;
  SessionToken: string;
  Expiration: Date;
}

export interface AssumeRoleOutput {
  Credentials: TemporaryCredentials;
  AssumedRoleUser: { AssumedRoleId: string; Arn: string };
}

const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const ROLE_ARN = /^arn:([^:]+):iam::(\d{12}):role\/(?:.*\/)?([\w+=,.@-]{1,64})$/;
const MIN_DURATION_SECONDS = 900;
/** AWS: "role chaining limits your session to a maximum of one hour". */
const CHAINED_MAX_SECONDS = 3600;
export const DEFAULT_MAX_SESSION_SECONDS = 3600;

const validation = (message: string) => new KmsError('ValidationException', message);

export async function assumeRole(context: ServiceContext, caller: Caller, input: AssumeRoleInput): Promise<AssumeRoleOutput> {
  const roleArn = input.RoleArn;
  const sessionName = input.RoleSessionName;
  if (typeof roleArn !== 'string' || roleArn.length < 20 || roleArn.length > 2048) {
    throw validation("1 validation error detected: Value at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048");
  }
  if (typeof sessionName !== 'string' || !SESSION_NAME.test(sessionName)) {
    throw validation(
      "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
    );
  }
  // A session policy or session tags would narrow or label the session; silently ignoring them
  // would hand out more than was asked for, so they are refused.
  if (input.Policy !== undefined || input.PolicyArns !== undefined || input.Tags !== undefined) {
    throw validation('Session policies and session tags are not supported by Strongroom.');
  }
  const parsedArn = ROLE_ARN.exec(roleArn);
  const role = parsedArn && parsedArn[2] === context.accountId ? await context.store.getPrincipal(roleArn) : undefined;
  // AWS answers a role that does not exist, or that the caller may not assume, with the same
  // AccessDenied, so the answer does not reveal which roles exist.
  await authorize(context, caller, {
    action: 'sts:AssumeRole',
    resource: roleArn,
    resourcePolicy: role?.kind === 'role' ? (role.trustPolicy ?? '{}') : '{}',
  });
  if (!role || role.kind !== 'role') throw new KmsError('AccessDeniedException', `User: ${caller.principalArn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`);

  const chained = identityArnOf(caller.principalArn) !== caller.principalArn;
  const maxSeconds = chained ? CHAINED_MAX_SECONDS : (role.maxSessionDurationSeconds ?? DEFAULT_MAX_SESSION_SECONDS);
  const duration = input.DurationSeconds ?? Math.min(3600, maxSeconds);
  if (!Number.isInteger(duration) || duration < MIN_DURATION_SECONDS || duration > maxSeconds) {
    throw validation(
      `The requested DurationSeconds exceeds the MaxSessionDuration set for this role (or is below ${MIN_DURATION_SECONDS} seconds).`,
    );
  }

  // Fail closed: no credentials are issued unless the audit trail can record it.
  await context.audit.probe();
  const now = context.now();
  const expiresAt = new Date(Math.floor(now.getTime() / 1000) * 1000 + duration * 1000);
  const sessionArn = `arn:${context.partition}:sts::${context.accountId}:assumed-role/${role.name}/${sessionName}`;
  const accessKey = newAccessKey('ASIA');
  const sessionToken = newSessionToken();
  try {
    await storeAccessKey(context.store, context.sealer, accessKey, sessionArn, now, { sessionToken, expiresAt });
    return {
      Credentials: {
        AccessKeyId: accessKey.accessKeyId,
        SecretAccessKey: accessKey.secretAccessKey.exposeSecretBytes().toString('utf8'),
        SessionToken: sessionToken,
        Expiration: expiresAt,
      },
      AssumedRoleUser: { AssumedRoleId: `${role.principalId}:${sessionName}`, Arn: sessionArn },
    };
  } finally {
    accessKey.secretAccessKey.zero();
  }
}

/** STS GetCallerIdentity: needs no permission (AWS: "No permissions are required"). */
export async function getCallerIdentity(
  context: ServiceContext,
  caller: Caller,
): Promise<{ Account: string; Arn: string; UserId: string }> {
  caller.decisions.push({ action: 'sts:GetCallerIdentity', resource: '*', allowed: true });
  const principal = await context.store.getPrincipal(identityArnOf(caller.principalArn));
  const session = /:assumed-role\/[^/]+\/(.+)$/.exec(caller.principalArn)?.[1];
  const id = principal?.principalId ?? caller.accessKeyId;
  return {
    Account: context.accountId,
    Arn: caller.principalArn,
    UserId: session ? `${id}:${session}` : id,
  };
}
