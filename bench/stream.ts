/**
 * stream: the live stream (docs/api.md, "Live stream") with 1,000 concurrent SSE clients on one tenant.
 *
 *   npm run bench:stream
 *
 * Subject: the compiled API as its own process (production mode, STREAM_MAX_PER_TENANT=5000); the
 * clients are raw HTTP connections from this process (one socket each), the events are
 * `reading.created` of readings posted over HTTP.
 *
 * 1. stream-fanout: p99 of the time from a write's response to its event's arrival at each of
 *    CLIENTS clients watching one device, at FANOUT_RATE writes/s. Baseline: writes of another
 *    device, which one client watches (the CLIENTS stay connected). Target: p99 <= 500 ms.
 * 2. stream-memory: the API process' RSS per connected stream (after CLIENTS connected and got a
 *    few events, minus before), in kB. Baseline: CLIENTS idle keep-alive connections that made one
 *    GET /health/live each (what any connection costs). Target: <= 20 kB per stream.
 * 3. stream-ingest: single-reading POSTs per second (autocannon, INGEST_CONNECTIONS connections,
 *    random device of DEVICES) with CLIENTS streams connected, each watching one device (a
 *    dashboard each), against the same load with none connected. Target: ratio >= 0.9.
 * Environment: BENCH_DATABASE_URL, REDIS_URL, BENCH_ROUNDS (default 3).
 */
import {readFileSync} from "node:fs";
import http from "node:http";
import autocannon from "autocannon";
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {runMain, runPart} from "./lib/harness.js";
import {callJson, httpClient, pacedOpenLoop, percentile} from "./lib/ingest.js";

const TENANT = "bench_stream";
const CLIENTS = Number(process.env.BENCH_STREAM_CLIENTS ?? 1_000);
const DEVICES = 1_000;
const FANOUT_RATE = 5;
const FANOUT_SECONDS = 4;
const INGEST_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const INGEST_CONNECTIONS = 20;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** A raw SSE connection: records when each reading's event arrived (by reading id). */
interface Stream {
  request: http.ClientRequest;
  open: Promise<void>;
  events: number;
}

function openStream(baseUrl: string, path: string, authorization: string, arrivals?: Map<string, number[]>): Stream {
  const stream = {events: 0} as Stream;
  stream.open = new Promise<void>((resolve, reject) => {
    stream.request = http.get(`${baseUrl}${path}`, {agent: false, headers: {authorization, accept: "text/event-stream"}}, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`stream answered ${res.statusCode}`));
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        const now = performance.now();
        for (const match of chunk.matchAll(/"reading":\{"id":"([^"]+)"/g)) {
          stream.events++;
          if (arrivals) {
            const list = arrivals.get(match[1]!);
            if (list) list.push(now);
            else arrivals.set(match[1]!, [now]);
          }
        }
      });
      resolve();
    });
    stream.request.on("error", (error) => reject(error));
  });
  return stream;
}

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const started = Date.now();
  const {url, analyticsUrl} = await freshDatabases("st_bench_stream");
  const jwks = await startJwks();
  const api = await startApi({
    url,
    analyticsUrl,
    jwksUri: jwks.jwksUri,
    extra: {STREAM_MAX_PER_TENANT: "5000", LOG_LEVEL: "error"}
  });
  const client = httpClient(api.baseUrl, 16);
  const pid = api.child.pid!;
  try {
    const authorization = `Bearer ${await jwks.token(TENANT, ["user", "admin"])}`;
    const admin = {authorization};
    const me = await callJson<{id: string}>(client, admin, "GET", "/api/v1/me", undefined, 200);
    const devices = await withClient(url, async (db) => {
      const {rows} = await db.query<{id: string}>(
        `insert into "${TENANT}"."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
         select gen_random_uuid(), now(), now(), 'BENCH-STREAM-' || g, 'BENCH-STREAM-' || g, $1 from generate_series(1, $2) g returning "id"`,
        [me.id, DEVICES]
      );
      return rows.map((row) => row.id);
    });
    let clock = Date.now() - 6 * 3_600_000;
    const post = async (deviceId: string) => {
      const res = await client.request(
        "POST",
        `/api/v1/devices/${deviceId}/readings`,
        admin,
        JSON.stringify({temperatureCelsius: 21.5, recordedAt: new Date(clock++).toISOString()})
      );
      if (res.status !== 201) throw new Error(`POST reading → ${res.status} ${res.body.slice(0, 200)}`);
      return {id: (JSON.parse(res.body) as {reading: {id: string}}).reading.id, respondedAt: performance.now()};
    };
    const connectAll = async (paths: string[], arrivals?: Map<string, number[]>) => {
      const streams: Stream[] = [];
      // In waves of 100: a thousand connects at once would measure the accept queue.
      for (let i = 0; i < paths.length; i += 100) {
        const wave = paths.slice(i, i + 100).map((path) => openStream(api.baseUrl, path, authorization, arrivals));
        await Promise.all(wave.map((s) => s.open));
        streams.push(...wave);
      }
      await sleep(500);
      return streams;
    };
    const closeAll = async (streams: Stream[]) => {
      for (const s of streams) s.request.destroy();
      await sleep(1_000);
    };
    console.log(`stream: ${CLIENTS} SSE clients on one tenant of ${DEVICES} devices; ${ROUNDS} rounds + 1 warm-up per part`);

    // 1. Fan-out: CLIENTS watching device 0 (one dashboard each), one more watching device 1.
    const arrivals = new Map<string, number[]>();
    const watchers = await connectAll(
      Array.from({length: CLIENTS}, () => `/api/v1/stream?types=reading.created&deviceId=${devices[0]}`),
      arrivals
    );
    const single = await connectAll([`/api/v1/stream?types=reading.created&deviceId=${devices[1]}`], arrivals);
    const fanout = async (deviceId: string, receivers: number) => {
      const written: {id: string; respondedAt: number}[] = [];
      await pacedOpenLoop(FANOUT_RATE, FANOUT_SECONDS, async () => {
        written.push(await post(deviceId));
        return true;
      });
      const deadline = Date.now() + 10_000;
      while (written.some((w) => (arrivals.get(w.id)?.length ?? 0) < receivers) && Date.now() < deadline) await sleep(20);
      const latencies = written.flatMap((w) => (arrivals.get(w.id) ?? []).map((at) => at - w.respondedAt));
      const missing = written.length * receivers - latencies.length;
      if (missing > 0) throw new Error(`${missing} of ${written.length * receivers} arrivals missing`);
      return latencies;
    };
    const fanoutP50s: number[] = [];
    await runPart({
      name: "stream-fanout",
      unit: "ms",
      target: "<= 500",
      targetOn: "value",
      rounds: ROUNDS,
      subject: {
        label: `write response → ${CLIENTS} clients, p99`,
        run: async () => {
          const latencies = await fanout(devices[0]!, CLIENTS);
          fanoutP50s.push(percentile(latencies, 50));
          return percentile(latencies, 99);
        }
      },
      baseline: {
        label: `write response → 1 client, p99 (${CLIENTS} others connected)`,
        run: async () => percentile(await fanout(devices[1]!, 1), 99)
      },
      notes: () => ({
        [`p50 ms per round, ${CLIENTS} clients`]: fanoutP50s.map((p) => p.toFixed(1)).join(", "),
        "events written per round": FANOUT_RATE * FANOUT_SECONDS
      })
    });
    await closeAll([...watchers, ...single]);

    // 2. Memory per stream.
    const idleAgents: http.Agent[] = [];
    await runPart({
      name: "stream-memory",
      unit: "kB per connection",
      target: "<= 20",
      targetOn: "value",
      rounds: ROUNDS,
      subject: {
        label: `RSS per SSE stream, ${CLIENTS} connected`,
        run: async () => {
          const before = rssKb(pid);
          const streams = await connectAll(Array.from({length: CLIENTS}, () => "/api/v1/stream"));
          for (let i = 0; i < 3; i++) await post(devices[0]!);
          await sleep(1_000);
          const after = rssKb(pid);
          await closeAll(streams);
          return (after - before) / CLIENTS;
        }
      },
      baseline: {
        label: `RSS per idle keep-alive connection, ${CLIENTS}`,
        run: async () => {
          const before = rssKb(pid);
          const agent = new http.Agent({keepAlive: true, maxSockets: CLIENTS});
          idleAgents.push(agent);
          await Promise.all(
            Array.from(
              {length: CLIENTS},
              () =>
                new Promise<void>((resolve, reject) =>
                  http
                    .get(`${api.baseUrl}/health/live`, {agent}, (res) => {
                      res.resume();
                      res.on("end", () => resolve());
                    })
                    .on("error", reject)
                )
            )
          );
          await sleep(1_000);
          const after = rssKb(pid);
          agent.destroy();
          await sleep(1_000);
          return (after - before) / CLIENTS;
        }
      }
    });

    // 3. Ingest with and without the streams.
    let sequence = 0;
    const load = () =>
      autocannon({
        url: api.baseUrl,
        connections: INGEST_CONNECTIONS,
        duration: INGEST_SECONDS,
        timeout: 10,
        requests: [
          {
            method: "POST",
            setupRequest: (request) =>
              Object.assign(request, {
                path: `/api/v1/devices/${devices[sequence++ % DEVICES]}/readings`,
                headers: {"content-type": "application/json", authorization},
                body: `{"temperatureCelsius":21.5,"recordedAt":"${new Date(clock++).toISOString()}"}`
              })
          }
        ]
      });
    const rate = (result: Awaited<ReturnType<typeof autocannon>>) => {
      const failed = result.non2xx + result.errors + result.timeouts;
      if (failed > 0) throw new Error(`${failed} failed requests (${JSON.stringify(result.statusCodeStats)})`);
      return result["2xx"] / result.duration;
    };
    let delivered = 0;
    await runPart({
      name: "stream-ingest",
      unit: "readings/s",
      target: ">= 0.9",
      rounds: ROUNDS,
      subject: {
        label: `POST /readings, ${CLIENTS} streams (one device each)`,
        run: async () => {
          const streams = await connectAll(devices.slice(0, CLIENTS).map((id) => `/api/v1/stream?deviceId=${id}`));
          const result = rate(await load());
          await sleep(500);
          delivered += streams.reduce((sum, s) => sum + s.events, 0);
          await closeAll(streams);
          return result;
        }
      },
      baseline: {label: "POST /readings, no stream", run: async () => rate(await load())},
      notes: () => ({
        "reading.created events the streams received (all subject rounds)": delivered,
        "wall time s": ((Date.now() - started) / 1000).toFixed(0)
      })
    });
  } finally {
    client.close();
    await api.stop();
    await jwks.close();
  }
}

runMain(main);
