import { open, readFile, rm } from 'node:fs/promises';

/**
 * One server per data directory. The lock file holds the owner's pid; a lock whose process is
 * gone (a crash, kill -9) is taken over, a live one is refused with a message naming it.
 */
export class DataDirLockedError extends Error {}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function lockDataDir(lockPath: string, dataDir: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return async () => {
        await rm(lockPath, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && processIsAlive(owner)) {
      throw new DataDirLockedError(
        `data directory ${dataDir} is in use by another Strongroom server (pid ${owner}); stop it first or choose another --data-dir`,
      );
    }
    // The owner is gone: the lock is stale.
    await rm(lockPath, { force: true });
  }
  throw new DataDirLockedError(`could not lock data directory ${dataDir}`);
}
