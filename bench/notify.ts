/**
 * notify: webhooks out of the outbox (docs/api.md, "Receiving webhooks").
 *
 *   npm run bench:notify
 *
 * Subject: the compiled API as its own process (production mode, workers in it: outbox relay and
 * BullMQ deliveries), WEBHOOK_ALLOW_PRIVATE=true, a receiver in this process on loopback.
 *
 * 1. notify-latency: the time from a write's response to its webhook's arrival at the receiver,
 *    at 100 alert events/s: DEVICES devices, each with an `above 30 °C` rule, get readings
 *    alternately above and below it (each write fires or resolves an alert; a device's writes are
 *    DEVICES/100 s apart), paced at 100 writes/s (an open loop: bench/lib/ingest.ts pacedOpenLoop). Value: p99 per round (p50 in the
 *    notes). Baseline: the same receiver, POSTed to directly from this process at the same rate
 *    (one loopback hop: the floor). Target: p99 < 1000 ms.
 * 2. notify-throughput: events per second one worker process delivers to a receiver that answers
 *    after 50 ms: EVENTS events appended to the outbox at once (one SQL statement and its NOTIFY),
 *    rate from the first arrival to the last. Baseline: this process POSTing the same number of
 *    requests to the same receiver, WEBHOOK_CONCURRENCY at a time (what the worker may run at
 *    once). Target: ratio >= 0.5.
 * Environment: BENCH_DATABASE_URL, REDIS_URL, BENCH_ROUNDS (default 3), WEBHOOK_CONCURRENCY.
 */
import http from "node:http";
import type {AddressInfo} from "node:net";
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";
import {ALERT_THRESHOLD, callJson, httpClient, pacedOpenLoop, percentile, postgresCpuSeconds, processCpuSeconds} from "./lib/ingest.js";

const TENANT = "bench_notify";
const DEVICES = 500;
const RATE = 100;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const EVENTS = 1_000;
const SLOW_MS = 50;
const CONCURRENCY = Number(process.env.WEBHOOK_CONCURRENCY ?? 32);

/** A webhook receiver: records when each event arrived (by `<device id>:<type>:<n>`, or by event id), answers 200 after `delayMs`. */
async function startReceiver() {
  const arrivals = new Map<string, number>();
  const perSeries = new Map<string, number>();
  let delayMs = 0;
  let count = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const at = performance.now();
      count++;
      if (req.url === "/hook") {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {id: string; type: string; data: {alert?: {deviceId: string}}};
        if (body.data.alert && body.type !== "alert.reminder") {
          // The device's n-th event of this type (a device's events are seconds apart: they arrive in order).
          const series = `${body.data.alert.deviceId}:${body.type}`;
          const n = (perSeries.get(series) ?? 0) + 1;
          perSeries.set(series, n);
          arrivals.set(`${series}:${n}`, at);
        } else arrivals.set(body.id, at);
      } else arrivals.set(`${req.url}:${count}`, at);
      setTimeout(() => res.writeHead(200).end(), delayMs);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    arrivals,
    base,
    setDelay: (ms: number) => (delayMs = ms),
    stop: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
}

async function waitUntil(check: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function main() {
  const started = Date.now();
  const {url, analyticsUrl} = await freshDatabases("st_bench_notify");
  const jwks = await startJwks();
  const receiver = await startReceiver();
  const api = await startApi({
    url,
    analyticsUrl,
    jwksUri: jwks.jwksUri,
    extra: {WEBHOOK_ALLOW_PRIVATE: "true", LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "error"}
  });
  const client = httpClient(api.baseUrl, 64);
  const direct = httpClient(receiver.base, 64);
  try {
    const admin = {authorization: `Bearer ${await jwks.token(TENANT, ["user", "admin"])}`};
    const me = await callJson<{id: string}>(client, admin, "GET", "/api/v1/me", undefined, 200);
    const devices = await withClient(url, async (db) => {
      const s = `"${TENANT}"`;
      const {rows} = await db.query<{id: string}>(
        `with d as (insert into ${s}."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
                    select gen_random_uuid(), now(), now(), 'BENCH-NOTIFY-' || g, 'BENCH-NOTIFY-' || g, $1 from generate_series(1, $2) g returning "id"),
         r as (insert into ${s}."alert_rules" ("id", "created_at", "updated_at", "device_id", "condition", "threshold_celsius")
               select gen_random_uuid(), now(), now(), d."id", 'above', $3 from d returning "device_id")
         select "device_id" as "id" from r order by 1`,
        [me.id, DEVICES, ALERT_THRESHOLD]
      );
      return rows.map((row) => row.id);
    });
    const fast = await callJson<{id: string}>(
      client,
      admin,
      "POST",
      "/api/v1/admin/webhooks",
      {url: `${receiver.base}/hook`, eventTypes: ["alert.fired", "alert.resolved"]},
      201
    );
    await callJson(client, admin, "POST", "/api/v1/admin/webhooks", {url: `${receiver.base}/hook`, eventTypes: ["alert.reminder"]}, 201);

    // Per device: its clock (recordedAt, 1 s apart), whether its next reading is above the
    // threshold (decided when sent: a write may still be in flight when the device's next is due),
    // and how many alerts it fired and resolved so far.
    const state = devices.map(() => ({clock: Date.now() - 3_600_000, above: true, fired: 0, resolved: 0}));
    /** The next write: its path, body, and the key its webhook will arrive under. */
    const nextWrite = () => {
      const i = writeIndex++ % DEVICES;
      const device = state[i]!;
      device.clock += 1000;
      const above = device.above;
      device.above = !above;
      const key = above ? `${devices[i]}:alert.fired:${++device.fired}` : `${devices[i]}:alert.resolved:${++device.resolved}`;
      return {
        path: `/api/v1/devices/${devices[i]}/readings`,
        body: JSON.stringify({temperatureCelsius: above ? 35 : 20, recordedAt: new Date(device.clock).toISOString()}),
        key
      };
    };
    const p50s: number[] = [];
    const baseP50s: number[] = [];
    const writeP99s: number[] = [];
    const apiCpu: number[] = [];
    const pgCpu: number[] = [];
    let writeIndex = 0;
    console.log(
      `notify: ${DEVICES} devices with an above-${ALERT_THRESHOLD} rule, readings alternately above and below (each write fires or resolves an alert), ${RATE} writes/s for ${SECONDS} s per round, ${ROUNDS} rounds + 1 warm-up; endpoint ${fast.id}`
    );
    // Unloaded: one write at a time, for the latency without queueing.
    const unloaded: number[] = [];
    for (let n = 0; n < 10; n++) {
      const {path, body, key} = nextWrite();
      await client.request("POST", path, admin, body);
      const respondedAt = performance.now();
      await waitUntil(() => receiver.arrivals.has(key), 10_000, "an unloaded webhook");
      unloaded.push(receiver.arrivals.get(key)! - respondedAt);
    }
    console.log(`  unloaded (one write at a time): webhook ${unloaded.map((ms) => ms.toFixed(0)).join(", ")} ms after the response`);
    await runPart({
      name: "notify-latency",
      unit: "ms",
      target: "<= 1000",
      targetOn: "value",
      rounds: ROUNDS,
      subject: {
        label: `write response → webhook arrival p99, ${RATE}/s`,
        run: async () => {
          const expected: {key: string; respondedAt: number}[] = [];
          const failures: string[] = [];
          const [cpu0, pg0, wall0] = [processCpuSeconds(api.child.pid!), postgresCpuSeconds(), performance.now()];
          const writes = await pacedOpenLoop(RATE, SECONDS, async () => {
            const {path, body, key} = nextWrite();
            const res = await client.request("POST", path, admin, body);
            if (res.status !== 201) {
              failures.push(`${res.status} ${res.body.slice(0, 200)}`);
              return false;
            }
            expected.push({key, respondedAt: performance.now()});
            return true;
          });
          if (failures.length) throw new Error(`writes failed: ${failures.slice(0, 3).join("; ")}`);
          writeP99s.push(percentile(writes.latenciesMs, 99));
          await waitUntil(
            () => expected.every((e) => receiver.arrivals.has(e.key)),
            30_000,
            `every webhook (${expected.filter((e) => receiver.arrivals.has(e.key)).length} of ${expected.length} arrived; ${receiver.arrivals.size} requests; e.g. ${[...receiver.arrivals.keys()].slice(0, 2).join(" ")} / ${expected[0]?.key})`
          );
          const latencies = expected.map((e) => receiver.arrivals.get(e.key)! - e.respondedAt);
          p50s.push(percentile(latencies, 50));
          const [cpu1, pg1, wall1] = [processCpuSeconds(api.child.pid!), postgresCpuSeconds(), performance.now()];
          if (cpu0 !== undefined && cpu1 !== undefined) apiCpu.push((100 * (cpu1 - cpu0)) / ((wall1 - wall0) / 1000));
          if (pg0 !== undefined && pg1 !== undefined) pgCpu.push((100 * (pg1 - pg0)) / ((wall1 - wall0) / 1000));
          return percentile(latencies, 99);
        }
      },
      baseline: {
        label: `direct POST to the receiver p99, ${RATE}/s`,
        run: async () => {
          const result = await pacedOpenLoop(RATE, SECONDS, async () => (await direct.request("POST", "/direct", {}, "{}")).status === 200);
          baseP50s.push(percentile(result.latenciesMs, 50));
          return percentile(result.latenciesMs, 99);
        }
      },
      notes: () => ({
        "webhook p50 ms per round": p50s.map((p) => p.toFixed(1)).join(", "),
        "webhook p50 ms, median": median(p50s).toFixed(1),
        "direct POST p50 ms, median": median(baseP50s).toFixed(2),
        "write response p99 ms per round": writeP99s.map((p) => p.toFixed(0)).join(", "),
        "CPU % during the rounds (API process / all postgres)": `${median(apiCpu).toFixed(0)} / ${median(pgCpu).toFixed(0)}`
      })
    });

    receiver.setDelay(SLOW_MS);
    let round = 0;
    console.log(
      `\nnotify-throughput: ${EVENTS} alert.reminder events appended at once, receiver answering in ${SLOW_MS} ms, WEBHOOK_CONCURRENCY=${CONCURRENCY}`
    );
    await runPart({
      name: "notify-throughput",
      unit: "events/s",
      target: ">= 0.5",
      rounds: ROUNDS,
      subject: {
        label: `one worker → receiver answering in ${SLOW_MS} ms`,
        run: async () => {
          const ids = await withClient(url, async (db) => {
            const {rows} = await db.query<{id: string}>(
              `with e as (
                 insert into "${TENANT}"."events" ("id", "type", "occurred_at", "body")
                 select g.id, 'alert.reminder', now(), jsonb_build_object('id', g.id, 'type', 'alert.reminder', 'occurredAt', now(),
                          'tenantId', $1::text, 'data', jsonb_build_object('round', $2::int, 'n', g.n))
                   from (select gen_random_uuid() as id, n from generate_series(1, $3) n) g
                 returning "id"::text)
               select "id", pg_notify('smart_thermo_outbox', $1) from e`,
              [TENANT, round++, EVENTS]
            );
            return rows.map((row) => row.id);
          });
          await waitUntil(() => ids.every((id) => receiver.arrivals.has(id)), 120_000, "every slow delivery");
          const times = ids.map((id) => receiver.arrivals.get(id)!);
          return (ids.length - 1) / ((Math.max(...times) - Math.min(...times)) / 1000);
        }
      },
      baseline: {
        label: `this process, ${CONCURRENCY} POSTs at a time`,
        run: async () => {
          let next = 0;
          const times: number[] = [];
          const worker = async () => {
            while (next < EVENTS) {
              next++;
              await direct.request("POST", "/direct", {}, "{}");
              times.push(performance.now());
            }
          };
          await Promise.all(Array.from({length: CONCURRENCY}, worker));
          return (times.length - 1) / ((Math.max(...times) - Math.min(...times)) / 1000);
        }
      },
      notes: () => ({"wall time s": ((Date.now() - started) / 1000).toFixed(0)})
    });
  } finally {
    client.close();
    direct.close();
    await api.stop();
    await receiver.stop();
    await jwks.close();
  }
}

runMain(main);
