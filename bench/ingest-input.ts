/**
 * ingest-input: how the readings of a batch are best handed to the ingest statement — as parallel
 * arrays (one `{…}` literal per column, `unnest`: what ReadingRepository does) or as one JSON
 * parameter (`json_to_recordset`, the form a request body has), the alternative issue 23 asked to
 * weigh. Measured: JSON 6–13 % slower (docs/scaling.md), so the arrays stay.
 *
 *   npm run bench:ingest-input     (BENCH_READINGS per batch, default 1000; BENCH_ROUNDS × BENCH_BATCHES
 *                                   batches of each, default 5 × 40, after BENCH_BATCHES to warm up)
 *
 * One tenant schema (the real tenant migrations) with one device, its own database
 * (st_bench_ingest_input). Each batch is ReadingRepository's ingest statement (ingestSql, the
 * autocommitted path) for BENCH_READINGS readings 30 s apart, in a transaction rolled back after it
 * (the table stays the same size for both sides), on one connection, each variant a named
 * prepared statement. Measured per batch, the two variants alternating batch by batch:
 *  - API CPU: building the statement's parameters from the validated readings (the only part of
 *    the API's work the choice changes);
 *  - round trip: the statement from send to answer (Postgres parsing the parameters, the INSERT,
 *    the rest of the statement; BEGIN and ROLLBACK not counted).
 * Prints `RESULT ingest-input-json value=<ms per batch, both together> baseline=<arrays> ratio=…`
 * (lower is better), and the two parts apart. A third variant, `fresh`, is the arrays statement
 * without ON CONFLICT DO NOTHING (ingestSql's text for readings expected to be new):
 * `RESULT ingest-input-fresh`, against the same baseline.
 */
import {knex, MikroORM} from "@mikro-orm/postgresql";
import pg from "pg";
import {parseConfig} from "../src/config/app-config.js";
import {defaultOrmOptions} from "../src/config/mikro-orm.config.js";
import {ingestBindings, ingestSql} from "../src/modules/readings/reading.repository.js";
import {pgArray, toNativeSql} from "../src/platform/db/sql.js";
import {migrateTenantSchema} from "../src/platform/tenancy/tenant-migrator.js";
import {benchEnvironment} from "./lib/app.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain} from "./lib/harness.js";

const TENANT = "bench_ingest_input";
const SCHEMA = `"${TENANT}"`;
const READINGS = Number(process.env.BENCH_READINGS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const BATCHES = Number(process.env.BENCH_BATCHES ?? 40);

const ARRAYS_INPUT = `from unnest(:deviceIndexes::int[], :temperatures::float8[], :humidities::float8[], :batteryLevels::float8[], :instants::float8[]) with ordinality as v("i", "t", "h", "b", "ms", "n")`;
const JSON_INPUT = `from rows from (json_to_recordset(:readings::json) as ("i" int, "t" float8, "h" float8, "b" float8, "ms" float8)) with ordinality as v("i", "t", "h", "b", "ms", "n")`;

interface Reading {
  temperatureCelsius: number;
  humidity: number | null;
  batteryLevel: number | null;
  recordedAt: Date;
}

type Variant = "arrays" | "json" | "fresh";

/** The bindings as ReadingRepository.ingest builds them (arrays), or with the readings as one JSON text. */
function bindings(variant: Variant, deviceId: string, readings: readonly Reading[]): Record<string, unknown> {
  const options = {onlyWithoutAlertChange: true, withEpisodeState: false};
  if (variant !== "json") return ingestBindings(TENANT, [{deviceId, readings}], options);
  // Written directly (JSON.stringify of 1,000 objects would build them first).
  let text = "[";
  for (let k = 0; k < readings.length; k++) {
    const r = readings[k]!;
    text += `${k ? "," : ""}{"i":1,"t":${r.temperatureCelsius},"h":${r.humidity ?? "null"},"b":${r.batteryLevel ?? "null"},"ms":${r.recordedAt.getTime()}}`;
  }
  return {tenantId: TENANT, ...options, deviceIds: pgArray([deviceId]), readings: `${text}]`};
}

async function main() {
  const {url, analyticsUrl} = await freshDatabases("st_bench_ingest_input");
  const config = parseConfig({...process.env, ...benchEnvironment({url, analyticsUrl})});
  const orm = await MikroORM.init(defaultOrmOptions(config));
  await orm.getMigrator().up();
  await orm.close(true);
  await migrateTenantSchema(config, TENANT);
  const deviceId = await withClient(url, async (db) => {
    await db.query(`insert into "public"."tenants" ("id") values ($1)`, [TENANT]);
    const {rows} = await db.query<{id: string}>(
      `with u as (insert into ${SCHEMA}."users" ("id", "created_at", "updated_at", "subject") values (gen_random_uuid(), now(), now(), 'bench') returning "id")
       insert into ${SCHEMA}."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
       select gen_random_uuid(), now(), now(), 'INPUT-1', 'INPUT-1', u."id" from u returning "id"`
    );
    return rows[0]!.id;
  });
  const arraysSql = ingestSql(SCHEMA, {withEpisodeState: false});
  if (!arraysSql.includes(ARRAYS_INPUT)) throw new Error("ingestSql's input is no longer the arrays this benchmark replaces");
  const texts: Record<Variant, string> = {
    arrays: arraysSql,
    json: arraysSql.replace(ARRAYS_INPUT, JSON_INPUT),
    fresh: ingestSql(SCHEMA, {withEpisodeState: false, fresh: true})
  };
  const builder = knex({client: "pg"});
  const client = new pg.Client({connectionString: url});
  await client.connect();
  // The same instants for every batch (each is rolled back), 30 s apart, ending an hour ago.
  const start = Date.now() - 3_600_000 - READINGS * 30_000;
  const cost: Record<Variant, {api: number[]; roundTrip: number[]; total: number[]}> = {
    arrays: {api: [], roundTrip: [], total: []},
    json: {api: [], roundTrip: [], total: []},
    fresh: {api: [], roundTrip: [], total: []}
  };
  /** One batch of `variant`: its API CPU (parameters built) and its statement round trip. */
  const batch = async (variant: Variant, record: boolean) => {
    const readings: Reading[] = Array.from({length: READINGS}, (_, k) => ({
      temperatureCelsius: 20 + (k % 50) / 10,
      humidity: k % 3 ? 40 + (k % 20) : null,
      batteryLevel: 0.9,
      recordedAt: new Date(start + k * 30_000)
    }));
    const t0 = performance.now();
    const native = toNativeSql(builder, texts[variant], bindings(variant, deviceId, readings));
    const t1 = performance.now();
    await client.query("begin");
    const t2 = performance.now();
    const {rows} = await client.query<{inserted: [deviceId: string, ids: string, instants: string][] | null}>({
      name: `ingest_${variant}`,
      text: native.sql,
      values: native.values
    });
    const t3 = performance.now();
    await client.query("rollback");
    if (rows[0]?.inserted?.[0]?.[1].split(",").length !== READINGS) throw new Error(`${variant}: not every reading was inserted`);
    if (!record) return;
    cost[variant].api.push(t1 - t0);
    cost[variant].roundTrip.push(t3 - t2);
    cost[variant].total.push(t1 - t0 + (t3 - t2));
  };
  try {
    // Batch by batch, rotating which goes first: on a busy machine, noise hits all alike.
    const variants: Variant[] = ["arrays", "json", "fresh"];
    for (let b = 0; b < BATCHES * (ROUNDS + 1); b++) {
      for (let k = 0; k < variants.length; k++) await batch(variants[(b + k) % variants.length]!, b >= BATCHES);
    }
    const [value, baseline] = [median(cost.json.total), median(cost.arrays.total)];
    console.log(`\n== ingest-input-json (ms per ${READINGS}-reading batch: parameters built + statement round trip; lower is better) ==`);
    console.log(`  ${BATCHES * ROUNDS} batches of each, in rotation, after ${BATCHES} of each to warm up`);
    console.log(
      `  parameters built, median ms (json / arrays): ${median(cost.json.api).toFixed(3)} / ${median(cost.arrays.api).toFixed(3)}`
    );
    console.log(
      `  statement round trip, median ms (json / arrays): ${median(cost.json.roundTrip).toFixed(2)} / ${median(cost.arrays.roundTrip).toFixed(2)}`
    );
    const ratio = value / baseline;
    console.log(
      `RESULT ingest-input-json value=${value.toFixed(2)} baseline=${baseline.toFixed(2)} ratio=${ratio.toFixed(3)} target=<=1.00${ratio <= 1 ? "" : " (missed)"}`
    );
    // The readings expected to be new: the same statement without ON CONFLICT DO NOTHING (ingestSql's `fresh` text).
    const fresh = median(cost.fresh.total);
    console.log(
      `\n== ingest-input-fresh (ms per ${READINGS}-reading batch, the plain INSERT against ON CONFLICT DO NOTHING; lower is better) ==`
    );
    console.log(
      `  statement round trip, median ms (plain / on conflict): ${median(cost.fresh.roundTrip).toFixed(2)} / ${median(cost.arrays.roundTrip).toFixed(2)}`
    );
    console.log(
      `RESULT ingest-input-fresh value=${fresh.toFixed(2)} baseline=${baseline.toFixed(2)} ratio=${(fresh / baseline).toFixed(3)} target=<=1.00${fresh <= baseline ? "" : " (missed)"}`
    );
  } finally {
    await client.end();
  }
}

runMain(main);
