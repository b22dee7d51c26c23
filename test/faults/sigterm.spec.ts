import pg from "pg";
import {afterAll, describe, expect, it} from "vitest";
import {newTenant} from "../helpers/tokens.js";
import {type AppProcess, startApp, startOwnRedis} from "./helpers/processes.js";
import {call, countBy, dropped, ingestContinuously, tenantAuth} from "./helpers/load.js";

/** An ES module as a data: URL (NODE_OPTIONS drops double quotes, and its spaces split options). */
const EXIT_TIME_HOOK = "data:text/javascript,process.on('exit',()=>process.stderr.write('\\nEXIT_AT='+Date.now()+'\\n'))";

describe("fault: SIGTERM under load", () => {
  let app: AppProcess | undefined;
  let redis: Awaited<ReturnType<typeof startOwnRedis>> | undefined;
  afterAll(async () => {
    await app?.stop("SIGKILL");
    await redis?.stop();
  });

  it("finishes in-flight requests, refuses new ones, closes everything, exits 0 and loses no acknowledged write", async () => {
    redis = await startOwnRedis();
    app = await startApp({
      REDIS_URL: redis.url,
      RATE_LIMIT_DEVICE_PER_MINUTE: "0",
      RATE_LIMIT_TENANT_PER_MINUTE: "0",
      // Prints the process's own time of exit; a pipe write is synchronous, so it is out before the process ends.
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${EXIT_TIME_HOOK}`
    });
    const tenant = newTenant("sigterm");
    const auth = await tenantAuth(tenant);
    const device = await call(app.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: "SIGTERM-1"});

    let exitCode: number | null | undefined;
    void app.exited.then((code) => (exitCode = code));
    let stopLoad = false;
    const load = ingestContinuously({
      baseUrl: app.baseUrl,
      auth,
      deviceId: device.id,
      workers: 8,
      timeoutMs: 10_000,
      until: () => stopLoad,
      start: Date.now()
    });
    await new Promise((r) => setTimeout(r, 1_500));
    const signalledAt = Date.now();
    app.child.kill("SIGTERM");
    await app.exited;
    const exitedAt = Date.now();
    // Keep knocking a little after exit: those must be refused, not hang.
    await new Promise((r) => setTimeout(r, 300));
    stopLoad = true;
    const outcomes = await load;

    // The child's own clock at its exit (EXIT_TIME_HOOK; same machine). The parent sees the exit
    // event later, by tens of ms under load: a request refused by a dead process could pass for
    // one refused by a stopping one.
    const exitedAtInChild = Number(/EXIT_AT=(\d+)/.exec(app.output())?.[1]);
    // Refusals noticed (the connect failed) between the signal and that instant.
    const refusedWhileStopping = () =>
      outcomes.filter((o) => o.result === "refused" && o.at >= signalledAt && o.at + o.ms < exitedAtInChild).length;
    // Answers that came after a refusal had been seen: the listener was closed while in-flight requests were still being served.
    const servedAfterARefusal = () => {
      const firstRefusal = Math.min(...outcomes.filter((o) => o.result === "refused" && o.at >= signalledAt).map((o) => o.at + o.ms));
      return outcomes.filter((o) => o.result === 201 && o.at + o.ms > firstRefusal).length;
    };
    const counts = countBy(outcomes);
    console.log(
      JSON.stringify({
        fault: "sigterm",
        sent: outcomes.length,
        counts,
        shutdownMs: exitedAt - signalledAt,
        stoppingMs: exitedAtInChild - signalledAt,
        refusedWhileStopping: refusedWhileStopping(),
        servedAfterARefusal: servedAfterARefusal()
      })
    );
    expect(exitCode).toBe(0);
    expect(app.output()).toContain("SHUTDOWN_COMPLETE");
    // Nothing but success, or a refused connection once the listener closed: no 5xx, no timeouts,
    // and no request that reached the server dropped (reset or closed without a response).
    expect(dropped(outcomes, signalledAt)).toEqual([]);
    for (const result of Object.keys(counts)) expect(["201", "refused"]).toContain(result);
    // Refused while the process was still stopping, not merely once it was gone (load sent after
    // the exit is refused by any dead process), and while in-flight requests were still being
    // answered: the listener closed first, not during the final teardown.
    expect(refusedWhileStopping(), `refused between SIGTERM and exit (${exitedAtInChild - signalledAt} ms)`).toBeGreaterThan(0);
    expect(servedAfterARefusal(), "answered 201 after a refusal").toBeGreaterThan(0);
    expect(outcomes.some((o) => o.result === 201 && o.at >= signalledAt - 50)).toBe(true);

    const acknowledged = outcomes.filter((o) => o.result === 201).map((o) => o.recordedAt);
    const client = new pg.Client({connectionString: process.env.DATABASE_URL});
    await client.connect();
    try {
      const rows = await client.query(`select recorded_at from "${tenant}".temperature_readings where device_id = $1`, [device.id]);
      const stored = new Set(rows.rows.map((r: {recorded_at: Date}) => r.recorded_at.toISOString()));
      const lost = acknowledged.filter((recordedAt) => !stored.has(recordedAt));
      console.log(JSON.stringify({fault: "sigterm", acknowledged: acknowledged.length, lost: lost.length}));
      expect(lost).toEqual([]);
    } finally {
      await client.end();
    }
  });
});
