import {spawnSync} from "node:child_process";
import {randomBytes} from "node:crypto";
import {MikroOrmRegistry} from "@tsed/mikro-orm";
import {PlatformTest} from "@tsed/common";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {buildConfiguration} from "../../tsed.config.js";
import {loadConfig} from "../../src/config/app-config.js";
import {provisionDatabases} from "../../src/platform/db/database-role.js";
import {ANALYTICS_CONTEXT, DEFAULT_CONTEXT} from "../../src/platform/db/orm-contexts.js";
import {Server} from "../../src/server.js";
import {useOwnDatabases} from "../helpers/own-databases.js";
import {testAdminUrl} from "../helpers/test-databases.js";
import {startTestServer, stopTestServer} from "../helpers/test-server.js";

const ROOT = new URL("../..", import.meta.url).pathname;

/** `url` with the administrator's credentials (a superuser: `postgres` here). */
function asAdmin(url: string): string {
  const admin = new URL(testAdminUrl());
  const target = new URL(url);
  target.username = admin.username;
  target.password = admin.password;
  return target.toString();
}

async function withClient<T>(url: string, task: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({connectionString: url});
  await client.connect();
  try {
    return await task(client);
  } finally {
    await client.end();
  }
}

function onDatabase(name: string, url = testAdminUrl()): string {
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}

describe("the servers' Postgres role (docs/database-role.md)", () => {
  beforeAll(async () => {
    await startTestServer();
  });
  afterAll(async () => {
    await stopTestServer();
  });

  it("is not a superuser, owns both databases, and cannot run programs on the database host", async () => {
    for (const context of [DEFAULT_CONTEXT, ANALYTICS_CONTEXT]) {
      const connection = PlatformTest.get<MikroOrmRegistry>(MikroOrmRegistry).get(context)!.em.getConnection();
      const [role] = await connection.execute<{rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; owns: boolean}[]>(
        `select rolsuper, rolcreaterole, rolcreatedb, (select pg_get_userbyid(datdba) = current_user from pg_database where datname = current_database()) as owns
           from pg_roles where rolname = current_user`
      );
      expect(role, context).toEqual({rolsuper: false, rolcreaterole: false, rolcreatedb: false, owns: true});
      await expect(connection.execute(`copy (select 1) to program 'true'`), context).rejects.toThrow(/permission denied|must be superuser/);
    }
  });
});

describe("a server connected as a superuser", () => {
  let restore: (() => void) | undefined;
  beforeAll(async () => {
    // Databases of its own: the server that is let through applies its migrations as `postgres`.
    restore = await useOwnDatabases("superuser");
  });
  afterAll(async () => {
    await PlatformTest.reset();
    restore?.();
  });

  const superuserConfig = (allowSuperuser: boolean) => {
    const config = loadConfig();
    return buildConfiguration({
      ...config,
      databaseUrl: asAdmin(process.env.DATABASE_URL!),
      analyticsDatabaseUrl: asAdmin(process.env.ANALYTICS_DATABASE_URL!),
      export: {...config.export, databaseUrl: asAdmin(process.env.DATABASE_URL!)},
      runWorkers: false,
      db: {...config.db, allowSuperuser}
    });
  };

  it("refuses to start, before it migrates anything, unless DB_ALLOW_SUPERUSER=true", async () => {
    await expect(PlatformTest.bootstrap(Server, superuserConfig(false))()).rejects.toThrow(
      /refusing to run as Postgres superuser "postgres" on database "\w+_superuser".*DB_ALLOW_SUPERUSER=true/
    );
    await PlatformTest.reset();
    const migrated = await withClient(
      process.env.DATABASE_URL!,
      async (client) => (await client.query(`select to_regclass('public.tenants') as t`)).rows[0].t
    );
    expect(migrated).toBeNull();

    await PlatformTest.bootstrap(Server, superuserConfig(true))();
  });

  it("`npm run migrate` refuses it too", () => {
    const run = spawnSync("npm", ["run", "-s", "migrate"], {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: "test",
        DATABASE_URL: asAdmin(process.env.DATABASE_URL!),
        ANALYTICS_DATABASE_URL: asAdmin(process.env.ANALYTICS_DATABASE_URL!)
      },
      encoding: "utf8",
      timeout: 60_000
    });
    expect(run.status, run.stdout + run.stderr).toBe(1);
    expect(run.stderr).toMatch(/refusing to run as Postgres superuser "postgres"/);
  });
});

describe("creating the role and its databases (DATABASE_ADMIN_URL)", () => {
  const id = randomBytes(4).toString("hex");
  const role = `st_role_${id}`;
  const databases = [`st_role_${id}_test`, `st_role_${id}_test_analytics`];
  const appUrls = databases.map((name) => {
    const url = new URL(onDatabase(name));
    url.username = role;
    url.password = `pw${id}`;
    return url.toString();
  });
  afterAll(() =>
    withClient(testAdminUrl(), async (admin) => {
      for (const name of [...databases, `st_role_${id}_adopt_test`]) await admin.query(`drop database if exists "${name}" with (force)`);
      await admin.query(`drop role if exists "${role}"`);
    })
  );

  it("creates the role (no superuser, CREATEDB or CREATEROLE) and databases it owns once, however many processes race", async () => {
    const reports = await Promise.all(Array.from({length: 6}, () => provisionDatabases(appUrls, testAdminUrl())));
    expect(reports.flatMap((report) => report.roles)).toEqual([role]);
    expect(reports.flatMap((report) => report.databases).sort()).toEqual([...databases].sort());
    const found = await withClient(testAdminUrl(), async (admin) => ({
      role: (
        await admin.query(`select rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolbypassrls from pg_roles where rolname = $1`, [role])
      ).rows,
      owners: (await admin.query(`select pg_get_userbyid(datdba) as owner from pg_database where datname = any($1)`, [databases])).rows
    }));
    expect(found.role).toEqual([{rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolcanlogin: true, rolbypassrls: false}]);
    expect(found.owners).toEqual([{owner: role}, {owner: role}]);
    // It may create a tenant's schema in its database: all the application asks.
    await withClient(appUrls[0]!, (client) => client.query(`create schema "tenant_a"; create table public.t (id int)`));
  });

  it("opens no admin connection when the role already owns its databases", async () => {
    const report = await provisionDatabases(appUrls, "postgres://nobody:wrong@127.0.0.1:1/postgres");
    expect(report).toEqual({roles: [], databases: [], adopted: []});
  });

  it("gives the role a database made before it had one, with everything in it", async () => {
    const name = `st_role_${id}_adopt_test`;
    await withClient(testAdminUrl(), (admin) => admin.query(`create database "${name}"`));
    await withClient(onDatabase(name), (admin) =>
      admin.query(`create schema "tenant_b";
        create table "tenant_b"."readings" ("id" serial, "at" timestamptz not null) partition by range ("at");
        create table "tenant_b"."readings_2026_01" partition of "tenant_b"."readings" for values from ('2026-01-01') to ('2026-02-01');
        create table public.tenants (id text primary key);
        create function public.merge() returns int language sql as 'select 1';`)
    );
    const url = new URL(appUrls[0]!);
    url.pathname = `/${name}`;
    expect(await provisionDatabases([url.toString()], testAdminUrl())).toMatchObject({databases: [], adopted: [name]});
    await withClient(url.toString(), async (client) => {
      const {rows} = await client.query(
        `select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname in ('tenant_b', 'public') and c.relkind in ('r', 'p', 'S') and pg_get_userbyid(c.relowner) <> current_user`
      );
      expect(rows[0].n).toBe(0);
      // What migrations and the partition job do, now as the role.
      await client.query(`alter table "tenant_b"."readings" detach partition "tenant_b"."readings_2026_01"`);
      await client.query(
        `drop table "tenant_b"."readings_2026_01"; alter table public.tenants add column x int; create or replace function public.merge() returns int language sql as 'select 2'`
      );
    });
  });
});
