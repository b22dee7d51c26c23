import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {newTenant} from "../helpers/tokens.js";
import {type AppProcess, startApp, startOwnRedis, waitFor} from "./helpers/processes.js";
import {call, tenantAuth} from "./helpers/load.js";
import {expectedDailyStats, insertDayOfReadings, sameDailyStats, storedDailyStats} from "./helpers/data.js";

const DAY = "2026-03-10";

describe("fault: worker killed mid-job", () => {
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let api: AppProcess;
  const workers: AppProcess[] = [];
  const env = () => ({REDIS_URL: redis.url, QUEUE_PREFIX: `faults-worker-${process.pid}`, JOB_LOCK_MS: "2000"});

  beforeAll(async () => {
    redis = await startOwnRedis();
    api = await startApp({...env(), RUN_WORKERS: "false"});
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop("SIGKILL");
    await api?.stop("SIGKILL");
    await redis?.stop();
  });

  it("retries the stalled aggregation on another worker, with the same result as an uninterrupted run", async () => {
    const tenant = newTenant("killed");
    const auth = await tenantAuth(tenant);
    const deviceIds: string[] = [];
    for (let i = 0; i < 200; i++) deviceIds.push((await call(api.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: `KILL-${i}`})).id);
    const db = new pg.Client({connectionString: process.env.DATABASE_URL});
    const analytics = new pg.Client({connectionString: process.env.ANALYTICS_DATABASE_URL});
    await db.connect();
    await analytics.connect();
    try {
      await insertDayOfReadings(db, tenant, deviceIds, new Date(`${DAY}T00:00:00Z`), 2880);

      workers.push(await startApp(env(), "worker"));
      const {jobId} = await call(api.baseUrl, auth, "POST", "/api/v1/admin/aggregations", {date: DAY});
      const status = () => call(api.baseUrl, auth, "GET", `/api/v1/admin/aggregations/${encodeURIComponent(jobId)}`);
      await waitFor(async () => (await status()).state === "active", 60_000, "the job to start");
      workers[0]!.child.kill("SIGKILL");
      await workers[0]!.exited;
      const killedState = (await status()).state;

      workers.push(await startApp(env(), "worker"));
      let final: {state: string; attemptsMade?: number};
      await waitFor(async () => {
        final = await status();
        return final.state === "completed" || final.state === "failed";
      }, 90_000, "the retried job to finish");
      console.log(JSON.stringify({fault: "worker-killed", killedWhile: killedState, final: final!}));
      expect(final!.state).toBe("completed");

      const expected = await expectedDailyStats(db, tenant, new Date(`${DAY}T00:00:00Z`));
      const stored = await storedDailyStats(analytics, tenant, DAY);
      expect(stored).toHaveLength(200);
      expect(sameDailyStats(stored, expected)).toBe(true);
    } finally {
      await db.end();
      await analytics.end();
    }
  });
});
