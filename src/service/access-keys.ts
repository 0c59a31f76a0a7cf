import { randomBytes } from 'node:crypto';
import type { Sealer } from '../crypto/seal.ts';
import { SecretBytes } from '../crypto/secret-bytes.ts';
import type { MetadataStore } from '../storage/types.ts';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

const accessKeyBinding = (accessKeyId: string): string => `access-key:${accessKeyId}`;

/** An access key id in AWS's shape: AKIA followed by 16 base32 characters. */
function newAccessKeyId(): string {
  const bytes = randomBytes(16);
  let id = 'AKIA';
  for (const byte of bytes) id += BASE32[byte & 31];
  return id;
}

export interface NewAccessKey {
  accessKeyId: string;
  /** Shown once, to the one who asked for it; stored only sealed. */
  secretAccessKey: SecretBytes;
}

/** Makes a new access key; nothing is stored until storeAccessKey. */
export function newAccessKey(): NewAccessKey {
  // 30 random bytes give AWS's 40-character secret in base64 (240 bits).
  return {
    accessKeyId: newAccessKeyId(),
    secretAccessKey: SecretBytes.from(Buffer.from(randomBytes(30).toString('base64'), 'utf8')),
  };
}

/** Stores the access key with its secret sealed under the root key, bound to the key id. */
export async function storeAccessKey(
  store: MetadataStore,
  sealer: Sealer,
  accessKey: NewAccessKey,
  principalArn: string,
  now: Date,
): Promise<void> {
  await store.putAccessKey({
    accessKeyId: accessKey.accessKeyId,
    principalArn,
    sealedSecret: sealer.seal(accessKey.secretAccessKey, accessKeyBinding(accessKey.accessKeyId)),
    status: 'Active',
    createdAt: now,
  });
}

export interface ResolvedAccessKey {
  principalArn: string;
  secretAccessKey: Buffer;
}

/**
 * Finds the secret behind an access key id for SigV4 verification. The record is read from the
 * store on every request, so a deactivated or deleted key stops working at once on every node;
 * only the unsealing is cached, keyed by the sealed bytes themselves.
 */
export class AccessKeyResolver {
  private readonly unsealed = new Map<string, { sealed: Buffer; secret: SecretBytes }>();

  constructor(
    private readonly store: MetadataStore,
    private readonly sealer: Sealer,
  ) {}

  async resolve(accessKeyId: string): Promise<ResolvedAccessKey | undefined> {
    const record = await this.store.getAccessKey(accessKeyId);
    if (!record || record.status !== 'Active') return undefined;
    let cached = this.unsealed.get(accessKeyId);
    if (!cached || !cached.sealed.equals(record.sealedSecret)) {
      cached = { sealed: record.sealedSecret, secret: this.sealer.unseal(record.sealedSecret, accessKeyBinding(accessKeyId)) };
      this.unsealed.set(accessKeyId, cached);
    }
    return { principalArn: record.principalArn, secretAccessKey: cached.secret.exposeSecretBytes() };
  }
}
