/**
 * mqtt-ingest: acknowledged readings/s over MQTT (QoS 1, PUBACK after commit) from 1,000 devices,
 * next to HTTP single posts/s (the ingest-single subject) measured in the same run, and to COPY;
 * then the p99 PUBACK latency at half the MQTT rate, and the MQTT process's RSS per connected
 * device at 5,000 idle connections.
 *
 *   npm run bench:mqtt-ingest
 *
 * A building: 1,000 devices of one tenant, each with a device key and an `above 30 °C` alert rule;
 * temperatures cross the rule now and then (as in ingest-single), so some readings take the
 * transactional alert path.
 * Subject: the MQTT-only process (`npm run mqtt`, production mode) on a free port; 1,000 mqtt.js
 * clients (protocol 3.1.1, one connection per device, in this process), each publishing one
 * reading per message at QoS 1 and the next one when its PUBACK arrives (one message in flight
 * per device, as a sensor does), BENCH_SECONDS (default 8) per round. Value: PUBACKs per second.
 * Baseline: the API process, `POST /api/v1/devices/:id/readings` (one reading, bearer token per
 * device) with autocannon at 50 connections: the ingest-single subject, same devices and rules.
 * Also per round: `psql \copy` of as many rows into an identical table (printed, not the ratio).
 * p99: an open-loop paced load at half the median MQTT rate for BENCH_P99_SECONDS (default 10),
 * spread over the 1,000 connections, latency from when each message was due to its PUBACK.
 * RSS: a fresh MQTT process, its RSS idle, then with 5,000 idle authenticated connections
 * (keepalive 60 s): (RSS after − RSS before) / 5,000.
 * Environment: BENCH_DATABASE_URL, REDIS_URL, BENCH_ROUNDS (default 5); BENCH_MQTT_NO_ALERTS=1 keeps
 * every reading below the rule (a diagnostic: the share of the alert path), BENCH_MQTT_IDLE (5,000).
 */
import {execFileSync} from "node:child_process";
import {mkdtempSync, rmSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import autocannon from "autocannon";
import mqtt, {type MqttClient} from "mqtt";
import {generateDeviceKey} from "../src/platform/device-auth/device-key.js";
import {monitorEventLoopDelay} from "node:perf_hooks";
import {bucketQuantile, histogramBuckets, rssKb, startApi, startMqttProcess} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";
import {
  ALERT_THRESHOLD,
  callJson,
  copyRowsPerSecond,
  httpClient,
  identicalReadingsTable,
  pacedOpenLoop,
  percentile,
  postgresCpuSeconds,
  processCpuSeconds
} from "./lib/ingest.js";

const NAME = "mqtt-ingest";
const TENANT = "bench_mqtt_ingest";
const COPY_SCHEMA = "bench_copy";
const DEVICES = 1_000;
const IDLE_CONNECTIONS = Number(process.env.BENCH_MQTT_IDLE ?? 5_000);
const HTTP_CONNECTIONS = 50;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const P99_SECONDS = Number(process.env.BENCH_P99_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const P99_TARGET_MS = 50;
const RSS_TARGET_KB = 32;
/** BENCH_MQTT_NO_ALERTS=1: no reading crosses the rule (every write takes the shared statement): where the alert path's time goes. */
const NO_ALERTS = process.env.BENCH_MQTT_NO_ALERTS === "1";

interface BenchDevice {
  deviceId: string;
  keyId: string;
  key: string;
}

async function main() {
  const started = Date.now();
  const {url, analyticsUrl} = await freshDatabases("st_bench_mqtt_ingest");
  const jwks = await startJwks();
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri});
  const http = httpClient(api.baseUrl, 1);
  let broker: Awaited<ReturnType<typeof startMqttProcess>> | undefined;
  const clients: MqttClient[] = [];
  const dir = mkdtempSync(join(tmpdir(), "bench-mqtt-"));
  try {
    const admin = {authorization: `Bearer ${await jwks.token(TENANT, ["user", "operator"])}`};
    const me = await callJson<{id: string}>(http, admin, "GET", "/api/v1/me", undefined, 200); // provisions the tenant
    const createDevices = (count: number, prefix: string, withRules: boolean) =>
      withClient(url, async (db) => {
        const s = `"${TENANT}"`;
        const {rows} = await db.query<{id: string}>(
          `insert into ${s}."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
           select gen_random_uuid(), now(), now(), $2 || g, $2 || g, $1 from generate_series(1, $3) g returning "id"::text`,
          [me.id, prefix, count]
        );
        if (withRules) {
          await db.query(
            `insert into ${s}."alert_rules" ("id", "created_at", "updated_at", "device_id", "condition", "threshold_celsius")
             select gen_random_uuid(), now(), now(), d, 'above', $2 from unnest($1::uuid[]) d`,
            [rows.map((r) => r.id), ALERT_THRESHOLD]
          );
        }
        // Keys as POST /devices/:id/keys stores them: the SHA-256 only.
        const keys = rows.map((row) => ({...generateDeviceKey(), deviceId: row.id}));
        await db.query(
          `insert into "public"."device_keys" ("id", "tenant_id", "device_id", "secret_sha256")
           select k, $1, d, decode(h, 'hex') from unnest($2::uuid[], $3::uuid[], $4::text[]) as v(k, d, h)`,
          [TENANT, keys.map((k) => k.keyId), keys.map((k) => k.deviceId), keys.map((k) => k.digest.toString("hex"))]
        );
        return keys.map((k): BenchDevice => ({deviceId: k.deviceId, keyId: k.keyId, key: k.key}));
      });
    const devices = await createDevices(DEVICES, "BENCH-MQTT-", true);
    const copyTable = await withClient(url, (db) => identicalReadingsTable(db, TENANT, COPY_SCHEMA));
    broker = await startMqttProcess({url, analyticsUrl});
    const brokerUrl = `mqtt://127.0.0.1:${broker.port}`;
    const connectAll = async (list: BenchDevice[], into: MqttClient[]) => {
      for (let i = 0; i < list.length; i += 100) {
        const batch = await Promise.all(
          list.slice(i, i + 100).map((d) =>
            mqtt.connectAsync(brokerUrl, {
              username: d.keyId,
              password: d.key,
              reconnectPeriod: 0,
              keepalive: 60,
              clean: true,
              connectTimeout: 30_000
            })
          )
        );
        into.push(...batch);
      }
    };
    await connectAll(devices, clients);

    // recordedAt: one clock for all devices and both transports, 1 ms per reading: fresh and unique.
    let clock = Date.now() - 20 * 3_600_000;
    let sequence = 0;
    const nextBody = () => {
      const n = sequence++;
      return `{"temperatureCelsius":${n % 499 < 3 && !NO_ALERTS ? 35.5 : 21 + (n % 50) / 10},"humidity":${40 + (n % 20)},"batteryLevel":0.9,"recordedAt":"${new Date(clock++).toISOString()}"}`;
    };
    const topics = devices.map((d) => `devices/${d.deviceId}/readings`);

    const mqttCpuMsPerReading: number[] = [];
    const clientCpuMsPerReading: number[] = [];
    const postgresCpuMsPerReading: number[] = [];
    const mqttRound = async () => {
      const cpu0 = [processCpuSeconds(broker!.child.pid!), postgresCpuSeconds()];
      const client0 = process.cpuUsage();
      let acked = 0;
      let failed = 0;
      const deadline = performance.now() + SECONDS * 1000;
      const t0 = performance.now();
      await Promise.all(
        clients.map(async (client, i) => {
          while (performance.now() < deadline) {
            try {
              await client.publishAsync(topics[i]!, nextBody(), {qos: 1});
              acked++;
            } catch {
              failed++;
              return;
            }
          }
        })
      );
      const seconds = (performance.now() - t0) / 1000;
      const cpu1 = [processCpuSeconds(broker!.child.pid!), postgresCpuSeconds()];
      const client1 = process.cpuUsage(client0);
      clientCpuMsPerReading.push((client1.user + client1.system) / 1000 / acked);
      if (failed > 0) throw new Error(`mqtt: ${failed} publishes failed`);
      if (cpu0[0] !== undefined && cpu1[0] !== undefined) mqttCpuMsPerReading.push(((cpu1[0] - cpu0[0]) * 1000) / acked);
      if (cpu0[1] !== undefined && cpu1[1] !== undefined) postgresCpuMsPerReading.push(((cpu1[1] - cpu0[1]) * 1000) / acked);
      return acked / seconds;
    };

    const tokens = await Promise.all(devices.map((_, i) => jwks.token(TENANT, ["device", "operator"], `bench-device-${i}`)));
    const paths = devices.map((d) => `/api/v1/devices/${d.deviceId}/readings`);
    const httpRound = async () => {
      const result = await autocannon({
        url: api.baseUrl,
        connections: HTTP_CONNECTIONS,
        duration: SECONDS,
        timeout: 10,
        requests: [
          {
            method: "POST",
            setupRequest: (request) => {
              const i = Math.floor(Math.random() * DEVICES);
              return Object.assign(request, {
                path: paths[i]!,
                headers: {"content-type": "application/json", authorization: `Bearer ${tokens[i]!}`},
                body: nextBody()
              });
            }
          }
        ]
      });
      const failed = result.non2xx + result.errors + result.timeouts;
      if (failed > 0) throw new Error(`http: ${failed} failed requests (${JSON.stringify(result.statusCodeStats)})`);
      const rate = result["2xx"] / result.duration;
      copyRates.push(copy(Math.round(rate * SECONDS * 10)));
      return rate;
    };
    // COPY of as many rows as the MQTT clients acknowledge in a round (about), one connection.
    const copyRates: number[] = [];
    let copyRound = 0;
    const copy = (rows: number) => {
      const lines: string[] = [];
      for (let k = 0; k < rows; k++) lines.push(`${devices[k % DEVICES]!.deviceId},21.5,45,0.9,${new Date(clock++).toISOString()}`);
      return copyRowsPerSecond(url, `"${COPY_SCHEMA}"."temperature_readings"`, lines, join(dir, `copy-${copyRound++}.csv`));
    };

    console.log(
      `${NAME}: ${DEVICES} devices (device key and one alert rule each), ${SECONDS} s per round, ${ROUNDS} rounds + 1 warm-up; load ${loadAverage()}`
    );
    console.log(
      `  subject: MQTT-only process (npm run mqtt), ${DEVICES} mqtt.js connections (3.1.1), single readings at QoS 1, one in flight per device, PUBACK after commit`
    );
    console.log(
      `  baseline: the API process, POST /devices/:id/readings (one reading), autocannon ${HTTP_CONNECTIONS} connections (the ingest-single subject)`
    );
    console.log(`  also: psql \\copy into ${COPY_SCHEMA}.temperature_readings (${copyTable}), one connection, ~10× an HTTP round's rows`);
    await runPart({
      name: NAME,
      unit: "readings/s",
      target: ">= 10",
      rounds: ROUNDS,
      subject: {label: `MQTT QoS 1, ${DEVICES} devices`, run: mqttRound},
      baseline: {label: `HTTP single posts, ${HTTP_CONNECTIONS} connections`, run: httpRound},
      notes: () => ({
        "COPY rows/s, median (one connection)": median(copyRates).toFixed(0),
        "CPU per acknowledged reading, median ms (MQTT process / the 1,000 mqtt.js clients of this process / all postgres processes, unreliable when other work's backends come and go)": `${median(mqttCpuMsPerReading).toFixed(3)} / ${median(clientCpuMsPerReading).toFixed(3)} / ${postgresCpuMsPerReading.some((v) => v < 0) ? "n/a" : median(postgresCpuMsPerReading).toFixed(3)}`,
        "wall time s": ((Date.now() - started) / 1000).toFixed(0)
      }),
      finish: async ({value}) => {
        const half = Math.max(1, Math.floor(value / 2));
        // Where the time goes: the server's own measure (PUBLISH received → PUBACK written, and the
        // group commit until commit) from its metrics, and this client process's event-loop delay.
        const scrape0 = await broker!.metrics();
        const loopDelay = monitorEventLoopDelay({resolution: 5});
        loopDelay.enable();
        const paced = await pacedPublish(clients, topics, half, P99_SECONDS, nextBody);
        loopDelay.disable();
        const scrape1 = await broker!.metrics();
        if (paced.failed > 0) throw new Error(`mqtt at half rate: ${paced.failed} of ${paced.sent} publishes failed`);
        const p99 = percentile(paced.latenciesMs, 99);
        console.log(
          `  p99 run: ${paced.sent} messages in ${paced.seconds.toFixed(1)} s, ${half}/s (half the median rate) over ${DEVICES} connections; p50 ${percentile(paced.latenciesMs, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (client-measured, from when each was due)`
        );
        const [ack0, ack1] = [histogramBuckets(scrape0, "mqtt_ack_seconds"), histogramBuckets(scrape1, "mqtt_ack_seconds")];
        const [commit0, commit1] = [histogramBuckets(scrape0, "mqtt_commit_seconds"), histogramBuckets(scrape1, "mqtt_commit_seconds")];
        const ms = (seconds: number) => (Number.isFinite(seconds) ? `≤ ${(seconds * 1000).toFixed(0)} ms` : "> 5 s");
        console.log(
          `  where it goes: server PUBLISH→PUBACK p50 ${ms(bucketQuantile(ack0, ack1, 0.5))}, p99 ${ms(bucketQuantile(ack0, ack1, 0.99))}; ` +
            `group commit (sealed → committed) p50 ${ms(bucketQuantile(commit0, commit1, 0.5))}, p99 ${ms(bucketQuantile(commit0, commit1, 0.99))}; ` +
            `client event-loop delay p50 ${(loopDelay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms, max ${(loopDelay.max / 1e6).toFixed(0)} ms`
        );
        for (const client of clients.splice(0)) client.end(true);
        await broker!.stop();

        // RSS per connection: a fresh process, idle, then 5,000 idle connections.
        broker = await startMqttProcess({url, analyticsUrl});
        const idleDevices = [...devices, ...(await createDevices(IDLE_CONNECTIONS - DEVICES, "BENCH-MQTT-IDLE-", false))];
        await new Promise((r) => setTimeout(r, 2_000));
        const before = rssKb(broker.child.pid!)!;
        const idle: MqttClient[] = [];
        const url2 = `mqtt://127.0.0.1:${broker.port}`;
        for (let i = 0; i < idleDevices.length; i += 100) {
          idle.push(
            ...(await Promise.all(
              idleDevices.slice(i, i + 100).map((d) =>
                mqtt.connectAsync(url2, {
                  username: d.keyId,
                  password: d.key,
                  reconnectPeriod: 0,
                  keepalive: 60,
                  clean: true,
                  connectTimeout: 30_000
                })
              )
            ))
          );
        }
        await new Promise((r) => setTimeout(r, 3_000));
        const after = rssKb(broker.child.pid!)!;
        const perConnection = (after - before) / idle.length;
        console.log(
          `  RSS of the MQTT process: ${(before / 1024).toFixed(1)} MB idle, ${(after / 1024).toFixed(1)} MB with ${idle.length} idle connections: ${perConnection.toFixed(1)} kB per connection`
        );
        for (const client of idle) client.end(true);
        return {
          fields: {
            copy: median(copyRates).toFixed(0),
            half_rate: half,
            p99_ms: p99.toFixed(1),
            p99_target: `<${P99_TARGET_MS}`,
            rss_kb_per_connection: perConnection.toFixed(1),
            rss_target: `<=${RSS_TARGET_KB}`
          },
          met: p99 < P99_TARGET_MS && perConnection <= RSS_TARGET_KB
        };
      }
    });
    console.log(`  load at the end: ${loadAverage()}`);
  } finally {
    for (const client of clients) client.end(true);
    await broker?.stop();
    await api.stop();
    await jwks.close();
    rmSync(dir, {recursive: true, force: true});
  }
}

/** Open loop: one message every 1/rate s, round-robin over the connections; latency from when it was due to its PUBACK. */
function pacedPublish(clients: MqttClient[], topics: string[], rate: number, seconds: number, body: () => string) {
  return pacedOpenLoop(rate, seconds, (i) =>
    clients[i % clients.length]!.publishAsync(topics[i % clients.length]!, body(), {qos: 1}).then(() => true)
  );
}

function loadAverage(): string {
  try {
    return execFileSync("cat", ["/proc/loadavg"], {encoding: "utf8"}).split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

runMain(main);
