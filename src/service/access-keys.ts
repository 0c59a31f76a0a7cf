import { createHash, timingSafeEqual } from 'node:crypto';
import { randomBytes } from '../crypto/random.ts';
import type { Sealer } from '../crypto/seal.ts';
import { SecretBytes } from '../crypto/secret-bytes.ts';
import type { MetadataStore } from '../storage/types.ts';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Binds a sealed secret to its key id and principal: a row cannot be re-pointed at another principal. */
const accessKeyBinding = (accessKeyId: string, principalArn: string): string =>
  `access-key:${accessKeyId}:${principalArn}`;

/**
 * An access key id in AWS's shape: AKIA (long-term) or ASIA (temporary) followed by 16 base32
 * characters.
 */
function newAccessKeyId(prefix: 'AKIA' | 'ASIA' = 'AKIA'): string {
  const bytes = randomBytes(16);
  let id: string = prefix;
  for (const byte of bytes) id += BASE32[byte & 31];
  return id;
}

export interface NewAccessKey {
  accessKeyId: string;
  /** Shown once, to the one who asked for it; stored only sealed. */
  secretAccessKey: SecretBytes;
}

/** Makes a new access key; nothing is stored until storeAccessKey. */
export function newAccessKey(prefix: 'AKIA' | 'ASIA' = 'AKIA'): NewAccessKey {
  // 30 random bytes give AWS's 40-character secret in base64 (240 bits).
  const entropy = randomBytes(30);
  const encoded = Buffer.from(entropy.toString('base64'), 'utf8');
  try {
    return { accessKeyId: newAccessKeyId(prefix), secretAccessKey: SecretBytes.from(encoded) };
  } finally {
    entropy.fill(0);
    encoded.fill(0);
  }
}

/** Stores the access key with its secret sealed under the root key, bound to the key id. */
export async function storeAccessKey(
  store: MetadataStore,
  sealer: Sealer,
  accessKey: NewAccessKey,
  principalArn: string,
  now: Date,
  session?: { sessionToken: string; expiresAt: Date },
): Promise<void> {
  await store.putAccessKey({
    accessKeyId: accessKey.accessKeyId,
    principalArn,
    sealedSecret: sealer.seal(accessKey.secretAccessKey, accessKeyBinding(accessKey.accessKeyId, principalArn)),
    status: 'Active',
    createdAt: now,
    ...(session ? { sessionTokenHash: sessionTokenHash(session.sessionToken), expiresAt: session.expiresAt } : {}),
  });
}

/** Session tokens are stored only as their SHA-256: the database alone cannot sign as a session. */
const sessionTokenHash = (sessionToken: string): Buffer => createHash('sha256').update(sessionToken, 'utf8').digest();

/** A session token: 48 random bytes, base64 (AWS's tokens are opaque strings of this alphabet). */
export const newSessionToken = (): string => randomBytes(48).toString('base64');

/** What the transport raises when credentials are unknown, or a session token is wrong or missing. */
export type CredentialProblem = 'unrecognized' | 'expired';

/** How long a last-used time may lag: AWS documents its own as approximate, within hours. */
const LAST_USED_RESOLUTION_MS = 60 * 60_000;

export interface ResolvedAccessKey {
  principalArn: string;
  secretAccessKey: Buffer;
  /** Temporary credentials only. */
  sessionTokenHash?: Buffer;
  expiresAt?: Date;
}

/** What authenticate needs of a resolved access key: everything but the secret. */
export type AccessKeyCredential = Omit<ResolvedAccessKey, 'secretAccessKey'>;

/**
 * Finds the secret behind an access key id for SigV4 verification. The record is read from the
 * store on every request, so a deactivated or deleted key stops working at once on every node;
 * only the unsealing is cached, keyed by the sealed bytes themselves.
 */
export class AccessKeyResolver {
  private readonly unsealed = new Map<string, { sealed: Buffer; secret: SecretBytes }>();
  /** When this process last recorded each key's use. */
  private readonly lastTouched = new Map<string, number>();

  constructor(
    private readonly store: MetadataStore,
    private readonly sealer: Sealer,
  ) {}

  async resolve(accessKeyId: string): Promise<ResolvedAccessKey | undefined> {
    const record = await this.store.getAccessKey(accessKeyId);
    if (!record || record.status !== 'Active') return undefined;
    let cached = this.unsealed.get(accessKeyId);
    // The read cache hands back the same record object until something changes: compare by
    // reference first, bytes only when the record was re-read.
    if (!cached || (cached.sealed !== record.sealedSecret && !cached.sealed.equals(record.sealedSecret))) {
      cached?.secret.zero();
      const binding = accessKeyBinding(accessKeyId, record.principalArn);
      cached = { sealed: record.sealedSecret, secret: this.sealer.unseal(record.sealedSecret, binding) };
      this.unsealed.set(accessKeyId, cached);
    }
    return {
      principalArn: record.principalArn,
      secretAccessKey: cached.secret.exposeSecretBytes(),
      sessionTokenHash: record.sessionTokenHash,
      expiresAt: record.expiresAt,
    };
  }

  /**
   * After the signature checked out: the principal the request acts as, or the problem. Long-term
   * keys must come without a session token; temporary ones with theirs (compared as SHA-256 in
   * constant time) and before they expire. Records the key's use at most once an hour per process.
   *
   * `resolved` is what resolve() answered for this same request (the SigV4 lookup): the record is
   * then not read a second time. It is no staler than a second read would be — both are reads
   * made for the request being served — and on PostgreSQL the second read was a round trip.
   */
  async authenticate(
    accessKeyId: string,
    sessionToken: string | undefined,
    now: Date,
    resolvedForRequest?: AccessKeyCredential,
  ): Promise<{ principalArn: string } | { problem: CredentialProblem }> {
    const resolved = resolvedForRequest ?? (await this.resolve(accessKeyId));
    if (!resolved) return { problem: 'unrecognized' };
    if (resolved.sessionTokenHash === undefined) {
      if (sessionToken !== undefined) return { problem: 'unrecognized' };
    } else {
      if (sessionToken === undefined || !timingSafeEqual(sessionTokenHash(sessionToken), resolved.sessionTokenHash)) {
        return { problem: 'unrecognized' };
      }
      if (resolved.expiresAt && resolved.expiresAt.getTime() <= now.getTime()) return { problem: 'expired' };
    }
    const last = this.lastTouched.get(accessKeyId);
    if (last === undefined || now.getTime() - last >= LAST_USED_RESOLUTION_MS) {
      if (this.lastTouched.size >= 50_000) this.lastTouched.clear();
      this.lastTouched.set(accessKeyId, now.getTime());
      await this.store.touchAccessKey(accessKeyId, now, new Date(now.getTime() - LAST_USED_RESOLUTION_MS));
    }
    return { principalArn: resolved.principalArn };
  }
}
