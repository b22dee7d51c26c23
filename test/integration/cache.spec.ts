import {PlatformTest} from "@tsed/common";
import {Redis} from "ioredis";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {DailyStatsRecomputeService} from "../../src/modules/stats/daily-stats-recompute.service.js";
import {DailyStatsRepository} from "../../src/modules/stats/daily-stats.repository.js";
import {DirtyDaysRepository} from "../../src/modules/stats/dirty-days.repository.js";
import {addDays} from "../../src/common/local-time.js";
import {BUMP_PER_COMMAND, WeeklyStatsCache, weeklyKey} from "../../src/modules/stats/weekly-stats.cache.js";
import {RedisClient} from "../../src/platform/cache/redis.provider.js";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";
import {zoneFarFromMidnight} from "../helpers/clock.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";
import {
  analyticsDb,
  closeDbs,
  countStatements,
  createDevice,
  postReadings,
  setTimezone,
  tenantDb,
  withDailyStatsTrigger
} from "../helpers/stats-fixtures.js";

const DAY = 86_400_000;

describe("weekly stats cache (Redis)", () => {
  let api: Api;
  let redis: Redis;
  beforeAll(async () => {
    api = await startTestServer();
    redis = new Redis(process.env.REDIS_URL!);
  });
  afterAll(async () => {
    redis.disconnect();
    await stopTestServer();
    await closeDbs();
  });

  /**
   * A tenant with one device, in a zone where the clock (read once, here) is about local noon:
   * "today" for the test and for the server stay the same local day for hours, whatever time the
   * suite runs at. `at(days, minutes)` is that many days and minutes before the clock reading,
   * on local day `addDays(today, -days)`.
   */
  async function setup(label: string) {
    const now = new Date();
    const {zone, localDate: today} = zoneFarFromMidnight(now);
    const tenant = newTenant(label);
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, `${label}-1`);
    await setTimezone(tenant, zone);
    const at = (days: number, minutes = 0) => new Date(now.getTime() - days * DAY - minutes * 60_000).toISOString();
    const post = (temperatureCelsius: number, recordedAt: string) => postReadings(api, auth, device, [{temperatureCelsius, recordedAt}]);
    return {tenant, auth, device, zone, today, at, post};
  }

  it("serves a hit from Redis without any SQL, and shows a write as soon as it committed", async () => {
    const {tenant, auth, device, zone, today, at, post} = await setup("hit");
    const threeDaysAgo = addDays(today, -3);
    await post(19, at(3));
    await post(21, at(0, 2));

    const miss = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    expect(miss.status).toBe(200);
    expect(miss.body).toMatchObject({
      deviceId: device,
      timezone: zone,
      from: addDays(today, -6),
      to: today,
      summary: {readingCount: 2, daysWithData: 2, minTemperatureCelsius: 19, maxTemperatureCelsius: 21}
    });
    expect(miss.body.days.map((d: {date: string}) => d.date)).toEqual([threeDaysAgo, today]);
    expect(await redis.exists(weeklyKey(tenant, device))).toBe(1);

    // Changed behind the application's back: a hit must not see it (it is served from Redis).
    await analyticsDb().query(
      `update "daily_stats" set "max_temperature_celsius" = 99 where "tenant_id" = $1 and "device_id" = $2 and "date" = $3`,
      [tenant, device, threeDaysAgo]
    );
    const hit = await countStatements(() => api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth));
    expect(hit.statements).toEqual([]);
    expect(hit.result.body).toEqual(miss.body);

    // A committed write invalidates: the next read is computed again (and sees the database as it is).
    await post(23, at(0, 1));
    expect(await redis.exists(weeklyKey(tenant, device))).toBe(0);
    const after = await countStatements(() => api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth));
    expect(after.statements.length).toBeGreaterThan(0);
    expect(after.result.body.summary).toMatchObject({readingCount: 3, maxTemperatureCelsius: 99});
    expect(after.result.body.days.at(-1)).toMatchObject({date: today, readingCount: 2, maxTemperatureCelsius: 23});
  });

  it("is invalidated by a nightly recompute that changes the device's stats, and kept by one that changes nothing", async () => {
    const {tenant, auth, device, today, at, post} = await setup("nightly");
    const yesterday = addDays(today, -1);
    await post(20, at(1, 60));
    const refresher = PlatformTest.get<DailyStatsRecomputeService>(DailyStatsRecomputeService);

    await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    const unchanged = await refresher.recomputeDay(tenant, yesterday);
    expect(unchanged).toMatchObject({devices: 1, readings: 1, statsWritten: 0, statsDeleted: 0});
    expect(await redis.exists(weeklyKey(tenant, device))).toBe(1);

    // A reading whose refresh failed (analytics refused it): stored, but neither in the stats nor
    // in the cache's view of them, which still holds the old summary. The nightly job catches up.
    await withDailyStatsTrigger({tenant, effect: "fail"}, () => post(30, at(1)));
    expect(await redis.exists(weeklyKey(tenant, device))).toBe(1);
    expect((await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth)).body.summary).toMatchObject({readingCount: 1});
    const changed = await refresher.recomputeDay(tenant, yesterday);
    expect(changed).toMatchObject({statsWritten: 1});
    expect(await redis.exists(weeklyKey(tenant, device))).toBe(0);
    const weekly = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    expect(weekly.body.summary).toMatchObject({readingCount: 2, maxTemperatureCelsius: 30, avgTemperatureCelsius: 25});
  });

  it("is invalidated by the repair of a marked day even when the day's rows were right: a merge that committed but answered an error", async () => {
    const {tenant, auth, device, today, at, post} = await setup("repair");
    await post(20, at(0, 2));
    await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    // What such a write leaves: a reading stored and merged into its day's row, both committed,
    // and the invalidation that follows the merge never sent; its day marked for the repair.
    const {rows} = await tenantDb().query<{xid: string}>(
      `insert into ${quoteTenantSchema(tenant)}."temperature_readings" ("device_id", "temperature_celsius", "recorded_at")
       values ($1, 30, $2) returning pg_current_xact_id()::text as "xid"`,
      [device, at(0, 1)]
    );
    const merged = {
      deviceId: device,
      xid: rows[0]!.xid,
      date: today,
      readingCount: 1,
      avgTemperatureCelsius: 30,
      minTemperatureCelsius: 30,
      maxTemperatureCelsius: 30
    };
    await PlatformTest.get<DailyStatsRepository>(DailyStatsRepository).merge(new Map([[tenant, [merged]]]));
    await PlatformTest.get<DirtyDaysRepository>(DirtyDaysRepository).mark(tenant, [today]);
    expect((await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth)).body.summary).toMatchObject({readingCount: 1});

    const repair = await PlatformTest.get<DailyStatsRecomputeService>(DailyStatsRecomputeService).repairDirtyDays();

    expect(repair.repaired).toBeGreaterThanOrEqual(1);
    expect(await redis.exists(weeklyKey(tenant, device))).toBe(0);
    const weekly = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    expect(weekly.body.summary).toMatchObject({readingCount: 2, maxTemperatureCelsius: 30});
  });

  it("is invalidated by a reading posted through the ingestion API", async () => {
    const {tenant, auth, device, at} = await setup("post");
    const first = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    expect(first.body.summary).toEqual({
      readingCount: 0,
      daysWithData: 0,
      avgTemperatureCelsius: null,
      minTemperatureCelsius: null,
      maxTemperatureCelsius: null
    });
    expect(await redis.exists(weeklyKey(tenant, device))).toBe(1);
    const posted = await api
      .post(`/api/v1/devices/${device}/readings`)
      .set(auth)
      .send({temperatureCelsius: 21.5, recordedAt: at(0, 1)});
    expect(posted.status).toBe(201);
    expect(await redis.exists(weeklyKey(tenant, device))).toBe(0);
    const second = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    expect(second.body.summary).toMatchObject({readingCount: 1, avgTemperatureCelsius: 21.5});
  });

  it("ignores a value filled from a read that raced with an invalidation", async () => {
    const cache = PlatformTest.get<WeeklyStatsCache>(WeeklyStatsCache);
    const tenant = newTenant("race");
    const device = "6b1f3c1e-0000-4000-8000-000000000001";
    // A reader misses and reads the database...
    const reader = await cache.get<string>(tenant, device);
    expect(reader).toEqual({body: undefined, gen: "0"});
    // ...a write commits and invalidates...
    await cache.invalidate(tenant, [device]);
    // ...then the reader stores what it read before the write.
    await cache.set(tenant, device, reader!.gen, "stale summary");
    expect(await cache.get<string>(tenant, device)).toEqual({body: undefined, gen: "1"});
    await cache.set(tenant, device, "1", "fresh summary");
    expect(await cache.get<string>(tenant, device)).toEqual({body: "fresh summary", gen: "1"});
  });

  it("invalidates the devices of several tenants at once: each generation bumped and kept a day, each value gone, no other touched", async () => {
    const cache = PlatformTest.get<WeeklyStatsCache>(WeeklyStatsCache);
    const [first, second] = [newTenant("many_a"), newTenant("many_b")];
    const [d1, d2, untouched] = [
      "6b1f3c1e-0000-4000-8000-00000000000a",
      "6b1f3c1e-0000-4000-8000-00000000000b",
      "6b1f3c1e-0000-4000-8000-00000000000c"
    ];
    for (const [tenant, device] of [
      [first, d1],
      [first, d2],
      [first, untouched],
      [second, d1]
    ] as const)
      await cache.set(tenant, device, "0", `summary of ${device}`);
    await cache.invalidate(first, [d2]);
    await cache.invalidateMany(
      new Map([
        [first, [d1, d2]],
        [second, [d1]]
      ])
    );
    expect(await cache.get<string>(first, d1)).toEqual({body: undefined, gen: "1"});
    expect(await cache.get<string>(first, d2)).toEqual({body: undefined, gen: "2"});
    expect(await cache.get<string>(second, d1)).toEqual({body: undefined, gen: "1"});
    expect(await cache.get<string>(first, untouched)).toEqual({body: `summary of ${untouched}`, gen: "0"});
    expect(await redis.exists(weeklyKey(first, d1), weeklyKey(first, d2), weeklyKey(second, d1))).toBe(0);
    for (const tenant of [first, second]) {
      const ttl = await redis.ttl(`stats:weekly-gen:${tenant}:${d1}`);
      expect(ttl).toBeGreaterThan(23 * 3600);
      expect(ttl).toBeLessThanOrEqual(24 * 3600);
    }
  });

  it("invalidates many devices in scripts of at most BUMP_PER_COMMAND each (Redis is not held for all of them), every one bumped", async () => {
    const cache = PlatformTest.get<WeeklyStatsCache>(WeeklyStatsCache);
    const tenant = newTenant("many_chunks");
    const devices = Array.from({length: BUMP_PER_COMMAND + 1}, (_, i) => `6b1f3c1e-0000-4000-8000-${String(i).padStart(12, "0")}`);
    const monitor = await redis.monitor();
    const keysPerScript: number[] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (/^evalsha$/i.test(args[0] ?? "") && args.some((arg) => arg.startsWith(`stats:weekly-gen:${tenant}:`)))
        keysPerScript.push(Number(args[2]));
    });
    try {
      await cache.invalidate(tenant, devices);
      await until("both scripts seen by MONITOR", async () => keysPerScript.length >= 2, 5_000);
    } finally {
      monitor.disconnect();
    }
    expect(keysPerScript).toEqual([2 * BUMP_PER_COMMAND, 2]);
    const generations = await redis.mget(devices.map((device) => `stats:weekly-gen:${tenant}:${device}`));
    expect(generations.filter((gen) => gen !== "1")).toEqual([]);
  });

  it("replays an invalidation lost while Redis was unreachable before trusting the cache again", async () => {
    const {tenant, auth, device, at, post} = await setup("replay");
    expect((await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth)).body.summary).toMatchObject({readingCount: 0});
    const client = PlatformTest.get<RedisClient>(RedisClient);
    client.disconnect();
    try {
      // The write commits and refreshes analytics; its invalidation cannot reach Redis.
      await post(20, at(0, 1));
      expect(await redis.exists(weeklyKey(tenant, device))).toBe(1);
      const during = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
      expect(during.status).toBe(200);
      expect(during.body.summary).toMatchObject({readingCount: 1});
    } finally {
      await client.connect();
    }
    // Back: the stale summary still sits in Redis, but the lost invalidation is replayed first.
    const after = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    expect(after.body.summary).toMatchObject({readingCount: 1});
    expect(JSON.parse((await redis.get(weeklyKey(tenant, device)))!).body.summary).toMatchObject({readingCount: 1});
  });

  it("keeps weekly summaries per tenant: the same device id elsewhere is a miss and a 404", async () => {
    const {tenant, auth, device} = await setup("own");
    await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    expect(await redis.exists(weeklyKey(tenant, device))).toBe(1);
    const strangerTenant = newTenant("own_other");
    const res = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(await bearer(strangerTenant));
    expect(res.status).toBe(404);
    expect(await redis.exists(weeklyKey(strangerTenant, device))).toBe(0);
  });
});
