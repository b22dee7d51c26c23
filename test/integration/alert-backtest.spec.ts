import fc from "fast-check";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {createDevice, createRule, postBatch, provisionedBearer} from "../helpers/factories.js";
import {checkProperty, type PropertyBudget, propertyTimeout} from "../helpers/property.js";
import {TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";

interface Episode {
  breachStartedAt: string;
  firedAt: string;
  resolvedAt: string | null;
  retractedAt: string | null;
  peakTemperatureCelsius: number | null;
  readingCount: number;
  temperatureCelsius: number | null;
  silentSince: string | null;
}
interface Result {
  episodes: Episode[];
  totalBreachSeconds: number;
  readingsEvaluated: number;
}

const T0 = Date.UTC(2026, 0, 1);
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

/** POST /devices/{id}/alert-rules/backtest: what a rule would have done, by the live state machine, storing nothing. */
describe("alert rule backtest", () => {
  let api: Api;
  let tenant: string;
  let auth: Record<string, string>;
  let db: TenantDb;
  let serial = 0;

  const newDevice = () => createDevice(api, auth, `BT-${++serial}`);
  const post = (deviceId: string, readings: [number, number][]) =>
    postBatch(
      api,
      auth,
      deviceId,
      readings.map(([temperatureCelsius, seconds]) => ({temperatureCelsius, recordedAt: at(seconds)}))
    );
  const backtest = (deviceId: string, body: object, as = auth) =>
    api.post(`/api/v1/devices/${deviceId}/alert-rules/backtest`).set(as).send(body);
  const ok = async (deviceId: string, body: object): Promise<Result> => {
    const res = await backtest(deviceId, body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };

  beforeAll(async () => {
    // Two heavy reads of a tenant at once (the backtest is one), for the 429 below.
    api = await startTestServer({rateLimit: {devicePerMinute: 0, tenantPerMinute: 0, tenantReadsPerMinute: 0, tenantHeavyReads: 2}});
    tenant = newTenant("backtest");
    auth = await provisionedBearer(api, tenant);
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    await db?.close();
    await stopTestServer();
  });

  it("threshold: runs, forSeconds, hysteresis and an episode open at the end; stores and announces nothing", async () => {
    const deviceId = await newDevice();
    // above 8, forSeconds 120, δ 1: 9 at 0..60 is too short (a 7.5 at 90 breaks it); 9 from 120 fires at 240;
    // 7.5 at 300 is in the band (keeps it open); 6.9 at 360 clears it; 10 from 400 fires at 520 and is open at `to`.
    await post(deviceId, [
      [9, 0],
      [9, 60],
      [7.5, 90],
      [9, 120],
      [11, 180],
      [9, 240],
      [7.5, 300],
      [6.9, 360],
      [10, 400],
      [12, 460],
      [10, 520],
      [10, 580]
    ]);
    const eventsBefore = await db.count("events");
    const result = await ok(deviceId, {
      condition: "above",
      thresholdCelsius: 8,
      forSeconds: 120,
      clearDeltaCelsius: 1,
      severity: "critical",
      from: at(0),
      to: at(600)
    });
    expect(result).toEqual({
      episodes: [
        {
          breachStartedAt: at(120),
          firedAt: at(240),
          resolvedAt: at(360),
          retractedAt: null,
          peakTemperatureCelsius: 11,
          readingCount: 3,
          temperatureCelsius: 9,
          silentSince: null
        },
        {
          breachStartedAt: at(400),
          firedAt: at(520),
          resolvedAt: null,
          retractedAt: null,
          peakTemperatureCelsius: 12,
          readingCount: 4,
          temperatureCelsius: 10,
          silentSince: null
        }
      ],
      // 120 → 360, and 400 → `to` (600) for the open one.
      totalBreachSeconds: 240 + 200,
      readingsEvaluated: 12
    });
    // [from, to): `to` is exclusive, so the run 400..520 is left at 400..460, too short to fire.
    const window = {condition: "above", thresholdCelsius: 8, forSeconds: 120, from: at(400)};
    expect(await ok(deviceId, {...window, to: at(520)})).toEqual({episodes: [], totalBreachSeconds: 0, readingsEvaluated: 2});
    expect((await ok(deviceId, {...window, to: at(521)})).episodes.map((e) => e.firedAt)).toEqual([at(520)]);
    expect(await db.count("alerts")).toBe(0);
    expect(await db.count("alert_rules")).toBe(0);
    expect(await db.count("events")).toBe(eventsBefore);
  });

  it("no_data: silences longer than silenceSeconds between arrivals (server time), the last one open until min(to, now)", async () => {
    const deviceId = await newDevice();
    const arrivals = [0, 100, 500, 520];
    await post(
      deviceId,
      arrivals.map((s) => [20, s])
    );
    // Arrival times are the server's: set them as if the readings had arrived when they were recorded.
    await db.query(`update ${db.schema}."temperature_readings" set "created_at" = "recorded_at" where "device_id" = $1`, [deviceId]);
    const result = await ok(deviceId, {kind: "no_data", silenceSeconds: 120, from: at(-30), to: at(800)});
    expect(result).toEqual({
      episodes: [
        {
          breachStartedAt: at(100),
          firedAt: at(220),
          resolvedAt: at(500),
          retractedAt: null,
          peakTemperatureCelsius: null,
          readingCount: 0,
          temperatureCelsius: null,
          silentSince: at(100)
        },
        {
          breachStartedAt: at(520),
          firedAt: at(640),
          resolvedAt: null,
          retractedAt: null,
          peakTemperatureCelsius: null,
          readingCount: 0,
          temperatureCelsius: null,
          silentSince: at(520)
        }
      ],
      totalBreachSeconds: 400 + 280,
      readingsEvaluated: 4
    });
    // Silent from `from` itself when nothing arrives early enough.
    const fromEarlier = await ok(deviceId, {kind: "no_data", silenceSeconds: 60, from: at(-200), to: at(510)});
    expect(fromEarlier.episodes.map((e) => [e.silentSince, e.resolvedAt])).toEqual([
      [at(-200), at(0)],
      [at(0), at(100)],
      [at(100), at(500)]
    ]);
  });

  it("answers 400 in the error shape to fields of the wrong kind and to bad ranges, 404 to an unknown device, 403 to a viewer", async () => {
    const deviceId = await newDevice();
    const range = {from: at(0), to: at(3600)};
    const bad: [object, RegExp][] = [
      [{thresholdCelsius: 8, ...range}, /condition required/],
      [{kind: "no_data", ...range}, /silenceSeconds required/],
      [{kind: "no_data", silenceSeconds: 300, condition: "above", ...range}, /condition not allowed/],
      [{condition: "above", thresholdCelsius: 8, silenceSeconds: 300, ...range}, /silenceSeconds only no_data/],
      [{condition: "above", thresholdCelsius: 8, forSeconds: 86_401, ...range}, /forSeconds/],
      [{condition: "above", thresholdCelsius: "8", ...range}, /thresholdCelsius/],
      [{condition: "above", thresholdCelsius: 8, from: at(0)}, /to/],
      [{condition: "above", thresholdCelsius: 8, from: at(10), to: at(10)}, /`from` must be before `to`/],
      [{condition: "above", thresholdCelsius: 8, from: at(10), to: at(0)}, /`from` must be before `to`/],
      [{condition: "above", thresholdCelsius: 8, from: at(0), to: at(31 * 86_400 + 1)}, /at most 31 days/],
      [{condition: "above", thresholdCelsius: 8, from: "2026-02-30T00:00:00Z", to: at(0)}, /from/]
    ];
    for (const [body, message] of bad) {
      const res = await backtest(deviceId, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body, JSON.stringify(body)).toMatchObject({status: 400, name: "BAD_REQUEST"});
      expect(JSON.stringify(res.body), JSON.stringify(body)).toMatch(message);
    }
    expect((await backtest(deviceId, {condition: "above", thresholdCelsius: 8, from: at(0), to: at(31 * 86_400)})).status).toBe(200);
    // A rule's body as the API shows it (the other kind's fields null, the ignored ones present) is taken as it is.
    for (const rule of [
      {kind: "no_data", condition: null, thresholdCelsius: null, silenceSeconds: 300, severity: "critical", remindEverySeconds: null},
      {kind: "threshold", condition: "below", thresholdCelsius: 2, silenceSeconds: null, isEnabled: false, remindEverySeconds: 600}
    ]) {
      const res = await backtest(deviceId, {...rule, ...range});
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }
    const unknown = await backtest("00000000-0000-4000-8000-000000000001", {condition: "above", thresholdCelsius: 8, ...range});
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({status: 404, name: "NOT_FOUND"});
    const viewer = await backtest(deviceId, {condition: "above", thresholdCelsius: 8, ...range}, await bearer(tenant, {roles: ["viewer"]}));
    expect(viewer.status).toBe(403);
  });

  it("refuses a `from` before the tenant's raw retention: those readings are gone, not absent", async () => {
    const other = newTenant("backtest_ret");
    const admin = await bearer(other, {roles: ["admin"]});
    const deviceId = await createDevice(api, admin, "BT-RET");
    expect((await api.patch("/api/v1/admin/tenant").set(admin).send({rawRetentionDays: 30})).status).toBe(200);
    const day = 86_400_000;
    const body = (fromDaysAgo: number) => ({
      condition: "above",
      thresholdCelsius: 8,
      from: new Date(Date.now() - fromDaysAgo * day).toISOString(),
      to: new Date(Date.now() - (fromDaysAgo - 1) * day).toISOString()
    });
    const res = await backtest(deviceId, body(31), admin);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({status: 400, name: "BAD_REQUEST", message: expect.stringMatching(/raw readings for 30 days/)});
    expect((await backtest(deviceId, body(29), admin)).status).toBe(200);
  });

  it("is a heavy read: a tenant's third at once is a 429, and the two running still answer", async () => {
    const other = newTenant("backtest_heavy");
    const as = await bearer(other);
    const deviceId = await createDevice(api, as, "BT-HEAVY");
    const body = {condition: "above", thresholdCelsius: 8, from: at(0), to: at(3600)};
    // The tenant's readings held: the two backtests wait in the database, as slow scans would.
    const holder = await new TenantDb(other).connect();
    await holder.query("begin");
    await holder.query(`lock table ${holder.schema}."temperature_readings" in access exclusive mode`);
    const running = [backtest(deviceId, body, as).then((r) => r), backtest(deviceId, body, as).then((r) => r)];
    const [{pid}] = (await holder.query<{pid: number}>("select pg_backend_pid() as pid")) as [{pid: number}];
    for (let tries = 0; ; tries++) {
      const [{n}] = (await db.query<{n: number}>("select count(*)::int as n from pg_stat_activity where $1 = any(pg_blocking_pids(pid))", [
        pid
      ])) as [{n: number}];
      if (n >= 2) break;
      expect(tries, "the two backtests never reached the database").toBeLessThan(100);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const third = await backtest(deviceId, body, as);
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({status: 429, name: "TOO_MANY_REQUESTS", message: expect.stringMatching(/heavy reads/)});
    await holder.query("commit");
    await holder.close();
    expect((await Promise.all(running)).map((res) => res.status)).toEqual([200, 200]);
    expect((await backtest(deviceId, body, as)).status).toBe(200);
  });

  it("is documented with the rule's ranges and examples, as an operator's operation", async () => {
    const doc = (await api.get("/doc/swagger.json")).body;
    const {BacktestRequest, BacktestEpisode, BacktestResult} = doc.components.schemas;
    expect(BacktestRequest.required).toEqual(["from", "to"]);
    expect(BacktestRequest.properties).toMatchObject({
      kind: {enum: ["threshold", "no_data"], default: "threshold", example: "threshold"},
      forSeconds: {type: "integer", minimum: 0, maximum: 86400, default: 0, example: 300},
      clearDeltaCelsius: {minimum: 0, maximum: 100, default: 0, example: 1},
      silenceSeconds: {minimum: 60, maximum: 604800},
      from: {format: "date-time", example: expect.any(String)},
      to: {format: "date-time", example: expect.any(String)}
    });
    for (const schema of [BacktestRequest, BacktestEpisode, BacktestResult]) {
      for (const [name, property] of Object.entries(schema.properties as Record<string, {example?: unknown; type?: string}>)) {
        if (property.type !== "array") expect(property, name).toHaveProperty("example");
      }
    }
    const operation = doc.paths["/api/v1/devices/{deviceId}/alert-rules/backtest"].post;
    expect(operation["x-required-role"]).toBe("operator");
    expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "403", "404"]));
  });

  /**
   * The backtest of a rule equals what live evaluation stored: a rule with random forSeconds and
   * clearDeltaCelsius on a fresh device, random readings around its threshold posted in recordedAt
   * order in random batches, then the same rule backtested over a window holding all of them.
   */
  const budget: PropertyBudget = {searchMs: 40_000, minRuns: 30, maxRuns: 100};
  it(
    "equals live evaluation on random series",
    async () => {
      const series = fc.record({
        condition: fc.constantFrom("above", "below"),
        forSeconds: fc.oneof(fc.constant(0), fc.integer({min: 1, max: 600})),
        clearDeltaCelsius: fc.oneof(fc.constant(0), fc.constantFrom(0.5, 1, 2.5)),
        readings: fc.array(
          fc.record({
            gap: fc.integer({min: 1, max: 180}),
            // Around the threshold (20): on both sides and inside the hysteresis band.
            temperature: fc.integer({min: -8, max: 8}).map((n) => 20 + n / 2)
          }),
          {minLength: 1, maxLength: 60}
        ),
        batches: fc.array(fc.integer({min: 1, max: 15}), {minLength: 1, maxLength: 10}),
        before: fc.integer({min: 0, max: 600}),
        after: fc.integer({min: 1, max: 600})
      });
      await checkProperty(
        "backtest equals live evaluation",
        series,
        async ({condition, forSeconds, clearDeltaCelsius, readings, batches, before, after}) => {
          const deviceId = await newDevice();
          const rule = {condition, thresholdCelsius: 20, forSeconds, clearDeltaCelsius};
          await createRule(api, auth, deviceId, rule);
          let t = 0;
          const timed = readings.map(({gap, temperature}) => [temperature, (t += gap)] as [number, number]);
          for (let i = 0, b = 0; i < timed.length; b++) {
            const size = batches[b % batches.length]!;
            await post(deviceId, timed.slice(i, i + size));
            i += size;
          }
          const live = (await api.get(`/api/v1/devices/${deviceId}/alerts`).set(auth)).body as Episode[];
          const result = await ok(deviceId, {...rule, from: at(timed[0]![1] - before), to: at(t + after)});
          const fields = (e: Episode) => ({
            breachStartedAt: e.breachStartedAt,
            firedAt: e.firedAt,
            resolvedAt: e.resolvedAt,
            retractedAt: e.retractedAt,
            peakTemperatureCelsius: e.peakTemperatureCelsius,
            readingCount: e.readingCount,
            temperatureCelsius: e.temperatureCelsius
          });
          expect(result.episodes.map(fields)).toEqual(live.reverse().map(fields));
          expect(result.readingsEvaluated).toBe(timed.length);
        },
        budget
      );
    },
    propertyTimeout(budget)
  );
});
