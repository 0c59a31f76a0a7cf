/**
 * The cluster wrapping key ceremony (docs/hsm-cluster.md). The key is generated inside the first
 * member and travels to each further member only as RSA-OAEP ciphertext under a transport key
 * pair that the joining member generated inside itself a moment before: Strongroom carries
 * ciphertext and public keys, never the key in the clear.
 *
 *   joining member J (SO)            Strongroom                 source member S (SO)
 *   beginJoin: RSA-3072 pair, ──(n, e)──►                   wrapClusterKeyFor: import (n, e) as a
 *   private half unwrap-only                                    trusted session object, C_WrapKey
 *                                    ◄──OAEP(CWK)──             the CWK (trusted, wrap-with-trusted)
 *   completeJoin: C_UnwrapKey as a trusted CWK, destroy the pair
 *
 * Then a probe key made in S, replicated to J under the CWK, encrypting in S and decrypting in J
 * proves both hold the same key.
 */
import { timingSafeEqual } from 'node:crypto';
import { randomBytes, randomUuid } from '../../../crypto/random.ts';
import type { SecretBytes } from '../../../crypto/secret-bytes.ts';
import { Pkcs11Error } from '../errors.ts';
import { newObjectId } from '../reference.ts';
import { transportKeyFingerprint, type HsmMember } from './member.ts';

export async function createClusterKey(clusterId: string, first: HsmMember, firstSoPin: SecretBytes): Promise<void> {
  await first.createClusterKey(firstSoPin, clusterId);
}

/**
 * Installs the cluster wrapping key of `source` in `joining`; both must be reachable. Returns the
 * transport key's fingerprint, for the operators to compare with the agents' logs.
 */
export async function installClusterKey(
  clusterId: string,
  source: HsmMember,
  sourceSoPin: SecretBytes,
  joining: HsmMember,
  joiningSoPin: SecretBytes,
): Promise<string> {
  const transport = await joining.beginJoin(joiningSoPin);
  const wrapped = await source.wrapClusterKeyFor(sourceSoPin, transport);
  await joining.completeJoin(joiningSoPin, clusterId, wrapped);
  await source.connect();
  await joining.connect();
  await proveSharedClusterKey(source, joining);
  return transportKeyFingerprint(transport);
}

/** A throwaway key made in `source`, replicated to `other`: what one encrypts, the other decrypts. */
export async function proveSharedClusterKey(source: HsmMember, other: HsmMember): Promise<void> {
  const objectId = newObjectId(randomUuid(), 1);
  const label = 'strongroom:ceremony-probe';
  await source.generateAesKey(objectId, label);
  try {
    await other.unwrap(objectId, label, await source.wrap(objectId));
    const iv = randomBytes(12);
    const aad = Buffer.from('strongroom/ceremony-probe');
    const probe = randomBytes(32);
    const sealed = await source.encrypt(objectId, iv, aad, probe);
    const opened = await other.decrypt(objectId, iv, aad, sealed);
    if (opened.length !== probe.length || !timingSafeEqual(opened, probe)) {
      throw new Pkcs11Error('CEREMONY_FAILED', `members ${source.name} and ${other.name} do not share the cluster wrapping key`);
    }
  } finally {
    await Promise.allSettled([source.destroy(objectId), other.destroy(objectId)]);
  }
}
