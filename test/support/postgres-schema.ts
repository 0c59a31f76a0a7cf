/**
 * A schema of its own in the test PostgreSQL for a wire test's nodes: made before the servers start
 * (a server that cannot reach PostgreSQL fails the test, never skips it), dropped after.
 */
import pg from 'pg';

export async function createTestSchema(postgresUrl: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect().catch((error: Error) => {
    throw new Error(`PostgreSQL is not reachable at ${postgresUrl} (${error.message}): start it (.ci/run does); this test does not skip`);
  });
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
}

export async function dropTestSchema(postgresUrl: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
