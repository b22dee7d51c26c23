import pg from "pg";

const BASE = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export function databaseUrl(name: string): string {
  const url = new URL(BASE);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A dedicated, empty database (and its analytics sibling) for one benchmark part. On a shared
 * server, BENCH_DB_PREFIX keeps one person's run from dropping another's databases.
 */
export async function freshDatabases(part: string): Promise<{url: string; analyticsUrl: string}> {
  const name = `${process.env.BENCH_DB_PREFIX ?? ""}${part}`;
  const admin = new pg.Client({connectionString: databaseUrl("postgres")});
  await admin.connect();
  try {
    for (const db of [name, `${name}_analytics`]) {
      await admin.query(`drop database if exists "${db}" with (force)`);
      await admin.query(`create database "${db}"`);
    }
  } finally {
    await admin.end();
  }
  return {url: databaseUrl(name), analyticsUrl: databaseUrl(`${name}_analytics`)};
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
