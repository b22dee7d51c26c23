/**
 * request-cost: the API's own CPU per request, next to a minimal Ts.ED app's in the same run.
 *
 *   npm run bench:request-cost      (BENCH_SECONDS per round, default 3; BENCH_ROUNDS, default 5)
 *
 * Each round loads one route with autocannon (16 connections, keep-alive, loopback) and divides
 * the server process's CPU time (user + system, /proc) by the requests it answered: what one
 * request costs the server, whatever the client and the machine's other load do to latency.
 * - RESULT request-cost-health: the API's GET /health/live (public, no I/O) over the minimal
 *   Ts.ED app's GET /ping: what our settings and global middlewares cost; target <= 1.3.
 * - RESULT request-cost-me: the API's GET /api/v1/me (a bearer token, its tenant, one user row
 *   read and serialized) over the same /ping: the authenticated path; target <= 2.5.
 * Both servers run as their own processes in production mode; the API with its own databases
 * (st_bench_cost*) and a real RS256 token from a loopback JWKS, rate limits off.
 */
import autocannon from "autocannon";
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";
import {processCpuSeconds} from "./lib/ingest.js";
import {startMinimalTsed} from "./lib/minimal-tsed.js";

const TENANT = "bench_cost";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = 16;

/** Loads `url` for SECONDS; the server's CPU µs per answered request, and its rate. */
async function cpuPerRequest(pid: number, url: string, headers: Record<string, string> = {}): Promise<{micros: number; rate: number}> {
  const before = processCpuSeconds(pid);
  const result = await autocannon({url, connections: CONNECTIONS, duration: SECONDS, headers});
  const after = processCpuSeconds(pid);
  const failed = result.non2xx + result.errors + result.timeouts;
  if (failed > 0) throw new Error(`${url}: ${failed} failed requests (${JSON.stringify(result.statusCodeStats)})`);
  if (before === undefined || after === undefined) throw new Error("no /proc here: CPU per request cannot be measured");
  return {micros: ((after - before) * 1e6) / result["2xx"], rate: result["2xx"] / result.duration};
}

async function main() {
  const {url, analyticsUrl} = await freshDatabases("st_bench_cost");
  const jwks = await startJwks();
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: {RUN_WORKERS: "false"}});
  const minimal = await startMinimalTsed();
  try {
    const auth = {Authorization: `Bearer ${await jwks.token(TENANT)}`};
    const me = await fetch(`${api.baseUrl}/api/v1/me`, {headers: auth});
    if (me.status !== 200) throw new Error(`GET /api/v1/me → ${me.status}`);
    const rates: Record<string, number[]> = {ping: [], health: [], me: []};
    const measure = (key: string, pid: number, target: string, headers?: Record<string, string>) => async () => {
      const {micros, rate} = await cpuPerRequest(pid, target, headers);
      rates[key]!.push(rate);
      return micros;
    };
    const ping = {label: "minimal Ts.ED GET /ping", run: measure("ping", minimal.pid, `${minimal.baseUrl}/ping`)};
    const notes = () => ({
      load: `autocannon, ${CONNECTIONS} connections, ${SECONDS} s per round; CPU of the server process (/proc)`,
      "requests/s, median (minimal /ping, API /health/live, API /api/v1/me)": ["ping", "health", "me"]
        .map((key) => (rates[key]!.length ? median(rates[key]!).toFixed(0) : "-"))
        .join(", ")
    });
    await runPart({
      name: "request-cost-health",
      unit: "server CPU µs per request",
      target: "<= 1.3",
      rounds: ROUNDS,
      subject: {label: "API GET /health/live", run: measure("health", api.child.pid!, `${api.baseUrl}/health/live`)},
      baseline: ping,
      notes
    });
    await runPart({
      name: "request-cost-me",
      unit: "server CPU µs per request",
      target: "<= 2.5",
      rounds: ROUNDS,
      subject: {label: "API GET /api/v1/me (bearer token)", run: measure("me", api.child.pid!, `${api.baseUrl}/api/v1/me`, auth)},
      baseline: ping,
      notes
    });
  } finally {
    await minimal.stop();
    await api.stop();
    await jwks.close();
  }
}

runMain(main);
