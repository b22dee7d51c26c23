/**
 * The ingest-single baseline: a bare Express + `pg` server doing the one thing the API's
 * single-reading route must do at least — parse the JSON body and run one
 * `INSERT … VALUES (…) ON CONFLICT DO NOTHING RETURNING …` — with no authentication, no
 * validation, no alert check and no statistics. Run as its own process (like the API) by
 * `startBareExpress()`; configured by BARE_DATABASE_URL, BARE_TABLE (schema-qualified, quoted),
 * BARE_POOL_MAX and PORT. Prints `listening <port>` once it accepts connections.
 *
 * With BARE_COALESCE=true it coalesces the way the API's group commit does (one tenant: one lane):
 * one INSERT in flight; the requests that arrive meanwhile are written together by the next one,
 * a multi-row `INSERT … SELECT FROM unnest(…)`, as soon as it ends (no waiting window), and each is
 * answered with its own row.
 */
import {type ChildProcess, spawn} from "node:child_process";
import {fileURLToPath} from "node:url";
import express from "express";
import pg from "pg";
import {freePort} from "./app.js";

export async function startBareExpress(env: {url: string; table: string; poolMax: number; coalesce?: boolean}) {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ["--import", "@swc-node/register/esm-register", fileURLToPath(import.meta.url)], {
    cwd: fileURLToPath(new URL("../..", import.meta.url)),
    env: {
      ...process.env,
      NODE_ENV: "production",
      PORT: String(port),
      BARE_DATABASE_URL: env.url,
      BARE_TABLE: env.table,
      BARE_POOL_MAX: String(env.poolMax),
      BARE_COALESCE: String(env.coalesce ?? false)
    },
    stdio: ["ignore", "pipe", "inherit"]
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("bare express did not start in 60 s")), 60_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("listening")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`bare express exited with ${code}`)));
  });
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once("exit", () => resolve()), child.kill("SIGTERM"))))
  };
}

function serve() {
  const table = process.env.BARE_TABLE!;
  const pool = new pg.Pool({connectionString: process.env.BARE_DATABASE_URL, max: Number(process.env.BARE_POOL_MAX ?? 10)});
  const sql = `insert into ${table} ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
    values ($1, $2, $3, $4, $5)
    on conflict ("device_id", "recorded_at") do nothing
    returning "id", "device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at", "created_at"`;
  const groupSql = `insert into ${table} ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
    select * from unnest($1::uuid[], $2::float8[], $3::float8[], $4::float8[], $5::timestamptz[])
    on conflict ("device_id", "recorded_at") do nothing
    returning "id", "device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at", "created_at"`;
  type Row = {device_id: string; recorded_at: Date};
  type Pending = {values: unknown[]; resolve: (row: Row | undefined) => void; reject: (error: unknown) => void};
  let waiting: Pending[] = [];
  let writing = false;
  const writeGroups = async () => {
    writing = true;
    while (waiting.length) {
      const group = waiting;
      waiting = [];
      try {
        const columns = [0, 1, 2, 3, 4].map((c) => group.map((p) => p.values[c]));
        const {rows} = await pool.query<Row>(groupSql, columns);
        const byKey = new Map(rows.map((row) => [`${row.device_id}/${row.recorded_at.getTime()}`, row]));
        for (const p of group) p.resolve(byKey.get(`${String(p.values[0])}/${new Date(String(p.values[4])).getTime()}`));
      } catch (error) {
        for (const p of group) p.reject(error);
      }
    }
    writing = false;
  };
  const insert = async (values: unknown[]): Promise<Row | undefined> => {
    if (process.env.BARE_COALESCE !== "true") return (await pool.query<Row>(sql, values)).rows[0];
    const row = new Promise<Row | undefined>((resolve, reject) => waiting.push({values, resolve, reject}));
    if (!writing) void writeGroups();
    return row;
  };
  const app = express();
  app.use(express.json({limit: "1mb"}));
  app.post("/api/v1/devices/:deviceId/readings", async (req, res) => {
    try {
      const {temperatureCelsius, humidity, batteryLevel, recordedAt} = req.body as Record<string, unknown>;
      const row = await insert([req.params.deviceId, temperatureCelsius, humidity ?? null, batteryLevel ?? null, recordedAt]);
      res.status(row ? 201 : 200).json({reading: row ?? null, alerts: [], duplicate: !row});
    } catch (error) {
      res.status(500).json({message: (error as Error).message});
    }
  });
  const server = app.listen(Number(process.env.PORT), "127.0.0.1", () => console.log(`listening ${process.env.PORT}`));
  process.once("SIGTERM", () => {
    server.close();
    server.closeAllConnections();
    void pool.end().then(() => process.exit(0));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) serve();
