import fc from "fast-check";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

interface Operation {
  method: "get" | "post" | "patch" | "delete" | "put";
  path: string;
  query: string[];
  hasBody: boolean;
}

const TABLES = ["users", "devices", "temperature_readings", "alert_rules", "alerts"];

/**
 * Bad input at volume: thousands of generated path ids, query strings and bodies thrown at every
 * documented route. Never a 5xx, and a rejected request (4xx) never leaves a row behind.
 */
describe("fuzz: documented routes never answer 5xx nor half-write", () => {
  let api: Api;
  let db: pg.Client;
  let auth: Record<string, string>;
  let operations: Operation[];
  const tenant = newTenant("fuzz");
  const known: Record<string, string> = {};

  beforeAll(async () => {
    api = await startTestServer({rateLimit: {devicePerMinute: 0, tenantPerMinute: 0}});
    db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
    auth = await bearer(tenant, {roles: ["user", "admin"]});
    const device = await api.post("/api/v1/devices").set(auth).send({serialNumber: "FUZZ-1"});
    known.deviceId = device.body.id;
    known.userId = (await api.get("/api/v1/me").set(auth)).body.id;
    const rule = await api.post(`/api/v1/devices/${known.deviceId}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 30});
    if (rule.status === 201) known.ruleId = rule.body.id;
    const spec = (await api.get("/doc/swagger.json")).body as {paths: Record<string, Record<string, {parameters?: {in: string; name: string}[]; requestBody?: unknown}>>};
    operations = Object.entries(spec.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({
        method: method as Operation["method"],
        path,
        query: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
        hasBody: Boolean(op.requestBody)
      }))
    );
  });
  afterAll(async () => {
    await db.end();
    await stopTestServer();
  });

  const rowCounts = async () => {
    const sql = TABLES.map((t) => `(select count(*) from "${tenant}"."${t}")`).join(" + ");
    return Number((await db.query(`select ${sql} as n`)).rows[0].n);
  };

  const idValue = fc.oneof(
    fc.constant("KNOWN"),
    fc.uuid(),
    fc.string({maxLength: 40}),
    fc.constantFrom("0", "-1", "null", "undefined", "%00", "..%2F..%2Fetc", "1e309", "' or 1=1 --", "00000000-0000-0000-0000-000000000000")
  );
  const scalar = fc.oneof(fc.string({maxLength: 30}), fc.integer().map(String), fc.double().map(String), fc.constantFrom("", "true", "false", "null", "2026-13-45", "2026-03-28T10:30:00Z", "NaN", "-Infinity", "9".repeat(40)));
  const body = fc.oneof(
    fc.jsonValue({maxDepth: 3}),
    fc.record({
      serialNumber: scalar,
      name: fc.oneof(scalar, fc.constant(null)),
      temperatureCelsius: fc.oneof(fc.double(), scalar, fc.constant(null)),
      humidity: fc.oneof(fc.double(), scalar),
      batteryLevel: fc.oneof(fc.double(), scalar),
      recordedAt: fc.oneof(scalar, fc.date({noInvalidDate: true}).map((d) => d.toISOString())),
      condition: fc.oneof(fc.constantFrom("above", "below", "ABOVE", "equal"), scalar),
      thresholdCelsius: fc.oneof(fc.double(), scalar),
      timezone: fc.oneof(fc.constantFrom("Europe/Berlin", "Mars/Olympus", "UTC"), scalar),
      readings: fc.oneof(fc.array(fc.jsonValue({maxDepth: 2}), {maxLength: 5}), scalar)
    }, {requiredKeys: []})
  );

  it("survives thousands of generated requests", async () => {
    expect(operations.length).toBeGreaterThan(5);
    let sent = 0;
    const statuses: Record<number, number> = {};
    await fc.assert(
      fc.asyncProperty(fc.integer({min: 0, max: operations.length - 1}), fc.dictionary(fc.string({maxLength: 8}), scalar, {maxKeys: 3}), fc.array(scalar, {minLength: 4, maxLength: 4}), fc.array(idValue, {minLength: 3, maxLength: 3}), body, async (index, junkQuery, queryValues, ids, payload) => {
        const op = operations[index]!;
        let n = 0;
        const path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
          const value = ids[n++ % ids.length]!;
          return encodeURIComponent(value === "KNOWN" ? (known[name] ?? "00000000-0000-4000-8000-000000000000") : value);
        });
        const query = new URLSearchParams(junkQuery);
        op.query.forEach((name, i) => query.set(name, queryValues[i % queryValues.length]!));
        const before = op.method === "get" ? 0 : await rowCounts();
        let request = api[op.method](`${path}?${query}`).set(auth);
        // Serialized by hand: any JSON value (a bare number, null, a string) is a possible body.
        if (op.hasBody) request = request.set("Content-Type", "application/json").send(JSON.stringify(payload) ?? "null");
        const res = await request;
        sent++;
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status >= 500) throw new Error(`${op.method.toUpperCase()} ${path}?${query} → ${res.status} ${JSON.stringify(res.body)}`);
        if (res.status >= 400 && op.method !== "get") expect(await rowCounts()).toBe(before);
        if (res.status >= 400) expect(res.body).toMatchObject({status: res.status, name: expect.any(String), message: expect.any(String)});
      }),
      {numRuns: Number(process.env.FUZZ_RUNS ?? 2000)}
    );
    console.log(JSON.stringify({fuzz: {operations: operations.length, sent, statuses}}));
    expect(sent).toBeGreaterThanOrEqual(1000);
  });
});
