import {getQueueToken} from "@tsed/bullmq";
import {PlatformTest} from "@tsed/common";
import type {Queue} from "bullmq";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {AGGREGATION_QUEUE} from "../../src/modules/stats/daily-stats-recompute.queue.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {adminAuth, closeDbs, createDevice, dailyRows, postReadings} from "../helpers/stats-fixtures.js";

describe("admin: tenant settings", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startTestServer();
  });
  afterAll(async () => {
    await stopTestServer();
    await closeDbs();
  });

  it("reads and changes the tenant's timezone (default UTC)", async () => {
    const tenant = newTenant("tz");
    const admin = await adminAuth(tenant);
    const initial = await api.get("/api/v1/admin/tenant").set(admin);
    expect(initial.status).toBe(200);
    expect(initial.body).toMatchObject({id: tenant, timezone: "UTC"});
    expect(Date.parse(initial.body.createdAt)).not.toBeNaN();

    const changed = await api.patch("/api/v1/admin/tenant").set(admin).send({timezone: "Europe/Berlin"});
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({id: tenant, timezone: "Europe/Berlin"});
    expect((await api.get("/api/v1/admin/tenant").set(admin)).body.timezone).toBe("Europe/Berlin");
  });

  it.each([
    ["an unknown zone", "Mars/Olympus_Mons"],
    ["an offset", "+01:00"],
    ["a POSIX rule", "CET-1CEST"],
    ["the wrong case", "europe/berlin"],
    ["an empty string", ""],
    ["SQL", "UTC'; drop table tenants; --"]
  ])("rejects %s with 400", async (_label, timezone) => {
    const admin = await adminAuth(newTenant("tzbad"));
    const res = await api.patch("/api/v1/admin/tenant").set(admin).send({timezone});
    expect(res.status).toBe(400);
    expect(res.body.name).toBe("BAD_REQUEST");
    expect((await api.get("/api/v1/admin/tenant").set(admin)).body.timezone).toBe("UTC");
  });

  it("keeps one pending manual aggregation per (tenant, day), answering a repeat with the same job", async () => {
    // No worker runs in this file: every job stays pending.
    const tenant = newTenant("aggdedupe");
    const admin = await adminAuth(tenant);
    const answers = await Promise.all(
      Array.from({length: 20}, () => api.post("/api/v1/admin/aggregations").set(admin).send({date: "2026-02-01"}))
    );
    expect(new Set(answers.map((res) => res.status))).toEqual(new Set([202]));
    const ids = new Set(answers.map((res) => res.body.jobId));
    expect([...ids]).toEqual([`manual.${tenant}.2026-02-01`]);
    const other = await api.post("/api/v1/admin/aggregations").set(admin).send({date: "2026-02-02"});
    expect(other.body.jobId).toBe(`manual.${tenant}.2026-02-02`);

    const queue = PlatformTest.get<Queue>(getQueueToken(AGGREGATION_QUEUE));
    const jobs = (await queue.getJobs(["waiting", "delayed", "prioritized", "active"])).filter((job) =>
      job.id?.startsWith(`manual.${tenant}.`)
    );
    expect(jobs.map((job) => job.id).sort()).toEqual([`manual.${tenant}.2026-02-01`, `manual.${tenant}.2026-02-02`]);
    await Promise.all(jobs.map((job) => job.remove()));
  });

  it("is for admins only", async () => {
    const user = await bearer(newTenant("tzuser"));
    expect((await api.get("/api/v1/admin/tenant").set(user)).status).toBe(403);
    expect((await api.patch("/api/v1/admin/tenant").set(user).send({timezone: "UTC"})).status).toBe(403);
    expect((await api.get("/api/v1/admin/tenant")).status).toBe(401);
  });

  it("puts new readings into local days of the new timezone, and drops cached weekly summaries", async () => {
    const tenant = newTenant("tzdays");
    const admin = await adminAuth(tenant);
    const device = await createDevice(api, admin, "TZ-1");
    const weeklyBefore = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(admin);
    expect(weeklyBefore.body.timezone).toBe("UTC");

    await api.patch("/api/v1/admin/tenant").set(admin).send({timezone: "America/Los_Angeles"});
    const weeklyAfter = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(admin);
    expect(weeklyAfter.body.timezone).toBe("America/Los_Angeles");

    // 05:00Z on March 10 is still March 9 in Los Angeles (UTC-7 after March 8).
    await postReadings(api, admin, device, [{recordedAt: "2026-03-10T05:00:00Z", temperatureCelsius: 20}]);
    expect(await dailyRows(tenant, device)).toMatchObject([{date: "2026-03-09", readingCount: 1}]);
  });
});
