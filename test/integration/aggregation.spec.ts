import {type ChildProcess, spawn} from "node:child_process";
import {getQueueToken} from "@tsed/bullmq";
import {PlatformTest} from "@tsed/common";
import {type Job, type Queue, QueueEvents} from "bullmq";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {nightlyJobId} from "../../src/modules/stats/daily-stats-recompute-jobs.service.js";
import {DailyStatsRecomputeService} from "../../src/modules/stats/daily-stats-recompute.service.js";
import {addDays} from "../../src/common/local-time.js";
import {redisOptions} from "../../src/platform/cache/redis.provider.js";
import {AGGREGATION_JOBS, AGGREGATION_QUEUE, NIGHTLY_SCHEDULER_ID} from "../../src/modules/stats/daily-stats-recompute.queue.js";
import {zoneFarFromMidnight} from "../helpers/clock.js";
import {useOwnDatabases} from "../helpers/own-databases.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";
import {
  adminAuth,
  analyticsDb,
  closeDbs,
  tenantDb,
  createDevice,
  dailyRows,
  expectedDay,
  postReadings,
  type ReadingRow,
  setTimezone,
  withDailyStatsTrigger
} from "../helpers/stats-fixtures.js";

/** Readings every `minutes` over [start, end). */
function every(startIso: string, endIso: string, minutes: number, base = 18): ReadingRow[] {
  const rows: ReadingRow[] = [];
  for (let t = Date.parse(startIso), i = 0; t < Date.parse(endIso); t += minutes * 60_000, i++)
    rows.push({recordedAt: new Date(t), temperatureCelsius: base + ((i * 13) % 40) / 10});
  return rows;
}

const JOB_TIMEOUT_MS = 20_000;

/**
 * The nightly fan-out walks every registered tenant and the workers take every job of the queue,
 * so this file runs on databases and a queue prefix of its own (useOwnDatabases): its fan-outs see
 * only its own tenants, and no other spec file's tenant gets a job from it. Waits follow the
 * queue's real state (QueueEvents, job.waitUntilFinished, job counts), never a fixed sleep.
 */
describe("nightly aggregation (BullMQ)", () => {
  let api: Api;
  let queue: Queue;
  let events: QueueEvents;
  let restoreEnv: () => void;
  const completions = new Map<string, number>();
  /** Every tenant this file makes: the only ones its registry, fan-outs and workers may see. */
  const ownTenants = new Set<string>();
  const mine = (label: string) => {
    const tenant = newTenant(label);
    ownTenants.add(tenant);
    return tenant;
  };

  /** Waits for the job's end as the queue reports it, then answers what the API says about it. */
  async function finished(admin: Record<string, string>, jobId: string) {
    const job = await queue.getJob(jobId);
    expect(job, `job ${jobId}`).toBeDefined();
    // A failed job rejects: the state and reason are in the API's answer, which the test asserts.
    await job!.waitUntilFinished(events, JOB_TIMEOUT_MS).catch(() => undefined);
    const res = await api.get(`/api/v1/admin/aggregations/${jobId}`).set(admin);
    expect(res.status).toBe(200);
    return res.body;
  }

  async function aggregate(admin: Record<string, string>, date?: string) {
    const res = await api
      .post("/api/v1/admin/aggregations")
      .set(admin)
      .send(date ? {date} : {});
    expect(res.status).toBe(202);
    expect(res.body.jobId).toEqual(expect.any(String));
    return finished(admin, res.body.jobId);
  }

  /** Until no job is waiting or running: every job already added has ended. */
  async function drain() {
    for (let pass = 0; ; pass++) {
      const pending = await queue.getJobs(["waiting", "active", "prioritized", "waiting-children"]);
      if (pending.length === 0) return;
      if (pass > 20) throw new Error(`the queue does not drain: ${pending.map((job) => job.id).join(", ")}`);
      await Promise.all(pending.map((job) => job.waitUntilFinished(events, JOB_TIMEOUT_MS).catch(() => undefined)));
    }
  }

  beforeAll(async () => {
    restoreEnv = await useOwnDatabases("aggregation");
    api = await startTestServer({runWorkers: true});
    queue = PlatformTest.get<Queue>(getQueueToken(AGGREGATION_QUEUE));
    const config = loadConfig();
    events = new QueueEvents(AGGREGATION_QUEUE, {connection: redisOptions(config.redisUrl), prefix: config.queuePrefix});
    await events.waitUntilReady();
    events.on("completed", ({jobId}) => completions.set(jobId, (completions.get(jobId) ?? 0) + 1));
  });
  afterAll(async () => {
    await events?.close();
    await stopTestServer();
    await closeDbs();
    restoreEnv?.();
  });

  it("recomputes a local day from the raw readings, idempotently, and agrees with the after-commit refresh", async () => {
    const tenant = mine("agg");
    const auth = await bearer(tenant);
    const admin = await adminAuth(tenant);
    const [hooked, silent, idle, stale] = [
      await createDevice(api, auth, "A-1"),
      await createDevice(api, auth, "A-2"),
      await createDevice(api, auth, "A-3"),
      await createDevice(api, auth, "A-4")
    ];
    await setTimezone(tenant, "Europe/Berlin");
    // 2026-03-29 in Berlin is 23 hours long: 2026-03-28T23:00Z to 2026-03-29T22:00Z.
    const day = every("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 10);
    await postReadings(api, auth, hooked, [...day, {recordedAt: "2026-03-29T22:00:00Z", temperatureCelsius: 50}]);
    // The silent device's readings are stored, but their merge never runs (a test trigger swallows it).
    await withDailyStatsTrigger({tenant, deviceId: silent, effect: "skip"}, () => postReadings(api, auth, silent, day.slice(0, 40)));
    expect(await dailyRows(tenant, silent)).toEqual([]);
    // A row for a day without readings (e.g. its readings were removed): the recompute drops it.
    await analyticsDb().query(
      `insert into "daily_stats" ("tenant_id", "device_id", "date", "avg_temperature_celsius", "min_temperature_celsius", "max_temperature_celsius", "reading_count") values ($1, $2, '2026-03-29', 1, 1, 1, 1)`,
      [tenant, stale]
    );
    const afterHook = await dailyRows(tenant, hooked);
    // 23 hours × 6 readings on the 29th; the one at 22:00Z is already March 30 in Berlin.
    expect(afterHook).toMatchObject([
      {date: "2026-03-29", readingCount: 138},
      {date: "2026-03-30", readingCount: 1}
    ]);

    const first = await aggregate(admin, "2026-03-29");
    // Two devices have readings that day; the idle one gets no row, the stale row goes.
    expect(first).toMatchObject({
      state: "completed",
      progress: 100,
      devicesDone: 2,
      devicesTotal: 2,
      date: "2026-03-29",
      tenantId: tenant,
      trigger: "manual"
    });
    expect(first.result).toEqual({
      tenantId: tenant,
      date: "2026-03-29",
      days: 1,
      devices: 2,
      readings: 178,
      statsWritten: 1,
      statsDeleted: 1
    });

    // The refresh and the recompute agree: the hook's rows were not rewritten (same updated_at).
    expect(await dailyRows(tenant, hooked)).toEqual(afterHook);
    const [silentRow] = await dailyRows(tenant, silent);
    const expected = expectedDay(day.slice(0, 40));
    expect(silentRow).toMatchObject({date: "2026-03-29", readingCount: 40, min: expected.min, max: expected.max});
    expect(silentRow!.avg).toBeCloseTo(expected.avg, 10);
    expect(await dailyRows(tenant, idle)).toEqual([]);
    expect(await dailyRows(tenant, stale)).toEqual([]);

    // Twice changes nothing, not even updated_at.
    const before = await analyticsDb().query(`select * from "daily_stats" where "tenant_id" = $1 order by "device_id", "date"`, [tenant]);
    const second = await aggregate(admin, "2026-03-29");
    expect(second.result).toMatchObject({devices: 2, statsWritten: 0, statsDeleted: 0});
    const after = await analyticsDb().query(`select * from "daily_stats" where "tenant_id" = $1 order by "device_id", "date"`, [tenant]);
    expect(after.rows).toEqual(before.rows);
  });

  it("walks thousands of devices in chunks: every row written once, stale rows swept in every chunk's range", async () => {
    const tenant = mine("aggbig");
    const auth = await bearer(tenant);
    await createDevice(api, auth, "B-0");
    const schema = `"${tenant}"`;
    // Volume, not the write path, is the subject here: 2,500 devices and their readings in two
    // statements (through the routes this would be 1,666 requests). No DailyStats exist for them.
    await tenantDb().query(
      `insert into ${schema}."devices" ("id", "created_at", "updated_at", "serial_number", "name", "owner_id")
       select gen_random_uuid(), now(), now(), 'B-' || g, 'B-' || g, (select "id" from ${schema}."users" limit 1) from generate_series(1, 2499) g`
    );
    const {rows: devices} = await tenantDb().query(`select "id" from ${schema}."devices" order by "id"`);
    // Two of every three devices report (two readings on the day): 1,666 rows, two chunks; the
    // others, spread over both chunks' ranges, and the last device, have a stale row to sweep.
    await tenantDb().query(
      `insert into ${schema}."temperature_readings" ("device_id", "temperature_celsius", "recorded_at")
       select d."id", 20 + h, timestamptz '2026-02-10T00:00:00Z' + h * interval '1 hour'
       from (select "id", row_number() over (order by "id") as n from ${schema}."devices") d cross join generate_series(0, 1) h
       where d.n % 3 <> 0 and d.n < 2500`
    );
    await analyticsDb().query(
      `insert into "daily_stats" ("tenant_id", "device_id", "date", "avg_temperature_celsius", "min_temperature_celsius", "max_temperature_celsius", "reading_count")
       select $1, x::uuid, '2026-02-10', 1, 1, 1, 1 from unnest($2::text[]) x`,
      [tenant, devices.filter((_, i) => (i + 1) % 3 === 0 || i + 1 === 2500).map((d) => d.id)]
    );
    const progress: {devicesDone: number; devicesTotal: number}[] = [];
    const refresher = PlatformTest.get<DailyStatsRecomputeService>(DailyStatsRecomputeService);
    const result = await refresher.recomputeDay(tenant, "2026-02-10", {onProgress: async (p) => void progress.push(p)});
    expect(result).toEqual({tenantId: tenant, date: "2026-02-10", devices: 1666, readings: 3332, statsWritten: 1666, statsDeleted: 834});
    expect(progress.map((p) => p.devicesDone)).toEqual([0, 1000, 1666]);
    const {rows} = await analyticsDb().query(
      `select count(*)::int as n, min("reading_count") as lo, max("reading_count") as hi from "daily_stats" where "tenant_id" = $1`,
      [tenant]
    );
    expect(rows[0]).toEqual({n: 1666, lo: 2, hi: 2});
    expect(await refresher.recomputeDay(tenant, "2026-02-10")).toMatchObject({statsWritten: 0, statsDeleted: 0});
  });

  it("defaults to yesterday in the tenant's timezone, and validates the date", async () => {
    // The clock read once; the tenant's zone is on another date than UTC, an hour or more from
    // its midnight, so "yesterday" there is neither UTC's nor about to change.
    const now = new Date();
    const {zone, localDate: today} = zoneFarFromMidnight(now, {dateDiffersFromUtc: true});
    const tenant = mine("aggdef");
    const admin = await adminAuth(tenant);
    await api.get("/api/v1/me").set(admin);
    await setTimezone(tenant, zone);
    const job = await aggregate(admin);
    expect(job.date).toBe(addDays(today, -1));
    expect(job.date).not.toBe(addDays(now.toISOString().slice(0, 10), -1));
    expect(job.result).toMatchObject({devices: 0, statsWritten: 0});

    for (const date of ["2026-02-30", "yesterday", addDays(today, 1)]) {
      const res = await api.post("/api/v1/admin/aggregations").set(admin).send({date});
      expect(res.status).toBe(400);
      expect(res.body.name).toBe("BAD_REQUEST");
    }
  });

  it("keeps jobs to their tenant and to admins", async () => {
    const tenant = mine("aggown");
    const admin = await adminAuth(tenant);
    const res = await api.post("/api/v1/admin/aggregations").set(admin).send({date: "2026-01-01"});
    expect(res.status).toBe(202);
    const other = await adminAuth(mine("aggown_other"));
    expect((await api.get(`/api/v1/admin/aggregations/${res.body.jobId}`).set(other)).status).toBe(404);
    expect((await api.get(`/api/v1/admin/aggregations/${res.body.jobId}`).set(await bearer(tenant))).status).toBe(403);
    expect(
      (
        await api
          .post("/api/v1/admin/aggregations")
          .set(await bearer(tenant))
          .send({})
      ).status
    ).toBe(403);
    expect((await api.get("/api/v1/admin/aggregations/no-such-job").set(admin)).status).toBe(404);
    expect((await api.get("/api/v1/admin/aggregations/BAD:ID").set(admin)).status).toBe(400);
    expect(await finished(admin, res.body.jobId)).toMatchObject({state: "completed", tenantId: tenant});
  });

  it("runs a finished manual aggregation again when asked again (the same job id, a new run)", async () => {
    const tenant = mine("aggagain");
    const admin = await adminAuth(tenant);
    const first = await aggregate(admin, "2026-01-02");
    expect(first).toMatchObject({jobId: `manual.${tenant}.2026-01-02`, state: "completed"});
    const second = await aggregate(admin, "2026-01-02");
    expect(second).toMatchObject({jobId: first.jobId, state: "completed"});
    expect(Date.parse(second.finishedAt)).toBeGreaterThan(Date.parse(first.finishedAt));
  });

  it("schedules the nightly fan-out with a cron job scheduler", async () => {
    // Registered by a boot hook that nobody awaits: wait for it to be in Redis.
    const scheduler = await until("the nightly job scheduler in Redis", () => queue.getJobScheduler(NIGHTLY_SCHEDULER_ID));
    expect(scheduler).toMatchObject({name: AGGREGATION_JOBS.nightlyFanOut, pattern: loadConfig().nightlyCron, tz: "UTC"});
  });

  describe("with a second worker process listening", () => {
    let worker: ChildProcess;

    beforeAll(async () => {
      // Inherits this file's own databases and queue prefix through the environment.
      worker = spawn(process.execPath, ["--import", "@swc-node/register/esm-register", "src/worker.ts"], {
        cwd: process.cwd(),
        env: {...process.env, LOG_LEVEL: "warn"},
        stdio: ["ignore", "ignore", "inherit"]
      });
      await until(
        "two workers on the queue",
        async () => {
          if (worker.exitCode !== null) throw new Error(`the worker process exited with ${worker.exitCode}`);
          return (await queue.getWorkersCount()) >= 2;
        },
        45_000
      );
    }, 60_000);
    afterAll(async () => {
      if (worker && worker.exitCode === null) {
        const exited = new Promise((resolve) => worker.once("exit", resolve));
        worker.kill("SIGTERM");
        await exited;
      }
    });

    it("runs each tenant's nightly job once, however many fan-outs and workers", async () => {
      // The tenants' zone puts the clock (read once) near local noon: the fan-outs' "yesterday"
      // is this one, whatever time it is.
      const now = new Date();
      const {zone, localDate: today} = zoneFarFromMidnight(now);
      const yesterday = addDays(today, -1);
      const tenants = [mine("night_a"), mine("night_b")];
      const devices: string[] = [];
      for (const [i, tenant] of tenants.entries()) {
        const auth = await bearer(tenant);
        const device = await createDevice(api, auth, `N-${i}`);
        devices.push(device);
        await setTimezone(tenant, zone);
        // Eight readings on the local yesterday, whose merge never runs: the nightly job must make the rows.
        const readings = Array.from({length: 8}, (_, k): ReadingRow => ({
          recordedAt: new Date(now.getTime() - 86_400_000 - k * 30 * 60_000),
          temperatureCelsius: 10 + i + k / 10
        }));
        await withDailyStatsTrigger({tenant, effect: "skip"}, () => postReadings(api, auth, device, readings));
        expect(await dailyRows(tenant, device)).toEqual([]);
      }
      // Two schedulers firing the same night (or a fan-out retried): four fan-outs, two workers.
      const fanOuts: Job[] = await Promise.all([1, 2, 3, 4].map(() => queue.add(AGGREGATION_JOBS.nightlyFanOut, {})));
      const fannedOut = await Promise.all(fanOuts.map((job) => job.waitUntilFinished(events, JOB_TIMEOUT_MS)));
      // The registry the fan-outs walked holds this file's tenants only, all of them.
      const {rows: registered} = await tenantDb().query<{id: string}>(`select "id" from "public"."tenants" order by "id"`);
      expect(registered.map((row) => row.id).filter((id) => !ownTenants.has(id))).toEqual([]);
      expect(fannedOut).toEqual(fanOuts.map(() => ({tenants: registered.length})));
      // Every tenant job the fan-outs added exists now; wait until each has ended.
      await drain();

      const ids = tenants.map((tenant) => nightlyJobId(tenant, yesterday));
      // The jobs have ended; their "completed" events reach this process through a Redis stream.
      await until("the nightly jobs' completed events", async () => ids.every((id) => completions.has(id)));
      expect(ids.map((id) => completions.get(id))).toEqual([1, 1]);
      for (const id of ids)
        expect(await queue.getJob(id)).toMatchObject({attemptsStarted: 1, data: {trigger: "nightly"}, finishedOn: expect.any(Number)});
      const jobs = await queue.getJobs(["completed", "failed", "active", "waiting", "delayed"]);
      expect(
        jobs.filter((job) => job.name === AGGREGATION_JOBS.tenant && !ownTenants.has(job.data?.tenantId)).map((job) => job.id),
        "jobs for another spec file's tenants"
      ).toEqual([]);
      for (const tenant of tenants) {
        expect(jobs.filter((job) => job.name === AGGREGATION_JOBS.tenant && job.data?.tenantId === tenant).map((job) => job.id)).toEqual([
          nightlyJobId(tenant, yesterday)
        ]);
      }
      // No attempt failed (a failed attempt would wait, delayed, for its retry); the delayed jobs
      // allowed are the schedulers' next runs: the nightly fan-out and the repair of dirty days.
      expect(await queue.getJobCounts("failed")).toEqual({failed: 0});
      expect((await queue.getJobs(["delayed"])).map((job) => job.name).sort()).toEqual(
        [AGGREGATION_JOBS.nightlyFanOut, AGGREGATION_JOBS.repairDirtyDays].sort()
      );
      for (const [i, tenant] of tenants.entries()) {
        expect(await dailyRows(tenant, devices[i]!)).toMatchObject([{date: yesterday, readingCount: 8}]);
      }
    });
  });
});
