import pg from "pg";

/**
 * Creates the databases named by these connection URLs that do not exist yet; returns the ones
 * it created. Run before the ORMs connect, by every entry point (API, worker, `npm run migrate`).
 *
 * MikroORM's own `ensureDatabase` checks and then creates, so two instances booting together on a
 * fresh server race, and the loser dies with "duplicate key … pg_database_datname_index". Here a
 * database that a concurrent process created first counts as present.
 */
export async function ensureDatabases(urls: readonly string[]): Promise<string[]> {
  const created: string[] = [];
  for (const url of new Set(urls)) {
    const name = decodeURIComponent(new URL(url).pathname.slice(1));
    const maintenance = new URL(url);
    maintenance.pathname = "/postgres";
    const client = new pg.Client({connectionString: maintenance.toString()});
    await client.connect();
    try {
      const {rowCount} = await client.query(`select 1 from pg_database where datname = $1`, [name]);
      if (rowCount) continue;
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

/** duplicate_database, or the catalog's unique index when both CREATEs got past the check. */
function createdConcurrently(error: unknown): boolean {
  const {code, constraint} = (error ?? {}) as {code?: string; constraint?: string};
  return code === "42P04" || (code === "23505" && constraint === "pg_database_datname_index");
}
