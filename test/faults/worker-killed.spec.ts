import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {newTenant} from "../helpers/tokens.js";
import {type AppProcess, startApp, startOwnRedis, waitFor} from "./helpers/processes.js";
import {call, tenantAuth} from "./helpers/load.js";
import {expectedDailyStats, insertDayOfReadings, sameDailyStats, storedDailyStats} from "./helpers/data.js";

const DAY = "2026-03-10";
/** Two chunks of the recompute (RECOMPUTE_CHUNK = 1,000 devices): the job has a middle. */
const DEVICES = 1_500;
const FIRST_CHUNK = 1_000;

interface JobStatus {
  state: string;
  progress: number;
  devicesDone: number | null;
  devicesTotal: number | null;
  attemptsMade?: number;
}

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

  /**
   * The kill must land while the job is active and half done, every run, not whenever a poll
   * happens to see "active" (a short job is over before the kill, a slow start still waiting).
   * So the test holds a row lock on the first device of the second chunk: the worker writes the
   * first chunk, reports 1,000 of 1,500 devices done, then waits on that row until it is killed.
   */
  it("retries the stalled aggregation on another worker, with the same result as an uninterrupted run", async () => {
    const tenant = newTenant("killed");
    const auth = await tenantAuth(tenant);
    const first = await call(api.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: "KILL-0"});
    const db = new pg.Client({connectionString: process.env.DATABASE_URL});
    const analytics = new pg.Client({connectionString: process.env.ANALYTICS_DATABASE_URL});
    const blocker = new pg.Client({connectionString: process.env.ANALYTICS_DATABASE_URL});
    await Promise.all([db.connect(), analytics.connect(), blocker.connect()]);
    try {
      const created = await db.query(
        `insert into "${tenant}".devices (id, created_at, updated_at, serial_number, name, owner_id)
         select gen_random_uuid(), now(), now(), 'KILL-' || i, 'Sensor-KILL-' || i, $1 from generate_series(1, $2 - 1) as i
         returning id::text`,
        [await ownerOf(db, tenant, first.id), DEVICES]
      );
      const deviceIds = [first.id as string, ...created.rows.map((row: {id: string}) => row.id)].sort();
      await insertDayOfReadings(db, tenant, deviceIds, new Date(`${DAY}T00:00:00Z`), 96);

      // A stale row for the second chunk's first device, locked until the worker is dead.
      const pinned = deviceIds[FIRST_CHUNK]!;
      await analytics.query(
        `insert into daily_stats (tenant_id, device_id, date, avg_temperature_celsius, min_temperature_celsius, max_temperature_celsius, reading_count) values ($1, $2, $3, 0, 0, 0, 1)`,
        [tenant, pinned, DAY]
      );
      await blocker.query("begin");
      await blocker.query("select 1 from daily_stats where tenant_id = $1 and device_id = $2 and date = $3 for update", [
        tenant,
        pinned,
        DAY
      ]);

      workers.push(await startApp(env(), "worker"));
      const {jobId} = await call(api.baseUrl, auth, "POST", "/api/v1/admin/aggregations", {date: DAY});
      const status = (): Promise<JobStatus> => call(api.baseUrl, auth, "GET", `/api/v1/admin/aggregations/${encodeURIComponent(jobId)}`);
      let before: JobStatus | undefined;
      await waitFor(
        async () => {
          before = await status();
          return before.state === "active" && before.devicesDone === FIRST_CHUNK;
        },
        60_000,
        `the job to be active with ${FIRST_CHUNK} of ${DEVICES} devices done`
      ).catch((error: Error) => {
        throw new Error(`${error.message}; last status: ${JSON.stringify(before)}`);
      });
      workers[0]!.child.kill("SIGKILL");
      await workers[0]!.exited;
      const killed = await status();
      await blocker.query("rollback");

      workers.push(await startApp(env(), "worker"));
      let final: JobStatus | undefined;
      await waitFor(
        async () => {
          final = await status();
          return final.state === "completed" || final.state === "failed";
        },
        90_000,
        "the retried job to finish"
      );
      const brief = (s?: JobStatus) =>
        s && {state: s.state, devicesDone: s.devicesDone, devicesTotal: s.devicesTotal, attemptsMade: s.attemptsMade};
      console.log(JSON.stringify({fault: "worker-killed", killedWhile: brief(killed), final: brief(final)}));

      // The kill hit the job mid-way: active, half the devices done, not finished by the dead worker.
      expect(killed).toMatchObject({state: "active", devicesDone: FIRST_CHUNK, devicesTotal: DEVICES});
      expect(workers[0]!.output()).not.toContain("AGGREGATION_COMPLETED");
      // Another worker ran it again to the end.
      expect(final!.state).toBe("completed");
      expect(workers[1]!.output()).toContain("AGGREGATION_COMPLETED");

      const expected = await expectedDailyStats(db, tenant, new Date(`${DAY}T00:00:00Z`));
      const stored = await storedDailyStats(analytics, tenant, DAY);
      expect(stored).toHaveLength(DEVICES);
      expect(sameDailyStats(stored, expected)).toBe(true);
    } finally {
      await blocker.end().catch(() => {});
      await db.end();
      await analytics.end();
    }
  });
});

async function ownerOf(db: pg.Client, tenant: string, deviceId: string): Promise<string> {
  return (await db.query(`select owner_id::text as id from "${tenant}".devices where id = $1`, [deviceId])).rows[0].id;
}
