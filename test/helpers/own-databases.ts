import pg from "pg";
import {provisionDatabases} from "../../src/platform/db/database-role.js";
import {testAdminUrl} from "./test-databases.js";

const VARIABLES = ["DATABASE_URL", "ANALYTICS_DATABASE_URL", "QUEUE_PREFIX"] as const;

/**
 * Gives one spec file (one test worker process) databases and a queue prefix of its own, derived
 * from the run's: `<run database>_<label>` (recreated empty) and `<run prefix>:<label>` (so the
 * run's teardown still removes its Redis keys). For specs whose subject walks everything there is —
 * the nightly fan-out reads every registered tenant, workers take every job of the queue — and
 * must therefore see only their own tenants and jobs, never another spec file's.
 * Owned by the run's role, like the run's databases (the administrator drops and recreates them).
 * Call before the test server starts; the returned function restores the run's settings.
 */
export async function useOwnDatabases(label: string): Promise<() => void> {
  if (!/^[a-z][a-z0-9_]{0,15}$/.test(label)) throw new Error(`bad label ${label}`);
  const saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]));
  const own = (variable: "DATABASE_URL" | "ANALYTICS_DATABASE_URL") => {
    const url = new URL(process.env[variable]!);
    url.pathname = `${url.pathname}_${label}`;
    return url;
  };
  const urls = [own("DATABASE_URL"), own("ANALYTICS_DATABASE_URL")];
  const client = new pg.Client({connectionString: testAdminUrl()});
  await client.connect();
  try {
    for (const url of urls) {
      const name = url.pathname.slice(1);
      // Derived from the run's test databases (global-setup checked those): still a test name.
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name) || !/(^|_)test(_|$)/.test(name)) throw new Error(`refusing to recreate database ${name}`);
      await client.query(`drop database if exists "${name}" with (force)`);
    }
  } finally {
    await client.end();
  }
  await provisionDatabases(
    urls.map((url) => url.toString()),
    testAdminUrl()
  );
  process.env.DATABASE_URL = urls[0]!.toString();
  process.env.ANALYTICS_DATABASE_URL = urls[1]!.toString();
  process.env.QUEUE_PREFIX = `${saved.QUEUE_PREFIX ?? "smart-thermo-test"}:${label}`;
  return () => {
    for (const name of VARIABLES) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  };
}
