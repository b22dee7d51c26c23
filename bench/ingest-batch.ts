/**
 * ingest-batch: readings/s through HTTP in 1,000-reading batches, next to single-connection COPY
 * of the same rows into an identical table, measured in the same run.
 *
 *   npm run bench:ingest-batch
 *
 * Subject: the compiled API as its own process (production mode; startApi), a real RS256 JWT from
 * a loopback JWKS, full validation, alert evaluation (every device has an `above 30 °C` rule and
 * its readings cross it now and then) and the after-commit DailyStats refresh. A second part,
 * ingest-batch-quiet, posts the same readings for devices whose rule is above 100 °C: evaluated,
 * never crossed, so every batch takes the autocommitted path and none the alert transaction
 * (what a batch costs when it changes no episode, against one that does). BENCH_CONCURRENCY
 * connections (default 4) each post BENCH_BATCHES (default 12) batches of 1,000 readings for a
 * device of their own, one after the other; readings/s = rows stored / wall time of the round.
 * Ingestion rate limits are off (RATE_LIMIT_*=0, set by startApi).
 * Baseline: `psql \copy` (one connection, CSV file written before the clock starts, timed by
 * psql's `\timing`) of as many rows for the same devices into a table identical to the tenant's
 * readings table (same columns, primary key, indexes and foreign keys).
 * Environment: BENCH_DATABASE_URL (server), REDIS_URL, BENCH_ROUNDS (default 5).
 */
import {mkdtempSync, rmSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";
import {
  ALERT_THRESHOLD,
  callJson,
  copyRowsPerSecond,
  httpClient,
  identicalReadingsTable,
  percentile,
  postgresCpuSeconds,
  processCpuSeconds,
  processSyscalls,
  readingSeries
} from "./lib/ingest.js";

const NAME = "ingest-batch";
const TENANT = "bench_ingest_batch";
const COPY_SCHEMA = "bench_copy";
const BATCH_SIZE = 1_000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const BATCHES = Number(process.env.BENCH_BATCHES ?? 12);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROWS_PER_ROUND = CONCURRENCY * BATCHES * BATCH_SIZE;
const STEP_MS = 30_000;

/** Above every temperature readingSeries gives: the rule is evaluated, and no reading changes an episode. */
const QUIET_THRESHOLD = 100;

/** One part's devices (one per connection, each with an `above` rule at `threshold`) and what its HTTP rounds measured. */
interface Fleet {
  name: string;
  devices: string[];
  httpRound: number;
  copyRound: number;
  latencies: number[];
  alertsFired: number;
  apiCpuMsPerBatch: number[];
  postgresCpuMsPerBatch: number[];
  apiSyscallsPerBatch: number[];
  /** The outbox relay's transactions and the events they relayed so far, at the first measured round's start and at the last round's end. */
  relayFrom?: RelayTotals;
  relayTo?: RelayTotals;
}

async function main() {
  const started = Date.now();
  const {url, analyticsUrl} = await freshDatabases("st_bench_ingest_batch");
  const jwks = await startJwks();
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri});
  const client = httpClient(api.baseUrl, CONCURRENCY + 1);
  const headers = {authorization: `Bearer ${await jwks.token(TENANT, ["user", "operator"])}`};
  const dir = mkdtempSync(join(tmpdir(), "bench-ingest-batch-"));
  try {
    const fleet = async (name: string, threshold: number): Promise<Fleet> => {
      const devices: string[] = [];
      for (let c = 0; c < CONCURRENCY; c++) {
        const serialNumber = `BENCH-${name.toUpperCase()}-${c}`;
        const device = await callJson<{id: string}>(client, headers, "POST", "/api/v1/devices", {serialNumber}, 201);
        const rule = {condition: "above", thresholdCelsius: threshold};
        await callJson(client, headers, "POST", `/api/v1/devices/${device.id}/alert-rules`, rule, 201);
        devices.push(device.id);
      }
      return {
        name,
        devices,
        httpRound: 0,
        copyRound: 0,
        latencies: [],
        alertsFired: 0,
        apiCpuMsPerBatch: [],
        postgresCpuMsPerBatch: [],
        apiSyscallsPerBatch: []
      };
    };
    const crossing = await fleet(NAME, ALERT_THRESHOLD);
    const quiet = await fleet(`${NAME}-quiet`, QUIET_THRESHOLD);
    const table = await withClient(url, (db) => identicalReadingsTable(db, TENANT, COPY_SCHEMA));

    // Every round writes the next BATCHES × 1,000 readings (30 s apart) of each device; all in the past.
    const rounds = 1 + ROUNDS; // warm-up included
    const firstMs = Date.now() - (rounds + 1) * BATCHES * BATCH_SIZE * STEP_MS;

    const subject = async (part: Fleet) => {
      const round = part.httpRound++;
      const bodies = part.devices.map((_, c) =>
        Array.from({length: BATCHES}, (_, b) => {
          const offset = (round * BATCHES + b) * BATCH_SIZE;
          return JSON.stringify({readings: readingSeries(BATCH_SIZE, firstMs + offset * STEP_MS, offset + c * 7)});
        })
      );
      // Read before the CPU and system calls are: the request for them costs the API its own.
      const relay0 = relayTotals(await api.metrics());
      const apiCpu0 = processCpuSeconds(api.child.pid!);
      const postgresCpu0 = postgresCpuSeconds();
      const syscalls0 = processSyscalls(api.child.pid!);
      const t0 = process.hrtime.bigint();
      const inserted = await Promise.all(
        part.devices.map(async (deviceId, c) => {
          let rows = 0;
          for (const body of bodies[c]!) {
            const sent = process.hrtime.bigint();
            const res = await client.request("POST", `/api/v1/devices/${deviceId}/readings/batch`, headers, body);
            part.latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
            if (res.status !== 200) throw new Error(`batch → ${res.status} ${res.body.slice(0, 300)}`);
            rows += Number(/"inserted":(\d+)/.exec(res.body)?.[1]);
            part.alertsFired += Number(/"alertsFired":(\d+)/.exec(res.body)?.[1]);
          }
          return rows;
        })
      );
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const apiCpu1 = processCpuSeconds(api.child.pid!);
      const postgresCpu1 = postgresCpuSeconds();
      const syscalls1 = processSyscalls(api.child.pid!);
      // From the first measured round's start to the last one's end: the relay runs a little after each round's writes.
      if (round === 1) part.relayFrom = relay0;
      part.relayTo = relayTotals(await api.metrics());
      const batches = CONCURRENCY * BATCHES;
      if (syscalls0 !== undefined && syscalls1 !== undefined) part.apiSyscallsPerBatch.push((syscalls1 - syscalls0) / batches);
      if (apiCpu0 !== undefined && apiCpu1 !== undefined) part.apiCpuMsPerBatch.push(((apiCpu1 - apiCpu0) * 1000) / batches);
      if (postgresCpu0 !== undefined && postgresCpu1 !== undefined)
        part.postgresCpuMsPerBatch.push(((postgresCpu1 - postgresCpu0) * 1000) / batches);
      const total = inserted.reduce((a, b) => a + b, 0);
      if (total !== ROWS_PER_ROUND) throw new Error(`stored ${total} readings, expected ${ROWS_PER_ROUND}`);
      return total / seconds;
    };

    const baseline = async (part: Fleet) => {
      const round = part.copyRound++;
      const file = join(dir, `copy-${part.name}-${round}.csv`);
      const lines: string[] = [];
      part.devices.forEach((deviceId, c) => {
        const offset = round * BATCHES * BATCH_SIZE;
        for (const r of readingSeries(BATCHES * BATCH_SIZE, firstMs + offset * STEP_MS, offset + c * 7)) {
          lines.push(`${deviceId},${r.temperatureCelsius},${r.humidity},${r.batteryLevel},${r.recordedAt}`);
        }
      });
      if (lines.length !== ROWS_PER_ROUND) throw new Error(`wrote ${lines.length} rows, expected ${ROWS_PER_ROUND}`);
      return copyRowsPerSecond(url, `"${COPY_SCHEMA}"."temperature_readings"`, lines, file);
    };

    console.log(
      `${NAME}: ${CONCURRENCY} connections × ${BATCHES} batches × ${BATCH_SIZE} readings per round (${ROWS_PER_ROUND} rows), ${ROUNDS} rounds + 1 warm-up`
    );
    console.log(
      `  subject: HTTP POST /readings/batch, RS256 JWT, validation, alert rule per device, after-commit stats refresh; ingestion rate limits off (RATE_LIMIT_*=0)`
    );
    console.log(`  baseline: psql \\copy, one connection, into ${COPY_SCHEMA}.temperature_readings (${table})`);
    for (const [part, rule] of [
      [crossing, `above ${ALERT_THRESHOLD} °C: a spike in most batches opens an episode`],
      [quiet, `above ${QUIET_THRESHOLD} °C: evaluated, never crossed`]
    ] as const) {
      await runPart({
        name: part.name,
        unit: "readings/s",
        target: ">= 0.60",
        rounds: ROUNDS,
        subject: {label: `HTTP batches, ${CONCURRENCY} connections`, run: () => subject(part)},
        baseline: {label: "COPY, 1 connection", run: () => baseline(part)},
        notes: () => ({
          concurrency: `${CONCURRENCY} HTTP connections (the baseline is one COPY connection)`,
          "alert rule per device": rule,
          "batch latency ms (p50 / p95 / max)": `${percentile(part.latencies, 50).toFixed(1)} / ${percentile(part.latencies, 95).toFixed(1)} / ${Math.max(...part.latencies).toFixed(1)}`,
          "alert episodes opened": part.alertsFired,
          "CPU per 1,000-reading batch, median ms (API process / all postgres processes)": `${median(part.apiCpuMsPerBatch).toFixed(1)} / ${median(part.postgresCpuMsPerBatch).toFixed(1)}`,
          "API read/write system calls per batch, median": median(part.apiSyscallsPerBatch).toFixed(1),
          "outbox relay (in the API process): transactions per batch, events per transaction": relayNote(part),
          "wall time s": ((Date.now() - started) / 1000).toFixed(0)
        })
      });
    }
  } finally {
    client.close();
    rmSync(dir, {recursive: true, force: true});
    await api.stop();
    await jwks.close();
  }
}

interface RelayTotals {
  transactions: number;
  events: number;
}

/** `outbox_relay_events` of a metrics text: the relay's transactions so far and the events they relayed. */
function relayTotals(metrics: string): RelayTotals {
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1] ?? 0);
  return {transactions: value("outbox_relay_events_count"), events: value("outbox_relay_events_sum")};
}

function relayNote({relayFrom, relayTo}: Fleet): string {
  if (!relayFrom || !relayTo) return "-";
  const transactions = relayTo.transactions - relayFrom.transactions;
  const events = relayTo.events - relayFrom.events;
  return `${(transactions / (ROUNDS * CONCURRENCY * BATCHES)).toFixed(2)}, ${(events / Math.max(1, transactions)).toFixed(2)}`;
}

runMain(main);
