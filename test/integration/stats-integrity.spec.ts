import {spawn} from "node:child_process";
import {getQueueToken} from "@tsed/bullmq";
import {PlatformTest} from "@tsed/common";
import {type Queue, QueueEvents} from "bullmq";
import fc from "fast-check";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {AGGREGATION_QUEUE} from "../../src/modules/stats/daily-stats-recompute.queue.js";
import {DailyStatsRecomputeJobsService} from "../../src/modules/stats/daily-stats-recompute-jobs.service.js";
import {DailyStatsRecomputeService} from "../../src/modules/stats/daily-stats-recompute.service.js";
import {DailyStatsVerifyService} from "../../src/modules/stats/daily-stats-verify.service.js";
import {DirtyDaysRepository} from "../../src/modules/stats/dirty-days.repository.js";
import type {Backend} from "../../src/platform/db/lost-connection.js";
import {BACKEND_SQL} from "../../src/platform/db/tenant-affine-connections.js";
import {redisOptions} from "../../src/platform/cache/redis.provider.js";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";
import {createDevice, createRule, postBatch} from "../helpers/factories.js";
import {checkProperty, type PropertyBudget, propertyTimeout} from "../helpers/property.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";

/** Readings `every` minutes over [start, end), with a deterministic spread of temperatures. */
function every(startIso: string, endIso: string, minutes: number, offset = 0) {
  const readings: {temperatureCelsius: number; recordedAt: string}[] = [];
  for (let t = Date.parse(startIso), i = 0; t < Date.parse(endIso); t += minutes * 60_000, i++) {
    readings.push({temperatureCelsius: 15 + ((i * 7 + offset) % 60) / 4, recordedAt: new Date(t).toISOString()});
  }
  return readings;
}

/**
 * DailyStats equal the raw readings counted from scratch (DailyStatsVerifyService, `npm run stats:verify`)
 * whatever interleaving of ingestion, recompute, timezone change and failed merges came before.
 */
describe("DailyStats stay verifiable", () => {
  let api: Api;
  let analytics: pg.Client;
  /** The tenants' database (DATABASE_URL), where the repair job's marks are. */
  let main: pg.Client;
  let events: QueueEvents;
  const verify = (tenant: string) => PlatformTest.get<DailyStatsVerifyService>(DailyStatsVerifyService).verify(tenant);
  const recompute = () => PlatformTest.get<DailyStatsRecomputeService>(DailyStatsRecomputeService);
  const repairDirtyDays = () => PlatformTest.get<DailyStatsRecomputeJobsService>(DailyStatsRecomputeJobsService).repairDirtyDays();
  /** The tenant's days marked for the repair job, in order. */
  const dirtyDays = async (tenant: string): Promise<string[]> =>
    (
      await main.query(`select "date"::text as d from "public"."daily_stats_dirty_days" where "tenant_id" = $1 order by 1`, [tenant])
    ).rows.map((r) => r.d);
  /**
   * Waits until `n` backends wait, directly or behind one another, for a lock `holder` holds: only
   * this test's, not those of other files' statements on the shared analytics database.
   */
  async function waitForLockWaiters(holder: pg.Client, n: number) {
    const {rows: held} = await holder.query<{pid: number}>("select pg_backend_pid() as pid");
    for (let i = 0; i < 500; i++) {
      const {rows} = await analytics.query<{n: number}>(
        `with recursive "blocked"("pid") as (
           select $1::int
           union
           select a."pid" from pg_stat_activity a join "blocked" b on b."pid" = any(pg_blocking_pids(a."pid"))
         )
         select count(*)::int - 1 as n from "blocked"`,
        [held[0]!.pid]
      );
      if (rows[0]!.n >= n) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`fewer than ${n} analytics backends waited for the test's lock`);
  }

  beforeAll(async () => {
    // A queue prefix of its own: this file's worker takes only this file's jobs.
    const queuePrefix = `${loadConfig().queuePrefix}:stats-integrity`;
    api = await startTestServer({runWorkers: true, queuePrefix});
    analytics = new pg.Client({connectionString: process.env.ANALYTICS_DATABASE_URL});
    await analytics.connect();
    main = new pg.Client({connectionString: process.env.DATABASE_URL});
    await main.connect();
    events = new QueueEvents(AGGREGATION_QUEUE, {connection: redisOptions(loadConfig().redisUrl), prefix: queuePrefix});
    await events.waitUntilReady();
  });
  afterAll(async () => {
    await events?.close();
    await analytics?.end();
    await main?.end();
    await stopTestServer();
  });

  it("recomputes every day in the new local days after a timezone change (a job with progress), and verify finds no difference", async () => {
    const tenant = newTenant("tzall");
    const admin = await bearer(tenant, {roles: ["user", "admin"]});
    const devices = [await createDevice(api, admin, "TZ-A"), await createDevice(api, admin, "TZ-B")];
    // Four UTC days, every 20 minutes: in Asia/Tokyo (UTC+9) most readings move to the next local day.
    for (const [i, device] of devices.entries())
      await postBatch(api, admin, device, every("2026-04-01T00:00:00Z", "2026-04-05T00:00:00Z", 20, i));
    expect(await verify(tenant)).toEqual([]);

    const changed = await api.patch("/api/v1/admin/tenant").set(admin).send({timezone: "Asia/Tokyo"});
    expect(changed.status).toBe(200);
    const jobId = changed.body.statsRecomputeJobId as string;
    expect(jobId).toMatch(/^timezone\./);
    const job = await PlatformTest.get<Queue>(getQueueToken(AGGREGATION_QUEUE)).getJob(jobId);
    await job!.waitUntilFinished(events, 60_000);

    const status = await api.get(`/api/v1/admin/aggregations/${jobId}`).set(admin);
    expect(status.body).toMatchObject({
      jobId,
      date: null,
      trigger: "timezone",
      state: "completed",
      progress: 100,
      daysDone: 5,
      daysTotal: 5
    });
    expect(status.body.result).toMatchObject({tenantId: tenant, date: null, days: 5, readings: 2 * 4 * 72});
    expect(await verify(tenant)).toEqual([]);
    const {rows} = await analytics.query(`select distinct "date"::text as d from "daily_stats" where "tenant_id" = $1 order by 1`, [
      tenant
    ]);
    expect(rows.map((r) => r.d)).toEqual(["2026-04-01", "2026-04-02", "2026-04-03", "2026-04-04", "2026-04-05"]);
  });

  it("does not lose a write merged while a recompute of its day runs (the day is locked against merges)", async () => {
    const tenant = newTenant("race_lost");
    const auth = await bearer(tenant);
    const [x, y] = [await createDevice(api, auth, "RL-1"), await createDevice(api, auth, "RL-2")].sort();
    for (const device of [x!, y!]) await postBatch(api, auth, device, every("2026-05-10T00:00:00Z", "2026-05-10T02:00:00Z", 10));

    // Hold device x's row: the recompute (which writes x's row before y's) stops there, after it read the readings.
    const rowLock = new pg.Client({connectionString: process.env.ANALYTICS_DATABASE_URL});
    await rowLock.connect();
    await rowLock.query("begin");
    await rowLock.query(`select 1 from "daily_stats" where "tenant_id" = $1 and "device_id" = $2 for update`, [tenant, x]);
    const recomputing = recompute().recomputeDay(tenant, "2026-05-10");
    await waitForLockWaiters(rowLock, 1);
    // A write to y commits now; its merge must wait for the recompute, or the recompute overwrites it.
    const writing = postBatch(api, auth, y!, every("2026-05-10T05:00:00Z", "2026-05-10T06:00:00Z", 10, 3));
    await waitForLockWaiters(rowLock, 2);
    await rowLock.query("commit");
    await rowLock.end();
    await recomputing;
    await writing;
    expect(await verify(tenant)).toEqual([]);
  });

  it("does not count twice a write a recompute already saw (merges skip what the row's snapshot counted)", async () => {
    const tenant = newTenant("race_twice");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "RT-1");
    await postBatch(api, auth, device, every("2026-05-11T00:00:00Z", "2026-05-11T01:00:00Z", 10));

    // Hold the day's lock as a recompute would: the recompute queues first, then the write's merge.
    const dayLock = new pg.Client({connectionString: process.env.ANALYTICS_DATABASE_URL});
    await dayLock.connect();
    await dayLock.query(`select pg_advisory_lock(hashtextextended('daily_stats:' || $1 || ':' || '2026-05-11', 0))`, [tenant]);
    const recomputing = recompute().recomputeDay(tenant, "2026-05-11");
    await waitForLockWaiters(dayLock, 1);
    const writing = postBatch(api, auth, device, every("2026-05-11T03:00:00Z", "2026-05-11T04:00:00Z", 10, 5));
    // The write is committed (its merge waits): the recompute, released first, counts it.
    await waitForLockWaiters(dayLock, 2);
    await dayLock.query(`select pg_advisory_unlock_all()`);
    await dayLock.end();
    await recomputing;
    await writing;
    expect(await verify(tenant)).toEqual([]);
  });

  // A case is a few batches and recomputes of one day, then a verify of the tenant.
  const raceBudget: PropertyBudget = {searchMs: 40_000, minRuns: 30, maxRuns: 2_000};
  /**
   * Random interleavings of batch writes and recomputes of one day. The two interleavings that
   * lose or double-count a write unless the day's lock and the row's snapshot prevent it are forced
   * with held locks by the two tests above; this one checks that no other interleaving breaks the
   * totals, and asserts that writes and recomputes did overlap in time (or it would test nothing).
   */
  it("keeps DailyStats exact while recomputes race concurrent ingestion (property)", {timeout: propertyTimeout(raceBudget)}, async () => {
    const tenant = newTenant("race_mix");
    const auth = await bearer(tenant);
    const devices = [await createDevice(api, auth, "RM-1"), await createDevice(api, auth, "RM-2")];
    let cases = 0;
    let overlapping = 0;
    const timed = async (work: () => Promise<unknown>) => {
      const start = performance.now();
      await work();
      return {start, end: performance.now()};
    };
    const runs = await checkProperty(
      "stats under racing recomputes",
      fc.tuple(
        fc.array(fc.record({device: fc.nat({max: 1}), size: fc.integer({min: 1, max: 40}), delayMs: fc.nat({max: 15})}), {
          minLength: 2,
          maxLength: 6
        }),
        fc.array(fc.nat({max: 20}), {minLength: 1, maxLength: 3})
      ),
      async ([writes, recomputeDelays]) => {
        // A day of its own per case, going back from June 2026 (2,000 cases reach 2021): a case
        // replayed while shrinking never sees the rows of one that failed before it.
        const base = Date.UTC(2026, 5, 1) - cases++ * 86_400_000;
        const day = new Date(base).toISOString().slice(0, 10);
        const [written, recomputed] = await Promise.all([
          Promise.all(
            writes.map(async ({device, size, delayMs}, w) => {
              await new Promise((r) => setTimeout(r, delayMs));
              const readings = Array.from({length: size}, (_, i) => ({
                temperatureCelsius: 10 + ((w * 13 + i * 7) % 50),
                recordedAt: new Date(base + (w * 40 + i) * 1_000).toISOString()
              }));
              return timed(() => postBatch(api, auth, devices[device]!, readings));
            })
          ),
          Promise.all(
            recomputeDelays.map(async (delayMs) => {
              await new Promise((r) => setTimeout(r, delayMs));
              return timed(() => recompute().recomputeDay(tenant, day));
            })
          )
        ]);
        if (written.some((w) => recomputed.some((r) => r.start < w.end && w.start < r.end))) overlapping++;
        expect(await PlatformTest.get<DailyStatsVerifyService>(DailyStatsVerifyService).verify(tenant, day, day)).toEqual([]);
      },
      raceBudget
    );
    console.info(`[property] stats under racing recomputes: ${overlapping} of ${runs} cases overlapped a recompute with a write`);
    // Most cases should race; on a machine too slow for that, at least a tenth must.
    expect(overlapping, `${overlapping} of ${runs} cases had a recompute running while a write was`).toBeGreaterThanOrEqual(runs / 10);
  });

  it("remembers the days a failed merge left behind, whatever the day, and the repair recomputes them", async () => {
    const tenant = newTenant("dirty");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "DIRTY-1");
    // Merges of this tenant fail: the analytics table refuses its rows (a test-only trigger).
    const trigger = `fail_merge_${tenant}`;
    await analytics.query(
      `create function ${trigger}() returns trigger language plpgsql as $$ begin raise exception 'analytics unavailable'; end $$`
    );
    await analytics.query(
      `create trigger ${trigger} before insert or update on "daily_stats" for each row when (new."tenant_id" = '${tenant}') execute function ${trigger}()`
    );
    try {
      await postBatch(api, auth, device, [
        ...every("2025-11-03T10:00:00Z", "2025-11-03T11:00:00Z", 10),
        ...every("2026-02-20T10:00:00Z", "2026-02-20T11:00:00Z", 10)
      ]);
      expect(await dirtyDays(tenant)).toEqual(["2025-11-03", "2026-02-20"]);
      expect((await verify(tenant)).map((d) => [d.date, d.stored])).toEqual([
        ["2025-11-03", null],
        ["2026-02-20", null]
      ]);
    } finally {
      await analytics.query(`drop trigger ${trigger} on "daily_stats"`);
      await analytics.query(`drop function ${trigger}()`);
    }
    await repairDirtyDays();
    expect(await verify(tenant)).toEqual([]);
    expect(await dirtyDays(tenant)).toEqual([]);
  });

  it.each([
    ["the group statement", 20],
    ["the alert transaction", 150]
  ] as const)(
    "marks the local days of a write whose session ended under it (%s), which may have committed, and the repair recomputes them",
    async (_path, celsius) => {
      const tenant = newTenant("lost");
      const admin = await bearer(tenant, {roles: ["user", "admin"]});
      // Asia/Tokyo: the reading's local day is the UTC day after.
      expect((await api.patch("/api/v1/admin/tenant").set(admin).send({timezone: "Asia/Tokyo"})).status).toBe(200);
      const device = await createDevice(api, admin, "LOST-1");
      const rule = await createRule(api, admin, device, {condition: "above", thresholdCelsius: 100});
      const holder = new pg.Client({connectionString: process.env.DATABASE_URL});
      await holder.connect();
      try {
        // The write waits for the rule's row (the group statement reads it FOR SHARE, the alert
        // transaction locks it FOR UPDATE), and its session ends under it, as when its connection
        // breaks or Postgres restarts: the API cannot tell whether it committed.
        await holder.query("begin");
        await holder.query(`select 1 from ${quoteTenantSchema(tenant)}."alert_rules" where "id" = $1 for update`, [rule.id]);
        const {rows} = await holder.query<{pid: number}>("select pg_backend_pid() as pid");
        const answer = api
          .post(`/api/v1/devices/${device}/readings`)
          .set(admin)
          .send({temperatureCelsius: celsius, recordedAt: "2026-03-10T20:00:00Z"})
          .then((res) => res);
        const waiting = await until("the write to wait for the rule", async () => {
          const blocked = await main.query<{pid: number}>(`select "pid" from pg_stat_activity where $1 = any(pg_blocking_pids("pid"))`, [
            rows[0]!.pid
          ]);
          return blocked.rows[0]?.pid;
        });
        await main.query("select pg_terminate_backend($1)", [waiting]);
        expect((await answer).status).toBe(503);
      } finally {
        await holder.query("rollback");
        await holder.end();
      }
      const marked = await until("the day to be marked", async () => {
        const days = await dirtyDays(tenant);
        return days.length > 0 && days;
      });
      expect(marked).toEqual(["2026-03-11"]);
      await repairDirtyDays();
      expect(await verify(tenant)).toEqual([]);
      expect(await dirtyDays(tenant)).toEqual([]);
    }
  );

  it("ends the lost backend of a write before it recomputes the write's day: what it had not committed never will be", async () => {
    const tenant = newTenant("lost_backend");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "FENCE-1");
    await postBatch(api, auth, device, every("2026-03-12T00:00:00Z", "2026-03-12T01:00:00Z", 15));
    // A backend that received a write and has not committed it yet, as one whose client gave up on
    // it for want of an answer: the write's day is marked with that backend.
    const lost = new pg.Client({connectionString: process.env.DATABASE_URL});
    await lost.connect();
    lost.on("error", () => undefined);
    try {
      await lost.query("begin");
      await lost.query(
        `insert into ${quoteTenantSchema(tenant)}."temperature_readings" ("device_id", "temperature_celsius", "recorded_at") values ($1, 30, '2026-03-12T02:00:00Z')`,
        [device]
      );
      const {rows} = await lost.query<Backend>(BACKEND_SQL);
      const dirty = PlatformTest.get<DirtyDaysRepository>(DirtyDaysRepository);
      await dirty.markLocalDaysOf(tenant, [new Date("2026-03-12T02:00:00Z")], rows[0]);
      // Marked again by a failed merge of the same day: the lost backend stays on the mark.
      await dirty.mark(tenant, ["2026-03-12"]);
      expect(await dirtyDays(tenant)).toEqual(["2026-03-12"]);

      await repairDirtyDays();
      // Ended before the recompute: its COMMIT can no longer land after it, behind the day's back.
      await expect(lost.query("commit")).rejects.toThrow();
    } finally {
      await lost.end().catch(() => undefined);
    }
    expect(await dirtyDays(tenant)).toEqual([]);
    expect(await verify(tenant)).toEqual([]);
  });

  // The oracle itself: a row wrong in any one column is a difference, with both values shown.
  it.each([
    ["avgTemperatureCelsius", "avg_temperature_celsius", 0.001],
    ["minTemperatureCelsius", "min_temperature_celsius", -0.5],
    ["maxTemperatureCelsius", "max_temperature_celsius", 0.5]
  ] as const)("verify names a row whose %s alone is wrong", async (field, column, error) => {
    const tenant = newTenant("verify_col");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "COL-1");
    await postBatch(api, auth, device, every("2026-03-02T00:00:00Z", "2026-03-02T03:00:00Z", 15));
    expect(await verify(tenant)).toEqual([]);
    const [right] = (
      await analytics.query(`select ${column} as v from "daily_stats" where "tenant_id" = $1 and "device_id" = $2`, [tenant, device])
    ).rows;
    await analytics.query(`update "daily_stats" set ${column} = ${column} + $3 where "tenant_id" = $1 and "device_id" = $2`, [
      tenant,
      device,
      error
    ]);
    const differences = await verify(tenant);
    expect(differences).toEqual([{deviceId: device, date: "2026-03-02", stored: expect.any(Object), expected: expect.any(Object)}]);
    const {stored, expected} = differences[0]!;
    expect(expected![field]).toBeCloseTo(right.v, 9);
    expect(stored![field]).toBeCloseTo(right.v + error, 9);
    // Only that column differs.
    expect({...stored, [field]: 0}).toEqual({...expected, [field]: 0});
  });

  it("npm run stats:verify lists each difference and exits 1, and exits 0 when the rows match", async () => {
    const tenant = newTenant("verify_cli");
    const auth = await bearer(tenant);
    const device = await createDevice(api, auth, "CLI-1");
    await postBatch(api, auth, device, every("2026-03-01T00:00:00Z", "2026-03-01T03:00:00Z", 15));
    const run = () =>
      new Promise<{code: number | null; output: string}>((resolve) => {
        const child = spawn(
          process.execPath,
          ["--import", "@swc-node/register/esm-register", "src/cli/stats-verify.ts", "--tenant", tenant],
          {env: {...process.env, LOG_LEVEL: "error"}}
        );
        let output = "";
        child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
        child.on("exit", (code) => resolve({code, output}));
      });
    expect(await run()).toMatchObject({code: 0, output: expect.stringContaining("match the raw readings")});
    await analytics.query(`update "daily_stats" set "reading_count" = "reading_count" + 1 where "tenant_id" = $1`, [tenant]);
    const tampered = await run();
    expect(tampered.code).toBe(1);
    expect(tampered.output).toContain(`2026-03-01 device ${device}: stored count 13`);
    expect(tampered.output).toContain("readings say count 12");
  }, 60_000);
});
