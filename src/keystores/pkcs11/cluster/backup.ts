/**
 * Backup files of an HSM cluster: every KMS key object wrapped under the cluster wrapping key
 * (RFC 3394), which exists only inside the members. Without a member holding that key the file
 * is useless; with one, anyone holding the member's user PIN could unwrap it (pkcs11js cannot set
 * CKA_UNWRAP_TEMPLATE, templates.ts), so keep it as you keep the PIN. Written 0600.
 *
 *   { "format": "strongroom-hsm-backup/1", "clusterId": "...", "createdAt": "ISO-8601",
 *     "objects": [ { "objectId": "<CKA_ID hex>", "label": "strongroom:<key>:v<n>", "wrapped": "<base64>" } ] }
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { Pkcs11Error } from '../errors.ts';
import { OBJECT_ID_LENGTH } from '../reference.ts';
import type { HsmMember } from './member.ts';

export const BACKUP_FORMAT = 'strongroom-hsm-backup/1';
const MAX_BACKUP_BYTES = 256 * 1024 * 1024;

export interface BackupObject {
  readonly objectId: string;
  readonly label: string;
  readonly wrapped: string;
}

export interface BackupFile {
  readonly format: string;
  readonly clusterId: string;
  readonly createdAt: string;
  readonly objects: BackupObject[];
}

/** Wraps every key object of `member` into a new backup file at `path`. */
export async function writeBackup(member: HsmMember, clusterId: string, path: string, now = new Date()): Promise<BackupFile> {
  const objects: BackupObject[] = [];
  for (const object of await member.listObjects()) {
    const wrapped = await member.wrap(object.objectId);
    objects.push({ objectId: object.objectId.toString('hex'), label: object.label, wrapped: wrapped.toString('base64') });
  }
  const backup: BackupFile = { format: BACKUP_FORMAT, clusterId, createdAt: now.toISOString(), objects };
  await writeAtomically(path, backup);
  return backup;
}

export async function readBackup(path: string): Promise<BackupFile> {
  const text = await readFile(path, 'utf8');
  if (text.length > MAX_BACKUP_BYTES) throw new Pkcs11Error('FAILED', 'backup file is too large');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Pkcs11Error('FAILED', 'backup file is not valid JSON');
  }
  const backup = parsed as Partial<BackupFile>;
  if (backup?.format !== BACKUP_FORMAT || typeof backup.clusterId !== 'string' || !Array.isArray(backup.objects)) {
    throw new Pkcs11Error('FAILED', `backup file is not in the ${BACKUP_FORMAT} format`);
  }
  for (const object of backup.objects) {
    if (
      typeof object?.objectId !== 'string' ||
      !/^[0-9a-f]+$/.test(object.objectId) ||
      object.objectId.length !== OBJECT_ID_LENGTH * 2 ||
      typeof object.label !== 'string' ||
      !object.label.startsWith('strongroom:') ||
      typeof object.wrapped !== 'string'
    ) {
      throw new Pkcs11Error('FAILED', 'backup file holds a malformed object entry');
    }
  }
  return backup as BackupFile;
}

/** Unwraps into `member` every object of the backup it lacks; returns how many were restored. */
export async function restoreBackup(member: HsmMember, clusterId: string, path: string): Promise<number> {
  const backup = await readBackup(path);
  if (backup.clusterId !== clusterId) throw new Pkcs11Error('FAILED', `backup belongs to cluster ${backup.clusterId}, not ${clusterId}`);
  const present = new Set((await member.listObjects()).map((object) => object.objectId.toString('hex')));
  let restored = 0;
  for (const object of backup.objects) {
    if (present.has(object.objectId)) continue;
    await member.unwrap(Buffer.from(object.objectId, 'hex'), object.label, Buffer.from(object.wrapped, 'base64'));
    restored++;
  }
  return restored;
}

/**
 * Rewrites a managed backup without the object: true if it was there; 'missing' if the file is gone
 * (left missing; the caller reports it).
 */
export async function removeFromBackupFile(path: string, objectId: Buffer): Promise<boolean | 'missing'> {
  let backup: BackupFile;
  try {
    backup = await readBackup(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
  const id = objectId.toString('hex');
  const objects = backup.objects.filter((object) => object.objectId !== id);
  if (objects.length === backup.objects.length) return false;
  await writeAtomically(path, { ...backup, objects });
  return true;
}

async function writeAtomically(path: string, backup: BackupFile): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  const handle = await open(temporary, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(backup, null, 2)}\n`);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temporary, path);
}
