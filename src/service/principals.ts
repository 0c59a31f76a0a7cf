import { randomBytes } from '../crypto/random.ts';
import {
  ADMINISTRATOR_ACCESS_POLICY,
  ADMINISTRATOR_ACCESS_POLICY_NAME,
  StoreConflictError,
  type MetadataStore,
  type PrincipalKind,
} from '../storage/types.ts';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** AWS's unique-id shape: AIDA (users) or AROA (roles) and 17 base32 characters. */
export function newPrincipalId(kind: PrincipalKind): string {
  let id = kind === 'user' ? 'AIDA' : 'AROA';
  for (const byte of randomBytes(17)) id += BASE32[byte & 31];
  return id;
}

export const principalArnOf = (partition: string, accountId: string, kind: PrincipalKind, name: string): string =>
  `arn:${partition}:iam::${accountId}:${kind}/${name}`;

/**
 * Makes the administrator user with AdministratorAccess, if it does not exist yet. Idempotent,
 * so a crash between the two writes is repaired by the next start.
 */
export async function ensureAdministrator(store: MetadataStore, arn: string, now: Date): Promise<void> {
  if (!(await store.getPrincipal(arn))) {
    try {
      await store.createPrincipal({
        arn,
        kind: 'user',
        name: arn.slice(arn.indexOf(':user/') + ':user/'.length),
        principalId: newPrincipalId('user'),
        createdAt: now,
        tags: [],
      });
    } catch (error) {
      if (!(error instanceof StoreConflictError)) throw error;
    }
  }
  if (!(await store.getIdentityPolicy(arn, ADMINISTRATOR_ACCESS_POLICY_NAME))) {
    await store.putIdentityPolicy({ principalArn: arn, policyName: ADMINISTRATOR_ACCESS_POLICY_NAME, document: ADMINISTRATOR_ACCESS_POLICY });
  }
}

/** arn:<partition>:sts::<account>:assumed-role/<role>/<session> */
export const ASSUMED_ROLE = /^arn:([^:]+):sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/;
const IAM_PRINCIPAL = /^arn:([^:]+):iam::(\d{12}):(user|role|root)(?:\/(.+))?$/;

/** The user or role whose identity policies a caller answers to (a session answers to its role). */
export function identityArnOf(principalArn: string): string {
  const session = ASSUMED_ROLE.exec(principalArn);
  return session ? `arn:${session[1]}:iam::${session[2]}:role/${session[3]}` : principalArn;
}

export function accountOf(principalArn: string): string | undefined {
  return ASSUMED_ROLE.exec(principalArn)?.[2] ?? IAM_PRINCIPAL.exec(principalArn)?.[2];
}
