/**
 * weekly-cache: what the Redis cache saves on GET /api/v1/devices/:id/stats/weekly.
 *
 *   npm run bench:weekly-cache      (BENCH_REQUESTS per round, default 200)
 *
 * Three series, measured in the same rounds (order rotated), client-side over keep-alive, median
 * latency per round:
 * - subject: the request served from Redis (checked: the entry's TTL only goes down over the
 *   round, so no request of it missed and refilled it);
 * - baseline: the same request uncached — the entry is deleted before each request, outside the
 *   timed section, and each request is checked to have missed (the key absent before it) and to
 *   have filled the cache (present after it);
 * - floor: GET /api/v1/me with the same token — the HTTP round trip and what every authenticated
 *   request pays before its handler and no cache can remove: the token's verification, the
 *   tenant's check and the caller's user check. /me answers the caller's row from CallerUsers,
 *   the very cache the user check just read (modules/users), so beyond that pipeline it costs a
 *   serialization; no authenticated route is cheaper (GET /health/live, the floor before, skips
 *   the token, tenant and user checks, which made the cache's share look larger than it is).
 * RESULT ratio = (cached − floor) / (uncached − floor): the share of what the cache can
 * influence that a hit still costs; target <= 0.10.
 *
 * Its own databases (st_bench_weekly*), the API as its own process (production mode, real RS256
 * token from a loopback JWKS), one device with a week of DailyStats. The cache key is the app's
 * own (`weeklyKey`), so the check follows any change to it.
 */
import {Redis} from "ioredis";
import {weeklyKey} from "../src/modules/stats/weekly-stats.cache.js";
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
    const device = (await (
      await fetch(`${api.baseUrl}/api/v1/devices`, {method: "POST", headers: auth, body: JSON.stringify({serialNumber: "WEEKLY-1"})})
    ).json()) as {id: string};
    await withClient(analyticsUrl, (db) =>
      db.query(
        `insert into daily_stats (tenant_id, device_id, date, avg_temperature_celsius, min_temperature_celsius, max_temperature_celsius, reading_count)
         select $1, $2, (current_date - d), 21 + d * 0.1, 18, 25, 2880 from generate_series(0, 6) d`,
        [TENANT, device.id]
      )
    );
    const path = `${api.baseUrl}/api/v1/devices/${device.id}/stats/weekly`;
    const me = `${api.baseUrl}/api/v1/me`;
    const key = weeklyKey(TENANT, device.id);
    const timed = async (target: string, headers: Record<string, string> = auth) => {
      const t0 = process.hrtime.bigint();
      const res = await fetch(target, {headers});
      const body = await res.text();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (res.status !== 200) throw new Error(`${target} → ${res.status}`);
      return {ms, body};
    };
    const keyIs = async (present: boolean, when: string) => {
      if ((await redis.exists(key)) !== (present ? 1 : 0))
        throw new Error(`cache key ${key} ${present ? "absent" : "present"} ${when}: the request was not what this series measures`);
    };

    // The caller's row exists before the rounds: /me then never inserts.
    await timed(me);

    // Hits and misses answer the same body (a hit that answered something else would be no hit).
    await redis.del(key);
    const uncachedBody = (await timed(path)).body;
    await keyIs(true, "after a miss");
    if ((await timed(path)).body !== uncachedBody) throw new Error("a cached answer differs from the uncached one");

    let hits = 0;
    let misses = 0;
    await runPart({
      name: "weekly-cache",
      unit: `ms per request, median of ${REQUESTS}`,
      target: "<= 0.10",
      warmupRounds: 1,
      rounds: 5,
      subject: {
        label: "cached (Redis hit)",
        run: async () => {
          await timed(path); // make sure the entry is there
          await keyIs(true, "before the cached requests");
          // A miss would fill the entry again (SET … EX resets its TTL): a TTL that only went down
          // over the round means every request of it was a hit.
          const ttlBefore = await redis.pttl(key);
          const samples = [];
          for (let i = 0; i < REQUESTS; i++) samples.push((await timed(path)).ms);
          const ttlAfter = await redis.pttl(key);
          if (!(ttlAfter > 0 && ttlAfter <= ttlBefore))
            throw new Error(`cache entry refilled during the cached requests (TTL ${ttlBefore} → ${ttlAfter} ms): some of them missed`);
          hits += REQUESTS;
          return median(samples);
        }
      },
      baseline: {
        label: "uncached (entry deleted before each request)",
        run: async () => {
          const samples = [];
          for (let i = 0; i < REQUESTS; i++) {
            await redis.del(key);
            await keyIs(false, "before an uncached request");
            samples.push((await timed(path)).ms);
            await keyIs(true, "after an uncached request (it should have filled the cache)");
          }
          misses += REQUESTS;
          return median(samples);
        }
      },
      floor: {
        label: "floor: GET /api/v1/me (authenticated)",
        run: async () => {
          const samples = [];
          for (let i = 0; i < REQUESTS; i++) samples.push((await timed(me)).ms);
          return median(samples);
        }
      },
      notes: () => ({
        "cached requests, warm-up included (every round checked all hits)": hits,
        "uncached requests, warm-up included (each checked a miss that filled the cache)": misses,
        "rows per summary": 7
      })
    });
  } finally {
    redis.disconnect();
    await api.stop();
    await jwks.close();
  }
}

runMain(main);
