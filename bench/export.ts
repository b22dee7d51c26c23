/**
 * export: 5 million readings streamed as CSV over HTTP (GET /api/v1/readings/export), next to
 * `psql \copy (the same query) to stdout` of the same rows, measured in the same run.
 *
 *   npm run bench:export
 *
 * Its own databases (`st_bench_export`, `…_analytics`); the API as its own process (production
 * mode, RS256 token from a loopback JWKS). One tenant with 1,000 devices × 5,000 readings 30 s
 * apart (about 42 hours, ending three hours ago: across a month boundary when run near one),
 * inserted with generate_series. The whole tenant's range is exported, so Postgres sorts it by
 * recordedAt (and device) in both cases.
 * - subject: an HTTP client on loopback reads the response as fast as it can and counts the
 *   lines; rows/s = rows / wall time from the request to the last byte. The API's RSS is sampled
 *   every 20 ms (/proc/<pid>/status); its growth is the peak during the download minus the RSS
 *   just before it. The RESULT takes the largest growth of every download, the first one (the
 *   warm-up: code paths run for the first time, heap sizing) included: a fresh process serves a
 *   first download too, and the memory it takes counts.
 * - baseline: psql, one connection, `\copy (<the exact SELECT the export runs>) to stdout with
 *   (format csv, header true)` into /dev/null; rows/s = rows / wall time of the psql process.
 * Targets: rows/s ratio >= 0.7, API peak RSS growth <= 50 MB. Environment: BENCH_DATABASE_URL,
 * REDIS_URL, BENCH_ROUNDS (default 3), BENCH_EXPORT_DEVICES, BENCH_EXPORT_PER_DEVICE.
 */
import {spawn} from "node:child_process";
import {openSync, closeSync, readFileSync} from "node:fs";
import http from "node:http";
import pg from "pg";
import {ExportFormat} from "../src/modules/readings/reading-export.models.js";
import {COPY_OPTIONS, exportQuerySql} from "../src/modules/readings/reading-export.repository.js";
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";
import {processCpuSeconds} from "./lib/ingest.js";

const NAME = "export";
const TENANT = "bench_export";
const DEVICES = Number(process.env.BENCH_EXPORT_DEVICES ?? 1_000);
const PER_DEVICE = Number(process.env.BENCH_EXPORT_PER_DEVICE ?? 5_000);
const ROWS = DEVICES * PER_DEVICE;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RSS_TARGET_MB = 50;

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;

async function main() {
  const started = Date.now();
  const {url, analyticsUrl} = await freshDatabases("st_bench_export");
  const jwks = await startJwks();
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: {RUN_WORKERS: "false"}});
  const pid = api.child.pid!;
  try {
    // The export as a viewer (the least role that may read); the device made as an operator.
    const headers = {Authorization: `Bearer ${await jwks.token(TENANT, ["viewer"])}`};
    const operator = {Authorization: `Bearer ${await jwks.token(TENANT, ["operator"])}`};
    const created = await fetch(`${api.baseUrl}/api/v1/devices`, {
      method: "POST",
      headers: {...operator, "content-type": "application/json"},
      body: JSON.stringify({serialNumber: "BENCH-EXPORT-0"})
    });
    if (created.status !== 201) throw new Error(`device: ${created.status} ${await created.text()}`);

    const end = new Date(Math.floor((Date.now() - 3 * 3_600_000) / 60_000) * 60_000);
    const from = new Date(end.getTime() - PER_DEVICE * 30_000);
    const insertStarted = Date.now();
    const partitions = await withClient(url, async (db) => {
      await db.query(
        `insert into "${TENANT}"."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
         select gen_random_uuid(), now(), now(), 'BENCH-EXPORT-' || g, 'Sensor ' || g, (select "owner_id" from "${TENANT}"."devices" limit 1)
           from generate_series(1, $1::int - 1) as g`,
        [DEVICES]
      );
      await db.query(
        `insert into "${TENANT}"."temperature_readings" ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
         select d."id", round((18 + 8 * random())::numeric, 2), 40 + g % 20, 0.87, $1::timestamptz + g * interval '30 seconds'
           from generate_series(0, $2::int - 1) as g cross join "${TENANT}"."devices" d
          order by g`,
        [from.toISOString(), PER_DEVICE]
      );
      await db.query(`vacuum analyze "${TENANT}"."temperature_readings"`);
      const {rows} = await db.query<{name: string; n: string}>(
        `select tableoid::regclass::text as name, count(*)::text as n from "${TENANT}"."temperature_readings" group by 1 order by 1`
      );
      return rows.map((r) => `${r.name.replace(/^.*\./, "")}: ${Number(r.n).toLocaleString("en")}`).join(", ");
    });
    console.log(`inserted ${ROWS.toLocaleString("en")} readings (${partitions}) in ${((Date.now() - insertStarted) / 1000).toFixed(0)} s`);

    const query = `from=${from.toISOString()}&to=${end.toISOString()}&format=csv`;
    const exportSql = exportQuerySql(`"${TENANT}"`, ExportFormat.CSV, {from, to: end}, pg.escapeLiteral).replace(/\s+/g, " ");
    const {hostname, port} = new URL(api.baseUrl);

    const rssGrowth: number[] = [];
    const ttfb: number[] = [];
    const apiCpuPerMillion: number[] = [];
    const subject = async () => {
      const rssBefore = rssMb(pid);
      let peak = rssBefore;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 20);
      const cpu0 = processCpuSeconds(pid);
      const t0 = performance.now();
      const {lines, firstByteMs} = await new Promise<{lines: number; firstByteMs: number}>((resolve, reject) => {
        const req = http.get({host: hostname, port, path: `/api/v1/readings/export?${query}`, headers}, (res) => {
          if (res.statusCode !== 200) reject(new Error(`export → ${res.statusCode}`));
          let count = 0;
          let first = 0;
          res.on("data", (chunk: Buffer) => {
            if (!first) first = performance.now() - t0;
            for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) count++;
          });
          res.on("end", () => resolve({lines: count, firstByteMs: first}));
          res.on("error", reject);
        });
        req.on("error", reject);
      });
      const seconds = (performance.now() - t0) / 1000;
      clearInterval(sampler);
      peak = Math.max(peak, rssMb(pid));
      const cpu1 = processCpuSeconds(pid);
      if (lines !== ROWS + 1) throw new Error(`export sent ${lines - 1} rows, expected ${ROWS}`);
      rssGrowth.push(peak - rssBefore);
      ttfb.push(firstByteMs);
      if (cpu0 !== undefined && cpu1 !== undefined) apiCpuPerMillion.push(((cpu1 - cpu0) * 1e6) / ROWS);
      return ROWS / seconds;
    };

    const baseline = async () => {
      const devNull = openSync("/dev/null", "w");
      const t0 = performance.now();
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(
          "psql",
          [url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", `\\copy (${exportSql}) to stdout with (${COPY_OPTIONS[ExportFormat.CSV]})`],
          {
            stdio: ["ignore", devNull, "inherit"],
            env: {...process.env, PGAPPNAME: "bench-psql-copy"}
          }
        );
        child.on("exit", resolve);
      });
      const seconds = (performance.now() - t0) / 1000;
      closeSync(devNull);
      if (code !== 0) throw new Error(`psql exited with ${code}`);
      return ROWS / seconds;
    };

    console.log(`${NAME}: ${ROWS.toLocaleString("en")} readings of ${DEVICES} devices, whole tenant, CSV, ${ROUNDS} rounds + 1 warm-up`);
    console.log(`  subject: HTTP GET /api/v1/readings/export (RS256 JWT, role viewer), client on loopback reading at full speed`);
    console.log(`  baseline: psql \\copy (the same SELECT) to stdout with (${COPY_OPTIONS[ExportFormat.CSV]}) > /dev/null, one connection`);
    await runPart({
      name: NAME,
      unit: "rows/s",
      target: ">= 0.7",
      rounds: ROUNDS,
      subject: {label: "HTTP export (CSV)", run: subject},
      baseline: {label: "psql \\copy to stdout", run: baseline},
      notes: () => ({
        "time to first byte, median ms (the sort of the range happens before it, in both)": median(ttfb).toFixed(0),
        "API CPU per 1 M rows, median s": median(apiCpuPerMillion).toFixed(2),
        "API RSS growth per download, MB (warm-up | measured rounds)": `${rssGrowth[0]!.toFixed(1)} | ${rssGrowth
          .slice(1)
          .map((mb) => mb.toFixed(1))
          .join(" / ")}`,
        "wall time s": ((Date.now() - started) / 1000).toFixed(0)
      }),
      finish: async () => {
        const peak = Math.max(...rssGrowth);
        return {fields: {rss_growth_mb: peak.toFixed(1), rss_target_mb: RSS_TARGET_MB}, met: peak <= RSS_TARGET_MB};
      }
    });
  } finally {
    await api.stop();
    await jwks.close();
  }
}

runMain(main);
