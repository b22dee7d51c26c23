import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {newTenant} from "../helpers/tokens.js";
import {type AppProcess, startApp, startOwnPostgres, startOwnRedis} from "./helpers/processes.js";
import {call, countBy, ingestContinuously, tenantAuth} from "./helpers/load.js";

/** The server's UNHANDLED_ERROR log records (JSON lines), to explain an unexpected 500. */
function unhandledErrors(output: string) {
  return output
    .split("\n")
    .filter((line) => line.includes("UNHANDLED_ERROR"))
    .join("\n");
}

describe("fault: Postgres restarted under load", () => {
  let pg: Awaited<ReturnType<typeof startOwnPostgres>>;
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let app: AppProcess;

  beforeAll(async () => {
    pg = await startOwnPostgres();
    redis = await startOwnRedis();
    app = await startApp({
      REDIS_URL: redis.url,
      DATABASE_URL: pg.url("smart_thermo"),
      ANALYTICS_DATABASE_URL: pg.url("smart_thermo_analytics"),
      RATE_LIMIT_DEVICE_PER_MINUTE: "0",
      RATE_LIMIT_TENANT_PER_MINUTE: "0"
    });
  });
  afterAll(async () => {
    await app?.stop("SIGKILL");
    await redis?.stop();
    await pg?.dispose();
  });

  it("answers 503 with Retry-After during the outage, recovers by itself, and loses no acknowledged reading", async () => {
    const tenant = newTenant("pgfault");
    const auth = await tenantAuth(tenant);
    const device = await call(app.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: "PG-FAULT-1"});

    const start = Date.now();
    let stopLoad = false;
    const load = ingestContinuously({
      baseUrl: app.baseUrl,
      auth,
      deviceId: device.id,
      workers: 4,
      timeoutMs: 15_000,
      until: () => stopLoad,
      start
    });

    await new Promise((r) => setTimeout(r, 1_500));
    const outageStart = Date.now();
    await pg.stop();
    await new Promise((r) => setTimeout(r, 3_000));
    await pg.start();
    const outageEnd = Date.now();
    await new Promise((r) => setTimeout(r, 4_000));
    stopLoad = true;
    const outcomes = await load;

    const counts = countBy(outcomes);
    console.log(JSON.stringify({fault: "postgres-restart", sent: outcomes.length, counts, outageMs: outageEnd - outageStart}));
    // A 5xx other than 503 is a bug in the error mapping: show what the server logged for it.
    if (outcomes.some((o) => typeof o.result === "number" && o.result >= 500 && o.result !== 503))
      console.log(unhandledErrors(app.output()));
    // Only success or "retry later": never a 500, never a hang past the bound.
    expect(Object.keys(counts).sort()).toEqual(expect.arrayContaining(["201", "503"]));
    for (const status of Object.keys(counts)) expect(["201", "503"]).toContain(status);
    expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(15_000);
    for (const o of outcomes.filter((o) => o.result === 503)) expect(Number(o.retryAfter)).toBeGreaterThan(0);
    // It recovered by itself: successes after the restart.
    expect(outcomes.some((o) => o.result === 201 && o.at > outageEnd)).toBe(true);

    // Every acknowledged reading is stored.
    const acknowledged = outcomes.filter((o) => o.result === 201).map((o) => o.recordedAt);
    const client = pg.client("smart_thermo");
    await client.connect();
    try {
      const rows = await client.query(`select recorded_at from "${tenant}".temperature_readings where device_id = $1`, [device.id]);
      const stored = new Set(rows.rows.map((r: {recorded_at: Date}) => r.recorded_at.toISOString()));
      const lost = acknowledged.filter((recordedAt) => !stored.has(recordedAt));
      console.log(JSON.stringify({fault: "postgres-restart", acknowledged: acknowledged.length, stored: stored.size, lost: lost.length}));
      expect(lost).toEqual([]);
    } finally {
      await client.end();
    }
  });
});
