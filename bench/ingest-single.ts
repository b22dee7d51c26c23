/**
 * ingest-single: requests/s of `POST /api/v1/devices/:id/readings` (one reading) at 50
 * connections, next to a bare Express + `pg` server doing the same INSERT, measured in the same
 * run; then the API's p99 latency at half its measured rate.
 *
 *   npm run bench:ingest-single
 *
 * A building: 1,000 devices of one tenant, each with its own RS256 token (a loopback JWKS) and an
 * `above 30 °C` alert rule. Every request goes to a random device with a fresh recordedAt (a
 * slowly rising clock shared by all devices) and a temperature that crosses the rule now and then.
 * Subject: the compiled API as its own process (production mode; startApi): JWT verification,
 * tenant binding, validation, the alert check and the after-commit DailyStats refresh.
 * Ingestion rate limits are off (RATE_LIMIT_*=0, set by startApi).
 * Baseline: bench/lib/bare-express.ts, its own process: express.json + one INSERT … ON CONFLICT
 * DO NOTHING RETURNING with a pg Pool of the API's size (DB_POOL_MAX, default 10), into a table
 * identical to the tenant's readings table.
 * The API group-commits (READINGS_GROUP_COMMIT, on by default: concurrent posts of a tenant share
 * one statement) while that baseline runs one INSERT per request, so two more parts compare like
 * with like (BENCH_HONEST=0 skips them):
 *  - ingest-single-coalesced: the API as above against the bare server coalescing the same way
 *    (BARE_COALESCE: one INSERT in flight, the requests that arrive meanwhile written together by
 *    the next, as soon as it ends);
 *  - ingest-single-nogc: a second API process with READINGS_GROUP_COMMIT=false (one statement per
 *    request) against the one-INSERT-per-request baseline.
 * Load: autocannon on loopback, 50 connections, BENCH_SECONDS (default 8) per round. The p99 run
 * is an open-loop paced load (bench/lib/ingest.ts pacedLoad) at half the API's median rate for
 * BENCH_P99_SECONDS (default 10): one request every 1/rate s, latency from when it was due.
 * (autocannon's overallRate sends each connection's share in a burst at the start of every second,
 * which measures the tail of that burst rather than the latency at the rate.)
 * Environment: BENCH_DATABASE_URL, REDIS_URL, BENCH_ROUNDS (default 5).
 */
import autocannon from "autocannon";
import {API_POOL_MAX, startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {startBareExpress} from "./lib/bare-express.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";
import {
  ALERT_THRESHOLD,
  callJson,
  frameworkFloor,
  httpClient,
  identicalReadingsTable,
  pacedLoad,
  percentile,
  postgresCpuSeconds,
  processCpuSeconds
} from "./lib/ingest.js";

const NAME = "ingest-single";
const TENANT = "bench_ingest_single";
const BARE_SCHEMA = "bench_bare";
const DEVICES = 1_000;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const P99_SECONDS = Number(process.env.BENCH_P99_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const P99_TARGET_MS = 50;

async function main() {
  const started = Date.now();
  const {url, analyticsUrl} = await freshDatabases("st_bench_ingest_single");
  const jwks = await startJwks();
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri});
  const client = httpClient(api.baseUrl, 1);
  let bare: Awaited<ReturnType<typeof startBareExpress>> | undefined;
  let bareCoalesced: Awaited<ReturnType<typeof startBareExpress>> | undefined;
  let apiNoGroupCommit: Awaited<ReturnType<typeof startApi>> | undefined;
  try {
    const admin = {authorization: `Bearer ${await jwks.token(TENANT, ["user", "operator"])}`};
    const me = await callJson<{id: string}>(client, admin, "GET", "/api/v1/me", undefined, 200); // provisions the tenant
    const devices = await withClient(url, async (db) => {
      const s = `"${TENANT}"`;
      const {rows} = await db.query<{id: string}>(
        `with d as (insert into ${s}."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
                    select gen_random_uuid(), now(), now(), 'BENCH-SINGLE-' || g, 'BENCH-SINGLE-' || g, $1 from generate_series(1, $2) g returning "id"),
         r as (insert into ${s}."alert_rules" ("id", "created_at", "updated_at", "device_id", "condition", "threshold_celsius")
               select gen_random_uuid(), now(), now(), d."id", 'above', $3 from d returning "device_id")
         select "device_id" as "id" from r order by 1`,
        [me.id, DEVICES, ALERT_THRESHOLD]
      );
      return rows.map((row) => row.id);
    });
    const table = await withClient(url, (db) => identicalReadingsTable(db, TENANT, BARE_SCHEMA));
    bare = await startBareExpress({url, table: `"${BARE_SCHEMA}"."temperature_readings"`, poolMax: API_POOL_MAX});
    const tokens = await Promise.all(devices.map((_, i) => jwks.token(TENANT, ["device", "operator"], `bench-device-${i}`)));
    const paths = devices.map((id) => `/api/v1/devices/${id}/readings`);
    const authorization = tokens.map((t) => `Bearer ${t}`);

    // recordedAt: one clock for all devices, starting well in the past, 1 ms per request: fresh and unique.
    let clock = Date.now() - 2 * 3_600_000;
    let sequence = 0;
    const nextRequest = () => {
      const i = Math.floor(Math.random() * DEVICES);
      const n = sequence++;
      return {
        path: paths[i]!,
        headers: {"content-type": "application/json", authorization: authorization[i]!},
        body: `{"temperatureCelsius":${n % 499 < 3 ? 35.5 : 21 + (n % 50) / 10},"humidity":${40 + (n % 20)},"batteryLevel":0.9,"recordedAt":"${new Date(clock++).toISOString()}"}`
      };
    };
    const load = (baseUrl: string, options: {duration: number}) =>
      autocannon({
        url: baseUrl,
        connections: CONNECTIONS,
        duration: options.duration,
        timeout: 10,
        requests: [{method: "POST", setupRequest: (request) => Object.assign(request, nextRequest())}]
      });
    const rate = (label: string, result: Awaited<ReturnType<typeof autocannon>>) => {
      const failed = result.non2xx + result.errors + result.timeouts;
      if (failed > 0)
        throw new Error(
          `${label}: ${failed} failed requests (${JSON.stringify(result.statusCodeStats)}, ${result.errors} errors, ${result.timeouts} timeouts)`
        );
      return result["2xx"] / result.duration;
    };
    const p99s: number[] = [];
    const apiCpuMsPerRequest: number[] = [];
    const bareCpuMsPerRequest: number[] = [];
    const postgresCpuMsPerRequest: number[] = [];
    // Where the API's time goes: the framework's own share, after each (warm) API round.
    const floorCpuMsPerRequest: number[] = [];
    const floorRates: number[] = [];

    console.log(
      `${NAME}: ${DEVICES} devices (own token each, one alert rule each), a random device per request, ${CONNECTIONS} connections, ${SECONDS} s per round, ${ROUNDS} rounds + 1 warm-up`
    );
    console.log(
      `  subject: the API (JWT, validation, alert check, after-commit stats refresh), DB_POOL_MAX=${API_POOL_MAX}; ingestion rate limits off (RATE_LIMIT_*=0)`
    );
    console.log(
      `  baseline: bare Express + pg Pool(max ${API_POOL_MAX}), INSERT … ON CONFLICT DO NOTHING RETURNING into ${BARE_SCHEMA}.temperature_readings (${table})`
    );
    await runPart({
      name: NAME,
      unit: "requests/s",
      target: ">= 0.50",
      rounds: ROUNDS,
      subject: {
        label: `API POST /readings, ${CONNECTIONS} connections`,
        run: async () => {
          const [apiCpu0, postgresCpu0] = [processCpuSeconds(api.child.pid!), postgresCpuSeconds()];
          const result = await load(api.baseUrl, {duration: SECONDS});
          const [apiCpu1, postgresCpu1] = [processCpuSeconds(api.child.pid!), postgresCpuSeconds()];
          if (apiCpu0 !== undefined && apiCpu1 !== undefined) apiCpuMsPerRequest.push(((apiCpu1 - apiCpu0) * 1000) / result["2xx"]);
          if (postgresCpu0 !== undefined && postgresCpu1 !== undefined)
            postgresCpuMsPerRequest.push(((postgresCpu1 - postgresCpu0) * 1000) / result["2xx"]);
          p99s.push(result.latency.p99);
          const floor = await frameworkFloor(api, {connections: CONNECTIONS, seconds: 2});
          floorRates.push(floor.rate);
          if (floor.cpuMsPerRequest !== undefined) floorCpuMsPerRequest.push(floor.cpuMsPerRequest);
          return rate("api", result);
        }
      },
      baseline: {
        label: `bare Express + pg, ${CONNECTIONS} connections`,
        run: async () => {
          const cpu0 = processCpuSeconds(bare!.pid);
          const result = await load(bare!.baseUrl, {duration: SECONDS});
          const cpu1 = processCpuSeconds(bare!.pid);
          if (cpu0 !== undefined && cpu1 !== undefined) bareCpuMsPerRequest.push(((cpu1 - cpu0) * 1000) / result["2xx"]);
          return rate("bare", result);
        }
      },
      notes: () => ({
        concurrency: `${CONNECTIONS} connections (autocannon, loopback), both servers`,
        "API p99 ms at full load (per round)": p99s.map((p) => p.toFixed(0)).join(", "),
        "CPU per request, median ms (API process / all postgres processes during its rounds / bare server process)": `${median(apiCpuMsPerRequest).toFixed(2)} / ${median(postgresCpuMsPerRequest).toFixed(2)} / ${median(bareCpuMsPerRequest).toFixed(2)}`,
        "framework floor, API GET /health/live (public, no I/O), median": `${median(floorRates).toFixed(0)} requests/s, ${median(floorCpuMsPerRequest).toFixed(2)} ms CPU per request`,
        "wall time s": ((Date.now() - started) / 1000).toFixed(0)
      }),
      finish: async ({value}) => {
        const half = Math.max(1, Math.floor(value / 2));
        const paced = await pacedLoad(api.baseUrl, {rate: half, seconds: P99_SECONDS, connections: CONNECTIONS}, nextRequest);
        if (paced.failed > 0) throw new Error(`api at half rate: ${paced.failed} of ${paced.sent} requests failed`);
        const p99 = percentile(paced.latenciesMs, 99);
        console.log(
          `  p99 run: ${paced.sent} requests in ${paced.seconds.toFixed(1)} s, one every ${(1000 / half).toFixed(1)} ms (${half}/s, half the median rate) over up to ${CONNECTIONS} connections; ` +
            `latency from when each request was due: p50 ${percentile(paced.latenciesMs, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${Math.max(...paced.latenciesMs).toFixed(1)} ms`
        );
        // The same paced load on the bare server: how much of the tail is the machine (fsync, scheduling) rather than the API.
        const bareRun = await pacedLoad(bare!.baseUrl, {rate: half, seconds: P99_SECONDS, connections: CONNECTIONS}, nextRequest);
        console.log(
          `  the same paced load on the bare server: p50 ${percentile(bareRun.latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(bareRun.latenciesMs, 99).toFixed(1)} ms, max ${Math.max(...bareRun.latenciesMs).toFixed(1)} ms`
        );
        return {fields: {half_rate: half, p99_ms: p99.toFixed(1), p99_target: `<${P99_TARGET_MS}`}, met: p99 < P99_TARGET_MS};
      }
    });

    if (process.env.BENCH_HONEST !== "0") {
      bareCoalesced = await startBareExpress({
        url,
        table: `"${BARE_SCHEMA}"."temperature_readings"`,
        poolMax: API_POOL_MAX,
        coalesce: true
      });
      apiNoGroupCommit = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: {READINGS_GROUP_COMMIT: "false"}});
      const throughput = (label: string, baseUrl: string) => async () => rate(label, await load(baseUrl, {duration: SECONDS}));
      await runPart({
        name: `${NAME}-coalesced`,
        unit: "requests/s",
        target: ">= 0.50",
        rounds: ROUNDS,
        subject: {label: `API POST /readings (group commit), ${CONNECTIONS} connections`, run: throughput("api", api.baseUrl)},
        baseline: {label: `bare Express + pg, coalescing like group commit`, run: throughput("bare-coalesced", bareCoalesced.baseUrl)}
      });
      await runPart({
        name: `${NAME}-nogc`,
        unit: "requests/s",
        target: ">= 0.50",
        rounds: ROUNDS,
        subject: {
          label: `API POST /readings, READINGS_GROUP_COMMIT=false, ${CONNECTIONS} connections`,
          run: throughput("api-nogc", apiNoGroupCommit.baseUrl)
        },
        baseline: {label: `bare Express + pg, one INSERT per request`, run: throughput("bare", bare.baseUrl)}
      });
    }
  } finally {
    client.close();
    await bareCoalesced?.stop();
    await apiNoGroupCommit?.stop();
    await bare?.stop();
    await api.stop();
    await jwks.close();
  }
}

runMain(main);
