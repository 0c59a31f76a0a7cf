import { randomBytes } from '../crypto/random.ts';
import type { Sealer } from '../crypto/seal.ts';
import { SecretBytes } from '../crypto/secret-bytes.ts';
import type { MetadataStore } from '../storage/types.ts';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Binds a sealed secret to its key id and principal: a row cannot be re-pointed at another principal. */
const accessKeyBinding = (accessKeyId: string, principalArn: string): string =>
  `access-key:${accessKeyId}:${principalArn}`;

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
  const entropy = randomBytes(30);
  const encoded = Buffer.from(entropy.toString('base64'), 'utf8');
  try {
    return { accessKeyId: newAccessKeyId(), secretAccessKey: SecretBytes.from(encoded) };
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
): Promise<void> {
  await store.putAccessKey({
    accessKeyId: accessKey.accessKeyId,
    principalArn,
    sealedSecret: sealer.seal(accessKey.secretAccessKey, accessKeyBinding(accessKey.accessKeyId, principalArn)),
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
    // The read cache hands back the same record object until something changes: compare by
    // reference first, bytes only when the record was re-read.
    if (!cached || (cached.sealed !== record.sealedSecret && !cached.sealed.equals(record.sealedSecret))) {
      cached?.secret.zero();
      const binding = accessKeyBinding(accessKeyId, record.principalArn);
      cached = { sealed: record.sealedSecret, secret: this.sealer.unseal(record.sealedSecret, binding) };
      this.unsealed.set(accessKeyId, cached);
    }
    return { principalArn: record.principalArn, secretAccessKey: cached.secret.exposeSecretBytes() };
  }
}
