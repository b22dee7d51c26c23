/**
 * retention-drop: dropping one month of 3 million readings the way the nightly retention does
 * (DETACH PARTITION … CONCURRENTLY, then DROP TABLE: MonthlyPartitions.dropEndingBy), next to the
 * row-by-row `DELETE` of the same rows it replaces, measured in the same run.
 *
 *   npm run bench:retention-drop
 *
 * Its own databases (`st_bench_retention`, `…_analytics`), migrated by this script. Each round
 * fills last month's partition with 1,000 devices × 3,000 readings (not timed), then:
 * - subject: dropEndingBy(start of this month), on one connection outside any transaction;
 * - baseline: the same rows inserted again, then `DELETE … WHERE recorded_at < <start of this month>`
 *   and the VACUUM that makes their space reusable (a DELETE alone only marks 3 M dead tuples:
 *   the table keeps its size, every index keeps its entries, until vacuum cleans them).
 * Meanwhile a writer inserts one reading every 5 ms into this month (its own connection), to show
 * what the drop costs the ingestion running at the same time (its slowest insert is printed).
 * Target: the drop itself under 1 s (`target=value<=1000ms` on the RESULT line), and faster than the DELETE. Environment: BENCH_DATABASE_URL,
 * BENCH_ROUNDS (default 3).
 */
import {MikroORM} from "@mikro-orm/postgresql";
import pg from "pg";
import {parseConfig} from "../src/config/app-config.js";
import {analyticsOrmOptions, defaultOrmOptions} from "../src/config/mikro-orm.config.js";
import {addMonths, MonthlyPartitions, monthlyPartitionName, monthStart} from "../src/platform/db/monthly-partitions.js";
import {migrateTenantSchema} from "../src/platform/tenancy/tenant-migrator.js";
import {benchEnvironment} from "./lib/app.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";

const NAME = "retention-drop";
const TENANT = "bench_retention";
const DEVICES = 1_000;
const PER_DEVICE = 3_000;
const ROWS = DEVICES * PER_DEVICE;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TARGET_MS = 1_000;

async function main() {
  const started = Date.now();
  const {url, analyticsUrl} = await freshDatabases("st_bench_retention");
  const env = parseConfig({...process.env, ...benchEnvironment({url, analyticsUrl})});
  for (const options of [defaultOrmOptions(env), analyticsOrmOptions(env)]) {
    const orm = await MikroORM.init(options);
    await orm.getMigrator().up();
    await orm.close(true);
  }
  await migrateTenantSchema(env, TENANT);

  const current = monthStart(new Date());
  const lastMonth = addMonths(current, -1);
  const lastMonthName = monthlyPartitionName("temperature_readings", lastMonth);
  const table = `"${TENANT}"."temperature_readings"`;
  const db = new pg.Client({connectionString: url});
  const writerDb = new pg.Client({connectionString: url});
  await db.connect();
  await writerDb.connect();
  try {
    await withClient(url, async (setup) => {
      await setup.query(`insert into "public"."tenants" ("id") values ($1)`, [TENANT]);
      await setup.query(
        `insert into "${TENANT}"."users" ("id", "created_at", "updated_at", "subject") values (gen_random_uuid(), now(), now(), 'bench')`
      );
      await setup.query(
        `insert into "${TENANT}"."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
         select gen_random_uuid(), now(), now(), 'BENCH-RET-' || g, 'Sensor ' || g, (select "id" from "${TENANT}"."users" limit 1) from generate_series(1, $1::int) g`,
        [DEVICES]
      );
    });
    const fillLastMonth = async () => {
      const t0 = Date.now();
      const exists = await db.query(`select 1 from pg_class where oid = to_regclass($1)`, [`"${TENANT}"."${lastMonthName}"`]);
      if (exists.rowCount === 0) {
        await db.query(
          `create table "${TENANT}"."${lastMonthName}" partition of ${table} for values from ('${lastMonth.toISOString()}') to ('${current.toISOString()}')`
        );
      }
      await db.query(
        `insert into ${table} ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
         select d."id", round((18 + 8 * random())::numeric, 2), 45, 0.9, $1::timestamptz + g * interval '30 seconds'
           from generate_series(0, $2::int - 1) g cross join "${TENANT}"."devices" d order by g`,
        [new Date(lastMonth.getTime() + 2 * 86_400_000).toISOString(), PER_DEVICE]
      );
      await db.query(`analyze "${TENANT}"."${lastMonthName}"`);
      const {rows} = await db.query<{n: string; size: string}>(
        `select count(*)::text as n, pg_size_pretty(pg_total_relation_size('"${TENANT}"."${lastMonthName}"')) as size from "${TENANT}"."${lastMonthName}"`
      );
      if (Number(rows[0]!.n) !== ROWS) throw new Error(`last month holds ${rows[0]!.n} readings, expected ${ROWS}`);
      console.log(
        `  (filled ${lastMonthName}: ${ROWS.toLocaleString("en")} readings, ${rows[0]!.size} with indexes, in ${((Date.now() - t0) / 1000).toFixed(0)} s)`
      );
    };

    /** One insert every 5 ms into this month while `task` runs; the slowest one, in ms. */
    let writes = 0;
    const withWriter = async (task: () => Promise<void>): Promise<number> => {
      let running = true;
      let slowest = 0;
      const device = (await db.query<{id: string}>(`select id from "${TENANT}"."devices" limit 1`)).rows[0]!.id;
      const writer = (async () => {
        while (running) {
          const t0 = performance.now();
          await writerDb.query(`insert into ${table} ("device_id", "temperature_celsius", "recorded_at") values ($1, 21, $2)`, [
            device,
            new Date(current.getTime() + writes++ * 1000)
          ]);
          slowest = Math.max(slowest, performance.now() - t0);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await task();
      running = false;
      await writer;
      return slowest;
    };

    const slowestDuringDrop: number[] = [];
    const slowestDuringDelete: number[] = [];
    const deleteMs: number[] = [];
    const vacuumMs: number[] = [];
    const subject = async () => {
      await fillLastMonth();
      let ms = 0;
      slowestDuringDrop.push(
        await withWriter(async () => {
          const t0 = performance.now();
          const dropped = await new MonthlyPartitions(db, TENANT, "temperature_readings").dropEndingBy(current);
          ms = performance.now() - t0;
          if (!dropped.includes(lastMonthName)) throw new Error(`dropped ${dropped.join(", ")}, not ${lastMonthName}`);
        })
      );
      return ms;
    };
    const baseline = async () => {
      await fillLastMonth();
      let ms = 0;
      slowestDuringDelete.push(
        await withWriter(async () => {
          const t0 = performance.now();
          const deleted = await db.query(`delete from ${table} where "recorded_at" < $1`, [current.toISOString()]);
          const t1 = performance.now();
          await db.query(`vacuum "${TENANT}"."${lastMonthName}"`);
          ms = performance.now() - t0;
          deleteMs.push(t1 - t0);
          vacuumMs.push(performance.now() - t1);
          if (deleted.rowCount !== ROWS) throw new Error(`deleted ${deleted.rowCount}, expected ${ROWS}`);
        })
      );
      return ms;
    };

    console.log(`${NAME}: one month of ${ROWS.toLocaleString("en")} readings (${DEVICES} devices × ${PER_DEVICE}), ${ROUNDS} rounds`);
    console.log(`  subject: DETACH PARTITION … CONCURRENTLY + DROP TABLE (MonthlyPartitions.dropEndingBy)`);
    console.log(`  baseline: DELETE FROM temperature_readings WHERE recorded_at < <start of this month>, then VACUUM of the month`);
    await runPart({
      name: NAME,
      unit: "ms",
      // The target is the drop's own time; the ratio to the DELETE is printed beside it.
      target: `<= ${TARGET_MS}`,
      targetOn: "value",
      warmupRounds: 0,
      rounds: ROUNDS,
      subject: {label: "drop the month's partition", run: subject},
      baseline: {label: "DELETE the month's rows + VACUUM", run: baseline},
      notes: () => ({
        "of the baseline: DELETE / VACUUM, median ms": `${median(deleteMs).toFixed(0)} / ${median(vacuumMs).toFixed(0)}`,
        "slowest concurrent insert during the drop / the DELETE + VACUUM, median ms": `${median(slowestDuringDrop).toFixed(1)} / ${median(slowestDuringDelete).toFixed(1)}`,
        "wall time s": ((Date.now() - started) / 1000).toFixed(0)
      }),
      // And faster than the row-by-row DELETE it replaces.
      finish: async ({value, baseline}) => ({fields: {faster_than_delete: value < baseline ? "yes" : "no"}, met: value < baseline})
    });
  } finally {
    await db.end();
    await writerDb.end();
  }
}

runMain(main);
