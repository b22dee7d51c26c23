import autocannon from "autocannon";
import {execFileSync} from "node:child_process";
import {readdirSync, readFileSync, rmSync, writeFileSync} from "node:fs";
import http from "node:http";
import type pg from "pg";

/** What a device sends for one reading (the API's `create` group of TemperatureReading). */
export interface ReadingBody {
  temperatureCelsius: number;
  humidity: number;
  batteryLevel: number;
  recordedAt: string;
}

/** Alert rule every benchmark device gets: `above` this many °C. */
export const ALERT_THRESHOLD = 30;

/**
 * `count` readings 30 s apart starting at `startMs`: a slow sine around 22 °C with a short spike
 * above the alert threshold every ~1,000 readings, so ingestion opens and resolves alert episodes
 * the way a real building does now and then.
 */
export function readingSeries(count: number, startMs: number, offset = 0): ReadingBody[] {
  return Array.from({length: count}, (_, k) => {
    const i = offset + k;
    return {
      temperatureCelsius: Math.round((22 + 6 * Math.sin(i / 240) + (i % 997 < 20 ? 10 : 0)) * 100) / 100,
      humidity: 40 + (i % 20),
      batteryLevel: 0.9,
      recordedAt: new Date(startMs + k * 30_000).toISOString()
    };
  });
}

/**
 * Creates `schema`.temperature_readings identical to the tenant's readings table — same columns,
 * defaults, identity, checks, primary key and indexes (`like … including all`), the same monthly
 * partitions when the real table is partitioned, and the same foreign keys if it has any — and
 * returns a one-line description of what it holds.
 */
export async function identicalReadingsTable(db: pg.Client, tenant: string, schema: string): Promise<string> {
  const source = `"${tenant}"."temperature_readings"`;
  const target = `"${schema}"."temperature_readings"`;
  await db.query(`create schema if not exists "${schema}"`);
  await db.query(`drop table if exists ${target}`);
  const {rows: partitions} = await db.query<{name: string; bound: string}>(
    `select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = $1::regclass and c.relkind = 'r'`,
    [source]
  );
  await db.query(`create table ${target} (like ${source} including all)${partitions.length ? ` partition by range ("recorded_at")` : ""}`);
  for (const {name, bound} of partitions) await db.query(`create table "${schema}"."${name}" partition of ${target} ${bound}`);
  const {rows: fks} = await db.query<{name: string; def: string}>(
    `select conname as name, pg_get_constraintdef(oid) as def from pg_constraint where conrelid = $1::regclass and contype = 'f' order by conname`,
    [source]
  );
  for (const fk of fks) await db.query(`alter table ${target} add constraint "${fk.name}" ${fk.def}`);
  return describeTable(db, target);
}

/** Indexes and foreign keys of a table, for the printed report. */
export async function describeTable(db: pg.Client, table: string): Promise<string> {
  const {rows: indexes} = await db.query<{def: string}>(
    `select regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', '') as def from pg_index where indrelid = $1::regclass order by indexrelid`,
    [table]
  );
  const {rows: fks} = await db.query<{def: string}>(
    `select pg_get_constraintdef(oid) as def from pg_constraint where conrelid = $1::regclass and contype = 'f'`,
    [table]
  );
  const {rows: parts} = await db.query<{n: number}>(
    `select count(*)::int as n from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = $1::regclass and c.relkind = 'r'`,
    [table]
  );
  return `indexes: ${indexes.map((i) => i.def).join("; ")}; foreign keys: ${fks.length ? fks.map((f) => f.def.replace(/ ON UPDATE.*$/, "")).join("; ") : "none"}${parts[0]!.n ? `; ${parts[0]!.n} monthly partitions` : ""}`;
}

/** A small keep-alive HTTP client on loopback: no fetch/undici machinery in the load generator's path. */
export function httpClient(baseUrl: string, maxSockets: number) {
  const {hostname, port} = new URL(baseUrl);
  const agent = new http.Agent({keepAlive: true, maxSockets});
  return {
    request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{status: number; body: string}> {
      return new Promise((resolve, reject) => {
        const req = http.request(
          {
            host: hostname,
            port,
            method,
            path,
            agent,
            headers:
              body === undefined ? headers : {...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body)}
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("end", () => resolve({status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8")}));
            res.on("error", reject);
          }
        );
        req.on("error", reject);
        req.end(body);
      });
    },
    close: () => agent.destroy()
  };
}

export type HttpClient = ReturnType<typeof httpClient>;

/** POSTs/GETs JSON and fails loudly on an unexpected status. */
export async function callJson<T>(
  client: HttpClient,
  headers: Record<string, string>,
  method: string,
  path: string,
  body: unknown,
  expected: number
): Promise<T> {
  const res = await client.request(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
  if (res.status !== expected) throw new Error(`${method} ${path} → ${res.status} ${res.body.slice(0, 300)}`);
  return JSON.parse(res.body) as T;
}

export const percentile = (values: number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

export interface PacedResult {
  latenciesMs: number[];
  failed: number;
  sent: number;
  seconds: number;
}

/**
 * An open loop at a steady rate: `send(i)` every 1/rate s for `seconds`, whatever the answers do.
 * Latency counts from when a send was due, so a server (or a driver) that falls behind shows it (no
 * coordinated omission). A send that resolves false or rejects counts as failed.
 */
export async function pacedOpenLoop(rate: number, seconds: number, send: (i: number) => Promise<boolean>): Promise<PacedResult> {
  const latenciesMs: number[] = [];
  let failed = 0;
  let sent = 0;
  const interval = 1000 / rate;
  const total = Math.round(rate * seconds);
  const started = performance.now();
  const pending: Promise<void>[] = [];
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (sent < total && started + sent * interval <= now) {
        const due = started + sent * interval;
        pending.push(
          send(sent++).then(
            (ok) => {
              if (!ok) failed++;
              latenciesMs.push(performance.now() - due);
            },
            () => void failed++
          )
        );
      }
      if (sent >= total) return resolve();
      setTimeout(tick, Math.max(0, started + sent * interval - performance.now()));
    };
    tick();
  });
  await Promise.all(pending);
  return {latenciesMs, failed, sent, seconds: (performance.now() - started) / 1000};
}

/**
 * pacedOpenLoop over HTTP: one POST every 1/rate s, spread over up to `connections` keep-alive
 * sockets. autocannon's `overallRate` instead lets every connection fire its share at the start of
 * each second: its p99 is the tail of a once-a-second burst, not the latency at that rate.
 */
export async function pacedLoad(
  baseUrl: string,
  options: {rate: number; seconds: number; connections: number},
  next: () => {path: string; headers: Record<string, string>; body: string}
): Promise<PacedResult> {
  const client = httpClient(baseUrl, options.connections);
  try {
    return await pacedOpenLoop(options.rate, options.seconds, () => {
      const {path, headers, body} = next();
      return client.request("POST", path, headers, body).then((res) => res.status < 300);
    });
  } finally {
    client.close();
  }
}

/**
 * The COPY baseline: writes `lines` (CSV of device_id, temperature_celsius, humidity,
 * battery_level, recorded_at) to `file`, loads them into `table` with `psql \copy` on one
 * connection, and returns rows/s by psql's own `\timing` (the file is written before the clock).
 */
export function copyRowsPerSecond(url: string, table: string, lines: readonly string[], file: string): number {
  writeFileSync(file, lines.join("\n") + "\n");
  try {
    const output = execFileSync(
      "psql",
      [
        url,
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        "\\timing on",
        "-c",
        `\\copy ${table} ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at") from '${file}' with (format csv)`
      ],
      {encoding: "utf8"}
    );
    const ms = Number(/Time: ([\d.]+) ms/.exec(output)?.[1]);
    if (!ms) throw new Error(`unexpected psql output: ${output}`);
    return lines.length / (ms / 1000);
  } finally {
    rmSync(file, {force: true});
  }
}

/**
 * What the API costs before any work of its own: autocannon on GET /health/live (public, no
 * token, no I/O; the same Ts.ED pipeline, request log and metrics as every route) for `seconds`,
 * with the API's CPU per request. The rest of a request's CPU is its own work.
 */
export async function frameworkFloor(
  api: {baseUrl: string; child: {pid?: number}},
  options: {connections: number; seconds: number}
): Promise<{rate: number; cpuMsPerRequest: number | undefined}> {
  const cpu0 = processCpuSeconds(api.child.pid!);
  const result = await autocannon({url: `${api.baseUrl}/health/live`, connections: options.connections, duration: options.seconds});
  const cpu1 = processCpuSeconds(api.child.pid!);
  const ok = result["2xx"];
  return {
    rate: ok / result.duration,
    cpuMsPerRequest: cpu0 !== undefined && cpu1 !== undefined && ok > 0 ? ((cpu1 - cpu0) * 1000) / ok : undefined
  };
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux); undefined elsewhere.
 * Taken before and after a round it says where a round's time went: the API process, or Postgres.
 * With `reapedChildren`, also what its children that have exited used (a postmaster's ended backends).
 */
export function processCpuSeconds(pid: number, {reapedChildren = false} = {}): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    const own = Number(fields[11]) + Number(fields[12]);
    return (reapedChildren ? own + Number(fields[13]) + Number(fields[14]) : own) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * Read and write system calls a process has made so far (/proc/<pid>/io: syscr + syscw, sockets
 * included), or undefined where /proc does not say. On a virtual machine each one to a loopback
 * socket costs tens of µs, so their number per request says much of what a request costs.
 */
export function processSyscalls(pid: number): number | undefined {
  try {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    return Number(/^syscr: (\d+)$/m.exec(io)![1]) + Number(/^syscw: (\d+)$/m.exec(io)![1]);
  } catch {
    return undefined;
  }
}

/**
 * Seconds the process's main thread has spent runnable but waiting for a CPU (/proc/<pid>/schedstat,
 * its second field), or undefined where /proc does not say. The API's event loop is one thread: on a
 * small machine shared with Postgres, each statement sent wakes a backend that may take the API's core
 * while the API still has work: throughput lost that its CPU time does not show.
 */
export function mainThreadWaitSeconds(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]) / 1e9;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of every `postgres` process (backends and background workers), the ended ones
 * included: a backend that exits during a round (a pool closing an idle connection) takes its
 * time to its postmaster's count of reaped children, not out of the sum.
 */
export function postgresCpuSeconds(): number | undefined {
  return commandCpuSeconds("postgres");
}

/** CPU seconds of every `redis-server` process (the one the API and the benches share). */
export function redisCpuSeconds(): number | undefined {
  return commandCpuSeconds("redis-server");
}

/** CPU seconds of every process whose command is `command`, with the children each has reaped. */
function commandCpuSeconds(command: string): number | undefined {
  let total = 0;
  try {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        // comm, not the command line: backends rewrite theirs ("postgres: …"), the postmaster's is a path.
        if (readFileSync(`/proc/${entry}/comm`, "utf8") === `${command}\n`)
          total += processCpuSeconds(Number(entry), {reapedChildren: true}) ?? 0;
      } catch {
        // the process ended meanwhile
      }
    }
  } catch {
    return undefined;
  }
  return total;
}

/** USER_HZ: Linux reports process times in 1/100 s on every platform Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;
