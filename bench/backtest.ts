/**
 * backtest: a rule backtested over 31 days of one device's readings every 30 s (89,280 readings)
 * over HTTP (POST /api/v1/devices/{id}/alert-rules/backtest), next to a plain SELECT of the same
 * readings (the same columns, the same statement) by a client of its own, measured in the same run.
 *
 *   npm run bench:backtest
 *
 * Its own databases (`st_bench_backtest`, `…_analytics`); the API as its own process (production
 * mode, RS256 token from a loopback JWKS). One tenant, one device, readings inserted with one
 * INSERT … SELECT generate_series, ending an hour ago; temperatures swing around the rule's
 * threshold every few hours, so the rule fires and clears (with forSeconds and hysteresis) along
 * the month.
 * - subject: the time from sending the request to the parsed JSON answer, as an operator; the
 *   answer must have evaluated every reading.
 * - baseline: node-postgres on one open connection runs the backtest's SELECT
 *   (backtestReadingsSql) for the same device and range and receives the rows (ids as text,
 *   recordedAt parsed into Dates, as the API's statements do).
 * Target: ratio <= 2. Environment: BENCH_DATABASE_URL, REDIS_URL, BENCH_ROUNDS (default 7).
 */
import {knex} from "@mikro-orm/postgresql";
import pg from "pg";
import {backtestReadingsSql} from "../src/modules/alerts/alert-backtest.repository.js";
import {toNativeSql} from "../src/platform/db/sql.js";
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";

const NAME = "backtest";
const TENANT = "bench_backtest";
const READINGS = 31 * 2_880;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const RULE = {condition: "above", thresholdCelsius: 8, forSeconds: 300, clearDeltaCelsius: 1};

async function main() {
  const started = Date.now();
  const {url, analyticsUrl} = await freshDatabases("st_bench_backtest");
  const jwks = await startJwks();
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: {RUN_WORKERS: "false"}});
  const db = new pg.Client({connectionString: url});
  try {
    const operator = {Authorization: `Bearer ${await jwks.token(TENANT, ["operator"])}`, "content-type": "application/json"};
    const created = await fetch(`${api.baseUrl}/api/v1/devices`, {
      method: "POST",
      headers: operator,
      body: JSON.stringify({serialNumber: "BENCH-BACKTEST-0"})
    });
    if (created.status !== 201) throw new Error(`device: ${created.status} ${await created.text()}`);
    const deviceId = ((await created.json()) as {id: string}).id;

    const to = new Date(Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000);
    const from = new Date(to.getTime() - READINGS * 30_000);
    const insertStarted = Date.now();
    await withClient(url, async (client) => {
      // 5 ± 4 °C over a period of about 5 hours, with noise: runs above 8 °C and back below 7 °C.
      await client.query(
        `insert into "${TENANT}"."temperature_readings" ("device_id", "temperature_celsius", "recorded_at")
         select $1::uuid, round((5 + 4 * sin(g / 100.0) + random())::numeric, 2), $2::timestamptz + g * interval '30 seconds'
           from generate_series(0, $3::int - 1) as g`,
        [deviceId, from.toISOString(), READINGS]
      );
      await client.query(`vacuum analyze "${TENANT}"."temperature_readings"`);
    });
    console.log(`inserted ${READINGS.toLocaleString("en")} readings in ${((Date.now() - insertStarted) / 1000).toFixed(1)} s`);

    const body = JSON.stringify({...RULE, from: from.toISOString(), to: to.toISOString()});
    let episodes = 0;
    const subject = async () => {
      const t0 = performance.now();
      const res = await fetch(`${api.baseUrl}/api/v1/devices/${deviceId}/alert-rules/backtest`, {method: "POST", headers: operator, body});
      const result = (await res.json()) as {episodes: unknown[]; readingsEvaluated: number};
      const ms = performance.now() - t0;
      if (res.status !== 200 || result.readingsEvaluated !== READINGS)
        throw new Error(`backtest → ${res.status} ${JSON.stringify(result).slice(0, 300)}`);
      episodes = result.episodes.length;
      return ms;
    };

    await db.connect();
    const select = toNativeSql(knex({client: "pg"}), backtestReadingsSql(`"${TENANT}"`), {deviceId, from, to});
    const baseline = async () => {
      const t0 = performance.now();
      const {rows} = await db.query(select.sql, select.values);
      const ms = performance.now() - t0;
      if (rows.length !== READINGS) throw new Error(`select → ${rows.length} rows`);
      return ms;
    };

    console.log(`${NAME}: one device, ${READINGS.toLocaleString("en")} readings (31 days at 30 s), rule ${JSON.stringify(RULE)}`);
    console.log(`  subject: HTTP POST /api/v1/devices/{id}/alert-rules/backtest (RS256 JWT, role operator), request to parsed JSON`);
    console.log(`  baseline: node-postgres, one open connection, the backtest's SELECT of the same readings (same columns)`);
    const subjectTimes: number[] = [];
    await runPart({
      name: NAME,
      unit: "ms",
      target: "<= 2",
      rounds: ROUNDS,
      subject: {
        label: "HTTP backtest",
        run: async () => {
          const ms = await subject();
          subjectTimes.push(ms);
          return ms;
        }
      },
      baseline: {label: "plain SELECT of the same readings", run: baseline},
      notes: () => ({
        "episodes found": episodes,
        "subject, median ms of all runs (warm-up included)": median(subjectTimes).toFixed(0),
        "wall time s": ((Date.now() - started) / 1000).toFixed(0)
      })
    });
  } finally {
    await db.end().catch(() => undefined);
    await api.stop();
    await jwks.close();
  }
}

runMain(main);
