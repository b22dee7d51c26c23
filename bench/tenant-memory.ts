/**
 * tenant-memory: what one API process keeps per tenant it has served.
 *
 *   npm run bench:tenant-memory     (BENCH_TENANTS, default 1000)
 *
 * BENCH_TENANTS tenants are provisioned (their first token creates and migrates the schema) with
 * one device each, by a first API process. Then two fresh API processes in turn (production mode,
 * group commit on, own databases st_bench_tenant_memory*), each warmed by 200 requests of tenant 0,
 * serve the same mix (POST a reading, GET the device's latest reading, GET its DailyStats) twice
 * per tenant: the subject to every tenant, the control as often to tenant 0 alone. Once idle for
 * 3 s, each one's RSS (/proc) and V8 heap in use (/metrics, prom-client's
 * nodejs_heap_size_used_bytes, garbage included) are read. Prints
 *   RESULT tenant-memory-rss value=<kB per tenant> baseline=<kB of RSS of the control> ratio=<subject / control> target=value<=50kB
 *   RESULT tenant-memory-heap value=<kB per tenant> baseline=<kB of heap of the control> ratio=<subject / control>
 * where "per tenant" is (subject − control) / (tenants − 1). RSS includes heap that V8 has not
 * returned to the system.
 *
 * With BENCH_HEAP_SNAPSHOTS=1 the process also writes a V8 heap snapshot after each phase (into
 * BENCH_PROFILE_DIR, default .artifacts/profiles/tenant-memory; each is taken after a full GC) and
 * prints the live heap each process gained while serving, per tenant (`RESULT
 * tenant-memory-live-heap`), and the kinds of objects that grew most: what holds the memory.
 * (Writing a snapshot costs a process RSS of its own: the RSS figures of such a run mean little.)
 *
 * Why it matters and what a tenant schema costs Postgres: docs/scaling.md.
 */
import {mkdirSync, readdirSync, rmSync} from "node:fs";
import {join, resolve} from "node:path";
import {rssKb, startApi} from "./lib/app.js";
import {heapGrowth} from "./lib/heap-snapshot.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases} from "./lib/db.js";
import {runMain} from "./lib/harness.js";
import {callJson, type HttpClient, httpClient} from "./lib/ingest.js";

const TENANTS = Number(process.env.BENCH_TENANTS ?? 1000);
const METRICS_TOKEN = "bench-metrics-token-0123456789";
const DAY = 86_400_000;
const TARGET_KB = 50;
const SNAPSHOTS =
  process.env.BENCH_HEAP_SNAPSHOTS === "1" ? resolve(process.env.BENCH_PROFILE_DIR ?? ".artifacts/profiles", "tenant-memory") : undefined;

interface Tenant {
  headers: Record<string, string>;
  deviceId: string;
}

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

async function heapKb(baseUrl: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`, {headers: {authorization: `Bearer ${METRICS_TOKEN}`}})).text();
  const match = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
  if (!match) throw new Error("no nodejs_heap_size_used_bytes in /metrics");
  return Number(match[1]) / 1024;
}

async function main() {
  const {url, analyticsUrl} = await freshDatabases("st_bench_tenant_memory");
  const jwks = await startJwks();
  const common = {RUN_WORKERS: "false", TENANT_PROVISIONING: "auto", METRICS_TOKEN};
  const tenants: Tenant[] = [];
  const provisioner = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: common});
  const provisionClient = httpClient(provisioner.baseUrl, 8);
  try {
    const ids = Array.from({length: TENANTS}, (_, i) => `bench_mem_${String(i).padStart(4, "0")}`);
    for (let i = 0; i < ids.length; i += 8) {
      tenants.push(
        ...(await Promise.all(
          ids.slice(i, i + 8).map(async (id) => {
            const headers = {Authorization: `Bearer ${await jwks.token(id)}`};
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
  const settle = () => new Promise((resolve) => setTimeout(resolve, 3_000));
  /**
   * A fresh API process: 200 warm-up requests of tenant 0, then two passes of `served` (one touch
   * each, 8 at a time); its RSS and heap once idle, and a heap snapshot after each phase if asked.
   */
  const serve = async (served: readonly Tenant[]) => {
    const api = await startApi({
      url,
      analyticsUrl,
      jwksUri: jwks.jwksUri,
      extra: SNAPSHOTS ? {...common, NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${SNAPSHOTS}`} : common
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
      await settle();
      const measured = {rss: rssKb(api.child.pid!)!, heap: await heapKb(api.baseUrl)};
      const live = warm && SNAPSHOTS ? heapGrowth(warm, await heapSnapshot(api, SNAPSHOTS), 1) : undefined;
      return {...measured, live};
    } finally {
      client.close();
      await api.stop();
    }
  };
  try {
    // The control serves as many requests as the subject, all of tenant 0: what differs is the tenants.
    const one = await serve(Array.from({length: tenants.length}, () => tenants[0]!));
    const all = await serve(tenants);
    const perTenant = (key: "rss" | "heap") => (all[key] - one[key]) / (tenants.length - 1);
    console.log(
      `API process having served tenant 0 ${2 * tenants.length} times (3 requests each): RSS ${(one.rss / 1024).toFixed(1)} MB, heap ${(one.heap / 1024).toFixed(1)} MB; ` +
        `the same spread over ${tenants.length} tenants: RSS ${(all.rss / 1024).toFixed(1)} MB, heap ${(all.heap / 1024).toFixed(1)} MB`
    );
    const rss = perTenant("rss");
    const ratio = (key: "rss" | "heap") => (all[key] / one[key]).toFixed(3);
    console.log(
      `RESULT tenant-memory-rss value=${rss.toFixed(1)} baseline=${one.rss.toFixed(0)} ratio=${ratio("rss")} target=value<=${TARGET_KB}kB${rss <= TARGET_KB ? "" : " (missed)"}`
    );
    console.log(`RESULT tenant-memory-heap value=${perTenant("heap").toFixed(1)} baseline=${one.heap.toFixed(0)} ratio=${ratio("heap")}`);
    if (one.live && all.live) {
      const live = (all.live.bytes - one.live.bytes) / (tenants.length - 1);
      console.log(`live heap grown while serving, per tenant (snapshots in ${SNAPSHOTS}); the kinds that grew most in the spread process:`);
      for (const {kind, bytes, count} of all.live.kinds)
        console.log(
          `${(bytes / 1024 / tenants.length).toFixed(2).padStart(9)} kB ${(count / tenants.length).toFixed(1).padStart(7)} objects  ${kind}`
        );
      console.log(
        `RESULT tenant-memory-live-heap value=${(live / 1024).toFixed(1)} baseline=${(one.live.bytes / 1024).toFixed(0)} target=value<=${TARGET_KB}kB${live / 1024 <= TARGET_KB ? "" : " (missed)"}`
      );
    }
  } finally {
    await jwks.close();
  }
}

runMain(main);
