/**
 * late-reading: what one late reading costs when its alert episodes are re-derived over a window of
 * 2,880 stored readings (a day at one reading every 30 s), next to an in-order reading of the same
 * device, measured in the same run.
 *
 *   npm run bench:late-reading
 *
 * Its own databases (`st_bench_late`, `…_analytics`); the API runs as its own process with a token
 * from a loopback JWKS. One device with an `above 30 °C` rule gets 2,880 readings over the last
 * day, every one of them above 30 °C, through the batch route: one episode, open, holding them
 * all. Then, alternating, BENCH_ROUNDS (default 30) single POSTs of each:
 * - subject: a late reading (35 °C) in the first minutes of that day — behind the newest reading,
 *   inside ALERT_LATE_HORIZON — so the open episode is re-derived from its start over every stored
 *   reading (2,880 and the late ones added so far) and the difference written;
 * - baseline: an in-order reading (35 °C) after the newest one, which extends the open episode
 *   as it is stored (the alert transaction, nothing read back).
 * Latency is client-side (fetch, keep-alive), one request at a time. Environment:
 * BENCH_DATABASE_URL, REDIS_URL, BENCH_ROUNDS.
 */
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {runMain, runPart} from "./lib/harness.js";

const TENANT = "bench_late";
const WINDOW = 2_880;
const STEP_MS = 30_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);

async function main() {
  const {url, analyticsUrl} = await freshDatabases("st_bench_late");
  const jwks = await startJwks();
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: {RUN_WORKERS: "false"}});
  const headers = {Authorization: `Bearer ${await jwks.token(TENANT)}`, "Content-Type": "application/json"};
  const call = async (method: string, path: string, body: unknown, expected: number) => {
    const res = await fetch(`${api.baseUrl}/api/v1${path}`, {method, headers, body: JSON.stringify(body)});
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status !== expected) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
    return json;
  };
  try {
    const device = (await call("POST", "/devices", {serialNumber: "BENCH-LATE-1"}, 201)).id as string;
    await call("POST", `/devices/${device}/alert-rules`, {condition: "above", thresholdCelsius: 30}, 201);
    // The day ends a minute ago: the in-order readings that follow stay behind the clock's skew bound.
    const start = Date.now() - 60_000 - WINDOW * STEP_MS;
    for (let offset = 0; offset < WINDOW; offset += 960) {
      const readings = Array.from({length: Math.min(960, WINDOW - offset)}, (_, k) => ({
        temperatureCelsius: 35,
        recordedAt: new Date(start + (offset + k) * STEP_MS).toISOString()
      }));
      await call("POST", `/devices/${device}/readings/batch`, {readings}, 200);
    }
    const alerts = (await call("GET", `/devices/${device}/alerts`, undefined, 200)) as unknown as {data?: unknown[]} | unknown[];
    const episodes = Array.isArray(alerts) ? alerts.length : (alerts.data?.length ?? 0);
    if (episodes !== 1) throw new Error(`expected one open episode holding the day, found ${episodes}`);

    let late = 0;
    let inOrder = 0;
    const timed = async (recordedAt: number) => {
      const t0 = process.hrtime.bigint();
      await call("POST", `/devices/${device}/readings`, {temperatureCelsius: 35, recordedAt: new Date(recordedAt).toISOString()}, 201);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    await runPart({
      name: "late-reading",
      unit: "ms per request, client-side",
      target: "<= 10",
      warmupRounds: 2,
      rounds: ROUNDS,
      // Between the first two readings of the day, each a millisecond after the last late one.
      subject: {
        label: `late reading, episode re-derived over ${WINDOW.toLocaleString("en")}+ readings`,
        run: () => timed(start + 1 + late++)
      },
      // Each a millisecond after the newest reading (the clock of the day has a minute to spare).
      baseline: {label: "in-order reading, open episode extended", run: () => timed(start + (WINDOW - 1) * STEP_MS + 1 + inOrder++)},
      notes: () => ({"stored readings of the device at the end": WINDOW + late + inOrder})
    });
    await withClient(url, async (db) => {
      const {rows} = await db.query<{episodes: number; held: number}>(
        `select count(*)::int as episodes, max(reading_count)::int as held from "${TENANT}".alerts`
      );
      console.log(
        `  episodes after the run: ${rows[0]!.episodes} (the late readings joined the open one: it holds ${rows[0]!.held} readings)`
      );
    });
  } finally {
    await api.stop();
    await jwks.close();
  }
}

runMain(main);
