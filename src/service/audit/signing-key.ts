import { createPrivateKey, createPublicKey, randomBytes, randomFillSync, type KeyObject } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';
import { sha256 } from '../../crypto/audit-chain.ts';
import type { Sealer } from '../../crypto/seal.ts';
import type { AuditStore } from '../../storage/audit-types.ts';

/**
 * The audit signing key (docs/audit.md): Ed25519, made at first start, used only to sign digests.
 * The private key is stored sealed (binding `audit-signing-key`) in the audit database's meta table.
 */

export const AUDIT_SIGNING_KEY_BINDING = 'audit-signing-key';
const META_NAME = 'signing-key';

/**
 * PKCS#8 (RFC 8410 §7) of an Ed25519 private key: this fixed prefix, then the 32-byte seed. The key
 * is made from a random seed in this encoding rather than by generateKeyPairSync + export: on
 * Node 20 a garbage collection inside the export of a generated key can finalise its generation
 * job, which takes the lock the export holds, and the thread deadlocks (docs/esdk.md, "Key pairs
 * come from ECDH"). Importing bytes involves no generation job.
 */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A new Ed25519 private key as PKCS#8 DER (the caller zeroes it). */
export function newEd25519Pkcs8(): Buffer {
  const der = Buffer.alloc(ED25519_PKCS8_PREFIX.length + 32);
  ED25519_PKCS8_PREFIX.copy(der);
  randomFillSync(der, ED25519_PKCS8_PREFIX.length, 32);
  return der;
}

export interface AuditSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
  /** Hex SHA-256 of the public key's SPKI DER: every digest names it. */
  publicKeyId: string;
}

/** The SHA-256 of a public key's SPKI DER, hex. */
export function publicKeyIdOf(publicKey: KeyObject): string {
  return sha256(publicKey.export({ type: 'spki', format: 'der' })).toString('hex');
}

/** Reads a PEM public key and checks that it is Ed25519. */
export function auditPublicKey(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('the audit public key must be an Ed25519 key');
  return key;
}

/** The stored key, or undefined when the trail has none yet. */
export async function loadAuditSigningKey(store: AuditStore, sealer: Sealer): Promise<AuditSigningKey | undefined> {
  const sealed = await store.getMeta(META_NAME);
  return sealed === undefined ? undefined : openSigningKey(sealed, sealer);
}

/**
 * The stored key, made now if there is none. Insert-if-absent then re-read, so processes starting
 * together all end up with the first writer's key. Writes the public key to `publicKeyPath`.
 */
export async function loadOrCreateAuditSigningKey(
  store: AuditStore,
  sealer: Sealer,
  publicKeyPath: string,
): Promise<AuditSigningKey> {
  let sealed = await store.getMeta(META_NAME);
  if (sealed === undefined) {
    // A trail with digests had a key: a new one would silently re-sign from here on.
    if ((await store.tail()).lastDigestSeq > 0) throw new Error('the audit signing key is missing from a trail that has digests');
    const der = newEd25519Pkcs8();
    try {
      sealed = await store.putMetaIfAbsent(META_NAME, sealer.seal(der, AUDIT_SIGNING_KEY_BINDING).toString('base64'));
    } finally {
      der.fill(0);
    }
  }
  const key = openSigningKey(sealed, sealer);
  await writePublicKey(publicKeyPath, key.publicKeyPem);
  return key;
}

function openSigningKey(sealed: string, sealer: Sealer): AuditSigningKey {
  const der = sealer.unseal(Buffer.from(sealed, 'base64'), AUDIT_SIGNING_KEY_BINDING);
  try {
    const privateKey = createPrivateKey({ key: der.exposeSecretBytes(), format: 'der', type: 'pkcs8' });
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('the audit signing key is not Ed25519');
    const publicKey = createPublicKey(privateKey);
    return {
      privateKey,
      publicKey,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
      publicKeyId: publicKeyIdOf(publicKey),
    };
  } finally {
    der.zero();
  }
}

/** Writes the PEM unless the file already holds it: temp file, fsync, rename. It is public: 0644. */
async function writePublicKey(path: string, pem: string): Promise<void> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === pem) return;
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o644);
  try {
    await handle.writeFile(pem);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}
