import {type ChildProcess, spawn} from "node:child_process";
import {getQueueToken} from "@tsed/bullmq";
import {PlatformTest} from "@tsed/platform-http/testing";
import {type Queue, QueueEvents} from "bullmq";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {nightlyJobId} from "../../src/modules/stats/aggregation.service.js";
import {DailyStatsRecompute} from "../../src/modules/stats/daily-stats-recompute.service.js";
import {addDays, localDate} from "../../src/modules/stats/local-time.js";
import {redisOptions} from "../../src/platform/cache/redis.provider.js";
import {AGGREGATION_JOBS, AGGREGATION_QUEUE, NIGHTLY_SCHEDULER_ID} from "../../src/modules/stats/aggregation.queue.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {adminAuth, analyticsDb, closeDbs, tenantDb, createDevice, dailyRows, expectedDay, insertReadings, type ReadingRow, setTimezone, writeThroughHook} from "../helpers/stats-fixtures.js";

/** Readings every `minutes` over [start, end). */
function every(startIso: string, endIso: string, minutes: number, base = 18): ReadingRow[] {
  const rows: ReadingRow[] = [];
  for (let t = Date.parse(startIso), i = 0; t < Date.parse(endIso); t += minutes * 60_000, i++) rows.push({recordedAt: new Date(t), temperatureCelsius: base + ((i * 13) % 40) / 10});
  return rows;
}

describe("nightly aggregation (BullMQ)", () => {
  let api: Api;
  let queue: Queue;

  async function waitForJob(admin: Record<string, string>, jobId: string) {
    for (let i = 0; i < 200; i++) {
      const res = await api.get(`/api/v1/admin/aggregations/${jobId}`).set(admin);
      expect(res.status).toBe(200);
      if (res.body.state === "completed" || res.body.state === "failed") return res.body;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`job ${jobId} did not finish`);
  }

  async function aggregate(admin: Record<string, string>, date?: string) {
    const res = await api.post("/api/v1/admin/aggregations").set(admin).send(date ? {date} : {});
    expect(res.status).toBe(202);
    expect(res.body.jobId).toEqual(expect.any(String));
    return waitForJob(admin, res.body.jobId);
  }

  beforeAll(async () => {
    api = await startTestServer({runWorkers: true});
    queue = PlatformTest.get<Queue>(getQueueToken(AGGREGATION_QUEUE));
  });
  afterAll(async () => {
    await stopTestServer();
    await closeDbs();
  });

  it("recomputes a local day from the raw readings, idempotently, and agrees with the after-commit refresh", async () => {
    const tenant = newTenant("agg");
    const auth = await bearer(tenant);
    const admin = await adminAuth(tenant);
    const [hooked, silent, idle, stale] = [await createDevice(api, auth, "A-1"), await createDevice(api, auth, "A-2"), await createDevice(api, auth, "A-3"), await createDevice(api, auth, "A-4")];
    await setTimezone(tenant, "Europe/Berlin");
    // 2026-03-29 in Berlin is 23 hours long: 2026-03-28T23:00Z to 2026-03-29T22:00Z.
    const day = every("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 10);
    await writeThroughHook(tenant, hooked, [...day, {recordedAt: "2026-03-29T22:00:00Z", temperatureCelsius: 50}]);
    await insertReadings(tenant, silent, day.slice(0, 40));
    // A row for a day without readings (e.g. its readings were removed): the recompute drops it.
    await analyticsDb().query(
      `insert into "daily_stats" ("tenant_id", "device_id", "date", "avg_temperature_celsius", "min_temperature_celsius", "max_temperature_celsius", "reading_count") values ($1, $2, '2026-03-29', 1, 1, 1, 1)`,
      [tenant, stale]
    );
    const afterHook = await dailyRows(tenant, hooked);
    // 23 hours × 6 readings on the 29th; the one at 22:00Z is already March 30 in Berlin.
    expect(afterHook).toMatchObject([{date: "2026-03-29", readingCount: 138}, {date: "2026-03-30", readingCount: 1}]);

    const first = await aggregate(admin, "2026-03-29");
    // Two devices have readings that day; the idle one gets no row, the stale row goes.
    expect(first).toMatchObject({state: "completed", progress: 100, devicesDone: 2, devicesTotal: 2, date: "2026-03-29", tenantId: tenant, trigger: "manual"});
    expect(first.result).toEqual({tenantId: tenant, date: "2026-03-29", days: 1, devices: 2, readings: 178, statsWritten: 1, statsDeleted: 1});

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
    const tenant = newTenant("aggbig");
    const auth = await bearer(tenant);
    await createDevice(api, auth, "B-0");
    const schema = `"${tenant}"`;
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
    const refresher = PlatformTest.get<DailyStatsRecompute>(DailyStatsRecompute);
    const result = await refresher.recomputeDay(tenant, "2026-02-10", async (p) => void progress.push(p));
    expect(result).toEqual({tenantId: tenant, date: "2026-02-10", devices: 1666, readings: 3332, statsWritten: 1666, statsDeleted: 834});
    expect(progress.map((p) => p.devicesDone)).toEqual([0, 1000, 1666]);
    const {rows} = await analyticsDb().query(`select count(*)::int as n, min("reading_count") as lo, max("reading_count") as hi from "daily_stats" where "tenant_id" = $1`, [tenant]);
    expect(rows[0]).toEqual({n: 1666, lo: 2, hi: 2});
    expect(await refresher.recomputeDay(tenant, "2026-02-10")).toMatchObject({statsWritten: 0, statsDeleted: 0});
  });

  it("defaults to yesterday in the tenant's timezone, and validates the date", async () => {
    const tenant = newTenant("aggdef");
    const admin = await adminAuth(tenant);
    await api.get("/api/v1/me").set(admin);
    await setTimezone(tenant, "Pacific/Kiritimati");
    const job = await aggregate(admin);
    expect(job.date).toBe(addDays(localDate(new Date(), "Pacific/Kiritimati"), -1));
    expect(job.result).toMatchObject({devices: 0, statsWritten: 0});

    for (const date of ["2026-02-30", "yesterday", addDays(localDate(new Date(), "Pacific/Kiritimati"), 1)]) {
      const res = await api.post("/api/v1/admin/aggregations").set(admin).send({date});
      expect(res.status).toBe(400);
      expect(res.body.name).toBe("BAD_REQUEST");
    }
  });

  it("keeps jobs to their tenant and to admins", async () => {
    const tenant = newTenant("aggown");
    const admin = await adminAuth(tenant);
    const res = await api.post("/api/v1/admin/aggregations").set(admin).send({date: "2026-01-01"});
    expect(res.status).toBe(202);
    const other = await adminAuth(newTenant("aggown_other"));
    expect((await api.get(`/api/v1/admin/aggregations/${res.body.jobId}`).set(other)).status).toBe(404);
    expect((await api.get(`/api/v1/admin/aggregations/${res.body.jobId}`).set(await bearer(tenant))).status).toBe(403);
    expect((await api.post("/api/v1/admin/aggregations").set(await bearer(tenant)).send({})).status).toBe(403);
    expect((await api.get("/api/v1/admin/aggregations/no-such-job").set(admin)).status).toBe(404);
    expect((await api.get("/api/v1/admin/aggregations/BAD:ID").set(admin)).status).toBe(400);
  });

  it("schedules the nightly fan-out with a cron job scheduler", async () => {
    let scheduler = await queue.getJobScheduler(NIGHTLY_SCHEDULER_ID);
    for (let i = 0; !scheduler && i < 50; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      scheduler = await queue.getJobScheduler(NIGHTLY_SCHEDULER_ID);
    }
    expect(scheduler).toMatchObject({name: AGGREGATION_JOBS.nightlyFanOut, pattern: loadConfig().nightlyCron, tz: "UTC"});
  });

  describe("with a second worker process listening", () => {
    let worker: ChildProcess;
    let events: QueueEvents;
    const completions = new Map<string, number>();

    beforeAll(async () => {
      worker = spawn(process.execPath, ["--import", "@swc-node/register/esm-register", "src/worker.ts"], {
        cwd: process.cwd(),
        env: {...process.env, LOG_LEVEL: "warn"},
        stdio: ["ignore", "ignore", "inherit"]
      });
      for (let i = 0; (await queue.getWorkersCount()) < 2; i++) {
        if (i > 300 || worker.exitCode !== null) throw new Error("the worker process did not start");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      events = new QueueEvents(AGGREGATION_QUEUE, {connection: redisOptions(loadConfig().redisUrl), prefix: loadConfig().queuePrefix});
      await events.waitUntilReady();
      events.on("completed", ({jobId}) => completions.set(jobId, (completions.get(jobId) ?? 0) + 1));
    }, 60_000);
    afterAll(async () => {
      await events?.close();
      if (worker && worker.exitCode === null) {
        const exited = new Promise((resolve) => worker.once("exit", resolve));
        worker.kill("SIGTERM");
        await exited;
      }
    });

    it("runs each tenant's nightly job once, however many fan-outs and workers", async () => {
      const tenants = [newTenant("night_a"), newTenant("night_b")];
      const devices: string[] = [];
      for (const [i, tenant] of tenants.entries()) {
        const auth = await bearer(tenant);
        const device = await createDevice(api, auth, `N-${i}`);
        devices.push(device);
        const yesterday = addDays(localDate(new Date(), "UTC"), -1);
        await insertReadings(tenant, device, every(`${yesterday}T00:00:00Z`, `${yesterday}T04:00:00Z`, 30, 10 + i));
      }
      // Two schedulers firing the same night (or a fan-out retried): four fan-outs, two workers.
      await Promise.all([1, 2, 3, 4].map(() => queue.add(AGGREGATION_JOBS.nightlyFanOut, {})));

      const yesterday = addDays(localDate(new Date(), "UTC"), -1);
      const ids = tenants.map((tenant) => nightlyJobId(tenant, yesterday));
      for (let i = 0; ids.some((id) => !completions.has(id)); i++) {
        if (i > 300) throw new Error(`nightly jobs did not complete: ${JSON.stringify([...completions])}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // Let any duplicate that might still be running finish before counting.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(ids.map((id) => completions.get(id))).toEqual([1, 1]);
      for (const id of ids) expect(await queue.getJob(id)).toMatchObject({attemptsStarted: 1, data: {trigger: "nightly"}});
      const jobs = await queue.getJobs(["completed", "failed", "active", "waiting", "delayed"]);
      for (const tenant of tenants) {
        expect(jobs.filter((job) => job.name === AGGREGATION_JOBS.tenant && job.data?.tenantId === tenant).map((job) => job.id)).toEqual([nightlyJobId(tenant, yesterday)]);
      }
      for (const [i, tenant] of tenants.entries()) {
        expect(await dailyRows(tenant, devices[i]!)).toMatchObject([{date: yesterday, readingCount: 8}]);
      }
    });
  });
});
