import pg from "pg";
import {ensureDatabases} from "./ensure-databases.js";

/**
 * The application's Postgres role (docs/database-role.md): the API, worker and MQTT processes
 * connect as a role that owns their databases and is not a superuser, so that a bug or an injected
 * statement stays inside those databases (a superuser bypasses every permission and can
 * `COPY … TO PROGRAM`, i.e. run shell commands on the database host).
 *
 * Owning the database is all the role needs: CREATE on it (a schema per tenant) and, from
 * Postgres 15 on, CREATE in its `public` schema (owned by `pg_database_owner`). It needs neither
 * CREATEDB nor CREATEROLE: creating the role and its databases is the job of an administrator
 * connection (DATABASE_ADMIN_URL), used by `npm run migrate` and `npm start` only.
 */
export const APP_ROLE = "smart_thermo";

/** What Postgres says about the role a connection runs as. */
export interface ConnectionRole {
  database: string;
  role: string;
  superuser: boolean;
}

/** `is_superuser` is the effective user's (after SET ROLE), which is what decides what a statement may do. */
export const CONNECTION_ROLE_SQL = `select current_database() as "database", current_user as "role", current_setting('is_superuser') = 'on' as "superuser"`;

export class SuperuserRefusedError extends Error {
  override name = "SuperuserRefusedError";
}

/**
 * Refuses superuser connections unless `allowSuperuser` (DB_ALLOW_SUPERUSER=true), in which case
 * it returns the warning to log. Failing closed everywhere, development included: a setup that
 * connects as `postgres` by accident would create schemas the real role cannot alter later.
 */
export function checkConnectionRoles(roles: readonly ConnectionRole[], allowSuperuser: boolean): string | undefined {
  const superusers = roles.filter((found) => found.superuser);
  if (!superusers.length) return undefined;
  const which = superusers.map((found) => `"${found.role}" on database "${found.database}"`).join(", ");
  if (allowSuperuser)
    return `connected as superuser ${which} (DB_ALLOW_SUPERUSER=true): tenant isolation rests on the code alone, and this role can run programs on the database host`;
  throw new SuperuserRefusedError(
    `refusing to run as Postgres superuser ${which}: connect as the application's role (see docs/database-role.md; npm run migrate with DATABASE_ADMIN_URL creates it), or set DB_ALLOW_SUPERUSER=true to accept the risk`
  );
}

/** The role of one connection URL, asked on a connection of its own. */
export async function connectionRole(url: string): Promise<ConnectionRole> {
  const client = new pg.Client({connectionString: url});
  await client.connect();
  try {
    return (await client.query<ConnectionRole>(CONNECTION_ROLE_SQL)).rows[0]!;
  } finally {
    await client.end();
  }
}

export interface ProvisionReport {
  roles: string[];
  databases: string[];
  adopted: string[];
}

/**
 * Makes each URL's database exist and be owned by the URL's role, creating the role (LOGIN, not a
 * superuser, no CREATEDB/CREATEROLE; with the URL's password if it has one) when it is missing.
 * A URL whose role already connects to a database it owns needs nothing, and then no admin
 * connection is opened at all. A database owned by another role (one made before the application
 * had a role of its own) is adopted: it and every object of its own schemas are given to the role.
 * Safe to run concurrently (several `npm run migrate` or instances on a fresh server).
 */
export async function provisionDatabases(urls: readonly string[], adminUrl: string): Promise<ProvisionReport> {
  const report: ProvisionReport = {roles: [], databases: [], adopted: []};
  for (const url of new Set(urls)) {
    if (await ownsItsDatabase(url)) continue;
    const {role, password, database} = parts(url);
    const admin = new pg.Client({connectionString: adminUrl});
    await admin.connect().catch((error: unknown) => {
      const {username, host} = new URL(adminUrl);
      throw new Error(
        `role "${role}" cannot use database "${database}" (missing, or not its own), and connecting as the administrator (DATABASE_ADMIN_URL: ${username}@${host}) to create them failed: ${error instanceof Error ? error.message : String(error)}`
      );
    });
    try {
      if (await ensureRole(admin, role, password)) report.roles.push(role);
      const {rows} = await admin.query<{owner: string}>(`select pg_get_userbyid(datdba) as "owner" from pg_database where datname = $1`, [
        database
      ]);
      if (!rows.length) {
        try {
          // No bind parameters in CREATE DATABASE: both names are quoted by pg.
          await admin.query(`create database ${admin.escapeIdentifier(database)} owner ${admin.escapeIdentifier(role)}`);
          report.databases.push(database);
        } catch (error) {
          if (!duplicate(error, "pg_database_datname_index")) throw error;
        }
      } else if (rows[0]!.owner !== role) {
        const target = new URL(adminUrl);
        target.pathname = `/${encodeURIComponent(database)}`;
        await withClient(target.toString(), (client) => adopt(client, database, role));
        report.adopted.push(database);
      }
    } finally {
      await admin.end();
    }
  }
  return report;
}

/** Connects as the URL's role: true when its database exists and that role owns it. */
async function ownsItsDatabase(url: string): Promise<boolean> {
  const client = new pg.Client({connectionString: url});
  try {
    await client.connect();
    const {rows} = await client.query<{owns: boolean}>(
      `select pg_get_userbyid(datdba) = current_user as "owns" from pg_database where datname = current_database()`
    );
    return rows[0]?.owns === true;
  } catch (error) {
    // 3D000: no such database; 28000/28P01: no such role, or not with that password (yet).
    if (["3D000", "28000", "28P01"].includes((error as {code?: string})?.code ?? "")) return false;
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates the role when it does not exist; refuses to hand databases to an existing superuser. */
async function ensureRole(admin: pg.Client, role: string, password: string | undefined): Promise<boolean> {
  const {rows} = await admin.query<{superuser: boolean}>(`select rolsuper as "superuser" from pg_roles where rolname = $1`, [role]);
  if (rows[0]?.superuser) throw new SuperuserRefusedError(`role "${role}" is a superuser: the application's role must not be one`);
  if (rows.length) return false;
  try {
    // CREATE ROLE takes no bind parameters either: the password is quoted as a literal by pg.
    await admin.query(
      `create role ${admin.escapeIdentifier(role)} login nosuperuser nocreatedb nocreaterole noreplication nobypassrls${password === undefined ? "" : ` password ${admin.escapeLiteral(password)}`}`
    );
    return true;
  } catch (error) {
    if (duplicate(error, "pg_authid_rolname_index")) return false;
    throw error;
  }
}

/**
 * Gives the database and what its own schemas hold to `role`. REASSIGN OWNED cannot do it: the
 * usual previous owner, `postgres`, is the bootstrap superuser, whose objects it refuses to move.
 * Catalog and TOAST schemas are left alone; indexes follow their tables, and owned sequences too.
 */
async function adopt(client: pg.Client, database: string, role: string): Promise<void> {
  const quoted = client.escapeIdentifier(role);
  await client.query("begin");
  try {
    await client.query(`alter database ${client.escapeIdentifier(database)} owner to ${quoted}`);
    const {rows} = await client.query<{statement: string}>(
      `with "own" as (
         select oid, nspname from pg_namespace
          where nspname not in ('pg_catalog', 'information_schema') and nspname not like 'pg\\_toast%' and nspname not like 'pg\\_temp%'
       )
       select format('alter schema %I owner to %I', n.nspname, $1::text) as "statement" from pg_namespace n join "own" using (oid)
        where pg_get_userbyid(n.nspowner) not in ($1, 'pg_database_owner')
       union all
       select format('alter %s %I.%I owner to %I', case c.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'S' then 'sequence' when 'f' then 'foreign table' else 'table' end, o.nspname, c.relname, $1::text)
         from pg_class c join "own" o on o.oid = c.relnamespace
        where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S') and pg_get_userbyid(c.relowner) <> $1
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.classid = 'pg_class'::regclass and d.deptype in ('a', 'i') and c.relkind = 'S')
       union all
       select format('alter routine %s owner to %I', p.oid::regprocedure, $1::text)
         from pg_proc p join "own" o on o.oid = p.pronamespace where pg_get_userbyid(p.proowner) <> $1
       union all
       select format('alter type %I.%I owner to %I', o.nspname, t.typname, $1::text)
         from pg_type t join "own" o on o.oid = t.typnamespace
        where t.typtype in ('e', 'd', 'r', 'm') and pg_get_userbyid(t.typowner) <> $1`,
      [role]
    );
    for (const {statement} of rows) await client.query(statement);
    await client.query("commit");
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  }
}

function parts(url: string) {
  const parsed = new URL(url);
  const role = decodeURIComponent(parsed.username);
  if (!role) throw new Error(`${parsed.host}${parsed.pathname}: the database URL names no role (postgres://<role>@host/database)`);
  return {
    role,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    database: decodeURIComponent(parsed.pathname.slice(1))
  };
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

/** duplicate_object / duplicate_database, or the catalog's unique index when two CREATEs got past the check. */
function duplicate(error: unknown, catalogIndex: string): boolean {
  const {code, constraint} = (error ?? {}) as {code?: string; constraint?: string};
  return code === "42710" || code === "42P04" || (code === "23505" && constraint === catalogIndex);
}

/**
 * What the commands that set up databases (`npm run migrate`, `npm run tenant`) do before their
 * ORMs connect: with an admin URL, create the role and databases that are missing; without one,
 * create missing databases as the role itself (ensureDatabases, for a role that may); then refuse
 * a superuser, whose schemas the application's role could not migrate later. Returns what it did.
 */
export async function prepareDatabases(options: {
  urls: readonly string[];
  adminUrl: string | null;
  allowSuperuser: boolean;
}): Promise<string[]> {
  const done: string[] = [];
  if (options.adminUrl) {
    const report = await provisionDatabases(options.urls, options.adminUrl);
    done.push(
      ...report.roles.map((role) => `created role ${role}`),
      ...report.databases.map((name) => `created database ${name}`),
      ...report.adopted.map((name) => `gave database ${name} and its objects to its role`)
    );
  } else {
    done.push(...(await ensureDatabases(options.urls)).map((name) => `created database ${name}`));
  }
  const warning = checkConnectionRoles(await Promise.all([...new Set(options.urls)].map(connectionRole)), options.allowSuperuser);
  if (warning) done.push(`warning: ${warning}`);
  return done;
}
