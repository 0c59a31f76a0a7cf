import type { ServiceContext } from './context.ts';
import { destroyDueKeys } from './operations/key-deletion.ts';
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
  /** Expired temporary credentials removed (they stopped working at expiry already). */
  expiredSessions: number;
}

/**
 * The scheduler's work, run on one process: destroy keys whose deletion date has passed, then
 * rotate keys whose automatic rotation is due, then drop expired temporary credentials. One key's failure does not stop the others; every
 * step is idempotent, so a crash or failure mid-run is simply redone next time.
 */
export async function runDueBackgroundWork(context: ServiceContext): Promise<BackgroundRun> {
  const failed: BackgroundFailure[] = [];
  const destroyed = await destroyDueKeys(context, (keyId, error) => failed.push({ keyId, task: 'destroy', error }));
  const rotated = await rotateDueKeys(context, (keyId, error) => failed.push({ keyId, task: 'rotate', error }));
  const expiredSessions = await context.store.deleteExpiredSessions(context.now());
  return { destroyed, rotated, failed, expiredSessions };
}
