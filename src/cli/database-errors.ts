import { DatabaseUnreachableError } from '../storage/index.ts';

/** How the serving commands' database setting is given (docs/configuration.md). */
export const DATABASE_SETTING = '--database (STRONGROOM_DATABASE)';

/**
 * An error's message for the operator: a database that could not be reached names the setting
 * that pointed at it (`setting`, e.g. DATABASE_SETTING or `--to`), so the fix is obvious. The
 * reason never holds the URL's password (DatabaseUnreachableError).
 */
export function operatorMessage(error: unknown, setting: string): string {
  if (error instanceof DatabaseUnreachableError) return `cannot reach the database given by ${setting}: ${error.reason}`;
  return error instanceof Error ? error.message : String(error);
}
