import pg from "pg";

/**
 * Creates the databases named by these connection URLs that do not exist yet; returns the ones
 * it created. Run before the ORMs connect, by every entry point (API, worker, `npm run migrate`).
 *
 * A database that accepts a connection exists: nothing more is asked of the server, so a role
 * that may not use the `postgres` maintenance database starts fine against existing databases.
 * MikroORM's own `ensureDatabase` checks and then creates, so two instances booting together on a
 * fresh server race, and the loser dies with "duplicate key … pg_database_datname_index". Here a
 * database that a concurrent process created first counts as present.
 */
export async function ensureDatabases(urls: readonly string[]): Promise<string[]> {
  const created: string[] = [];
  for (const url of new Set(urls)) {
    if (await exists(url)) continue;
    const name = decodeURIComponent(new URL(url).pathname.slice(1));
    const maintenance = new URL(url);
    maintenance.pathname = "/postgres";
    const client = new pg.Client({connectionString: maintenance.toString()});
    await client.connect();
    try {
      // CREATE DATABASE takes no parameters: the name (from our configuration) is quoted by pg.
      await client.query(`create database ${client.escapeIdentifier(name)}`);
      created.push(name);
    } catch (error) {
      if (!createdConcurrently(error)) throw error;
    } finally {
      await client.end();
    }
  }
  return created;
}

/** Connects to the database: false when Postgres says it does not exist, any other failure thrown. */
async function exists(url: string): Promise<boolean> {
  const client = new pg.Client({connectionString: url});
  try {
    await client.connect();
    return true;
  } catch (error) {
    if ((error as {code?: string})?.code === "3D000") return false;
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** duplicate_database, or the catalog's unique index when both CREATEs got past the check. */
function createdConcurrently(error: unknown): boolean {
  const {code, constraint} = (error ?? {}) as {code?: string; constraint?: string};
  return code === "42P04" || (code === "23505" && constraint === "pg_database_datname_index");
}
