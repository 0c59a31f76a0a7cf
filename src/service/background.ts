import { buildServiceEvent } from './audit-events.ts';
import type { ServiceContext } from './context.ts';
import { destroyDueKeys, type MaterialDestructionNote } from './operations/key-deletion.ts';
import { rotateDueKeys } from './operations/rotation.ts';

export interface BackgroundFailure {
  keyId: string;
  task: 'destroy' | 'rotate';
  error: unknown;
}

export interface BackgroundRun {
  destroyed: string[];
  rotated: string[];
  /** Keys whose work failed this time; they are tried again on the next run. */
  failed: BackgroundFailure[];
  /** Custom key store material whose destruction was deferred (owed), or whose managed backups were missing. */
  material: MaterialDestructionNote[];
  /** Expired temporary credentials removed (they stopped working at expiry already). */
  expiredSessions: number;
  /** Another node sharing the database was running its pass: this one did nothing. */
  skipped?: true;
}

/**
 * The scheduler's work, run on one process: destroy keys whose deletion date has passed, then
 * rotate keys whose automatic rotation is due, then drop expired temporary credentials. Each key
 * destroyed or rotated is an event in the audit trail. One key's failure does not stop the others; every
 * step is idempotent, so a crash or failure mid-run is simply redone next time.
 *
 * Several nodes on one PostgreSQL each run a scheduler; one pass runs at a time across them
 * (MetadataStore.withBackgroundLock) and the others skip theirs. The store's compare-and-set
 * already keeps a key from rotating twice, but a node that lost that race would have made
 * material for nothing — for a CloudHSM or XKS key, objects left in the HSMs (key-versions.ts,
 * rotate) — and logged a ConflictException every time.
 */
export async function runDueBackgroundWork(context: ServiceContext): Promise<BackgroundRun> {
  const run = await context.store.withBackgroundLock(() => runPass(context));
  return run ?? { destroyed: [], rotated: [], failed: [], material: [], expiredSessions: 0, skipped: true };
}

async function runPass(context: ServiceContext): Promise<BackgroundRun> {
  // Fail closed: no key is destroyed or rotated unless the audit trail can record it.
  await context.audit.probe();
  const failed: BackgroundFailure[] = [];
  const material: MaterialDestructionNote[] = [];
  const destroyed = await destroyDueKeys(
    context,
    (keyId, error) => failed.push({ keyId, task: 'destroy', error }),
    (note) => material.push(note),
  );
  const rotated = await rotateDueKeys(context, (keyId, error) => failed.push({ keyId, task: 'rotate', error }));
  // The trail's events for what was done (CloudTrail's AwsServiceEvent DeleteKey / RotateKey).
  const now = context.now();
  await Promise.all([
    ...destroyed.map((keyId) => context.audit.record(buildServiceEvent(context, 'DeleteKey', keyId, now))),
    ...rotated.map((keyId) => context.audit.record(buildServiceEvent(context, 'RotateKey', keyId, now))),
  ]);
  // The key is gone, its material not yet everywhere: a second event says so (no secrets: codes and paths).
  for (const note of material) {
    await context.audit.record(
      buildServiceEvent(context, 'DeleteKey', note.keyId, now, undefined, {
        keyMaterialDestruction: note.outcome,
        reason: note.reason,
        ...(note.missingBackups ? { missingBackupFiles: note.missingBackups } : {}),
      }),
    );
  }
  const expiredSessions = await context.store.deleteExpiredSessions(context.now());
  return { destroyed, rotated, failed, material, expiredSessions };
}
