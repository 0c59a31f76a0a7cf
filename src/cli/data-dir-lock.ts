import { readFile, rm, writeFile } from 'node:fs/promises';
import { tryExclusiveLock } from '../storage/sqlite/exclusive-lock.ts';

/** One server per data directory. */
export class DataDirLockedError extends Error {}

/**
 * Takes the data directory's lock (`strongroom.lock`, an OS-level lock the kernel drops when the
 * process dies) and records the owner's pid beside it (`strongroom.pid`) so a refused second
 * server can say who holds the directory.
 */
export async function lockDataDir(paths: { lock: string; pid: string }, dataDir: string): Promise<() => Promise<void>> {
  const release = tryExclusiveLock(paths.lock);
  if (!release) {
    const owner = (await readFile(paths.pid, 'utf8').catch(() => '')).trim();
    throw new DataDirLockedError(
      `data directory ${dataDir} is in use by another Strongroom server${/^\d+$/.test(owner) ? ` (pid ${owner})` : ''}; stop it first or choose another --data-dir`,
    );
  }
  await writeFile(paths.pid, `${process.pid}\n`, { mode: 0o600 });
  return async () => {
    await rm(paths.pid, { force: true });
    release();
  };
}
