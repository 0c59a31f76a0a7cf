import type { ServiceContext } from './context.ts';
import { destroyDueKeys } from './operations/key-deletion.ts';
import { rotateDueKeys } from './operations/rotation.ts';

export interface BackgroundRun {
  destroyed: string[];
  rotated: string[];
}

/**
 * The scheduler's work, run on one process: destroy keys whose deletion date has passed, then
 * rotate keys whose automatic rotation is due. Idempotent, so a crash mid-run is simply redone.
 */
export async function runDueBackgroundWork(context: ServiceContext): Promise<BackgroundRun> {
  const destroyed = await destroyDueKeys(context);
  const rotated = await rotateDueKeys(context);
  return { destroyed, rotated };
}
