import {Redis} from "ioredis";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {newTenant} from "../helpers/tokens.js";
import {type AppProcess, startApp, startOwnRedis, waitFor} from "./helpers/processes.js";
import {call, tenantAuth} from "./helpers/load.js";

describe("fault: Redis down", () => {
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let app: AppProcess;
  beforeAll(async () => {
    redis = await startOwnRedis();
    app = await startApp({REDIS_URL: redis.url, QUEUE_PREFIX: `faults-redis-${process.pid}`});
  });
  afterAll(async () => {
    await app?.stop("SIGKILL");
    await redis?.stop();
  });

  const ready = async () => (await (await fetch(`${app.baseUrl}/health/ready`)).json()) as {status: string; checks: {redis: string}};

  it("keeps reading and ingesting without Redis, reports it, and resumes caching and jobs when it returns", async () => {
    const tenant = newTenant("redisdown");
    const auth = await tenantAuth(tenant);
    const device = await call(app.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: "REDIS-1"});
    const post = (minute: number) =>
      fetch(`${app.baseUrl}/api/v1/devices/${device.id}/readings`, {
        method: "POST",
        headers: {Authorization: auth, "content-type": "application/json"},
        body: JSON.stringify({
          temperatureCelsius: 21 + minute / 10,
          recordedAt: new Date(Date.now() - 3_600_000 + minute * 60_000).toISOString()
        })
      });
    const weekly = () => fetch(`${app.baseUrl}/api/v1/devices/${device.id}/stats/weekly`, {headers: {Authorization: auth}});

    expect((await post(0)).status).toBe(201);
    expect((await weekly()).status).toBe(200);
    expect((await ready()).checks.redis).toBe("up");

    await redis.stop();
    const statuses: number[] = [];
    for (let minute = 1; minute <= 5; minute++) statuses.push((await post(minute)).status);
    const reads = await Promise.all([
      weekly(),
      weekly(),
      fetch(`${app.baseUrl}/api/v1/devices/${device.id}/readings`, {headers: {Authorization: auth}})
    ]);
    const health = await fetch(`${app.baseUrl}/health/ready`);
    const healthBody = (await health.json()) as {checks: Record<string, string>};
    console.log(JSON.stringify({fault: "redis-down", ingest: statuses, reads: reads.map((r) => r.status), ready: health.status}));
    expect(statuses).toEqual([201, 201, 201, 201, 201]);
    expect(reads.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(health.status).toBe(503);
    expect(healthBody.checks).toMatchObject({redis: "down", database: "up", analytics: "up"});
    const weeklyBody = await (await weekly()).json();
    expect(JSON.stringify(weeklyBody)).toContain(device.id);

    await redis.start();
    await waitFor(async () => (await ready()).checks.redis === "up", 30_000, "readiness to see Redis again");
    expect((await post(6)).status).toBe(201);
    // Caching resumes: a read puts the weekly summary back into Redis.
    expect((await weekly()).status).toBe(200);
    const probe = new Redis(redis.url);
    try {
      await waitFor(async () => (await probe.keys(`stats:weekly:${tenant}:*`)).length > 0, 10_000, "the weekly summary to be cached again");
    } finally {
      probe.disconnect();
    }
    // Jobs resume: an aggregation can be enqueued and completes.
    let jobId = "";
    await waitFor(
      async () => {
        jobId = (await call(app.baseUrl, auth, "POST", "/api/v1/admin/aggregations", {}).catch(() => ({jobId: ""}))).jobId;
        return jobId !== "";
      },
      15_000,
      "the job queue to accept work again"
    );
    let state = "";
    await waitFor(
      async () => {
        state = (await call(app.baseUrl, auth, "GET", `/api/v1/admin/aggregations/${encodeURIComponent(jobId)}`)).state;
        return state === "completed" || state === "failed";
      },
      60_000,
      "the aggregation job to finish"
    );
    expect(state).toBe("completed");
  });
});
