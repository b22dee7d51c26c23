import fc from "fast-check";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {createDevice, createRule, postBatch, provisionedBearer, readingSeries as series} from "../helpers/factories.js";
import {checkProperty, type PropertyBudget, propertyTimeout} from "../helpers/property.js";
import {countStatements, ingestInserts} from "../helpers/sql-statements.js";
import {TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {newTenant} from "../helpers/tokens.js";

/**
 * Batches of new readings are written by a plain INSERT (ReadingRepository.ingest, `fresh`): the
 * instance guesses that they are new from the newest reading it stored of the device, and a
 * duplicate it did not know of (stored by another instance, or by a concurrent request) makes the
 * usual statement run. Whatever the guess, each reading is stored once and answered as it would be.
 * Group commit is off here, so that concurrent batches of a device are concurrent statements.
 */
describe("ingest of batches expected to be new", () => {
  let api: Api;
  let auth: Record<string, string>;
  let db: TenantDb;
  const post = (deviceId: string, readings: ReturnType<typeof series>) => postBatch(api, auth, deviceId, readings);

  beforeAll(async () => {
    api = await startTestServer({readings: {...loadConfig().readings, groupCommit: false}});
    const tenant = newTenant("fresh");
    auth = await provisionedBearer(api, tenant);
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    await db?.close();
    await stopTestServer();
  });

  it("writes new readings by a plain INSERT, and a batch meeting readings stored elsewhere by the usual statement, each stored once", async () => {
    const deviceId = await createDevice(api, auth, "FRESH-1");
    const start = Date.UTC(2025, 5, 1);
    // First write of the device here: nothing known of it, the usual statement.
    const first = await countStatements(() => post(deviceId, series(start, 150)));
    expect(first.result.status).toBe(200);
    expect(ingestInserts(first.statements)).toEqual(["usual"]);
    // Newer than all it stored: a plain INSERT.
    const second = await countStatements(() => post(deviceId, series(start + 150 * 30_000, 150)));
    expect(second.result.body).toMatchObject({inserted: 150, duplicates: 0});
    expect(ingestInserts(second.statements)).toEqual(["fresh"]);
    // Below the size where it pays: the usual statement.
    const small = await countStatements(() => post(deviceId, series(start + 300 * 30_000, 99)));
    expect(small.result.body).toMatchObject({inserted: 99, duplicates: 0});
    expect(ingestInserts(small.statements)).toEqual(["usual"]);

    // Another instance stored 10 of the next batch's readings (at 99 °C): the plain INSERT meets them, the usual statement runs.
    const third = start + 399 * 30_000;
    const elsewhere = [3, 17, 40, 41, 42, 88, 120, 121, 148, 149].map((k) => new Date(third + k * 30_000));
    await db.query(
      `insert into ${db.schema}."temperature_readings" ("device_id", "temperature_celsius", "recorded_at") select $1, 99, unnest($2::timestamptz[])`,
      [deviceId, elsewhere]
    );
    const meeting = await countStatements(() => post(deviceId, series(third, 150)));
    expect(meeting.result.status).toBe(200);
    expect(meeting.result.body).toMatchObject({inserted: 140, duplicates: 10});
    const statuses = (meeting.result.body.items as {recordedAt: string; status: string}[]).filter((item) => item.status === "duplicate");
    expect(statuses.map((item) => Date.parse(item.recordedAt)).sort()).toEqual(elsewhere.map((d) => d.getTime()).sort());
    expect(ingestInserts(meeting.statements)).toEqual(["fresh", "usual"]);

    // Stored once each; the readings stored elsewhere kept their values.
    expect(await db.count("temperature_readings", "device_id = $1", [deviceId])).toBe(150 + 150 + 99 + 150);
    expect(await db.count("temperature_readings", "device_id = $1 and temperature_celsius = 99", [deviceId])).toBe(10);
    // The day totals count each reading once too.
    const day = new Date(third).toISOString().slice(0, 10);
    const stored = await db.count("temperature_readings", "device_id = $1 and recorded_at >= $2 and recorded_at < $3", [
      deviceId,
      new Date(`${day}T00:00:00Z`),
      new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000)
    ]);
    const daily = await api.get(`/api/v1/devices/${deviceId}/stats/daily?from=${day}&to=${day}`).set(auth);
    // (The readings written past the API are not in its totals.)
    expect(daily.body.map((row: {readingCount: number}) => row.readingCount)).toEqual([stored - elsewhere.length]);
  });

  it("does the same in the alert transaction: a batch meeting readings stored elsewhere runs it again, episodes and receipt as alone", async () => {
    const deviceId = await createDevice(api, auth, "FRESH-ALERT");
    await createRule(api, auth, deviceId, {condition: "above", thresholdCelsius: 30});
    const start = Date.UTC(2025, 7, 1);
    // Each batch: 150 readings with a spike above 30 °C in its middle, which opens and closes an episode.
    const spiking = (from: number) => series(from, 150).map((r, k) => (k >= 60 && k < 70 ? {...r, temperatureCelsius: 35} : r));
    const first = await countStatements(() => post(deviceId, spiking(start)));
    expect(first.result.body).toMatchObject({inserted: 150, alertsFired: 1});
    // Nothing known of the device yet: the autocommitted statement finds the rule crossed and inserts nothing, the transaction writes.
    expect(ingestInserts(first.statements)).toEqual(["usual", "usual"]);
    const second = await countStatements(() => post(deviceId, spiking(start + 150 * 30_000)));
    expect(second.result.body).toMatchObject({inserted: 150, alertsFired: 1});
    expect(ingestInserts(second.statements)).toEqual(["fresh"]);

    const third = start + 300 * 30_000;
    const elsewhere = [0, 1, 30, 100, 149].map((k) => new Date(third + k * 30_000));
    await db.query(
      `insert into ${db.schema}."temperature_readings" ("device_id", "temperature_celsius", "recorded_at") select $1, 20, unnest($2::timestamptz[])`,
      [deviceId, elsewhere]
    );
    const meeting = await countStatements(() => post(deviceId, spiking(third)));
    expect(meeting.result.body).toMatchObject({inserted: 145, duplicates: 5, alertsFired: 1});
    expect(ingestInserts(meeting.statements)).toEqual(["fresh", "usual"]);
    // Three episodes, one per batch, none written twice; the readings stored once.
    const alerts = await api.get(`/api/v1/devices/${deviceId}/alerts`).set(auth).expect(200);
    expect(alerts.body).toHaveLength(3);
    expect(await db.count("temperature_readings", "device_id = $1", [deviceId])).toBe(450);
  });

  const budget: PropertyBudget = {searchMs: 20_000, minRuns: 5, maxRuns: 30};

  it(
    "stores each reading once when concurrent batches expected to be new overlap (property)",
    {timeout: propertyTimeout(budget)},
    async () => {
      const deviceId = await createDevice(api, auth, "FRESH-RACE");
      let base = Date.UTC(2024, 0, 1);
      let freshInserts = 0;
      let usualInserts = 0;
      await checkProperty(
        "fresh batches racing",
        // Each case: batches of 100–160 readings starting at one of a few offsets of the case's
        // window, posted at once: they overlap each other, all newer than what was stored before.
        fc.array(fc.record({offset: fc.nat({max: 6}), count: fc.integer({min: 100, max: 160})}), {minLength: 2, maxLength: 5}),
        async (batches) => {
          const window = (base += 86_400_000);
          // A first write of the window's predecessor: the device's newest reading is known here, so every batch below is guessed new.
          expect((await post(deviceId, series(window - 30_000 * 100, 100))).status).toBe(200);
          const {result: responses, statements} = await countStatements(() =>
            Promise.all(batches.map(({offset, count}) => post(deviceId, series(window + offset * 20 * 30_000, count))))
          );
          const inserts = ingestInserts(statements);
          freshInserts += inserts.filter((kind) => kind === "fresh").length;
          usualInserts += inserts.filter((kind) => kind === "usual").length;
          const distinct = new Set<number>();
          for (const {offset, count} of batches) for (let k = 0; k < count; k++) distinct.add(window + (offset * 20 + k) * 30_000);
          let inserted = 0;
          for (const res of responses) {
            expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(200);
            inserted += res.body.inserted as number;
          }
          // Each instant accepted by exactly one batch, stored once.
          expect(inserted).toBe(distinct.size);
          const accepted = responses.flatMap((res) =>
            (res.body.items as {recordedAt: string; status: string}[])
              .filter((i) => i.status === "accepted")
              .map((i) => Date.parse(i.recordedAt))
          );
          expect(new Set(accepted).size).toBe(accepted.length);
          expect(
            await db.count("temperature_readings", "device_id = $1 and recorded_at >= $2 and recorded_at < $3", [
              deviceId,
              new Date(window),
              new Date(window + 86_400_000 - 30_000 * 100)
            ])
          ).toBe(distinct.size);
        },
        budget
      );
      // The batches were guessed new, and some met another's readings: both statements ran.
      expect(freshInserts).toBeGreaterThan(0);
      expect(usualInserts).toBeGreaterThan(0);
    }
  );
});
