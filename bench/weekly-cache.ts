/**
 * weekly-cache: latency of GET /api/v1/devices/:id/stats/weekly served from Redis, next to the
 * same request with the cache entry removed just before it (so it reads Postgres and re-caches).
 *
 *   npm run bench:weekly-cache      (BENCH_REQUESTS per round, default 200)
 *
 * Its own databases (st_bench_weekly*), the API as its own process (production mode, real RS256
 * token from a loopback JWKS), one device with a week of DailyStats. Latency is client-side over
 * keep-alive; the cache key is deleted outside the timed section.
 */
import {Redis} from "ioredis";
import {startApi} from "./lib/app.js";
import {startJwks} from "./lib/auth.js";
import {freshDatabases, withClient} from "./lib/db.js";
import {median, runMain, runPart} from "./lib/harness.js";

const TENANT = "bench_weekly";
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

async function main() {
  const {url, analyticsUrl} = await freshDatabases("st_bench_weekly");
  const jwks = await startJwks();
  const api = await startApi({url, analyticsUrl, jwksUri: jwks.jwksUri, extra: {RUN_WORKERS: "false"}});
  const redis = new Redis(REDIS_URL);
  try {
    const auth = {Authorization: `Bearer ${await jwks.token(TENANT)}`, "content-type": "application/json"};
    const device = (await (await fetch(`${api.baseUrl}/api/v1/devices`, {method: "POST", headers: auth, body: JSON.stringify({serialNumber: "WEEKLY-1"})})).json()) as {id: string};
    await withClient(analyticsUrl, (db) =>
      db.query(
        `insert into daily_stats (tenant_id, device_id, date, avg_temperature_celsius, min_temperature_celsius, max_temperature_celsius, reading_count)
         select $1, $2, (current_date - d), 21 + d * 0.1, 18, 25, 2880 from generate_series(0, 6) d`,
        [TENANT, device.id]
      )
    );
    const path = `${api.baseUrl}/api/v1/devices/${device.id}/stats/weekly`;
    const key = `stats:weekly:${TENANT}:${device.id}`;
    const timed = async (url = path) => {
      const t0 = process.hrtime.bigint();
      const res = await fetch(url, {headers: auth});
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${url} → ${res.status}`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    let hits = 0;
    // The floor under any cached answer: a request that does nothing (public, no token, no I/O).
    const floors: number[] = [];
    await runPart({
      name: "weekly-cache",
      unit: `ms per request, median of ${REQUESTS}`,
      target: "<= 0.10",
      warmupRounds: 1,
      rounds: 5,
      subject: {
        label: "cached (Redis hit)",
        run: async () => {
          await timed(); // make sure the entry is there
          const samples = [];
          for (let i = 0; i < REQUESTS; i++) samples.push(await timed());
          hits += REQUESTS;
          const floor = [];
          for (let i = 0; i < REQUESTS / 4; i++) floor.push(await timed(`${api.baseUrl}/health/live`));
          floors.push(median(floor));
          return median(samples);
        }
      },
      baseline: {
        label: "uncached (entry deleted before each request)",
        run: async () => {
          const samples = [];
          for (let i = 0; i < REQUESTS; i++) {
            await redis.del(key);
            samples.push(await timed());
          }
          return median(samples);
        }
      },
      notes: () => ({
        "cached requests timed": hits,
        "rows per summary": 7,
        "floor: GET /health/live (public, no I/O) ms, median of the rounds": median(floors).toFixed(2)
      })
    });
  } finally {
    redis.disconnect();
    await api.stop();
    await jwks.close();
  }
}

runMain(main);
