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
 * Two more weigh one round trip for several tenants (BENCH_GROUP of them, default 4, each with one
 * reading, each connection with its own tenants as in `affine`), in readings/s against one
 * tenant's statement carrying BENCH_GROUP readings (what group commit does for one tenant), and
 * print what a reading cost this process (the API's side: µs of CPU) and Postgres:
 *  - grouped:     BEGIN, the tenants' prepared statements, COMMIT, pipelined in one socket write
 *                 (what TenantAffineConnections does today);
 *  - functions:   ONE statement calling a function per tenant schema that runs the ingest
 *                 statement (PL/pgSQL, which keeps its plan per backend): one Bind, one Execute,
 *                 one result for the group. The bench creates these functions; the product has none.
 * Prints `RESULT multitenant-sql-<variant>-<N> value=<executions/s> baseline=<one tenant, prepared> ratio=…`.
 * What it found and why: docs/scaling.md.
 */
import {knex} from "@mikro-orm/postgresql";
import type {Duplex} from "node:stream";
import pg from "pg";
import {ingestSql} from "../src/modules/readings/reading.repository.js";
import {pgArray, toNativeSql} from "../src/platform/db/sql.js";
import {quoteTenantSchema} from "../src/platform/tenancy/tenant-id.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {postgresCpuSeconds} from "./lib/ingest.js";
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
const GROUP = Number(process.env.BENCH_GROUP ?? 4);
/** The group variants' connections: as many as the API's ingest connections had by default when this bench was written (DB_INGEST_CONNECTIONS' default is 1 since). */
const INGEST_CONNECTIONS = 4;

interface Tenant {
  id: string;
  deviceId: string;
}

const builder = knex({client: "pg"});
let clock = Date.now() - 2 * 86_400_000;

/** The statement's bindings for `readings` readings of the tenant's device. */
function bindings(tenant: Tenant, readings = 1) {
  const instants = Array.from({length: readings}, () => clock++);
  return {
    tenantId: tenant.id,
    onlyWithoutAlertChange: true,
    withEpisodeState: false,
    deviceIds: pgArray([tenant.deviceId]),
    deviceIndexes: pgArray(instants.map(() => 1)),
    temperatures: pgArray(instants.map(() => 21.5)),
    humidities: pgArray(instants.map(() => null)),
    batteryLevels: pgArray(instants.map(() => null)),
    instants: pgArray(instants)
  };
}

/** The statement's values for one reading of the tenant's device, in the order of `$n`. */
function values(tenant: Tenant, schemaText: string): {sql: string; values: unknown[]} {
  return toNativeSql(builder, schemaText, bindings(tenant));
}

type Variant = "prepared" | "prepared-generic" | "unprepared" | "search-path" | "affine";
type GroupVariant = "grouped" | "functions";

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

/** What a side's readings cost, summed over its rounds after the warm-up: this process's CPU (the API's side) and Postgres'. */
interface Costs {
  runs: number;
  readings: number;
  clientMicros: number;
  postgresMicros: number;
}

const perReading = (costs: Costs) =>
  `${(costs.clientMicros / costs.readings).toFixed(1)} µs of this process's CPU, ${(costs.postgresMicros / costs.readings).toFixed(1)} µs of Postgres'`;

/** A tenant's ingest text as Postgres takes it, and the names of its `$n` in order: converted once, as the API keeps it. */
const nativeTexts = new Map<string, {sql: string; names: string[]}>();

/** The tenant's ingest statement for `readings` readings, its text converted once. */
function nativeOf(tenant: Tenant, readings = 1): {sql: string; values: unknown[]} {
  let text = nativeTexts.get(tenant.id);
  if (!text) {
    // Each binding's value its own name: the converted values then name the parameters in order.
    const names = Object.fromEntries(Object.keys(bindings(tenant)).map((key) => [key, key]));
    const native = toNativeSql(builder, ingestSql(quoteTenantSchema(tenant.id), {withEpisodeState: false}), names);
    text = {sql: native.sql, names: native.values as string[]};
    nativeTexts.set(tenant.id, text);
  }
  const bound: Record<string, unknown> = bindings(tenant, readings);
  return {sql: text.sql, values: text.names.map((name) => bound[name])};
}

/**
 * One tenant's ingest statement wrapped in a function of its schema, for the `functions` variant:
 * PL/pgSQL keeps the plan of its `RETURN QUERY` per backend, as a prepared statement would. Its
 * parameters are text (the statement casts each one); its columns are the statement's, as
 * Postgres describes them.
 */
async function createIngestFunction(db: pg.Client, tenant: Tenant, columns: string): Promise<void> {
  const native = nativeOf(tenant);
  const parameters = native.values.map((_, i) => `p${i + 1} text`).join(", ");
  await db.query(
    `create or replace function ${quoteTenantSchema(tenant.id)}."bench_ingest_readings"(${parameters}) returns table(${columns})
       language plpgsql as $body$
       #variable_conflict use_column
       begin
         return query ${native.sql};
       end $body$`
  );
}

/** The ingest statement's result columns as a `returns table(…)` list. */
async function ingestColumns(db: pg.Client, tenant: Tenant): Promise<string> {
  const native = nativeOf(tenant);
  const {fields} = await db.query(native.sql, native.values);
  const {rows} = await db.query<{type: string}>(
    `select format_type(oid, null) as "type" from unnest($1::oid[]) with ordinality as t(oid, n) order by n`,
    [fields.map((field) => field.dataTypeID)]
  );
  return fields.map((field, i) => `"${field.name}" ${rows[i]!.type}`).join(", ");
}

/** A round trip for `tenants` (one reading each), as `variant` sends it; for one tenant, its one statement. */
async function sendGroup(client: pg.Client, tenants: Tenant[], variant: GroupVariant): Promise<void> {
  const natives = tenants.map((tenant) => nativeOf(tenant));
  if (variant === "functions") {
    const all: unknown[] = [];
    const calls = tenants.map((tenant, g) => {
      const first = all.length + 1;
      // Booleans too: pg sends every value as text, which is what the functions take.
      all.push(...natives[g]!.values);
      const parameters = natives[g]!.values.map((_, i) => `$${first + i}`).join(", ");
      return `select ${g} as "g", f.* from ${quoteTenantSchema(tenant.id)}."bench_ingest_readings"(${parameters}) f`;
    });
    await client.query({text: calls.join(" union all "), values: all});
    return;
  }
  const statement = (tenant: Tenant, g: number) =>
    client.query({name: `ingest_${tenant.id}`, text: natives[g]!.sql, values: natives[g]!.values});
  if (tenants.length === 1) {
    await statement(tenants[0]!, 0);
    return;
  }
  // As TenantAffineConnections writes a transaction: corked, so BEGIN, the statements and COMMIT go out in one write.
  const socket = (client as unknown as {connection: {stream: Duplex}}).connection.stream;
  socket.cork();
  let sent: Promise<unknown>[];
  try {
    sent = [client.query("begin"), ...tenants.map(statement), client.query("commit")];
  } finally {
    socket.uncork();
  }
  await Promise.all(sent);
}

/**
 * Readings/s of a closed loop on the pipelined connections: each connection its own tenants (as
 * TenantAffineConnections assigns them), GROUP of them per round trip; or, for one tenant, one
 * statement carrying GROUP readings. Adds what the readings cost to `costs`, from its second run on.
 */
async function groupLoop(connections: pg.Client[], tenants: Tenant[], variant: GroupVariant, costs: Costs): Promise<number> {
  let readings = 0;
  const cpu = process.cpuUsage();
  const postgres = postgresCpuSeconds() ?? 0;
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  await Promise.all(
    connections.map(async (client, c) => {
      const mine = tenants.filter((_, t) => t % connections.length === c);
      let own = 0;
      while (performance.now() < deadline) {
        if (tenants.length === 1) {
          const native = nativeOf(tenants[0]!, GROUP);
          await client.query({name: `ingest_${tenants[0]!.id}`, text: native.sql, values: native.values});
        } else {
          const group = Array.from({length: GROUP}, () => mine[own++ % mine.length]!).sort((a, b) => (a.id < b.id ? -1 : 1));
          await sendGroup(client, group, variant);
        }
        readings += GROUP;
      }
    })
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  // The first run is runPart's warm-up: statements and functions planned on each connection.
  if (costs.runs++ === 0) return readings / seconds;
  costs.readings += readings;
  costs.clientMicros += used.user + used.system;
  costs.postgresMicros += ((postgresCpuSeconds() ?? 0) - postgres) * 1e6;
  return readings / seconds;
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
  const variants = (process.env.BENCH_VARIANTS ?? "prepared,prepared-generic,unprepared,search-path,affine,grouped,functions").split(",");
  const groupVariants = variants.filter((variant): variant is GroupVariant => variant === "grouped" || variant === "functions");
  // The group variants' connections: pipelined and with generic plans at once, as TenantAffineConnections opens its own.
  const pipelined: pg.Client[] = [];
  if (groupVariants.length) {
    await withClient(url, async (db) => {
      const columns = await ingestColumns(db, tenants[0]!);
      for (const tenant of tenants) await createIngestFunction(db, tenant, columns);
    });
    for (let i = 0; i < INGEST_CONNECTIONS; i++) {
      const client = new pg.Client({
        connectionString: url,
        options: "-c plan_cache_mode=force_generic_plan",
        pipeline: true
      });
      await client.connect();
      pipelined.push(client);
    }
  }
  try {
    for (const count of COUNTS) {
      const spread = tenants.slice(0, count);
      for (const variant of groupVariants) {
        const subject: Costs = {runs: 0, readings: 0, clientMicros: 0, postgresMicros: 0};
        const baseline: Costs = {runs: 0, readings: 0, clientMicros: 0, postgresMicros: 0};
        await runPart({
          name: `multitenant-sql-${variant}-${count}`,
          unit: "readings/s (higher is better)",
          target: ">= 0.80",
          rounds: ROUNDS,
          subject: {
            label: `spread over ${count} tenants, ${GROUP} per round trip, ${variant}`,
            run: () => groupLoop(pipelined, spread, variant, subject)
          },
          baseline: {
            label: `one tenant, ${GROUP} readings per statement`,
            run: () => groupLoop(pipelined, [tenants[0]!], variant, baseline)
          },
          notes: () => ({
            load: `${INGEST_CONNECTIONS} pipelined connections, closed loop, ${SECONDS} s per round (CPU below: after the warm-up)`,
            "a reading, spread": perReading(subject),
            "a reading, one tenant": perReading(baseline)
          })
        });
      }
      for (const variant of variants.filter((variant): variant is Variant => !groupVariants.includes(variant as GroupVariant))) {
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
    for (const client of pipelined) await client.end();
  }
}

runMain(main);
