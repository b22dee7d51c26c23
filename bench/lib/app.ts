import {type ChildProcess, spawn, spawnSync} from "node:child_process";
import {readFileSync} from "node:fs";
import net from "node:net";
import {join} from "node:path";
import {BENCH_AUDIENCE, BENCH_ISSUER} from "./auth.js";

const ROOT = new URL("../..", import.meta.url).pathname;

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const {port} = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

let built = false;
export function build() {
  if (built) return;
  const result = spawnSync("npm", ["run", "--silent", "build"], {cwd: ROOT, stdio: "inherit"});
  if (result.status !== 0) throw new Error("build failed");
  built = true;
}

const BENCH_METRICS_TOKEN = "bench-metrics-token-0123456789";

/** The API process's ORM pool size: it inherits this process's DB_POOL_MAX (the app's default, 10, without one). */
export const API_POOL_MAX = Number(process.env.DB_POOL_MAX ?? 10);

/**
 * The environment every benchmark gives the app (API process, worker or in-process injector):
 * production mode (but tenants created by their first token), its own databases and queue prefix, the loopback issuer, no rate limits, no MQTT.
 */
export function benchEnvironment(env: {url: string; analyticsUrl: string; jwksUri?: string; queuePrefix?: string}): Record<string, string> {
  return {
    NODE_ENV: "production",
    // Production registers tenants with `npm run tenant` only; a benchmark's tenant comes from its token.
    TENANT_PROVISIONING: "auto",
    LOG_LEVEL: "warn",
    DATABASE_URL: env.url,
    ANALYTICS_DATABASE_URL: env.analyticsUrl,
    AUTH_ISSUER: BENCH_ISSUER,
    AUTH_AUDIENCE: BENCH_AUDIENCE,
    // Benchmarks that never verify a token point at a closed port.
    AUTH_JWKS_URI: env.jwksUri ?? "http://127.0.0.1:9/jwks.json",
    RATE_LIMIT_DEVICE_PER_MINUTE: "0",
    RATE_LIMIT_TENANT_PER_MINUTE: "0",
    RATE_LIMIT_TENANT_READS_PER_MINUTE: "0",
    // No MQTT endpoint unless a part asks for one (1883 is the machine's Mosquitto).
    MQTT_PORT: "0",
    QUEUE_PREFIX: env.queuePrefix ?? `bench-${process.pid}`
  };
}

/**
 * The compiled API as its own process (production mode), so the load generator doesn't share its event loop.
 * `nodeFlags` go to that process's node before the script (`--expose-gc`, heap sizing); none by default.
 */
export async function startApi(env: {
  url: string;
  analyticsUrl: string;
  jwksUri: string;
  extra?: Record<string, string>;
  nodeFlags?: string[];
}) {
  build();
  const port = await freePort();
  // BENCH_CPU_PROF=<dir>: the API writes a V8 CPU profile there when it stops (where the time goes).
  const profile = process.env.BENCH_CPU_PROF ? [`--cpu-prof`, `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child: ChildProcess = spawn(process.execPath, [...profile, ...(env.nodeFlags ?? []), join(ROOT, "dist/src/index.js")], {
    cwd: ROOT,
    // Production serves no metrics without a token.
    env: {...process.env, ...benchEnvironment(env), PORT: String(port), METRICS_TOKEN: BENCH_METRICS_TOKEN, ...env.extra},
    stdio: ["ignore", "ignore", "inherit"]
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if ((await fetch(`${baseUrl}/health/live`).catch(() => undefined))?.ok) break;
    if (child.exitCode !== null) throw new Error(`API exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    baseUrl,
    child,
    /** Its Prometheus metrics (GET /metrics) as text. */
    metrics: async () => (await fetch(`${baseUrl}/metrics`, {headers: {authorization: `Bearer ${BENCH_METRICS_TOKEN}`}})).text(),
    stop: () =>
      new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once("exit", () => resolve()), child.kill("SIGTERM"))))
  };
}

/** The compiled MQTT-only process (`npm run mqtt`, production mode) on a free port: what a fleet connects to at scale. */
export async function startMqttProcess(env: {url: string; analyticsUrl: string; extra?: Record<string, string>}) {
  build();
  const port = await freePort();
  const metricsPort = await freePort();
  // BENCH_CPU_PROF=<dir>: a V8 CPU profile of the MQTT process too, written when it stops.
  const profile = process.env.BENCH_CPU_PROF ? [`--cpu-prof`, `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child: ChildProcess = spawn(process.execPath, [...profile, join(ROOT, "dist/src/mqtt.js")], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...benchEnvironment(env),
      MQTT_PORT: String(port),
      MQTT_HOST: "127.0.0.1",
      MQTT_METRICS_PORT: String(metricsPort),
      // Production serves no metrics without a token.
      METRICS_TOKEN: BENCH_METRICS_TOKEN,
      // Every bench client comes from 127.0.0.1, and they connect by the thousand at once.
      MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS: "0",
      LOG_LEVEL: "info",
      ...env.extra
    },
    stdio: ["ignore", "pipe", "pipe"]
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  // Its warnings (stderr in production) stay readable in the bench's output, and in `output()`.
  child.stderr!.on("data", (chunk: Buffer) => {
    process.stderr.write(chunk);
    output += chunk.toString();
  });
  const deadline = Date.now() + 60_000;
  while (!output.includes("MQTT_READY")) {
    if (child.exitCode !== null) throw new Error(`MQTT process exited with ${child.exitCode}: ${output}`);
    if (Date.now() > deadline) throw new Error(`MQTT process not ready after 60 s: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    child,
    /** What it printed so far (stdout and stderr). */
    output: () => output,
    /** Its Prometheus metrics (MQTT_METRICS_PORT) as text. */
    metrics: async () =>
      (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, {headers: {authorization: `Bearer ${BENCH_METRICS_TOKEN}`}})).text(),
    stop: () =>
      new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once("exit", () => resolve()), child.kill("SIGTERM"))))
  };
}

/** A Prometheus histogram's cumulative bucket counts (le → count) from a metrics text. */
export function histogramBuckets(text: string, name: string): Map<number, number> {
  const buckets = new Map<number, number>();
  for (const match of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`, "gm")))
    buckets.set(match[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(match[1]), Number(match[2]));
  return buckets;
}

/** The p-quantile (0–1) of what a histogram counted between two scrapes, as the upper bound of its bucket (seconds). */
export function bucketQuantile(before: Map<number, number>, after: Map<number, number>, p: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Number.POSITIVE_INFINITY) ?? 0) - (before.get(Number.POSITIVE_INFINITY) ?? 0);
  for (const le of bounds) if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= p * total) return le;
  return Number.POSITIVE_INFINITY;
}

/** Resident set size of a process in kB (Linux /proc), or undefined. */
export function rssKb(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
