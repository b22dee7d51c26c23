import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {loadConfig} from "../../src/config/app-config.js";
import {createDevice, provisionedBearer} from "../helpers/factories.js";
import {countStatements} from "../helpers/sql-statements.js";
import {collectRetries, minute, TenantDb} from "../helpers/tenant-db.js";

describe("readings ingestion", () => {
  let api: Api;
  let tenant: string;
  let auth: Record<string, string>;
  let db: TenantDb;

  const newDevice = (serialNumber: string, as = auth) => createDevice(api, as, serialNumber);
  const post = (deviceId: string, body: object, as = auth) => api.post(`/api/v1/devices/${deviceId}/readings`).set(as).send(body);
  const postBatch = (deviceId: string, readings: object[], as = auth) =>
    api.post(`/api/v1/devices/${deviceId}/readings/batch`).set(as).send({readings});
  const readingsOf = (deviceId: string) => db.count("temperature_readings", "device_id = $1", [deviceId]);

  beforeAll(async () => {
    // Each single reading its own statement: these specs force races and count statements in
    // Postgres, where requests to several instances meet (group-commit.spec covers the grouping).
    api = await startTestServer({readings: {...loadConfig().readings, groupCommit: false}});
    tenant = newTenant("read");
    auth = await provisionedBearer(api, tenant); // provisions the tenant's schema
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    await db?.close();
    await stopTestServer();
  });

  describe("one reading", () => {
    it("stores it and answers 201 with the stored reading; server fields sent by the client are ignored", async () => {
      const deviceId = await newDevice("R-ONE");
      const res = await post(deviceId, {
        temperatureCelsius: 21.5,
        humidity: 45.2,
        batteryLevel: 0.87,
        recordedAt: "2026-01-01T12:30:00+02:00",
        id: "999",
        deviceId: "x",
        createdAt: "2000-01-01T00:00:00Z"
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        duplicate: false,
        alerts: [],
        reading: {deviceId, temperatureCelsius: 21.5, humidity: 45.2, batteryLevel: 0.87, recordedAt: "2026-01-01T10:30:00.000Z"}
      });
      expect(res.body.reading.id).toMatch(/^\d+$/);
      expect(res.body.reading.id).not.toBe("999");
      expect(new Date(res.body.reading.createdAt).getFullYear()).toBeGreaterThan(2020);
      expect(await readingsOf(deviceId)).toBe(1);
    });

    it("answers a retry with 200, duplicate: true and the reading stored first; nothing is stored again", async () => {
      const deviceId = await newDevice("R-RETRY");
      const first = await post(deviceId, {temperatureCelsius: 20, recordedAt: minute(1)});
      const retry = await post(deviceId, {temperatureCelsius: 25, recordedAt: minute(1)});
      expect(first.status).toBe(201);
      expect(retry.status).toBe(200);
      expect(retry.body).toMatchObject({duplicate: true, alerts: [], reading: {id: first.body.reading.id, temperatureCelsius: 20}});
      expect(await readingsOf(deviceId)).toBe(1);
    });

    it.each([
      ["temperature below absolute zero", {temperatureCelsius: -273.16}, "/temperatureCelsius"],
      ["temperature above 1000", {temperatureCelsius: 1000.5}, "/temperatureCelsius"],
      ["temperature as null (would be coerced to 0)", {temperatureCelsius: null}, "/temperatureCelsius"],
      ["temperature as a boolean", {temperatureCelsius: true}, "/temperatureCelsius"],
      ["temperature as a string", {temperatureCelsius: "21.5"}, "/temperatureCelsius"],
      ["missing temperature", {temperatureCelsius: undefined}, ""],
      ["humidity above 100", {humidity: 100.1}, "/humidity"],
      ["battery above 1", {batteryLevel: 1.01}, "/batteryLevel"],
      ["recordedAt without offset", {recordedAt: "2026-01-01T10:00:00"}, "/recordedAt"],
      ["recordedAt not a date", {recordedAt: "yesterday"}, "/recordedAt"],
      ["recordedAt ten minutes in the future", {recordedAt: new Date(Date.now() + 10 * 60_000).toISOString()}, "/recordedAt"]
    ])("rejects %s with 400 naming the field, storing nothing", async (_label, change, path) => {
      const deviceId = await newDevice(`R-BAD-${Math.random().toString(36).slice(2, 10)}`);
      const res = await post(deviceId, {temperatureCelsius: 21, recordedAt: minute(2), ...change});
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({status: 400, name: "BAD_REQUEST"});
      expect(res.body.errors.map((e: {instancePath: string}) => e.instancePath)).toContain(path);
      expect(await readingsOf(deviceId)).toBe(0);
    });

    it("accepts a device clock a little ahead of ours and null humidity/battery", async () => {
      const deviceId = await newDevice("R-SKEW");
      const res = await post(deviceId, {
        temperatureCelsius: 21,
        humidity: null,
        batteryLevel: null,
        recordedAt: new Date(Date.now() + 60_000).toISOString()
      });
      expect(res.status).toBe(201);
      expect(res.body.reading).toMatchObject({humidity: null, batteryLevel: null});
    });

    it("answers 404 for an unknown device, an inactive one and another tenant's, 400 for a malformed id", async () => {
      const inactive = await newDevice("R-INACTIVE");
      await api.delete(`/api/v1/devices/${inactive}`).set(auth);
      const other = await newDevice("R-OTHER", await bearer(newTenant("read2")));
      const body = {temperatureCelsius: 21, recordedAt: minute(3)};
      for (const id of ["6b1f3c1e-0000-4000-8000-000000000000", inactive, other]) {
        const single = await post(id, body);
        const batch = await postBatch(id, [body]);
        expect([single.status, batch.status]).toEqual([404, 404]);
        expect(single.body.name).toBe("NOT_FOUND");
      }
      expect((await post("not-a-uuid", body)).status).toBe(400);
      expect(await readingsOf(inactive)).toBe(0);
    });
  });

  describe("batches", () => {
    it("stores a batch and answers with counts and one receipt per item, duplicates included", async () => {
      const deviceId = await newDevice("B-RECEIPTS");
      await postBatch(deviceId, [
        {temperatureCelsius: 20, recordedAt: minute(10)},
        {temperatureCelsius: 20.5, recordedAt: minute(11)}
      ]);
      const res = await postBatch(deviceId, [
        {temperatureCelsius: 21, recordedAt: minute(12)},
        {temperatureCelsius: 20, recordedAt: minute(10)}, // stored by the earlier batch
        {temperatureCelsius: 22, recordedAt: minute(13)},
        {temperatureCelsius: 23, recordedAt: minute(12)}, // same instant as index 0
        {temperatureCelsius: 20.5, recordedAt: minute(11)} // stored by the earlier batch
      ]);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({inserted: 2, duplicates: 3, alertsFired: 0});
      expect(res.body.items.map((i: {index: number; status: string}) => [i.index, i.status])).toEqual([
        [0, "accepted"],
        [1, "duplicate"],
        [2, "accepted"],
        [3, "duplicate"],
        [4, "duplicate"]
      ]);
      expect(res.body.items[0]).toMatchObject({recordedAt: minute(12), id: expect.stringMatching(/^\d+$/)});
      expect(res.body.items[1].id).toBeUndefined();
      expect(await readingsOf(deviceId)).toBe(4);
      const [kept] = await db.query<{t: number}>(
        `select temperature_celsius as t from ${db.schema}.temperature_readings where device_id = $1 and recorded_at = $2`,
        [deviceId, minute(12)]
      );
      expect(kept!.t).toBe(21); // first occurrence in the batch wins
    });

    it("rejects a batch with invalid items whole: 400 names each bad index and field, zero rows stored", async () => {
      const deviceId = await newDevice("B-INVALID");
      const readings = Array.from({length: 10}, (_, i) => ({temperatureCelsius: 20, recordedAt: minute(20 + i)}));
      readings[3] = {temperatureCelsius: 1200, recordedAt: minute(23)};
      readings[7] = {temperatureCelsius: 20, recordedAt: "not a date"};
      const res = await postBatch(deviceId, readings);
      expect(res.status).toBe(400);
      expect(res.body.errors.map((e: {instancePath: string}) => e.instancePath).sort()).toEqual([
        "/readings/3/temperatureCelsius",
        "/readings/7/recordedAt"
      ]);
      expect(res.body.message).toContain("readings.3.temperatureCelsius");

      const future = readings.map((_, i) =>
        i === 5
          ? {temperatureCelsius: 20, recordedAt: new Date(Date.now() + 3_600_000).toISOString()}
          : {temperatureCelsius: 20, recordedAt: minute(20 + i)}
      );
      const late = await postBatch(deviceId, future);
      expect(late.status).toBe(400);
      expect(late.body.errors).toEqual([expect.objectContaining({instancePath: "/readings/5/recordedAt", keyword: "maxFutureSkew"})]);
      expect(await readingsOf(deviceId)).toBe(0);
    });

    it("takes 1,000 readings in one INSERT statement and refuses 1,001 and an empty batch", async () => {
      const deviceId = await newDevice("B-LIMITS");
      // A statement-level trigger counts INSERT statements on the table during this test.
      await db.query(`create table ${db.schema}."probe_insert_statements" (at timestamptz not null default now())`);
      await db.query(`create function ${db.schema}."probe_count_inserts"() returns trigger language plpgsql as $$
        begin insert into ${db.schema}."probe_insert_statements" default values; return null; end $$`);
      await db.query(
        `create trigger "probe_count_inserts" after insert on ${db.schema}."temperature_readings" for each statement execute function ${db.schema}."probe_count_inserts"()`
      );
      try {
        const full = Array.from({length: 1_000}, (_, i) => ({
          temperatureCelsius: 15 + (i % 10),
          humidity: 40,
          batteryLevel: 0.5,
          recordedAt: minute(1_000 + i)
        }));
        const res = await postBatch(deviceId, full);
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({inserted: 1_000, duplicates: 0});
        expect(res.body.items).toHaveLength(1_000);
        expect(await db.count("probe_insert_statements")).toBe(1);
      } finally {
        await db.query(`drop trigger "probe_count_inserts" on ${db.schema}."temperature_readings"`);
        await db.query(`drop function ${db.schema}."probe_count_inserts"()`);
        await db.query(`drop table ${db.schema}."probe_insert_statements"`);
      }

      const tooMany = Array.from({length: 1_001}, (_, i) => ({temperatureCelsius: 15, recordedAt: minute(5_000 + i)}));
      const refused = await postBatch(deviceId, tooMany);
      expect([400, 413]).toContain(refused.status);
      expect(refused.body.errors).toEqual([expect.objectContaining({instancePath: "/readings", keyword: "maxItems"})]);
      const empty = await postBatch(deviceId, []);
      expect(empty.status).toBe(400);
      expect((await api.post(`/api/v1/devices/${deviceId}/readings/batch`).set(auth).send({})).status).toBe(400);
      expect(await readingsOf(deviceId)).toBe(1_000);
    });
  });

  describe("transactions", () => {
    /** BEGIN, COMMIT and the INSERTs of readings that the server sent while `task` ran. */
    async function probeStandalone<T>(task: () => Promise<T>): Promise<{result: T; sent: string[]}> {
      const {result, statements} = await countStatements(task, {transactionControl: true});
      const sent = statements
        .map((sql) =>
          /^(begin|commit)\b/i.test(sql)
            ? sql.toLowerCase().replace(/;$/, "")
            : /insert into "[^"]+"\."temperature_readings"/.test(sql)
              ? "insert readings"
              : ""
        )
        .filter(Boolean);
      return {result, sent};
    }

    it("stores readings that cannot change an alert with one autocommitted statement, and opens alerts inside a transaction", async () => {
      const deviceId = await newDevice("T-STANDALONE");
      const rule = await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 30});
      expect(rule.status).toBe(201);

      // Inside the threshold and no open alert: nothing to decide, the INSERT is the whole write.
      const calm = await probeStandalone(() => post(deviceId, {temperatureCelsius: 21, recordedAt: minute(600)}));
      expect(calm.result.status).toBe(201);
      expect(calm.result.body.alerts).toEqual([]);
      expect(calm.sent).toEqual(["insert readings"]);

      // A violation: the transaction stores the reading and opens the alert. The server saw the
      // rule's threshold in the last write, so it skips the lone statement, which would decline.
      const hot = await probeStandalone(() => post(deviceId, {temperatureCelsius: 35, recordedAt: minute(601)}));
      expect(hot.result.status).toBe(201);
      expect(hot.result.body.alerts).toEqual([expect.objectContaining({ruleId: rule.body.id, resolvedAt: null})]);
      expect(hot.sent).toEqual(["begin", "insert readings", "commit"]);

      // Back inside the threshold while the alert is open: resolving it needs the transaction too
      // (the server remembers the open episode).
      const back = await probeStandalone(() => post(deviceId, {temperatureCelsius: 22, recordedAt: minute(602)}));
      expect(back.result.body.alerts).toEqual([expect.objectContaining({ruleId: rule.body.id, resolvedAt: minute(602)})]);
      expect(back.sent).toEqual(["begin", "insert readings", "commit"]);

      // A batch with no violation after that: one autocommitted statement again.
      const batch = await probeStandalone(() =>
        postBatch(
          deviceId,
          [20, 21, 22].map((t, i) => ({temperatureCelsius: t, recordedAt: minute(610 + i)}))
        )
      );
      expect(batch.result.body).toMatchObject({inserted: 3, alertsFired: 0});
      expect(batch.sent).toEqual(["insert readings"]);

      // A violation on a device this instance has not written yet: the lone statement declines
      // (inserts nothing) and the transaction stores it — what any instance does the first time.
      const fresh = await newDevice("T-STANDALONE-2");
      expect(
        (await api.post(`/api/v1/devices/${fresh}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 30})).status
      ).toBe(201);
      const first = await probeStandalone(() => post(fresh, {temperatureCelsius: 35, recordedAt: minute(601)}));
      expect(first.result.body.alerts).toEqual([expect.objectContaining({resolvedAt: null})]);
      expect(first.sent).toEqual(["insert readings", "begin", "insert readings", "commit"]);

      // Late, inside the threshold, but before the end of the latest episode: it may split one, so the transaction decides.
      const splitting = await probeStandalone(() => post(deviceId, {temperatureCelsius: 20, recordedAt: minute(601.5)}));
      expect(splitting.sent).toEqual(["insert readings", "begin", "insert readings", "commit"]);
      // Late, inside the threshold, after every episode ended: it changes nothing, alone.
      const harmless = await probeStandalone(() => post(deviceId, {temperatureCelsius: 20, recordedAt: minute(605)}));
      expect(harmless.sent).toEqual(["insert readings"]);
      expect(await readingsOf(deviceId)).toBe(8);
    });
  });

  describe("under concurrency", () => {
    it("stores one row when 10 identical requests race, answering one 201 and nine duplicates", async () => {
      const deviceId = await newDevice("C-RACE");
      const body = {temperatureCelsius: 22, recordedAt: minute(100)};
      // All ten wait on the table lock, then insert at the same moment.
      const responses = await db.overlapOn("temperature_readings", 10, () =>
        Promise.all(Array.from({length: 10}, () => post(deviceId, body)))
      );
      expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
      expect(new Set(responses.map((r) => r.body.reading.id)).size).toBe(1);
      expect(await readingsOf(deviceId)).toBe(1);
    });

    it("handles 10 racing identical batches the same way: every reading stored once", async () => {
      const deviceId = await newDevice("C-RACE-BATCH");
      const batch = Array.from({length: 50}, (_, i) => ({temperatureCelsius: 20, recordedAt: minute(200 + i)}));
      const responses = await db.overlapOn("temperature_readings", 10, () =>
        Promise.all(Array.from({length: 10}, () => postBatch(deviceId, batch)))
      );
      expect(responses.every((r) => r.status === 200)).toBe(true);
      expect(responses.reduce((sum, r) => sum + r.body.inserted, 0)).toBe(50);
      expect(responses.reduce((sum, r) => sum + r.body.duplicates, 0)).toBe(450);
      expect(await readingsOf(deviceId)).toBe(50);
    });

    it("retries a serialization failure with growing delays and then succeeds", async () => {
      const deviceId = await newDevice("C-SERIALIZATION");
      // Test-only trigger: the first three INSERTs into the table fail with SQLSTATE 40001 — the
      // autocommitted single statement, then two attempts of the transaction it falls back to.
      // The sequence counts across rolled-back attempts.
      await db.query(`create sequence ${db.schema}."probe_attempts"`);
      await db.query(`create function ${db.schema}."probe_fail_twice"() returns trigger language plpgsql as $$
        begin
          if nextval('${db.schema}."probe_attempts"') <= 3 then
            raise exception 'forced serialization failure' using errcode = '40001';
          end if;
          return null;
        end $$`);
      await db.query(
        `create trigger "probe_fail_twice" before insert on ${db.schema}."temperature_readings" for each statement execute function ${db.schema}."probe_fail_twice"()`
      );
      try {
        const {result: res, retries} = await collectRetries(() => post(deviceId, {temperatureCelsius: 21, recordedAt: minute(300)}));
        expect(res.status).toBe(201);
        expect(retries.map((r) => [r.attempt, r.reason])).toEqual([
          [1, "serialization_failure"],
          [2, "serialization_failure"]
        ]);
        expect(retries[1]!.ceilingMs).toBeGreaterThan(retries[0]!.ceilingMs);
        expect(retries[1]!.delayMs).toBeGreaterThanOrEqual(retries[0]!.delayMs);
        const [{n}] = (await db.query<{n: string}>(`select last_value as n from ${db.schema}."probe_attempts"`)) as [{n: string}];
        expect(Number(n)).toBe(4);
        expect(await readingsOf(deviceId)).toBe(1);
      } finally {
        await db.query(`drop trigger "probe_fail_twice" on ${db.schema}."temperature_readings"`);
        await db.query(`drop function ${db.schema}."probe_fail_twice"()`);
        await db.query(`drop sequence ${db.schema}."probe_attempts"`);
      }
    });

    it("answers 503 with Retry-After, not 500, when the conflicts outlast every attempt", async () => {
      const deviceId = await newDevice("C-EXHAUSTED");
      await db.query(`create function ${db.schema}."probe_always_fail"() returns trigger language plpgsql as $$
        begin raise exception 'forced serialization failure' using errcode = '40001'; end $$`);
      await db.query(
        `create trigger "probe_always_fail" before insert on ${db.schema}."temperature_readings" for each statement execute function ${db.schema}."probe_always_fail"()`
      );
      try {
        const {result: res, retries} = await collectRetries(() => post(deviceId, {temperatureCelsius: 21, recordedAt: minute(400)}));
        expect(res.status).toBe(503);
        expect(res.headers["retry-after"]).toBe("1");
        expect(retries).toHaveLength(4);
      } finally {
        await db.query(`drop trigger "probe_always_fail" on ${db.schema}."temperature_readings"`);
        await db.query(`drop function ${db.schema}."probe_always_fail"()`);
      }
      expect(await readingsOf(deviceId)).toBe(0);
    });
  });

  it("documents the reading, batch and receipt models with their constraints and examples", async () => {
    const spec = (await api.get("/doc/swagger.json")).body;
    const schemas = spec.components.schemas;
    expect(schemas.TemperatureReadingCreate.properties.temperatureCelsius).toMatchObject({minimum: -273.15, maximum: 1000, example: 21.5});
    expect(schemas.TemperatureReadingCreate.properties.humidity).toMatchObject({minimum: 0, maximum: 100});
    expect(schemas.TemperatureReadingCreate.properties.batteryLevel).toMatchObject({minimum: 0, maximum: 1});
    expect(schemas.TemperatureReadingCreate.properties.recordedAt).toMatchObject({format: "date-time"});
    expect(schemas.TemperatureReadingCreate.properties.id).toBeUndefined();
    expect(schemas.ReadingBatchCreate.properties.readings).toMatchObject({
      minItems: 1,
      maxItems: 1000,
      items: {$ref: "#/components/schemas/TemperatureReadingCreate"}
    });
    expect(schemas.ReadingBatchCreate.properties.readings.example).toHaveLength(2);
    expect(schemas.BatchReceipt.required).toEqual(expect.arrayContaining(["inserted", "duplicates", "alertsFired", "items"]));
    expect(schemas.ReadingReceipt.properties.status).toMatchObject({enum: ["accepted", "duplicate"]});
    expect(schemas.ReadingCreated.properties.alerts.items).toEqual({$ref: "#/components/schemas/Alert"});
    const single = spec.paths["/api/v1/devices/{deviceId}/readings"].post;
    expect(Object.keys(single.responses)).toEqual(expect.arrayContaining(["200", "201", "400", "401", "403", "404"]));
    const batch = spec.paths["/api/v1/devices/{deviceId}/readings/batch"].post;
    expect(batch.requestBody).toMatchObject({
      required: true,
      content: {"application/json": {schema: {$ref: "#/components/schemas/ReadingBatchCreate"}}}
    });
    expect(Object.keys(batch.responses)).toEqual(expect.arrayContaining(["200", "400", "404", "413"]));
  });
});
