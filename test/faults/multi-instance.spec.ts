import {Queue} from "bullmq";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {newTenant} from "../helpers/tokens.js";
import {type AppProcess, startApp, startOwnRedis, waitFor} from "./helpers/processes.js";
import {call, countBy, dropped, ingestContinuously, tenantAuth} from "./helpers/load.js";

describe("several instances: two APIs and a worker on one Postgres and Redis", () => {
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let apis: AppProcess[] = [];
  let worker: AppProcess;
  const prefix = `faults-multi-${process.pid}`;

  beforeAll(async () => {
    redis = await startOwnRedis();
    const env = {REDIS_URL: redis.url, QUEUE_PREFIX: prefix, RATE_LIMIT_DEVICE_PER_MINUTE: "0", RATE_LIMIT_TENANT_PER_MINUTE: "0"};
    apis = await Promise.all([startApp(env), startApp(env)]);
    worker = await startApp(env, "worker");
  });
  afterAll(async () => {
    for (const app of [...apis, worker]) await app?.stop("SIGKILL");
    await redis?.stop();
  });

  it("serves the same data from either API", async () => {
    const auth = await tenantAuth(newTenant("multi"));
    const [a, b] = apis as [AppProcess, AppProcess];
    const device = await call(a.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: "MULTI-1"});
    expect((await call(b.baseUrl, auth, "GET", `/api/v1/devices/${device.id}`)).serialNumber).toBe("MULTI-1");
    await call(b.baseUrl, auth, "POST", `/api/v1/devices/${device.id}/readings`, {
      temperatureCelsius: 19.5,
      recordedAt: new Date(Date.now() - 60_000).toISOString()
    });
    const latest = await call(a.baseUrl, auth, "GET", `/api/v1/devices/${device.id}/readings/latest`);
    expect(latest.temperatureCelsius).toBe(19.5);
  });

  it("runs the nightly aggregation exactly once per tenant, however many processes listen and fire", async () => {
    const tenants = [newTenant("nightly"), newTenant("nightly"), newTenant("nightly")];
    for (const tenant of tenants) await call(apis[0]!.baseUrl, await tenantAuth(tenant), "GET", "/api/v1/me");
    const queue = new Queue("aggregation", {connection: {host: "127.0.0.1", port: redis.port}, prefix});
    try {
      // Three schedulers firing the same night (as if three processes each thought it was theirs).
      await Promise.all([1, 2, 3].map(() => queue.add("nightly-fan-out", {})));
      await waitFor(
        async () => (await queue.getJobCounts("wait", "active", "delayed")).wait! + (await queue.getJobCounts("active")).active! === 0,
        60_000,
        "the queue to drain"
      );
      await new Promise((r) => setTimeout(r, 500));
      const completed = await queue.getJobs(["completed"], 0, 1000);
      const perTenant = completed.filter((job) => job.name === "aggregate-tenant" && tenants.includes(job.data.tenantId));
      const counts = Object.fromEntries(tenants.map((t) => [t, perTenant.filter((job) => job.data.tenantId === t).length]));
      console.log(
        JSON.stringify({multiInstance: {fanOuts: completed.filter((j) => j.name === "nightly-fan-out").length, perTenant: counts}})
      );
      for (const tenant of tenants) expect(counts[tenant]).toBe(1);
      expect(perTenant.every((job) => job.attemptsMade <= 1)).toBe(true);
    } finally {
      await queue.close();
    }
  });

  it("loses nothing when one API stops under load", async () => {
    const tenant = newTenant("multistop");
    const auth = await tenantAuth(tenant);
    const [a, b] = apis as [AppProcess, AppProcess];
    const device = await call(a.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: "MULTI-STOP"});
    let stop = false;
    const start = Date.now();
    const loads = [
      ingestContinuously({baseUrl: a.baseUrl, auth, deviceId: device.id, workers: 4, timeoutMs: 10_000, until: () => stop, start}),
      ingestContinuously({
        baseUrl: b.baseUrl,
        auth,
        deviceId: device.id,
        workers: 4,
        timeoutMs: 10_000,
        until: () => stop,
        start: start + 10_000_000
      })
    ];
    await new Promise((r) => setTimeout(r, 1_000));
    const signalledAt = Date.now();
    expect(await a.stop("SIGTERM")).toBe(0);
    await new Promise((r) => setTimeout(r, 1_000));
    stop = true;
    const [fromA, fromB] = await Promise.all(loads);
    console.log(JSON.stringify({multiInstance: {stoppedApi: countBy(fromA!), survivingApi: countBy(fromB!)}}));
    // The stopped API answered or refused the connection: it dropped no request it had taken.
    expect(dropped(fromA!, signalledAt)).toEqual([]);
    for (const result of Object.keys(countBy(fromA!))) expect(["201", "refused"]).toContain(result);
    expect(Object.keys(countBy(fromB!))).toEqual(["201"]);

    const acknowledged = [...fromA!, ...fromB!].filter((o) => o.result === 201).map((o) => o.recordedAt);
    const db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
    try {
      const rows = await db.query(`select recorded_at from "${tenant}".temperature_readings where device_id = $1`, [device.id]);
      const stored = new Set(rows.rows.map((r: {recorded_at: Date}) => r.recorded_at.toISOString()));
      expect(acknowledged.filter((t) => !stored.has(t))).toEqual([]);
    } finally {
      await db.end();
    }
  });
});
