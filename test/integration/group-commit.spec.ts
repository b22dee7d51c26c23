import fc from "fast-check";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {createDevice, postBatch, provisionedBearer, readingSeries} from "../helpers/factories.js";
import {checkProperty, type PropertyBudget, propertyTimeout} from "../helpers/property.js";
import {countStatements, ingestInserts} from "../helpers/sql-statements.js";
import {TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {newTenant} from "../helpers/tokens.js";

/**
 * Single readings over HTTP with READINGS_GROUP_COMMIT on (the default): the readings a tenant
 * posts while one of its writes runs are written together. Each request must still get the answer
 * it would have got alone, and every reading be stored exactly once.
 */
describe("group commit of single readings", () => {
  let api: Api;
  let auth: Record<string, string>;
  let db: TenantDb;
  const post = (deviceId: string, body: object) => api.post(`/api/v1/devices/${deviceId}/readings`).set(auth).send(body);
  // Each case takes the next day: from 2020 on, maxRuns cases stay in the past (a future reading is a 400).
  let clock = Date.UTC(2020, 0, 1);

  beforeAll(async () => {
    api = await startTestServer();
    const tenant = newTenant("group");
    auth = await provisionedBearer(api, tenant);
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    await db?.close();
    await stopTestServer();
  });

  it("answers one reading as before: 201 with the stored reading, a retry 200 with the reading stored first, 404 for an inactive device", async () => {
    const device = await createDevice(api, auth, "G-ONE");
    const first = await post(device, {temperatureCelsius: 21.5, humidity: 40, batteryLevel: 0.5, recordedAt: "2026-03-01T10:00:00Z"});
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({
      duplicate: false,
      alerts: [],
      reading: {deviceId: device, temperatureCelsius: 21.5, humidity: 40, batteryLevel: 0.5, recordedAt: "2026-03-01T10:00:00.000Z"}
    });
    const retry = await post(device, {temperatureCelsius: 30, recordedAt: "2026-03-01T10:00:00Z"});
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({duplicate: true, reading: {id: first.body.reading.id, temperatureCelsius: 21.5}});
    expect((await api.patch(`/api/v1/devices/${device}`).set(auth).send({isActive: false})).status).toBe(200);
    expect((await post(device, {temperatureCelsius: 20, recordedAt: "2026-03-01T10:01:00Z"})).status).toBe(404);
  });

  it("writes a batch expected to be new by a plain INSERT only when it is too large for a group (the tenant connections keep one text per tenant)", async () => {
    const device = await createDevice(api, auth, "G-FRESH");
    const start = Date.UTC(2019, 0, 1);
    const inserts = async (readings: ReturnType<typeof readingSeries>) => {
      const {result, statements} = await countStatements(() => postBatch(api, auth, device, readings));
      expect(result.status).toBe(200);
      return ingestInserts(statements);
    };
    expect(await inserts(readingSeries(start, 200))).toEqual(["usual"]);
    // New, but a group's size: the tenant connection's usual text.
    expect(await inserts(readingSeries(start + 200 * 30_000, 200))).toEqual(["usual"]);
    // New and larger than a group (500): a statement of its own on the pool, plain.
    expect(await inserts(readingSeries(start + 400 * 30_000, 600))).toEqual(["fresh"]);
  });

  // A case is up to 40 concurrent requests, then a count and a stats read per device.
  const budget: PropertyBudget = {searchMs: 45_000, minRuns: 30, maxRuns: 2_000};
  it(
    "writes concurrent readings of many devices together, each answered as alone and stored once, with their alerts and daily stats",
    {timeout: propertyTimeout(budget)},
    async () => {
      const devices = await Promise.all(["G-A", "G-B", "G-C", "G-HOT"].map((serial) => createDevice(api, auth, `${serial}-${clock}`)));
      const inactive = await createDevice(api, auth, `G-OFF-${clock}`);
      expect((await api.patch(`/api/v1/devices/${inactive}`).set(auth).send({isActive: false})).status).toBe(200);
      const hot = devices[3]!;
      expect((await api.post(`/api/v1/devices/${hot}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 30})).status).toBe(
        201
      );
      let statementsSeen = 0;
      let requestsSent = 0;

      await checkProperty(
        "group commit answers",
        // Requests: a device (the last index is the inactive one), an instant among a few (so repeats
        // happen within a group and between groups), and a temperature (above 30 °C now and then).
        fc.array(fc.record({device: fc.nat({max: 4}), instant: fc.nat({max: 7}), hot: fc.boolean()}), {minLength: 5, maxLength: 40}),
        async (requests) => {
          const base = (clock += 86_400_000); // a day of its own per run: every key is fresh
          const targets = [...devices, inactive];
          const {result: responses, statements} = await countStatements(() =>
            Promise.all(
              requests.map((r) =>
                post(targets[r.device]!, {
                  temperatureCelsius: r.hot ? 35 : 20,
                  recordedAt: new Date(base + r.instant * 60_000).toISOString()
                })
              )
            )
          );
          statementsSeen += statements.filter((sql) => /insert into .*temperature_readings/is.test(sql)).length;
          requestsSent += requests.length;

          const firstByKey = new Map<string, {id: string; temperatureCelsius: number}>();
          responses.forEach((res, i) => {
            const r = requests[i]!;
            if (r.device === 4) return expect(res.status, JSON.stringify(res.body)).toBe(404);
            expect([200, 201]).toContain(res.status);
            if (res.status === 201) {
              const key = `${r.device}/${r.instant}`;
              expect(firstByKey.has(key), `two 201 for ${key}`).toBe(false);
              firstByKey.set(key, res.body.reading);
            }
          });
          // Every duplicate names the reading stored first; every distinct reading got one 201.
          responses.forEach((res, i) => {
            const r = requests[i]!;
            if (res.status === 200) expect(res.body.reading).toMatchObject(firstByKey.get(`${r.device}/${r.instant}`)!);
          });
          const distinct = new Set(requests.filter((r) => r.device !== 4).map((r) => `${r.device}/${r.instant}`));
          expect(firstByKey.size).toBe(distinct.size);
          const day = new Date(base).toISOString().slice(0, 10);
          for (const [index, device] of devices.entries()) {
            const expected = [...distinct].filter((key) => key.startsWith(`${index}/`)).length;
            expect(
              await db.count("temperature_readings", "device_id = $1 and recorded_at >= $2 and recorded_at < $3", [
                device,
                new Date(base),
                new Date(base + 86_400_000)
              ])
            ).toBe(expected);
            // The answer waited for the DailyStats refresh: the day is counted already.
            const daily = await api.get(`/api/v1/devices/${device}/stats/daily?from=${day}&to=${day}`).set(auth);
            expect(daily.body.map((row: {readingCount: number}) => row.readingCount)).toEqual(expected ? [expected] : []);
          }
        },
        budget
      );
      // Grouping happened: fewer INSERT statements than requests.
      expect(statementsSeen).toBeLessThan(requestsSent);
      // The hot device's alerts follow its readings as stored (alert-episodes-order.spec checks the episodes themselves).
      const alerts = await api.get(`/api/v1/devices/${hot}/alerts`).set(auth);
      expect(alerts.status).toBe(200);
      expect(alerts.body.length ?? alerts.body.items?.length).toBeGreaterThan(0);
    }
  );
});
