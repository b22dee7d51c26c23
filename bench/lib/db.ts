import pg from "pg";
import {provisionDatabases} from "../../src/platform/db/database-role.js";

const BASE = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export function databaseUrl(name: string): string {
  const url = new URL(BASE);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The servers refuse a superuser (docs/database-role.md): benchmarks run them as this role, which owns their databases. */
const BENCH_ROLE = "smart_thermo_bench";

/** `url` as BENCH_ROLE (with a password, for servers that ask for one). */
function asBenchRole(url: string): string {
  const app = new URL(url);
  app.username = BENCH_ROLE;
  app.password = BENCH_ROLE;
  return app.toString();
}

/**
 * A dedicated, empty database (and its analytics sibling) for one benchmark part, owned by
 * BENCH_ROLE (BENCH_DATABASE_URL's user, `postgres`, drops and creates them); the URLs returned
 * connect as that role. On a shared server, BENCH_DB_PREFIX keeps one person's run from dropping
 * another's databases.
 */
export async function freshDatabases(part: string): Promise<{url: string; analyticsUrl: string}> {
  const name = `${process.env.BENCH_DB_PREFIX ?? ""}${part}`;
  const admin = new pg.Client({connectionString: databaseUrl("postgres")});
  await admin.connect();
  try {
    for (const db of [name, `${name}_analytics`]) await admin.query(`drop database if exists "${db}" with (force)`);
  } finally {
    await admin.end();
  }
  const urls = {url: asBenchRole(databaseUrl(name)), analyticsUrl: asBenchRole(databaseUrl(`${name}_analytics`))};
  await provisionDatabases([urls.url, urls.analyticsUrl], databaseUrl("postgres"));
  return urls;
}

/**
 * The URLs freshDatabases(part) gave, if both databases are still there (a benchmark whose setup
 * takes minutes can then be rerun on them), else undefined.
 */
export async function existingDatabases(part: string): Promise<{url: string; analyticsUrl: string} | undefined> {
  const name = `${process.env.BENCH_DB_PREFIX ?? ""}${part}`;
  const found = await withClient(databaseUrl("postgres"), async (admin) =>
    Number((await admin.query(`select count(*) from pg_database where datname = any($1)`, [[name, `${name}_analytics`]])).rows[0].count)
  );
  return found === 2 ? {url: asBenchRole(databaseUrl(name)), analyticsUrl: asBenchRole(databaseUrl(`${name}_analytics`))} : undefined;
}

export async function withClient<T>(url: string, task: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({connectionString: url});
  await client.connect();
  try {
    return await task(client);
  } finally {
    await client.end();
  }
}
