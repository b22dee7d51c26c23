/**
 * tenant-memory: what one API process keeps per tenant it has served.
 *
 *   npm run bench:tenant-memory     (BENCH_TENANTS, default 1000; BENCH_PAIRS, default 3;
 *                                    BENCH_REUSE_DATABASE=1 reuses the last run's databases)
 *
 * BENCH_TENANTS tenants are provisioned (their first token creates and migrates the schema) with
 * one device each, by a first API process, in databases st_bench_tenant_memory* (after
 * BENCH_DB_PREFIX). That takes minutes: with BENCH_REUSE_DATABASE=1 a run keeps the databases a
 * previous run left, provisions only the tenants they lack, and has every tenant answer once
 * (which brings its schema up to date) before measuring.
 *
 * Then BENCH_PAIRS pairs of fresh API processes (production mode, group commit on), alternating
 * which of the pair goes first, each warmed by 200 requests of tenant 0, serve the same mix (POST a
 * reading, GET the device's latest reading, GET its DailyStats) twice per tenant: the subject to
 * every tenant, the control as often to tenant 0 alone. RSS of a Node process swings by tens of MB
 * between two processes doing the same work (heap sizing, GC timing, the allocator), more than
 * 1,000 tenants at 50 kB add; so each process runs with fixed heap sizing (NODE_FLAGS below), and
 * once the load has stopped, bench/lib/memory-probe.mjs (preloaded into it) runs several full GCs
 * with pauses and samples its memory several times: RSS (and its anonymous and file-backed parts)
 * and process.memoryUsage()'s heapUsed (after full GCs: the live heap), heapTotal, external and
 * arrayBuffers. Per pair, "per tenant" is (subject − control) / (tenants − 1); it prints each
 * part's per-tenant median with min and max over the pairs, and
 *   RESULT tenant-memory-rss value=<kB per tenant, median> baseline=<kB of RSS of the control, median> ratio=<subject / control> target=value<=50kB min=<kB> max=<kB> pairs=<n>
 *   RESULT tenant-memory-heap value=<kB of heapUsed per tenant, median> baseline=<kB of the control's heapUsed> ratio=<subject / control> min=<kB> max=<kB> pairs=<n>
 *
 * With BENCH_HEAP_SNAPSHOTS=1 the process also writes a V8 heap snapshot after each phase (into
 * BENCH_PROFILE_DIR, default .artifacts/profiles/tenant-memory; each is taken after a full GC) and
 * prints the live heap each process gained while serving, per tenant (`RESULT
 * tenant-memory-live-heap`, the median over the pairs), and the kinds of objects that grew most
 * in the last spread process: what holds the memory. (Writing a snapshot costs a process RSS of
 * its own: the RSS figures of such a run mean little.)
 *
 * Why it matters and what a tenant schema costs Postgres: docs/scaling.md.
 */
import {mkdirSync, readdirSync, rmSync} from "node:fs";
import {join, resolve} from "node:path";
import {freePort, startApi} from "./lib/app.js";
import {heapGrowth} from "./lib/heap-snapshot.js";
import {startJwks} from "./lib/auth.js";
import {existingDatabases, freshDatabases, withClient} from "./lib/db.js";
import {median, runMain} from "./lib/harness.js";
import {callJson, type HttpClient, httpClient} from "./lib/ingest.js";

const TENANTS = Number(process.env.BENCH_TENANTS ?? 1000);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 3);
const REUSE = process.env.BENCH_REUSE_DATABASE === "1";
const PART = "st_bench_tenant_memory";
const METRICS_TOKEN = "bench-metrics-token-0123456789";
const DAY = 86_400_000;
const TARGET_KB = 50;
const SNAPSHOTS =
  process.env.BENCH_HEAP_SNAPSHOTS === "1" ? resolve(process.env.BENCH_PROFILE_DIR ?? ".artifacts/profiles", "tenant-memory") : undefined;
/**
 * Every measured process: gc() for the probe, and a young generation of one fixed size (16 MB
 * semi-spaces, the most V8 grows them to here), so that how far it had grown is not part of the
 * difference.
 */
const NODE_FLAGS = [
  "--expose-gc",
  "--min-semi-space-size=16",
  "--max-semi-space-size=16",
  `--import=${new URL("./lib/memory-probe.mjs", import.meta.url).href}`
];

interface Tenant {
  headers: Record<string, string>;
  deviceId: string;
}

/** What bench/lib/memory-probe.mjs answers, in bytes. */
interface Memory {
  rss: number;
  rssAnon: number;
  rssFile: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** rssAnon − heapTotal: what the process holds outside the V8 heap (malloc'd memory, thread stacks, …). */
  outsideHeap: number;
}
const PARTS: readonly (keyof Memory)[] = ["rss", "rssAnon", "rssFile", "heapUsed", "heapTotal", "outsideHeap", "external", "arrayBuffers"];

let clock = Date.now() - 2 * DAY;

/** Asks the API for a heap snapshot (SIGUSR2, --heapsnapshot-signal) and returns its file once written. */
async function heapSnapshot(api: {baseUrl: string; child: {pid?: number}}, dir: string): Promise<string> {
  const known = new Set(readdirSync(dir));
  process.kill(api.child.pid!, "SIGUSR2");
  for (let waited = 0; waited < 120_000; waited += 500) {
    await new Promise((r) => setTimeout(r, 500));
    const file = readdirSync(dir).find((name) => name.endsWith(".heapsnapshot") && !known.has(name));
    // Written on the main thread: complete once the API answers again.
    if (file && (await fetch(`${api.baseUrl}/health/live`).catch(() => undefined))?.ok) return join(dir, file);
  }
  throw new Error("no heap snapshot written");
}

async function touch(client: HttpClient, t: Tenant): Promise<void> {
  const body = JSON.stringify({temperatureCelsius: 21.5, recordedAt: new Date(clock++).toISOString()});
  const posted = await client.request("POST", `/api/v1/devices/${t.deviceId}/readings`, t.headers, body);
  const latest = await client.request("GET", `/api/v1/devices/${t.deviceId}/readings/latest`, t.headers);
  const to = new Date().toISOString().slice(0, 10);
  const from = new Date(Date.now() - 7 * DAY).toISOString().slice(0, 10);
  const daily = await client.request("GET", `/api/v1/devices/${t.deviceId}/stats/daily?from=${from}&to=${to}`, t.headers);
  if (posted.status !== 201 || latest.status !== 200 || daily.status !== 200)
    throw new Error(`unexpected answers ${posted.status} ${latest.status} ${daily.status}`);
}

/** The devices a previous run created (tenant id → device id), for the tenants whose schema has one. */
async function provisionedDevices(url: string, ids: readonly string[]): Promise<Map<string, string>> {
  return withClient(url, async (db) => {
    const schemas = new Set((await db.query<{nspname: string}>(`select nspname from pg_namespace`)).rows.map((row) => row.nspname));
    const devices = new Map<string, string>();
    for (const id of ids) {
      if (!schemas.has(id)) continue;
      const {rows} = await db.query<{id: string}>(`select id from "${id}".devices where serial_number = $1`, [`MEM-${id}`]);
      if (rows[0]) devices.set(id, String(rows[0].id));
    }
    return devices;
  });
}

const kb = (bytes: number) => bytes / 1024;
const range = (values: number[]) => `${Math.min(...values).toFixed(1)}..${Math.max(...values).toFixed(1)}`;

async function main() {
  const reused = REUSE ? await existingDatabases(PART) : undefined;
  const {url, analyticsUrl} = reused ?? (await freshDatabases(PART));
  const jwks = await startJwks();
  const common = {RUN_WORKERS: "false", TENANT_PROVISIONING: "auto", METRICS_TOKEN};
  const ids = Array.from({length: TENANTS}, (_, i) => `bench_mem_${String(i).padStart(4, "0")}`);
  const known = reused ? await provisionedDevices(url, ids) : new Map<string, string>();
  console.log(reused ? `reusing ${PART}: ${known.size} of ${TENANTS} tenants provisioned already` : `fresh ${PART}`);
  const tenants: Tenant[] = [];
  const provisioner = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: common});
  const provisionClient = httpClient(provisioner.baseUrl, 8);
  try {
    for (let i = 0; i < ids.length; i += 8) {
      tenants.push(
        ...(await Promise.all(
          ids.slice(i, i + 8).map(async (id) => {
            const headers = {Authorization: `Bearer ${await jwks.token(id)}`};
            const deviceId = known.get(id);
            // A reused tenant answers once here, so that bringing its schema up to date is not part of a measured process.
            if (deviceId)
              return {
                headers,
                deviceId: (await callJson<{id: string}>(provisionClient, headers, "GET", `/api/v1/devices/${deviceId}`, undefined, 200)).id
              };
            const device = await callJson<{id: string}>(
              provisionClient,
              headers,
              "POST",
              "/api/v1/devices",
              {serialNumber: `MEM-${id}`},
              201
            );
            return {headers, deviceId: device.id};
          })
        ))
      );
    }
  } finally {
    provisionClient.close();
    await provisioner.stop();
  }

  if (SNAPSHOTS) {
    rmSync(SNAPSHOTS, {recursive: true, force: true});
    mkdirSync(SNAPSHOTS, {recursive: true});
  }
  /**
   * A fresh API process: 200 warm-up requests of tenant 0, then two passes of `served` (one touch
   * each, 8 at a time); its memory once settled (memory-probe.mjs), and a heap snapshot after each phase if asked.
   */
  const serve = async (served: readonly Tenant[]) => {
    const probePort = await freePort();
    const api = await startApi({
      url,
      analyticsUrl,
      jwksUri: jwks.jwksUri,
      nodeFlags: NODE_FLAGS,
      extra: {
        ...common,
        BENCH_MEMORY_PROBE_PORT: String(probePort),
        ...(SNAPSHOTS ? {NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${SNAPSHOTS}`} : {})
      }
    });
    let client = httpClient(api.baseUrl, 8);
    try {
      for (let i = 0; i < 200; i++) await touch(client, tenants[0]!);
      const warm = SNAPSHOTS && (await heapSnapshot(api, SNAPSHOTS));
      // The API closed the idle keep-alive sockets meanwhile: fresh ones.
      client.close();
      client = httpClient(api.baseUrl, 8);
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < served.length; i += 8) await Promise.all(served.slice(i, i + 8).map((t) => touch(client, t)));
      }
      client.close();
      const probed = (await (await fetch(`http://127.0.0.1:${probePort}/memory`)).json()) as Omit<Memory, "outsideHeap">;
      const memory: Memory = {...probed, outsideHeap: probed.rssAnon - probed.heapTotal};
      const live = warm && SNAPSHOTS ? heapGrowth(warm, await heapSnapshot(api, SNAPSHOTS), 1) : undefined;
      return {memory, live};
    } finally {
      client.close();
      await api.stop();
    }
  };
  try {
    // The control serves as many requests as the subject, all of tenant 0: what differs is the tenants.
    const control = Array.from({length: tenants.length}, () => tenants[0]!);
    const runs = {control: [] as Awaited<ReturnType<typeof serve>>[], subject: [] as Awaited<ReturnType<typeof serve>>[]};
    for (let pair = 0; pair < PAIRS; pair++) {
      // Alternate which goes first, so neither always runs on a warmer (or busier) machine.
      for (const which of pair % 2 === 0 ? (["control", "subject"] as const) : (["subject", "control"] as const)) {
        const run = await serve(which === "control" ? control : tenants);
        runs[which].push(run);
        console.log(
          `pair ${pair + 1} ${which.padEnd(7)} ` + PARTS.map((key) => `${key} ${(kb(run.memory[key]) / 1024).toFixed(1)} MB`).join(", ")
        );
      }
    }
    /** Per pair, (subject − control) / (tenants − 1), in kB. */
    const perTenant = (key: keyof Memory) =>
      runs.subject.map((subject, i) => kb(subject.memory[key] - runs.control[i]!.memory[key]) / (tenants.length - 1));
    const medianOf = (which: "control" | "subject", key: keyof Memory) => median(runs[which].map((run) => run.memory[key]));
    console.log(
      `\nAPI process having served tenant 0 ${2 * tenants.length} times (3 requests each) vs the same spread over ${tenants.length} tenants, ` +
        `${PAIRS} pairs, after full GCs (${NODE_FLAGS.slice(0, 3).join(" ")}):`
    );
    console.log(
      `${"".padEnd(14)} ${"1 tenant MB".padStart(12)} ${`${tenants.length} MB`.padStart(12)} ${"kB/tenant".padStart(10)}  min..max`
    );
    for (const key of PARTS) {
      const values = perTenant(key);
      console.log(
        `${key.padEnd(14)} ${(kb(medianOf("control", key)) / 1024).toFixed(1).padStart(12)} ${(kb(medianOf("subject", key)) / 1024).toFixed(1).padStart(12)} ` +
          `${median(values).toFixed(1).padStart(10)}  ${range(values)}`
      );
    }
    const result = (name: string, key: keyof Memory, target: boolean) => {
      const values = perTenant(key);
      const value = median(values);
      const ratio = (medianOf("subject", key) / medianOf("control", key)).toFixed(3);
      const goal = target ? ` target=value<=${TARGET_KB}kB` : "";
      const missed = target && value > TARGET_KB ? " (missed)" : "";
      console.log(
        `RESULT ${name} value=${value.toFixed(1)} baseline=${kb(medianOf("control", key)).toFixed(0)} ratio=${ratio}${goal} ` +
          `min=${Math.min(...values).toFixed(1)} max=${Math.max(...values).toFixed(1)} pairs=${PAIRS}${missed}`
      );
    };
    result("tenant-memory-rss", "rss", true);
    result("tenant-memory-heap", "heapUsed", false);
    const lives = runs.subject.map((subject, i) => [subject.live, runs.control[i]!.live] as const);
    if (lives.every(([all, one]) => all && one)) {
      const perPair = lives.map(([all, one]) => kb(all!.bytes - one!.bytes) / (tenants.length - 1));
      const live = median(perPair);
      const last = lives.at(-1)![0]!;
      console.log(
        `live heap grown while serving, per tenant (snapshots in ${SNAPSHOTS}); the kinds that grew most in the last spread process:`
      );
      for (const {kind, bytes, count} of last.kinds)
        console.log(
          `${(bytes / 1024 / tenants.length).toFixed(2).padStart(9)} kB ${(count / tenants.length).toFixed(1).padStart(7)} objects  ${kind}`
        );
      console.log(
        `RESULT tenant-memory-live-heap value=${live.toFixed(1)} baseline=${kb(median(lives.map(([, one]) => one!.bytes))).toFixed(0)} ` +
          `target=value<=${TARGET_KB}kB min=${Math.min(...perPair).toFixed(1)} max=${Math.max(...perPair).toFixed(1)} pairs=${PAIRS}${live <= TARGET_KB ? "" : " (missed)"}`
      );
    }
  } finally {
    await jwks.close();
  }
}

runMain(main);
