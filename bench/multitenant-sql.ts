/**
 * multitenant-sql: what the ingest statement costs Postgres when the same load is spread over many
 * tenant schemas, without the API in the way.
 *
 *   npm run bench:multitenant-sql     (BENCH_TENANTS, default "200,1000"; BENCH_SECONDS per round, default 3;
 *                                      BENCH_ROUNDS, default 3; BENCH_CONCURRENCY connections, default 10;
 *                                      BENCH_VARIANTS, default all: prepared,prepared-generic,unprepared,search-path,affine)
 *
 * Provisions the largest count of tenant schemas (the real tenant migrations) with one device
 * each, in its own database (st_bench_multitenant_sql). Then BENCH_CONCURRENCY connections (the
 * API's pool size) run ReadingRepository's ingest statement (ingestSql, one reading per execution,
 * autocommitted) in a closed loop, each variant against the same statement aimed at one tenant
 * and prepared (what a process serving one tenant does):
 *  - prepared:    spread round-robin over N tenants, each tenant's text a named prepared statement
 *                 (one per tenant and connection: an unbounded budget);
 *  - prepared-generic: the same with `plan_cache_mode = force_generic_plan` on the connections:
 *                 a prepared statement's first executions are planned for their values (custom
 *                 plans, at least 5 per statement and connection), and spread over many tenants
 *                 a statement rarely gets past them;
 *  - unprepared:  spread, every execution parsed and planned anew (what the API does past
 *                 MAX_PREPARED_STATEMENTS, src/platform/db/sql.ts);
 *  - affine:      spread, prepared per tenant as above, but each tenant's statements always on the
 *                 same connection (tenant index modulo the connections): each backend sees 1/10
 *                 of the tenants, and each tenant's statement gets ten times the executions;
 *  - search-path: spread, ONE schema-independent text (unqualified tables) prepared once per
 *                 connection, with `SET search_path` sent before an execution whenever the
 *                 connection's last tenant differs (a second round trip).
 * Prints `RESULT multitenant-sql-<variant>-<N> value=<executions/s> baseline=<one tenant, prepared> ratio=…`.
 * What it found and why: docs/scaling.md.
 */
import {knex} from "@mikro-orm/postgresql";
import pg from "pg";
import {ingestSql} from "../src/modules/readings/reading.repository.js";
import {pgArray, toNativeSql} from "../src/platform/db/sql.js";
import {quoteTenantSchema} from "../src/platform/tenancy/tenant-id.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {runMain, runPart} from "./lib/harness.js";
import {benchEnvironment} from "./lib/app.js";
import {MikroORM} from "@mikro-orm/postgresql";
import {parseConfig} from "../src/config/app-config.js";
import {defaultOrmOptions} from "../src/config/mikro-orm.config.js";
import {migrateTenantSchema} from "../src/platform/tenancy/tenant-migrator.js";

const COUNTS = (process.env.BENCH_TENANTS ?? "200,1000").split(",").map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 10);
const MAX_TENANTS = Math.max(...COUNTS);

interface Tenant {
  id: string;
  deviceId: string;
}

const builder = knex({client: "pg"});
let clock = Date.now() - 2 * 86_400_000;

/** The statement's values for one reading of the tenant's device, in the order of `$n`. */
function values(tenant: Tenant, schemaText: string): {sql: string; values: unknown[]} {
  return toNativeSql(builder, schemaText, {
    tenantId: tenant.id,
    onlyWithoutAlertChange: true,
    withEpisodeState: false,
    deviceIds: pgArray([tenant.deviceId]),
    deviceIndexes: pgArray([1]),
    temperatures: pgArray([21.5]),
    humidities: pgArray([null]),
    batteryLevels: pgArray([null]),
    instants: pgArray([clock++])
  });
}

type Variant = "prepared" | "prepared-generic" | "unprepared" | "search-path" | "affine";

/** One connection's state: the tenant its search_path names (search-path variant). */
interface Connection {
  client: pg.Client;
  searchPath?: string;
}

async function execute(connection: Connection, tenant: Tenant, variant: Variant): Promise<void> {
  const schema = quoteTenantSchema(tenant.id);
  if (variant === "search-path") {
    if (connection.searchPath !== tenant.id) {
      await connection.client.query(`set search_path to ${schema}`);
      connection.searchPath = tenant.id;
    }
    const text = ingestSql(schema, {withEpisodeState: false}).replaceAll(`${schema}.`, "");
    const native = values(tenant, text);
    await connection.client.query({name: "ingest_any_tenant", text: native.sql, values: native.values});
    return;
  }
  const native = values(tenant, ingestSql(schema, {withEpisodeState: false}));
  await connection.client.query(
    variant === "prepared"
      ? {name: `ingest_${tenant.id}`, text: native.sql, values: native.values}
      : {text: native.sql, values: native.values}
  );
}

async function closedLoop(connections: Connection[], tenants: Tenant[], variant: Variant): Promise<number> {
  if (variant === "prepared-generic") {
    await Promise.all(connections.map(({client}) => client.query("set plan_cache_mode = force_generic_plan")));
    try {
      return await closedLoop(connections, tenants, "prepared");
    } finally {
      await Promise.all(connections.map(({client}) => client.query("reset plan_cache_mode")));
    }
  }
  let next = 0;
  let done = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    connections.map(async (connection, c) => {
      // affine: this connection's tenants only (one tenant: every connection has it).
      const mine = variant === "affine" && tenants.length > 1 ? tenants.filter((_, t) => t % connections.length === c) : tenants;
      let own = 0;
      while (performance.now() < deadline) {
        const tenant = variant === "affine" ? mine[own++ % mine.length]! : tenants[next++ % tenants.length]!;
        await execute(connection, tenant, variant === "affine" ? "prepared" : variant);
        done++;
      }
    })
  );
  return done / ((performance.now() - started) / 1000);
}

async function main() {
  const {url, analyticsUrl} = await freshDatabases("st_bench_multitenant_sql");
  const config = parseConfig({...process.env, ...benchEnvironment({url, analyticsUrl})});
  // The platform registry (public.tenants), then the tenants' schemas.
  const orm = await MikroORM.init(defaultOrmOptions(config));
  await orm.getMigrator().up();
  await orm.close(true);
  const tenants: Tenant[] = [];
  const started = Date.now();
  const ids = Array.from({length: MAX_TENANTS}, (_, i) => `bench_sql_${String(i).padStart(4, "0")}`);
  for (let i = 0; i < ids.length; i += 8) {
    await Promise.all(ids.slice(i, i + 8).map((id) => migrateTenantSchema(config, id)));
  }
  await withClient(url, async (db) => {
    for (const id of ids) {
      const schema = quoteTenantSchema(id);
      await db.query(`insert into "public"."tenants" ("id") values ($1) on conflict do nothing`, [id]);
      const {rows} = await db.query<{id: string}>(
        `with u as (insert into ${schema}."users" ("id", "created_at", "updated_at", "subject") values (gen_random_uuid(), now(), now(), 'bench') returning "id")
         insert into ${schema}."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
         select gen_random_uuid(), now(), now(), 'SQL-1', 'SQL-1', u."id" from u returning "id"`
      );
      tenants.push({id, deviceId: rows[0]!.id});
    }
  });
  console.log(`provisioned ${tenants.length} tenant schemas in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const connections: Connection[] = [];
  for (let i = 0; i < CONCURRENCY; i++) {
    const client = new pg.Client({connectionString: url});
    await client.connect();
    connections.push({client});
  }
  try {
    for (const count of COUNTS) {
      const spread = tenants.slice(0, count);
      for (const variant of (process.env.BENCH_VARIANTS ?? "prepared,prepared-generic,unprepared,search-path,affine").split(
        ","
      ) as Variant[]) {
        await runPart({
          name: `multitenant-sql-${variant}-${count}`,
          unit: "ingest statements/s (one reading each; higher is better)",
          target: ">= 0.80",
          rounds: ROUNDS,
          subject: {label: `spread over ${count} tenants, ${variant}`, run: () => closedLoop(connections, spread, variant)},
          baseline: {label: "one tenant, prepared", run: () => closedLoop(connections, [tenants[0]!], "prepared")},
          notes: () => ({load: `${CONCURRENCY} connections, closed loop, ${SECONDS} s per round`})
        });
      }
    }
  } finally {
    for (const {client} of connections) await client.end();
  }
}

runMain(main);
