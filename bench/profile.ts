/**
 * Where a request's CPU time goes: the API under load with `--cpu-prof`, its profile read back per
 * layer (µs per request) and per function.
 *
 *   npm run bench:profile [-- health me single batch weekly]   (BENCH_SECONDS per route, default 6)
 *
 * One API process per route (production mode, own databases st_bench_profile*, a real RS256 token
 * from a loopback JWKS, rate limits off); only the samples taken while autocannon loads the route
 * count (not the start-up). The .cpuprofile files stay in BENCH_PROFILE_DIR (default
 * .artifacts/profiles) for a flame graph: open them in Chrome DevTools (Performance → Load
 * profile) or speedscope.
 * - health: GET /health/live, public, no I/O
 * - me: GET /api/v1/me with one token (tenant, user row)
 * - single: POST /api/v1/devices/:id/readings, one reading, 100 devices with an alert rule
 * - batch: POST /api/v1/devices/:id/readings/batch, 1,000 readings per request (most batches open
 *   an alert episode, so take the alert transaction; BENCH_PROFILE_RULE_CELSIUS=100 sets the rules
 *   above every reading, so that every batch takes the autocommitted path, to compare profiles)
 * - weekly: GET /api/v1/devices/:id/stats/weekly, served from Redis
 * - spread-single: POST one reading, round-robin over BENCH_PROFILE_TENANTS tenants (default 200),
 *   one device each (no alert rule), each request with its tenant's token: the fleet spread over
 *   many companies that bench:multitenant measures; BENCH_PROFILE_TENANTS=1 gives the same load
 *   aimed at one tenant, BENCH_PROFILE_DEVICES_OF_ONE=1 spreads it over as many devices of one
 *   tenant, to compare profiles
 * - spread-latest: GET the latest reading, spread the same way
 * - minimal: the minimal Ts.ED app's GET /ping (bench:request-cost's baseline), for comparison
 */
import autocannon from "autocannon";
import {mkdirSync, readdirSync, rmSync} from "node:fs";
import {join, resolve} from "node:path";
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {summarizeCpuProfile} from "./lib/cpu-profile.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {runMain} from "./lib/harness.js";
import {ALERT_THRESHOLD, readingSeries} from "./lib/ingest.js";
import {startMinimalTsed} from "./lib/minimal-tsed.js";

const ROUTES = ["health", "me", "single", "batch", "weekly", "minimal", "spread-single", "spread-latest"] as const;
type Route = (typeof ROUTES)[number];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const OUT = resolve(process.env.BENCH_PROFILE_DIR ?? ".artifacts/profiles");
const TENANT = "bench_profile";
const SPREAD_TENANTS = Number(process.env.BENCH_PROFILE_TENANTS ?? 200);
/** The `above` threshold of the single and batch routes' rules (default ALERT_THRESHOLD, which the readings cross now and then). */
const RULE_CELSIUS = Number(process.env.BENCH_PROFILE_RULE_CELSIUS ?? ALERT_THRESHOLD);
/** BENCH_PROFILE_DEVICES_OF_ONE=1: as many devices, all of one tenant (what a device costs, without what a tenant does). */
const SPREAD_DEVICES_OF_ONE = process.env.BENCH_PROFILE_DEVICES_OF_ONE === "1";

type Load = Parameters<typeof autocannon>[0];

/** Loads `load` (after a warm-up) and returns the requests answered and the CLOCK_MONOTONIC window of the measured part. */
async function measure(route: Route, load: Load): Promise<{requests: number; window: [bigint, bigint]}> {
  await autocannon({...load, connections: 16, duration: 2});
  const started = process.hrtime.bigint() / 1000n;
  const result = await autocannon({...load, connections: 16, duration: SECONDS});
  const window: [bigint, bigint] = [started, process.hrtime.bigint() / 1000n];
  const failed = result.non2xx + result.errors + result.timeouts;
  if (failed > 0) throw new Error(`${route}: ${failed} failed requests (${JSON.stringify(result.statusCodeStats)})`);
  return {requests: result["2xx"], window};
}

function report(route: Route, dir: string, requests: number, window: [bigint, bigint]) {
  const file = readdirSync(dir).find((name) => name.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no CPU profile was written in ${dir}`);
  const summary = summarizeCpuProfile(join(dir, file), window, requests);
  console.log(
    `\n== ${route}: ${requests} requests in ${SECONDS} s, ${summary.totalMicrosPerRequest.toFixed(0)} µs of server CPU per request (profile: ${join(dir, file)}) ==`
  );
  for (const layer of summary.layers)
    console.log(`${layer.micros.toFixed(1).padStart(9)} µs ${(layer.share * 100).toFixed(1).padStart(5)}%  ${layer.name}`);
  console.log("  top functions (self time):");
  for (const fn of summary.functions)
    console.log(`${fn.micros.toFixed(1).padStart(9)} µs ${(fn.share * 100).toFixed(1).padStart(5)}%  ${fn.name}`);
}

async function profileMinimal(dir: string) {
  process.env.BENCH_CPU_PROF = dir;
  const minimal = await startMinimalTsed();
  delete process.env.BENCH_CPU_PROF;
  let measured: Awaited<ReturnType<typeof measure>>;
  try {
    measured = await measure("minimal", {url: `${minimal.baseUrl}/ping`});
  } finally {
    await minimal.stop(); // the profile is written when the process exits
  }
  report("minimal", dir, measured.requests, measured.window);
}

async function profileRoute(route: Route) {
  const dir = join(OUT, route);
  rmSync(dir, {recursive: true, force: true});
  mkdirSync(dir, {recursive: true});
  if (route === "minimal") return profileMinimal(dir);
  const {url, analyticsUrl} = await freshDatabases("st_bench_profile");
  const jwks = await startJwks();
  process.env.BENCH_CPU_PROF = dir;
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: {RUN_WORKERS: "false"}});
  delete process.env.BENCH_CPU_PROF;
  let requests: number;
  let window: [bigint, bigint];
  try {
    const authorization = `Bearer ${await jwks.token(TENANT)}`;
    const json = {"content-type": "application/json", authorization};
    const me = (await (await fetch(`${api.baseUrl}/api/v1/me`, {headers: {authorization}})).json()) as {id: string};
    const devices = async (count: number) =>
      withClient(url, async (db) => {
        const {rows} = await db.query<{id: string}>(
          `with d as (insert into "${TENANT}"."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
                      select gen_random_uuid(), now(), now(), 'PROFILE-' || g, 'PROFILE-' || g, $1 from generate_series(1, $2) g returning "id"),
           r as (insert into "${TENANT}"."alert_rules" ("id", "created_at", "updated_at", "device_id", "condition", "threshold_celsius")
                 select gen_random_uuid(), now(), now(), d."id", 'above', $3 from d returning "device_id")
           select "device_id" as "id" from r order by 1`,
          [me.id, count, RULE_CELSIUS]
        );
        return rows.map((row) => row.id);
      });
    let load: Load;
    if (route === "spread-single" || route === "spread-latest") load = await spreadLoad(route, api.baseUrl, jwks);
    else if (route === "health") load = {url: `${api.baseUrl}/health/live`};
    else if (route === "me") load = {url: `${api.baseUrl}/api/v1/me`, headers: {authorization}};
    else if (route === "single") {
      const ids = await devices(100);
      let clock = Date.now() - 2 * 3_600_000;
      let sequence = 0;
      load = {
        url: api.baseUrl,
        requests: [
          {
            method: "POST",
            setupRequest: (request) =>
              Object.assign(request, {
                path: `/api/v1/devices/${ids[Math.floor(Math.random() * ids.length)]}/readings`,
                headers: json,
                // The series' temperatures: now and then above the rule's threshold, mostly not.
                body: JSON.stringify(readingSeries(1, clock++, sequence++)[0])
              })
          }
        ]
      };
    } else if (route === "batch") {
      const ids = await devices(20);
      const next = new Map(ids.map((id) => [id, Date.now() - 300 * 86_400_000]));
      load = {
        url: api.baseUrl,
        requests: [
          {
            method: "POST",
            setupRequest: (request) => {
              const id = ids[Math.floor(Math.random() * ids.length)]!;
              const start = next.get(id)!;
              next.set(id, start + 1_000 * 30_000);
              return Object.assign(request, {
                path: `/api/v1/devices/${id}/readings/batch`,
                headers: json,
                body: JSON.stringify({readings: readingSeries(1_000, start, Math.floor((start / 30_000) % 100_000))})
              });
            }
          }
        ]
      };
    } else {
      const [id] = await devices(1);
      await withClient(analyticsUrl, (db) =>
        db.query(
          `insert into daily_stats (tenant_id, device_id, date, avg_temperature_celsius, min_temperature_celsius, max_temperature_celsius, reading_count)
           select $1, $2, (current_date - d), 21, 18, 25, 2880 from generate_series(0, 6) d`,
          [TENANT, id]
        )
      );
      load = {url: `${api.baseUrl}/api/v1/devices/${id}/stats/weekly`, headers: {authorization}};
      if ((await fetch(load.url, {headers: {authorization}})).status !== 200) throw new Error("weekly summary not answered");
    }
    ({requests, window} = await measure(route, load));
  } finally {
    await api.stop();
    await jwks.close();
  }
  report(route, dir, requests, window);
}

/** SPREAD_TENANTS tenants (made by their first token) with one device each; requests go round-robin over them. */
async function spreadLoad(
  route: "spread-single" | "spread-latest",
  baseUrl: string,
  jwks: Awaited<ReturnType<typeof startJwks>>
): Promise<Load> {
  const tenants: {authorization: string; deviceId: string}[] = [];
  for (let i = 0; i < SPREAD_TENANTS; i += 8) {
    const numbers = Array.from({length: Math.min(8, SPREAD_TENANTS - i)}, (_, k) => String(i + k).padStart(4, "0"));
    tenants.push(
      ...(await Promise.all(
        numbers.map(async (n) => {
          const id = `bench_profile_${SPREAD_DEVICES_OF_ONE ? "0000" : n}`;
          const authorization = `Bearer ${await jwks.token(id)}`;
          const res = await fetch(`${baseUrl}/api/v1/devices`, {
            method: "POST",
            headers: {"content-type": "application/json", authorization},
            body: JSON.stringify({serialNumber: `SPREAD-${id}-${n}`})
          });
          if (res.status !== 201) throw new Error(`device of ${id}: ${res.status}`);
          return {authorization, deviceId: ((await res.json()) as {id: string}).id};
        })
      ))
    );
  }
  let next = 0;
  let clock = Date.now() - 2 * 3_600_000;
  if (route === "spread-latest") {
    // Every device gets one reading first, so that "latest" answers 200.
    for (const t of tenants)
      await fetch(`${baseUrl}/api/v1/devices/${t.deviceId}/readings`, {
        method: "POST",
        headers: {"content-type": "application/json", authorization: t.authorization},
        body: JSON.stringify({temperatureCelsius: 21.5, recordedAt: new Date(clock++).toISOString()})
      });
  }
  return {
    url: baseUrl,
    requests: [
      {
        method: route === "spread-single" ? "POST" : "GET",
        setupRequest: (request) => {
          const t = tenants[next++ % tenants.length]!;
          return route === "spread-single"
            ? Object.assign(request, {
                path: `/api/v1/devices/${t.deviceId}/readings`,
                headers: {"content-type": "application/json", authorization: t.authorization},
                body: JSON.stringify({temperatureCelsius: 21.5, recordedAt: new Date(clock++).toISOString()})
              })
            : Object.assign(request, {path: `/api/v1/devices/${t.deviceId}/readings/latest`, headers: {authorization: t.authorization}});
        }
      }
    ]
  };
}

async function main() {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((route) => !(ROUTES as readonly string[]).includes(route));
  if (unknown.length) throw new Error(`unknown route ${unknown.join(", ")}: one of ${ROUTES.join(", ")}`);
  for (const route of asked.length ? (asked as Route[]) : ROUTES) await profileRoute(route);
}

runMain(main);
