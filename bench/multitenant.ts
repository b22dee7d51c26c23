/**
 * multitenant: does a request cost the same when the same load is spread over many tenants?
 *
 *   npm run bench:multitenant     (BENCH_TENANTS, default "200,1000"; BENCH_SECONDS per round, default 3;
 *                                  BENCH_ROUNDS, default 3; BENCH_CONCURRENCY, default 32; BENCH_PARTS,
 *                                  default all: e.g. "single-gc,latest"; BENCH_COLD_READS=1: no warm-up of
 *                                  the ORM pool's backends)
 *
 * Schema per tenant must not make a fleet spread over many companies slower than one big company.
 * The largest count of tenants is provisioned first, each with one device (its first token creates
 * and migrates its schema, TENANT_PROVISIONING=auto). Then, for each count N and each operation, a
 * closed loop of BENCH_CONCURRENCY clients alternates rounds of
 *  - subject: requests spread round-robin over N tenants (each request a different tenant's token
 *    and device), and
 *  - baseline: the same requests aimed at one tenant (its one device),
 * and prints `RESULT multitenant-<op>-<N> ratio=<spread rate / one-tenant rate>`. For single posts
 * and GET latest, a second part `multitenant-<op>-<N>-vs-devices` takes as baseline the same
 * requests spread over N devices of one tenant: what a tenant costs beyond what a device costs
 * (a tenant's requests share a group's statement whatever their devices; each device has its own
 * day totals and cache invalidation, in one schema or in N). Operations:
 *  - single-gc:   POST one reading (group commit on, the default);
 *  - single-nogc: the same on a second API process with READINGS_GROUP_COMMIT=false;
 *  - batch100:    POST a batch of 100 readings;
 *  - latest:      GET the latest reading;
 *  - daily:       GET a week of DailyStats.
 * With each operation it prints the CPU time per request of the API process (and how many read
 * and write system calls it made: each costs tens of µs on a small virtual machine; and how long its
 * main thread, runnable, waited for a core held by Postgres or the load itself) and of
 * Postgres and Redis, spread and aimed at one tenant: on a small machine they share the cores, and
 * which side the spread load costs more says where to cut. From those, the ratio the server's
 * cores would give were they the bound instead of the API's one event loop (several API processes):
 * one tenant's server-side CPU per request over a spread one's. And the items per write of each group commit lane
 * (`group_commit_items`): what the requests of each side shared (a statement, a transaction, a
 * DailyStats merge), 1.00 where nothing was.
 * Targets (docs/scaling.md): at 200 tenants single POST >= 0.80 and GET latest >= 0.90; at 1,000
 * tenants >= 0.70 and >= 0.85; the other operations are printed against >= 0.80 for reference.
 *
 * It also prints, for scaling.md: the RSS an API process gains per tenant it has served (a fresh
 * process touching one tenant, then every tenant), and what a tenant schema costs Postgres (its
 * relations, and the growth of the catalog tables per schema).
 * Both API processes run in production mode with their own databases (st_bench_multitenant*).
 */
import {API_POOL_MAX, rssKb, startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {runMain, runPart} from "./lib/harness.js";
import {
  callJson,
  type HttpClient,
  httpClient,
  mainThreadWaitSeconds,
  postgresCpuSeconds,
  processCpuSeconds,
  processSyscalls,
  redisCpuSeconds
} from "./lib/ingest.js";

const COUNTS = (process.env.BENCH_TENANTS ?? "200,1000").split(",").map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const MAX_TENANTS = Math.max(...COUNTS);
/** BENCH_PARTS: the parts to run (comma-separated names, e.g. `single-gc,latest`), all by default. */
const PARTS = process.env.BENCH_PARTS?.split(",");
const DAY = 86_400_000;

interface Tenant {
  id: string;
  headers: Record<string, string>;
  deviceId: string;
}

/** Readings get distinct recordedAt per device, 10 ms apart within the last two days (no alert rule: no episode work). */
const readingClock = new Map<string, number>();
const BASE = Date.now() - 2 * DAY;
function nextRecordedAt(deviceId: string): string {
  const n = (readingClock.get(deviceId) ?? 0) + 1;
  readingClock.set(deviceId, n);
  return new Date(BASE + n * 10).toISOString();
}

type Operation = (client: HttpClient, tenant: Tenant) => Promise<boolean>;

const operations: Record<string, Operation> = {
  single: async (client, t) => {
    const body = JSON.stringify({temperatureCelsius: 21.5, recordedAt: nextRecordedAt(t.deviceId)});
    return (await client.request("POST", `/api/v1/devices/${t.deviceId}/readings`, t.headers, body)).status === 201;
  },
  batch100: async (client, t) => {
    const readings = Array.from({length: 100}, () => ({temperatureCelsius: 21.5, recordedAt: nextRecordedAt(t.deviceId)}));
    const res = await client.request("POST", `/api/v1/devices/${t.deviceId}/readings/batch`, t.headers, JSON.stringify({readings}));
    return res.status === 200 || res.status === 201;
  },
  latest: async (client, t) => (await client.request("GET", `/api/v1/devices/${t.deviceId}/readings/latest`, t.headers)).status === 200,
  daily: async (client, t) => {
    const to = new Date().toISOString().slice(0, 10);
    const from = new Date(Date.now() - 7 * DAY).toISOString().slice(0, 10);
    return (await client.request("GET", `/api/v1/devices/${t.deviceId}/stats/daily?from=${from}&to=${to}`, t.headers)).status === 200;
  }
};

/** An API process under load: its pid (CPU time) and its metrics. */
type Api = Awaited<ReturnType<typeof startApi>>;

/** CPU time the API process and Postgres spent in a series' rounds, the requests they served, and the group commit lanes' writes and items. */
interface CpuTally {
  apiSeconds: number;
  /** The API process's read and write system calls (processSyscalls). */
  apiSyscalls: number;
  /** Its main thread's wait for a CPU (mainThreadWaitSeconds). */
  apiWaitSeconds: number;
  postgresSeconds: number;
  redisSeconds: number;
  requests: number;
  groups: Map<string, {writes: number; items: number}>;
}

const newTally = (): CpuTally => ({
  apiSeconds: 0,
  apiSyscalls: 0,
  apiWaitSeconds: 0,
  postgresSeconds: 0,
  redisSeconds: 0,
  requests: 0,
  groups: new Map()
});

/** `group_commit_items` of a metrics text: writes and items so far, by lanes. */
function groupCommitTotals(metrics: string): Map<string, {writes: number; items: number}> {
  const totals = new Map<string, {writes: number; items: number}>();
  for (const [, field, lanes, value] of metrics.matchAll(/^group_commit_items_(sum|count)\{lanes="([^"]+)"\} (\S+)$/gm)) {
    const entry = totals.get(lanes!) ?? {writes: 0, items: 0};
    entry[field === "count" ? "writes" : "items"] = Number(value);
    totals.set(lanes!, entry);
  }
  return totals;
}

/**
 * Runs a closed loop and adds its CPU to `tally`: which side a spread load costs more (the API or
 * Postgres), since on a small machine they share the cores and the rate alone does not say. And
 * how many items each group commit lane's writes carried: what a round's requests shared.
 */
async function tallied(tally: CpuTally, api: Api, run: () => Promise<{rate: number; requests: number}>): Promise<number> {
  const groups0 = groupCommitTotals(await api.metrics());
  const api0 = processCpuSeconds(api.child.pid!) ?? 0;
  const syscalls0 = processSyscalls(api.child.pid!) ?? 0;
  const wait0 = mainThreadWaitSeconds(api.child.pid!) ?? 0;
  const pg0 = postgresCpuSeconds() ?? 0;
  const redis0 = redisCpuSeconds() ?? 0;
  const {rate, requests} = await run();
  tally.apiSeconds += (processCpuSeconds(api.child.pid!) ?? 0) - api0;
  tally.apiSyscalls += (processSyscalls(api.child.pid!) ?? 0) - syscalls0;
  tally.apiWaitSeconds += (mainThreadWaitSeconds(api.child.pid!) ?? 0) - wait0;
  tally.postgresSeconds += (postgresCpuSeconds() ?? 0) - pg0;
  tally.redisSeconds += (redisCpuSeconds() ?? 0) - redis0;
  tally.requests += requests;
  for (const [lanes, {writes, items}] of groupCommitTotals(await api.metrics())) {
    const before = groups0.get(lanes) ?? {writes: 0, items: 0};
    const sum = tally.groups.get(lanes) ?? {writes: 0, items: 0};
    tally.groups.set(lanes, {writes: sum.writes + writes - before.writes, items: sum.items + items - before.items});
  }
  return rate;
}

const perRequest = (tally: CpuTally) =>
  `API ${((tally.apiSeconds * 1e6) / tally.requests).toFixed(0)} µs (${(tally.apiSyscalls / tally.requests).toFixed(2)} read/write system calls, ` +
  `its main thread ${((tally.apiWaitSeconds * 1e6) / tally.requests).toFixed(0)} µs waiting for a core), ` +
  `Postgres ${((tally.postgresSeconds * 1e6) / tally.requests).toFixed(0)} µs, Redis ${((tally.redisSeconds * 1e6) / tally.requests).toFixed(0)} µs; ` +
  `the server side in all ${serverMicros(tally).toFixed(0)} µs`;

/** The CPU a request cost the server side in all (the API, Postgres and Redis; not the load generator), µs. */
const serverMicros = (tally: CpuTally) => ((tally.apiSeconds + tally.postgresSeconds + tally.redisSeconds) * 1e6) / tally.requests;

/**
 * The ratio were the server's cores, not the API's one event loop, the bound of both sides (several
 * API processes on a machine with cores to spare): one tenant's server-side CPU per request over a
 * spread one's. An estimate from the CPU counted, printed beside the measured ratio.
 */
const serverBoundRatio = (spread: CpuTally, baseline: CpuTally) => (serverMicros(baseline) / serverMicros(spread)).toFixed(3);

/** Items per write of each group commit lane that wrote in the rounds (1.0: nothing shared). */
const itemsPerWrite = (tally: CpuTally) =>
  [...tally.groups]
    .filter(([, {writes}]) => writes > 0)
    .map(([lanes, {writes, items}]) => `${lanes} ${(items / writes).toFixed(2)} (${writes} writes)`)
    .join(", ") || "none";

/** CONCURRENCY clients, each sending `op` to the next tenant of `tenants` as soon as its last answer came; requests per second and served. */
async function closedLoop(client: HttpClient, tenants: Tenant[], op: Operation): Promise<{rate: number; requests: number}> {
  let next = 0;
  let done = 0;
  let failed = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({length: CONCURRENCY}, async () => {
      while (performance.now() < deadline) {
        const tenant = tenants[next++ % tenants.length]!;
        if (await op(client, tenant)) done++;
        else failed++;
      }
    })
  );
  if (failed > 0) throw new Error(`${failed} requests failed`);
  return {rate: done / ((performance.now() - started) / 1000), requests: done};
}

async function catalogBytes(url: string): Promise<number> {
  return withClient(url, async (db) => {
    const {rows} = await db.query<{bytes: string}>(
      `select sum(pg_total_relation_size(c.oid))::text as bytes from pg_class c where c.relnamespace = 'pg_catalog'::regnamespace and c.relkind = 'r'`
    );
    return Number(rows[0]!.bytes);
  });
}

async function main() {
  const {url, analyticsUrl} = await freshDatabases("st_bench_multitenant");
  const jwks = await startJwks();
  const common = {RUN_WORKERS: "false", TENANT_PROVISIONING: "auto"};
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: common});
  const client = httpClient(api.baseUrl, CONCURRENCY);
  const catalogBefore = await catalogBytes(url);
  try {
    // Provision every tenant (schema, migrations, partitions) with one device, a few at a time.
    const started = Date.now();
    const tenants: Tenant[] = [];
    const ids = Array.from({length: MAX_TENANTS}, (_, i) => `bench_mt_${String(i).padStart(4, "0")}`);
    for (let i = 0; i < ids.length; i += 8) {
      tenants.push(
        ...(await Promise.all(
          ids.slice(i, i + 8).map(async (id) => {
            const headers = {Authorization: `Bearer ${await jwks.token(id)}`};
            const device = await callJson<{id: string}>(client, headers, "POST", "/api/v1/devices", {serialNumber: `MT-${id}`}, 201);
            return {id, headers, deviceId: device.id};
          })
        ))
      );
    }
    console.log(`provisioned ${tenants.length} tenants with one device each in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // The first tenant gets as many devices as there are tenants: the same spread over devices
    // within one schema, to tell what a tenant costs from what a device costs.
    const devicesOfOne: Tenant[] = [tenants[0]!];
    for (let i = 1; i < MAX_TENANTS; i += 8) {
      devicesOfOne.push(
        ...(await Promise.all(
          Array.from({length: Math.min(8, MAX_TENANTS - i)}, async (_, k) => {
            const serialNumber = `MT-${tenants[0]!.id}-${i + k}`;
            const device = await callJson<{id: string}>(client, tenants[0]!.headers, "POST", "/api/v1/devices", {serialNumber}, 201);
            return {...tenants[0]!, deviceId: device.id};
          })
        ))
      );
    }
    const catalogAfter = await catalogBytes(url);
    const relations = await withClient(url, async (db) => {
      const {rows} = await db.query<{n: number}>(`select count(*)::int as n from pg_class where relnamespace = $1::regnamespace`, [
        tenants[0]!.id
      ]);
      return rows[0]!.n;
    });
    console.log(
      `Postgres per tenant schema: ${relations} relations (tables, partitions, indexes, sequences, toast), catalog tables +${((catalogAfter - catalogBefore) / tenants.length / 1024).toFixed(1)} kB`
    );

    // A fresh process: its RSS with one tenant served, then with every tenant served.
    const noGroupCommit = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: {...common, READINGS_GROUP_COMMIT: "false"}});
    const freshClient = httpClient(noGroupCommit.baseUrl, CONCURRENCY);
    try {
      for (let i = 0; i < 300; i++) await operations.latest!(freshClient, tenants[0]!);
      for (let i = 0; i < 300; i++) await operations.single!(freshClient, tenants[0]!);
      const rssOne = rssKb(noGroupCommit.child.pid!)!;
      for (let pass = 0; pass < 2; pass++) {
        for (const tenant of tenants) {
          await operations.latest!(freshClient, tenant);
          await operations.single!(freshClient, tenant);
        }
      }
      const rssAll = rssKb(noGroupCommit.child.pid!)!;
      console.log(
        `API RSS: ${(rssOne / 1024).toFixed(0)} MB having served 1 tenant, ${(rssAll / 1024).toFixed(0)} MB having served ${tenants.length}: ${((rssAll - rssOne) / (tenants.length - 1)).toFixed(1)} kB per tenant`
      );

      // The group-commit process has so far only provisioned: its pool's backends have not yet
      // opened the relations a reading touches. Both processes start the parts equally warm.
      for (let pass = 0; pass < 2; pass++)
        for (const everyDevice of [tenants, devicesOfOne])
          for (let i = 0; i < everyDevice.length; i += CONCURRENCY)
            await Promise.all(everyDevice.slice(i, i + CONCURRENCY).map((tenant) => operations.single!(client, tenant)));

      // The same for reads, on the ORM's pool: each pooled backend opens a tenant's relations on its
      // first statement for that tenant (catalog lookups, ~0.4 ms). Under a steady load every
      // backend has long seen every tenant; 3 passes per pooled connection reach ~95 % of the
      // (backend, tenant) pairs (requests take whichever connection is free). BENCH_COLD_READS=1
      // skips this and measures the first touches too.
      if (process.env.BENCH_COLD_READS !== "1")
        for (const pooled of [client, freshClient])
          for (let pass = 0; pass < 3 * API_POOL_MAX; pass++)
            for (let i = 0; i < tenants.length; i += CONCURRENCY)
              await Promise.all(tenants.slice(i, i + CONCURRENCY).map((tenant) => operations.latest!(pooled, tenant)));

      // [name, client, its API, operation, target by tenant count, also against one tenant's devices]
      const parts: [string, HttpClient, Api, Operation, (n: number) => string, boolean][] = [
        ["single-gc", client, api, operations.single!, (n) => (n <= 200 ? ">= 0.80" : ">= 0.70"), true],
        ["single-nogc", freshClient, noGroupCommit, operations.single!, (n) => (n <= 200 ? ">= 0.80" : ">= 0.70"), true],
        ["batch100", client, api, operations.batch100!, () => ">= 0.80", false],
        ["latest", client, api, operations.latest!, (n) => (n <= 200 ? ">= 0.90" : ">= 0.85"), true],
        ["daily", client, api, operations.daily!, () => ">= 0.80", false]
      ];
      for (const count of COUNTS) {
        const spread = tenants.slice(0, count);
        for (const [name, partClient, partApi, op, target, againstDevices] of parts.filter(([name]) => !PARTS || PARTS.includes(name))) {
          const baselines: [suffix: string, label: string, aimedAt: Tenant[]][] = [
            ["", "aimed at 1 tenant (its one device)", [tenants[0]!]],
            ...(againstDevices
              ? [["-vs-devices", `spread over ${count} devices of 1 tenant`, devicesOfOne.slice(0, count)] as [string, string, Tenant[]]]
              : [])
          ];
          for (const [suffix, label, aimedAt] of baselines) {
            const [spreadCpu, baselineCpu] = [newTally(), newTally()];
            await runPart({
              name: `multitenant-${name}-${count}${suffix}`,
              unit: "requests/s (the ratio is spread over tenants / the baseline: higher is better)",
              target: target(count),
              rounds: ROUNDS,
              subject: {
                label: `spread over ${count} tenants`,
                run: () => tallied(spreadCpu, partApi, () => closedLoop(partClient, spread, op))
              },
              baseline: {label, run: () => tallied(baselineCpu, partApi, () => closedLoop(partClient, aimedAt, op))},
              notes: () => ({
                load: `${CONCURRENCY} clients, closed loop, ${SECONDS} s per round`,
                "CPU per request, spread over tenants": perRequest(spreadCpu),
                "CPU per request, baseline": perRequest(baselineCpu),
                "items per group commit write, spread over tenants": itemsPerWrite(spreadCpu),
                "items per group commit write, baseline": itemsPerWrite(baselineCpu),
                "ratio were the server's cores the bound, not the API's event loop (server-side CPU per request, baseline / spread)":
                  serverBoundRatio(spreadCpu, baselineCpu)
              })
            });
          }
        }
      }
    } finally {
      freshClient.close();
      await noGroupCommit.stop();
    }
  } finally {
    client.close();
    await api.stop();
    await jwks.close();
  }
}

runMain(main);
