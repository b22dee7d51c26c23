/**
 * ingest-orm: rows/s of the project's batch write path without HTTP — the service call every
 * transport makes, ReadingService.ingest — next to a raw statement with the same contract,
 * measured in the same run.
 *
 *   npm run bench:ingest-orm
 *
 * The application is booted in this process (Ts.ED injector, both MikroORM contexts, migrations;
 * no HTTP listener, no workers); every call runs the way a request runs it, in a DI context of its
 * own with the tenant bound, one 1,000-reading batch after the other, for already-validated
 * readings.
 * Subject (RESULT): `ReadingService.ingest` — the production write path: the ingest
 *   statement (device check, alert rule state, INSERT … ON CONFLICT DO NOTHING, ids back), in a
 *   transaction with the alert episode writes when a reading crosses a rule (every device has an
 *   `above 30 °C` rule its readings cross now and then), and the DailyStats refresh after commit.
 * Baseline (RESULT): one `pg` connection, autocommitted, the same contract in one raw statement:
 *   `INSERT … SELECT FROM unnest($2::float8[], …) ON CONFLICT (device_id, recorded_at) DO NOTHING
 *   RETURNING id, recorded_at` (idempotent per device and instant, ids for the receipts; results
 *   left as text), into a table identical to the tenant's readings table.
 * Also measured in the same rounds and printed (not in RESULT): the plain raw INSERT without that
 * contract, which shows what Postgres itself charges for it.
 * Environment: BENCH_DATABASE_URL, REDIS_URL, BENCH_ROUNDS (default 7), BENCH_BATCHES (batches
 * per round, default 40).
 */
import {DIContext, inject, runInContext} from "@tsed/common";
import {PlatformExpress} from "@tsed/platform-express";
import pg from "pg";
import {buildConfiguration} from "../tsed.config.js";
import {parseConfig} from "../src/config/app-config.js";
import type {ReadingInput} from "../src/modules/readings/reading.models.js";
import {ReadingService} from "../src/modules/readings/reading.service.js";
import {TenantContext} from "../src/platform/tenancy/tenant-context.js";
import {TenantProvisionerService} from "../src/platform/tenancy/tenant-provisioner.service.js";
import {Server} from "../src/server.js";
import {benchEnvironment} from "./lib/app.js";
import {freshDatabases} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";
import {ALERT_THRESHOLD, identicalReadingsTable, readingSeries} from "./lib/ingest.js";

const NAME = "ingest-orm";
const TENANT = "bench_ingest_orm";
const RAW_SCHEMA = "bench_raw";
/** The plain INSERT's own table: the contract's table then grows exactly as the tenant's does. */
const PLAIN_SCHEMA = "bench_raw_plain";
const DEVICES = 4;
const BATCH_SIZE = 1_000;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 40);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const STEP_MS = 30_000;

async function main() {
  const started = Date.now();
  const {url, analyticsUrl} = await freshDatabases("st_bench_ingest_orm");
  const env = parseConfig({...process.env, ...benchEnvironment({url, analyticsUrl, queuePrefix: `bench-orm-${process.pid}`})});
  const platform = await PlatformExpress.bootstrap(Server, buildConfiguration({...env, runWorkers: false}));
  const db = new pg.Client({connectionString: url});
  try {
    await platform.listen(false); // lifecycle hooks only: no HTTP listener
    await inject(TenantProvisionerService).ensure(TENANT);
    await db.connect();
    const s = `"${TENANT}"`;
    const {rows: devices} = await db.query<{id: string}>(
      `with u as (insert into ${s}."users" ("id", "created_at", "updated_at", "subject") values (gen_random_uuid(), now(), now(), 'bench') returning "id"),
       d as (insert into ${s}."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
             select gen_random_uuid(), now(), now(), 'BENCH-ORM-' || g, 'BENCH-ORM-' || g, u."id" from u, generate_series(1, $1) g returning "id"),
       r as (insert into ${s}."alert_rules" ("id", "created_at", "updated_at", "device_id", "condition", "threshold_celsius")
             select gen_random_uuid(), now(), now(), d."id", 'above', $2 from d returning "device_id")
       select "device_id" as "id" from r order by 1`,
      [DEVICES, ALERT_THRESHOLD]
    );
    const table = await identicalReadingsTable(db, TENANT, RAW_SCHEMA);
    await identicalReadingsTable(db, TENANT, PLAIN_SCHEMA);
    const service = inject(ReadingService);
    const tenant = inject(TenantContext);

    // Each measured run writes the next BATCHES × 1,000 readings of the devices (30 s apart, in
    // turn, all in the past), so no run collides with an earlier one of its series.
    const perDevice = BATCHES / DEVICES;
    // Stretches of time: one per run of each series (warm-up included); each series writes a
    // table of its own, so the three tables grow alike.
    const runs = ROUNDS + 1;
    const firstMs = Date.now() - (runs + 1) * perDevice * BATCH_SIZE * STEP_MS;
    const batchesOf = (run: number) =>
      Array.from({length: BATCHES}, (_, b) => {
        const device = b % DEVICES;
        const offset = (run * perDevice + Math.floor(b / DEVICES)) * BATCH_SIZE;
        return {deviceId: devices[device]!.id, readings: readingSeries(BATCH_SIZE, firstMs + offset * STEP_MS, offset + device * 7)};
      });
    const inputsOf = (run: number) =>
      batchesOf(run).map(({deviceId, readings}) => ({
        deviceId,
        inputs: readings.map((r): ReadingInput => ({
          temperatureCelsius: r.temperatureCelsius,
          humidity: r.humidity,
          batteryLevel: r.batteryLevel,
          recordedAt: new Date(r.recordedAt)
        }))
      }));
    const paramsOf = (run: number) =>
      batchesOf(run).map(({deviceId, readings}) => [
        deviceId,
        readings.map((r) => r.temperatureCelsius),
        readings.map((r) => r.humidity),
        readings.map((r) => r.batteryLevel),
        readings.map((r) => r.recordedAt)
      ]);
    const expectAll = (what: string, stored: number) => {
      if (stored !== BATCHES * BATCH_SIZE) throw new Error(`${what} stored ${stored} rows, expected ${BATCHES * BATCH_SIZE}`);
    };
    /** Rows/s of `write` over every batch of `batches`, one after the other. */
    const timed = async <T>(batches: T[], write: (batch: T) => Promise<number>) => {
      let stored = 0;
      const t0 = process.hrtime.bigint();
      for (const batch of batches) stored += await write(batch);
      return {stored, rate: stored / (Number(process.hrtime.bigint() - t0) / 1e9)};
    };
    const inContext = async <T>(task: () => Promise<T>): Promise<T> =>
      runInContext(new DIContext({id: "bench-ingest-orm"}), () => {
        tenant.bind(TENANT);
        return task();
      });
    // Returned values stay text (no Date parsing): the baseline pays for nothing it does not need.
    const asText = {getTypeParser: () => (value: string) => value};
    const rawInsert = (schema: string, suffix: string) => (params: unknown[]) =>
      db
        .query({
          text: `insert into "${schema}"."temperature_readings" ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
           select $1, v.* from unnest($2::float8[], $3::float8[], $4::float8[], $5::timestamptz[]) as v ${suffix}`,
          values: params,
          rowMode: "array",
          types: asText
        })
        .then((result) => result.rowCount ?? 0);

    let subjectRun = 0;
    let baselineRun = 0;
    const plainRates: number[] = [];

    const subject = async () => {
      const batches = inputsOf(subjectRun++);
      const full = await timed(batches, ({deviceId, inputs}) =>
        inContext(() => service.ingest({tenantId: TENANT, deviceId, readings: inputs, single: false})).then((r) => r.inserted)
      );
      expectAll("ReadingService.ingest", full.stored);
      return full.rate;
    };

    const baseline = async () => {
      const params = paramsOf(baselineRun++);
      const contract = await timed(
        params,
        rawInsert(RAW_SCHEMA, `on conflict ("device_id", "recorded_at") do nothing returning "id", "recorded_at"`)
      );
      expectAll("raw INSERT … ON CONFLICT DO NOTHING RETURNING", contract.stored);
      const plain = await timed(params, rawInsert(PLAIN_SCHEMA, ""));
      expectAll("plain raw INSERT", plain.stored);
      plainRates.push(plain.rate);
      return contract.rate;
    };

    console.log(
      `${NAME}: ${BATCHES} batches × ${BATCH_SIZE} readings per run (${BATCHES * BATCH_SIZE} rows, ${DEVICES} devices in turn), one batch at a time, ${ROUNDS} rounds + 1 warm-up`
    );
    console.log(
      `  subject: ReadingService.ingest (in-process, no HTTP, DI context with the tenant bound): the production write path, alerts and stats refresh included`
    );
    console.log(
      `  baseline: pg, one connection, INSERT … SELECT FROM unnest(4 arrays) ON CONFLICT (device_id, recorded_at) DO NOTHING RETURNING id, recorded_at, autocommit, into ${RAW_SCHEMA}.temperature_readings (${table})`
    );
    const result = await runPart({
      name: NAME,
      unit: "rows/s",
      target: ">= 0.90",
      rounds: ROUNDS,
      subject: {label: "ReadingService.ingest, 1,000 rows", run: subject},
      baseline: {label: "raw unnest INSERT … ON CONFLICT … RETURNING", run: baseline},
      notes: () => ({
        "plain raw unnest INSERT (no ON CONFLICT, no RETURNING) rows/s (median)": median(plainRates).toFixed(0),
        "wall time s": ((Date.now() - started) / 1000).toFixed(0)
      })
    });
    console.log(
      `  what the contract costs Postgres: raw INSERT with ON CONFLICT … RETURNING / plain raw INSERT = ${(result.baseline / median(plainRates)).toFixed(3)}`
    );
  } finally {
    await db.end().catch(() => undefined);
    await platform.stop();
  }
}

runMain(main);
