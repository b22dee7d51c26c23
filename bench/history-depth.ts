/**
 * History page latency at depth: page 1 next to a page a million rows deep, through the app.
 *
 *   node --import @swc-node/register/esm-register bench/history-depth.ts
 *
 * Its own databases (`st_bench_history`, `st_bench_history_analytics`); the API runs as its own
 * process (src/index.ts, NODE_ENV=production) with a token from a loopback JWKS. One device gets
 * 1,000,050 readings (generate_series, 30 s apart, the newest a minute ago: the year a live device leaves), each in the monthly
 * partition of its month — as a year of the partition job would have left them (a new tenant's
 * partitions start last month, so the bench adds the year's earlier months before inserting); then,
 * alternating, BENCH_REQUESTS (default 50)
 * requests of each:
 *  - page 1:    GET /api/v1/devices/:id/readings?limit=50
 *  - deep page: the same with the cursor that follows the 1,000,000th newest reading.
 * Latency is client-side (fetch, keep-alive). For context it also times, in SQL, the OFFSET page
 * at the same depth (what keyset pagination avoids). Environment: BENCH_DATABASE_URL, REDIS_URL.
 */
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";
import {encodeCursor} from "../src/modules/readings/reading-history.service.js";
import {addMonths, monthlyPartitionName, monthStart} from "../src/platform/db/monthly-partitions.js";

const TENANT = "bench_history";
const ROWS = 1_000_050;
const DEPTH = 1_000_000;
const LIMIT = 50;
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 50);
/** The series ends a minute ago, as a device that reports now: page 1 then reads the newest month. */
const START = new Date(Date.now() - 60_000 - ROWS * 30_000);
const FIRST_MONTH = monthStart(START);

async function main() {
  const started = Date.now();
  const {url, analyticsUrl} = await freshDatabases("st_bench_history");
  const jwks = await startJwks();
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: {RUN_WORKERS: "false"}});
  const headers = {Authorization: `Bearer ${await jwks.token(TENANT)}`, "Content-Type": "application/json"};
  try {
    const created = await fetch(`${api.baseUrl}/api/v1/devices`, {
      method: "POST",
      headers,
      body: JSON.stringify({serialNumber: "BENCH-HISTORY-1"})
    });
    const device = (await created.json()) as {id: string};
    if (created.status !== 201) throw new Error(`device: ${created.status} ${JSON.stringify(device)}`);

    const {deepCursor, offsetMs} = await withClient(url, async (db) => {
      // Months from the first reading's up to the tenant's first monthly partition, and `_older` below them.
      const {rows: first} = await db.query<{bound: number}>(
        `select (extract(epoch from (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz) * 1000)::float8 as bound
           from pg_class c where c.oid = to_regclass($1)`,
        [`"${TENANT}"."temperature_readings_older"`]
      );
      await db.query(`drop table "${TENANT}"."temperature_readings_older"`);
      await db.query(
        `create table "${TENANT}"."temperature_readings_older" partition of "${TENANT}"."temperature_readings" for values from (minvalue) to ('${FIRST_MONTH.toISOString()}')`
      );
      for (let month = FIRST_MONTH; month.getTime() < first[0]!.bound; month = addMonths(month, 1)) {
        await db.query(
          `create table "${TENANT}"."${monthlyPartitionName("temperature_readings", month)}" partition of "${TENANT}"."temperature_readings" for values from ('${month.toISOString()}') to ('${addMonths(month, 1).toISOString()}')`
        );
      }
      const insertStarted = Date.now();
      await db.query(
        `insert into "${TENANT}"."temperature_readings" ("device_id", "temperature_celsius", "recorded_at")
         select $1, 20 + 5 * sin(g / 1000.0), $3::timestamptz + g * interval '30 seconds'
         from generate_series(1, $2) as g`,
        [device.id, ROWS, START.toISOString()]
      );
      await db.query(`analyze "${TENANT}"."temperature_readings"`);
      const {rows: parts} = await db.query<{n: number}>(`select count(*)::int as n from pg_inherits where inhparent = $1::regclass`, [
        `"${TENANT}"."temperature_readings"`
      ]);
      console.log(
        `inserted ${ROWS} readings for one device in ${((Date.now() - insertStarted) / 1000).toFixed(1)} s (${parts[0]!.n} partitions)`
      );
      const {rows} = await db.query(
        `select to_char("recorded_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "t" from "${TENANT}"."temperature_readings"
         where "device_id" = $1 order by "recorded_at" desc offset $2 limit 1`,
        [device.id, DEPTH - 1]
      );
      // What OFFSET pagination would cost at the same depth (SQL only, no HTTP), for context.
      const offsetTimes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = process.hrtime.bigint();
        await db.query(
          `select * from "${TENANT}"."temperature_readings" where "device_id" = $1 order by "recorded_at" desc offset $2 limit $3`,
          [device.id, DEPTH, LIMIT]
        );
        offsetTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return {deepCursor: encodeCursor(rows[0].t as string), offsetMs: median(offsetTimes)};
    });

    const timed = async (query: string, expectNext: boolean) => {
      const t0 = process.hrtime.bigint();
      const res = await fetch(`${api.baseUrl}/api/v1/devices/${device.id}/readings?${query}`, {headers});
      const body = (await res.json()) as {count: number; hasNextPage: boolean};
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (res.status !== 200 || body.count !== LIMIT || body.hasNextPage !== expectNext)
        throw new Error(`unexpected page: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
      return ms;
    };

    await runPart({
      name: "history-depth",
      unit: "ms per request, client-side",
      target: "<= 1.5",
      warmupRounds: 5,
      rounds: REQUESTS,
      subject: {
        label: `page ${DEPTH / LIMIT + 1} (${DEPTH.toLocaleString("en")} rows deep)`,
        run: () => timed(`limit=${LIMIT}&cursor=${deepCursor}`, false)
      },
      baseline: {label: "page 1", run: () => timed(`limit=${LIMIT}`, true)},
      notes: () => ({
        "readings of the device": ROWS,
        "OFFSET page at the same depth, SQL only (median of 5), ms": offsetMs.toFixed(1),
        "total bench time, s": ((Date.now() - started) / 1000).toFixed(1)
      })
    });
  } finally {
    await api.stop();
    await jwks.close();
  }
}

runMain(main);
