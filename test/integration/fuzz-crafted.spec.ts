import fc from "fast-check";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {createDevice} from "../helpers/factories.js";
import {TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";

/**
 * Inputs the formats allow but JavaScript or Postgres cannot hold, and bodies built to hurt:
 * each is a 400 in the error shape (never a 5xx), and nothing is written. Also the clock bounds
 * of recordedAt (READING_MAX_FUTURE_SKEW_S, 2000-01-01).
 */
describe("crafted input", () => {
  let api: Api;
  let tenant: string;
  let auth: Record<string, string>;
  let admin: Record<string, string>;
  let deviceId: string;
  let db: TenantDb;

  beforeAll(async () => {
    api = await startTestServer();
    tenant = newTenant("crafted");
    auth = await bearer(tenant);
    admin = await bearer(tenant, {roles: ["user", "admin"]});
    deviceId = await createDevice(api, auth, "CRAFTED-1");
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    await db?.close();
    await stopTestServer();
  });

  const expectBadRequest = (res: {status: number; body: {status?: number; name?: string}}, what: string) => {
    expect(res.status, what).toBe(400);
    expect(res.body, what).toMatchObject({status: 400, name: "BAD_REQUEST"});
  };
  const readingsStored = () => db.count("temperature_readings", "device_id = $1", [deviceId]);
  const uuid = fc.uuid({version: 4});

  it("refuses ids spelled urn:uuid:… on every route that takes one, and treats an upper-case id as the same id", async () => {
    await fc.assert(
      fc.asyncProperty(
        uuid,
        fc.constantFrom(
          "GET /devices/:id",
          "GET /devices/:id/readings",
          "POST /devices/:id/readings",
          "GET /devices/:id/stats/weekly",
          "POST /alerts/:id/acknowledge"
        ),
        async (id, route) => {
          const [method, template] = route.split(" ") as [string, string];
          const path = `/api/v1${template.replace(":id", `urn:uuid:${id}`)}`;
          const req =
            method === "GET" ? api.get(path) : api.post(path).send({temperatureCelsius: 20, recordedAt: new Date().toISOString()});
          expectBadRequest(await req.set(auth), `${method} ${path}`);
        }
      ),
      {seed: 1, numRuns: 25}
    );
    const upper = await api.get(`/api/v1/devices/${deviceId.toUpperCase()}`).set(auth);
    expect(upper.status).toBe(200);
    expect(upper.body.id).toBe(deviceId);
  });

  it("refuses date-times the format allows but Date cannot hold, in bodies and queries, storing nothing", async () => {
    const crafted = fc.oneof(
      fc
        .tuple(fc.integer({min: 0, max: 23}), fc.constantFrom("+", "-"))
        .map(([h, sign]) => `2026-03-28T10:30:00${sign}${String(h).padStart(2, "0")}`),
      fc.constant("2026-12-31T23:59:60Z"),
      fc.integer({min: 30, max: 31}).map((day) => `2026-02-${day}T00:00:00Z`),
      fc.constant("0000-01-01T00:00:00Z"),
      fc.constant("2026-03-28T24:00:00Z")
    );
    const before = await readingsStored();
    await fc.assert(
      fc.asyncProperty(crafted, fc.constantFrom("single", "batch", "history-from", "history-to"), async (recordedAt, where) => {
        const res =
          where === "single"
            ? await api.post(`/api/v1/devices/${deviceId}/readings`).set(auth).send({temperatureCelsius: 20, recordedAt})
            : where === "batch"
              ? await api
                  .post(`/api/v1/devices/${deviceId}/readings/batch`)
                  .set(auth)
                  .send({
                    readings: [
                      {temperatureCelsius: 20, recordedAt: "2026-03-28T10:00:00Z"},
                      {temperatureCelsius: 21, recordedAt}
                    ]
                  })
              : await api
                  .get(`/api/v1/devices/${deviceId}/readings`)
                  .query({[where === "history-from" ? "from" : "to"]: recordedAt})
                  .set(auth);
        expectBadRequest(res, `${where} ${recordedAt}`);
      }),
      {seed: 2, numRuns: 40}
    );
    expect(await readingsStored()).toBe(before);
  });

  it("refuses forged history cursors naming an impossible instant", async () => {
    const cursorOf = (t: string) => Buffer.from(JSON.stringify({v: 1, t})).toString("base64url");
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("2026-02-30", "2026-02-31", "0000-01-01", "2026-13-01", "2026-04-31"),
        fc.integer({min: 0, max: 999_999}),
        async (day, micros) => {
          const res = await api
            .get(`/api/v1/devices/${deviceId}/readings`)
            .query({cursor: cursorOf(`${day}T00:00:00.${String(micros).padStart(6, "0")}Z`)})
            .set(auth);
          expectBadRequest(res, day);
        }
      ),
      {seed: 3, numRuns: 15}
    );
  });

  it("refuses year 0000 (and other impossible days) in daily stats and in an aggregation request", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("0000-01-01", "0000-12-31", "2026-02-30"),
        fc.constantFrom("from", "to", "aggregation"),
        async (date, where) => {
          const res =
            where === "aggregation"
              ? await api.post("/api/v1/admin/aggregations").set(admin).send({date})
              : await api
                  .get(`/api/v1/devices/${deviceId}/stats/daily`)
                  .query({[where]: date})
                  .set(auth);
          expectBadRequest(res, `${where} ${date}`);
        }
      ),
      {seed: 4, numRuns: 12}
    );
  });

  it("refuses NUL characters in any string of a body, creating nothing", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({maxLength: 10}),
        fc.string({maxLength: 10}),
        fc.constantFrom("serialNumber", "name", "location"),
        async (head, tail, field) => {
          const body: Record<string, string> = {serialNumber: `NUL-${head.length}-${tail.length}`, [field]: `${head}\u0000${tail}`};
          const res = await api.post("/api/v1/devices").set(auth).send(body);
          expectBadRequest(res, field);
          expect(res.body.message).toMatch(/NUL/);
        }
      ),
      {seed: 5, numRuns: 20}
    );
    expect(await db.count("devices", "serial_number like 'NUL-%'")).toBe(0);
  });

  it("refuses a ~100 kB deeply nested value without overflowing anything", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({min: 5_000, max: 50_000}),
        fc.constantFrom("[", '{"a":'),
        fc.constantFrom("name", "readings"),
        async (depth, opener, field) => {
          const closer = opener === "[" ? "]" : "}";
          const nested = `${opener.repeat(depth)}1${closer.repeat(depth)}`;
          const path = field === "name" ? "/api/v1/devices" : `/api/v1/devices/${deviceId}/readings/batch`;
          const res = await api.post(path).set(auth).set("content-type", "application/json").send(`{"${field}":${nested}}`);
          expectBadRequest(res, `${field} depth ${depth}`);
        }
      ),
      {seed: 6, numRuns: 8}
    );
    // A body that is large but flat is still parsed and validated normally.
    const flat = await api
      .post("/api/v1/devices")
      .set(auth)
      .send({serialNumber: "FLAT-1", name: "x".repeat(100_000)});
    expectBadRequest(flat, "flat");
    expect(flat.body.message.length).toBeLessThan(1_000);
  });

  describe("recordedAt bounds", () => {
    const post = (recordedAt: string) =>
      api.post(`/api/v1/devices/${deviceId}/readings`).set(auth).send({temperatureCelsius: 45, recordedAt});

    it("refuses a reading more than READING_MAX_FUTURE_SKEW_S (120 s) ahead, and takes one a little ahead", async () => {
      const fast = await post(new Date(Date.now() + 4 * 60_000).toISOString());
      expectBadRequest(fast, "4 minutes ahead");
      expect(fast.body.errors).toEqual([expect.objectContaining({instancePath: "/recordedAt", keyword: "maxFutureSkew"})]);
      expect((await post(new Date(Date.now() + 60_000).toISOString())).status).toBe(201);
    });

    it("refuses a reading from before 2000-01-01 (a clock never set), naming the item in a batch", async () => {
      expectBadRequest(await post("1999-12-31T23:59:59Z"), "1999");
      const batch = await api
        .post(`/api/v1/devices/${deviceId}/readings/batch`)
        .set(auth)
        .send({
          readings: [
            {temperatureCelsius: 20, recordedAt: "2026-03-28T10:00:00Z"},
            {temperatureCelsius: 20, recordedAt: "1970-01-01T00:00:00Z"}
          ]
        });
      expectBadRequest(batch, "1970 in a batch");
      expect(batch.body.errors).toEqual([expect.objectContaining({instancePath: "/readings/1/recordedAt"})]);
      expect((await post("2000-01-01T00:00:00Z")).status).toBe(201);
    });
  });
});
