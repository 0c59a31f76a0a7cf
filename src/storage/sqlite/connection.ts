import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ReadCache } from './read-cache.ts';
import { SQLITE_MIGRATIONS } from './schema.ts';

/**
 * The embedded default store's connection (the store itself: sqlite-store.ts, with the
 * access-control tables in identity-tables.ts). better-sqlite3 is synchronous; each call is one short
 * indexed statement, so wrapping it in a resolved promise keeps the interface async (for the
 * PostgreSQL backend) without handing work to a thread pool.
 *
 * secure_delete overwrites freed pages with zeros, so destroyed key material does not linger
 * in the database file; WAL lets several server processes read while one writes.
 */
export abstract class SqliteConnection {
  protected readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  protected readonly reads: ReadCache;

  constructor(path: string) {
    // Created 0600 here rather than left to the umask; SQLite gives -wal and -shm the same mode.
    closeSync(openSync(path, 'a', 0o600));
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('secure_delete = ON');
    this.migrate();
    this.reads = new ReadCache(this.db);
  }

  private migrate(): void {
    const apply = this.db.transaction(() => {
      const current = this.db.pragma('user_version', { simple: true }) as number;
      if (current > SQLITE_MIGRATIONS.length) {
        throw new Error(
          `database schema version ${current} is newer than this Strongroom understands (${SQLITE_MIGRATIONS.length})`,
        );
      }
      for (let version = current; version < SQLITE_MIGRATIONS.length; version++) {
        this.db.exec(SQLITE_MIGRATIONS[version]);
        this.db.pragma(`user_version = ${version + 1}`);
      }
    });
    apply.immediate();
  }

  protected statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
