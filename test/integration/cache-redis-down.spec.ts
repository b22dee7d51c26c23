import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {zoneFarFromMidnight} from "../helpers/clock.js";
import {adminAuth, closeDbs, createDevice, dailyRows, postReadings, setTimezone} from "../helpers/stats-fixtures.js";

/** The whole application with Redis unreachable (a closed port): no cache, no queue, no 500. */
describe("stats with Redis unreachable", () => {
  let api: Api;
  let tenant: string;
  let auth: Record<string, string>;
  let device: string;
  beforeAll(async () => {
    api = await startTestServer({redisUrl: "redis://127.0.0.1:1"});
    tenant = newTenant("noredis");
    auth = await bearer(tenant);
    device = await createDevice(api, auth, "NR-1");
  });
  afterAll(async () => {
    await stopTestServer();
    await closeDbs();
  });

  it("reports Redis down in readiness while the databases are up", async () => {
    const ready = await api.get("/health/ready");
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toEqual({database: "up", analytics: "up", redis: "down"});
  });

  it("writes, refreshes and reads weekly stats uncached", async () => {
    // The clock read once, in a zone where it is about local noon: the readings' local day is
    // the one the server calls today, whenever this runs.
    const now = new Date();
    const {zone, localDate: today} = zoneFarFromMidnight(now);
    await setTimezone(tenant, zone);
    const minutesAgo = (minutes: number) => new Date(now.getTime() - minutes * 60_000).toISOString();
    await postReadings(api, auth, device, [{recordedAt: minutesAgo(2), temperatureCelsius: 20}]);
    expect(await dailyRows(tenant, device)).toMatchObject([{date: today, readingCount: 1}]);
    const first = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    expect(first.status).toBe(200);
    expect(first.body.summary).toMatchObject({readingCount: 1});

    await postReadings(api, auth, device, [{recordedAt: minutesAgo(1), temperatureCelsius: 24}]);
    const second = await api.get(`/api/v1/devices/${device}/stats/weekly`).set(auth);
    expect(second.status).toBe(200);
    expect(second.body.summary).toMatchObject({readingCount: 2, maxTemperatureCelsius: 24});

    const history = await api.get(`/api/v1/devices/${device}/readings`).set(auth);
    expect(history.body.count).toBe(2);
    expect((await api.get(`/api/v1/devices/${device}/stats/daily`).set(auth)).status).toBe(200);
  });

  it("answers 503 (retry later), not 500, for the job queue", async () => {
    const admin = await adminAuth(tenant);
    const enqueue = await api.post("/api/v1/admin/aggregations").set(admin).send({});
    expect(enqueue.status).toBe(503);
    expect(enqueue.body).toMatchObject({status: 503, name: "SERVICE_UNAVAILABLE"});
    expect(enqueue.headers["retry-after"]).toBeDefined();
    expect((await api.get("/api/v1/admin/aggregations/manual.x.2026-01-01.y").set(admin)).status).toBe(503);
  });
});
