import { createHash } from 'node:crypto';
import { randomBytes } from '../crypto/random.ts';
import type { KeyStore } from '../keystores/types.ts';
import type { KeyRecord, KeyVersionRecord, RotationType } from '../storage/types.ts';
import type { ServiceContext } from './context.ts';
import { KmsError, invalidCiphertext } from './errors.ts';

/** AWS's KeyMaterialId: 64 lowercase hex characters naming one version's material, not derived from it. */
const newKeyMaterialId = (): string => createHash('sha256').update(randomBytes(32)).digest('hex');

/** Makes material for `version` of the key through its key store (the software store by default). */
export async function makeKeyVersion(
  context: ServiceContext,
  key: Pick<KeyRecord, 'keyId' | 'keySpec' | 'xksKeyId'>,
  version: number,
  rotationType: RotationType | undefined,
  keyStore: KeyStore = context.keyStore,
): Promise<KeyVersionRecord> {
  return {
    keyId: key.keyId,
    version,
    keyMaterialId: newKeyMaterialId(),
    sealedMaterial: await keyStore.createVersionMaterial(key.keyId, version, key.keySpec, key.xksKeyId),
    createdAt: context.now(),
    rotationType,
  };
}

/**
 * Adds a new current version. Two rotations racing on the same key (two nodes, or the scheduler
 * and RotateKeyOnDemand) are settled by the store's compare-and-set on the current version.
 */
export async function rotate(
  context: ServiceContext,
  key: KeyRecord,
  rotationType: RotationType,
  nextRotationAt?: Date | null,
): Promise<KeyVersionRecord> {
  const version = await makeKeyVersion(context, key, key.currentVersion + 1, rotationType);
  const added = await context.store.addKeyVersion(version, key.currentVersion, {
    nextRotationAt,
    countOnDemand: rotationType === 'ON_DEMAND',
  });
  if (!added) {
    throw new KmsError('ConflictException', 'The key was rotated, disabled or deleted by another request; try again.');
  }
  return version;
}

/** The version a ciphertext names; a missing one means the blob is not ours. */
export async function versionForDecrypt(
  context: ServiceContext,
  keyId: string,
  version: number,
): Promise<KeyVersionRecord> {
  const record = await context.store.getKeyVersion(keyId, version);
  if (!record) throw invalidCiphertext();
  return record;
}

/**
 * The key's current version, for operations that use the key rather than a ciphertext (Sign,
 * GenerateMac, GetPublicKey, ...). A missing row is our fault, not the caller's.
 */
export async function currentVersion(context: ServiceContext, key: KeyRecord): Promise<KeyVersionRecord> {
  const record = await context.store.getKeyVersion(key.keyId, key.currentVersion);
  if (!record) throw new KmsError('KMSInternalException', 'The current key version is missing.');
  return record;
}
