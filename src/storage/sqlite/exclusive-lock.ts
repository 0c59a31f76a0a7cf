import Database from 'better-sqlite3';

/**
 * A lock held for a process's lifetime: an open SQLite transaction holding the EXCLUSIVE lock on
 * a small lock database. SQLite's locks are POSIX advisory locks, which the kernel releases when
 * the process dies however it dies (kill -9 included), so a crash never leaves a stale lock and
 * two starters cannot both win a takeover race.
 *
 * Returns the release function, or undefined when another process holds the lock.
 */
export function tryExclusiveLock(path: string): (() => void) | undefined {
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('journal_mode = DELETE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return undefined;
    throw error;
  }
  return () => {
    db.exec('ROLLBACK');
    db.close();
  };
}
