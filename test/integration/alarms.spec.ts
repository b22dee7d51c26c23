import {inject} from "@tsed/common";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {NoDataSweep} from "../../src/modules/alerts/no-data-sweep.service.js";
import {createDevice, createRule, provisionedBearer} from "../helpers/factories.js";
import {useOwnDatabases} from "../helpers/own-databases.js";
import {minute, TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";

interface AlertBody {
  id: string;
  severity: string;
  temperatureCelsius: number | null;
  breachStartedAt: string;
  firedAt: string;
  silentSince: string | null;
  lastReadingAt: string | null;
  peakTemperatureCelsius: number | null;
  readingCount: number;
  resolvedAt: string | null;
  retractedAt: string | null;
  version: number;
}

const SWEEP_MS = 300;

/**
 * Alarms end to end (docs/api.md, "Alerts"): forSeconds, hysteresis, retraction, severity and
 * no_data rules with their scheduled sweep (every SWEEP_MS here, on this server's workers, hence
 * databases of its own). alerts.spec covers the plain rules and the late-reading machinery;
 * alert-episodes-order.spec the order independence of all of this.
 */
describe("alarms", () => {
  let restoreEnv: (() => void) | undefined;
  let api: Api;
  let tenant: string;
  let auth: Record<string, string>;
  let db: TenantDb;

  const newRule = (deviceId: string, body: object) => createRule(api, auth, deviceId, body);
  const postBatch = (deviceId: string, readings: [number, number][]) =>
    api
      .post(`/api/v1/devices/${deviceId}/readings/batch`)
      .set(auth)
      .send({readings: readings.map(([temperatureCelsius, at]) => ({temperatureCelsius, recordedAt: minute(at)}))})
      .expect(200);
  const alertsOf = async (deviceId: string, query = ""): Promise<AlertBody[]> =>
    (await api.get(`/api/v1/devices/${deviceId}/alerts${query}`).set(auth).expect(200)).body;
  const eventsOf = (alertId: string) =>
    db.query<{type: string; version: number}>(
      `select "type", ("body"->'data'->'alert'->>'version')::int as "version" from ${db.schema}."events"
        where "body"->'data'->'alert'->>'id' = $1 order by "seq"`,
      [alertId]
    );

  beforeAll(async () => {
    restoreEnv = await useOwnDatabases("alarms");
    api = await startTestServer({
      runWorkers: true,
      queuePrefix: `${loadConfig().queuePrefix}:alarms`,
      readings: {...loadConfig().readings, groupCommit: false},
      alerts: {...loadConfig().alerts, noDataSweepMs: SWEEP_MS}
    });
    tenant = newTenant("alarm");
    auth = await provisionedBearer(api, tenant, {roles: ["admin"]});
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    await db?.close();
    await stopTestServer();
    restoreEnv?.();
  });

  describe("rule fields", () => {
    it("defaults a rule to a plain threshold rule, and keeps the fields sent", async () => {
      const deviceId = await createDevice(api, auth, "AL-DEFAULTS");
      expect(await newRule(deviceId, {condition: "above", thresholdCelsius: 8})).toMatchObject({
        kind: "threshold",
        forSeconds: 0,
        clearDeltaCelsius: 0,
        severity: "warning",
        silenceSeconds: null,
        remindEverySeconds: null
      });
      expect(await newRule(deviceId, {kind: "no_data", silenceSeconds: 900, severity: "critical", remindEverySeconds: 3600})).toMatchObject(
        {kind: "no_data", condition: null, thresholdCelsius: null, silenceSeconds: 900, severity: "critical"}
      );
    });

    it("answers 400 in the error shape for fields out of range or out of place, and for a change of kind", async () => {
      const deviceId = await createDevice(api, auth, "AL-BAD");
      const bad: [object, string][] = [
        [{condition: "above", thresholdCelsius: 8, forSeconds: 86_401}, "forSeconds"],
        [{condition: "above", thresholdCelsius: 8, forSeconds: -1}, "forSeconds"],
        [{condition: "above", thresholdCelsius: 8, forSeconds: 1.5}, "forSeconds"],
        [{condition: "above", thresholdCelsius: 8, clearDeltaCelsius: 100.5}, "clearDeltaCelsius"],
        [{condition: "above", thresholdCelsius: 8, severity: "fatal"}, "severity"],
        [{condition: "above", thresholdCelsius: 8, remindEverySeconds: 299}, "remindEverySeconds"],
        [{condition: "above", thresholdCelsius: 8, silenceSeconds: 900}, "silenceSeconds"],
        [{condition: "above"}, "thresholdCelsius"],
        [{kind: "no_data"}, "silenceSeconds"],
        [{kind: "no_data", silenceSeconds: 59}, "silenceSeconds"],
        [{kind: "no_data", silenceSeconds: 900, condition: "above"}, "condition"],
        [{kind: "no_data", silenceSeconds: 900, thresholdCelsius: 3}, "thresholdCelsius"],
        [{kind: "no_data", silenceSeconds: 900, forSeconds: 60}, "forSeconds"],
        [{kind: "sometimes", silenceSeconds: 900}, "kind"]
      ];
      for (const [body, field] of bad) {
        const res = await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body).toMatchObject({status: 400, name: "BAD_REQUEST"});
        expect(JSON.stringify(res.body), JSON.stringify(body)).toContain(field);
      }
      const rule = await newRule(deviceId, {condition: "above", thresholdCelsius: 8});
      const patch = await api.patch(`/api/v1/alert-rules/${rule.id}`).set(auth).send({kind: "no_data"});
      expect(patch.status).toBe(400);
      expect(patch.body.message).toContain("kind");
      expect(await db.count("alert_rules", `"device_id" = $1`, [deviceId])).toBe(1);
    });
  });

  describe("threshold episodes", () => {
    it("fires once a run has lasted forSeconds, from the run's first reading, with the rule's severity; a short excursion fires nothing", async () => {
      const deviceId = await createDevice(api, auth, "AL-FOR");
      await newRule(deviceId, {condition: "above", thresholdCelsius: 8, forSeconds: 300, severity: "critical"});
      // A 4-minute excursion (door opened), back to 5 °C; then 9 °C from minute 10 on.
      const first = await postBatch(deviceId, [
        [9, 0],
        [9.5, 2],
        [9, 4],
        [5, 5],
        [9, 10],
        [12, 12]
      ]);
      expect(first.body.alertsFired).toBe(0);
      expect(await alertsOf(deviceId)).toEqual([]);
      // One reading at a time from here: the run read back from where it began (minute 10).
      const res = await api
        .post(`/api/v1/devices/${deviceId}/readings`)
        .set(auth)
        .send({temperatureCelsius: 10, recordedAt: minute(15)});
      expect(res.status).toBe(201);
      const [alert] = await alertsOf(deviceId);
      expect(alert).toMatchObject({
        severity: "critical",
        breachStartedAt: minute(10),
        firedAt: minute(15),
        temperatureCelsius: 10,
        peakTemperatureCelsius: 12,
        readingCount: 3,
        resolvedAt: null,
        retractedAt: null
      });
      expect((await eventsOf(alert!.id)).map((e) => e.type)).toEqual(["alert.fired"]);
    });

    it("holds an episode open through the hysteresis band and resolves it at T − δ, announcing it", async () => {
      const deviceId = await createDevice(api, auth, "AL-BAND");
      await newRule(deviceId, {condition: "above", thresholdCelsius: 8, clearDeltaCelsius: 1.5});
      await postBatch(deviceId, [
        [9, 0],
        [7.9, 1],
        [7, 2],
        [8.5, 3]
      ]);
      let [alert] = await alertsOf(deviceId);
      expect(alert).toMatchObject({firedAt: minute(0), lastReadingAt: minute(3), readingCount: 2, resolvedAt: null});
      await postBatch(deviceId, [[6.5, 4]]);
      [alert] = await alertsOf(deviceId);
      expect(alert).toMatchObject({resolvedAt: minute(4)});
      expect((await eventsOf(alert!.id)).map((e) => [e.type, e.version])).toEqual([
        ["alert.fired", 1],
        ["alert.resolved", alert!.version]
      ]);
    });

    it("announces an episode that one batch fires and resolves in that order: alert.fired, then alert.resolved, naming its rule and device", async () => {
      const device = {serialNumber: "AL-ONE-BATCH", name: "Cold room 2", location: "Basement, north wall"};
      const {id: deviceId} = (await api.post("/api/v1/devices").set(auth).send(device).expect(201)).body as {id: string};
      const rule = await newRule(deviceId, {condition: "above", thresholdCelsius: 8, severity: "critical"});
      await postBatch(deviceId, [
        [9, 0],
        [7, 1]
      ]);
      const [alert] = await alertsOf(deviceId);
      expect(alert).toMatchObject({firedAt: minute(0), resolvedAt: minute(1)});
      expect((await eventsOf(alert!.id)).map((e) => e.type)).toEqual(["alert.fired", "alert.resolved"]);
      // The ingest transaction takes what its events name from the rules it locked, not from a read of its own.
      const named = await db.query<{rule: object; device: object}>(
        `select "body"->'data'->'rule' as "rule", "body"->'data'->'device' as "device" from ${db.schema}."events"
          where "body"->'data'->'alert'->>'id' = $1 order by "seq"`,
        [alert!.id]
      );
      expect(named).toHaveLength(2);
      for (const event of named) {
        expect(event.rule).toMatchObject({id: rule.id, kind: "threshold", condition: "above", thresholdCelsius: 8, severity: "critical"});
        expect(event.device).toEqual({id: deviceId, ...device});
      }
    });

    it("names the device as it is when the episode changes, renamed while the write waited for the rules' lock", async () => {
      const {id: deviceId} = (await api.post("/api/v1/devices").set(auth).send({serialNumber: "AL-RENAMED", name: "Freezer A"}).expect(201))
        .body as {id: string};
      await newRule(deviceId, {condition: "above", thresholdCelsius: 8});
      await postBatch(deviceId, [[9, 0]]);
      // Another episode-changing write of the device in flight: its rules locked, as AlertRepository.lockRules does.
      const holder = await new TenantDb(tenant).connect();
      try {
        await holder.query("begin");
        await holder.query(`select 1 from ${holder.schema}."alert_rules" where "device_id" = $1 for update`, [deviceId]);
        // The episode is open: this write goes straight to the alert transaction, whose lock waits.
        const resolving = postBatch(deviceId, [[7, 1]]).then((res) => res);
        await until("the alert transaction waiting for the rules' lock", async () => {
          const waiting = await db.query(
            `select 1 from pg_stat_activity where "wait_event_type" = 'Lock' and "query" like '%"alert_rules" r join%for update of r%'`
          );
          return waiting.length > 0;
        });
        // The rename does not wait for the rules: it commits while the write still waits.
        await api.patch(`/api/v1/devices/${deviceId}`).set(auth).send({name: "Freezer B"}).expect(200);
        await holder.query("commit");
        await resolving;
      } finally {
        await holder.close();
      }
      const [alert] = await alertsOf(deviceId);
      const named = await db.query<{type: string; name: string}>(
        `select "type", "body"->'data'->'device'->>'name' as "name" from ${db.schema}."events"
          where "body"->'data'->'alert'->>'id' = $1 order by "seq"`,
        [alert!.id]
      );
      expect(named).toEqual([
        {type: "alert.fired", name: "Freezer A"},
        {type: "alert.resolved", name: "Freezer B"}
      ]);
    });

    it("retracts an episode a late reading leaves shorter than forSeconds: kept and listed, not open, announced", async () => {
      const deviceId = await createDevice(api, auth, "AL-RETRACT");
      await newRule(deviceId, {condition: "above", thresholdCelsius: 8, forSeconds: 120});
      await postBatch(deviceId, [
        [9, 0],
        [9, 1],
        [9, 2],
        [9, 3]
      ]);
      const [fired] = await alertsOf(deviceId, "?open=true");
      expect(fired).toMatchObject({breachStartedAt: minute(0), firedAt: minute(2)});
      // A reading back inside at minute 1.5 arrives late: the run is now [0, 1] and [2, 3], each 1 minute long.
      await api
        .post(`/api/v1/devices/${deviceId}/readings`)
        .set(auth)
        .send({temperatureCelsius: 5, recordedAt: new Date(Date.parse(minute(1)) + 30_000).toISOString()})
        .expect(201);
      expect(await alertsOf(deviceId, "?open=true")).toEqual([]);
      const [retracted] = await alertsOf(deviceId);
      expect(retracted).toMatchObject({id: fired!.id, retractedAt: expect.any(String), resolvedAt: null});
      expect((await eventsOf(fired!.id)).map((e) => e.type)).toEqual(["alert.fired", "alert.retracted"]);
      // The run goes on: at minute 4 it has lasted 2 minutes again, a new episode fires.
      await postBatch(deviceId, [[9, 4]]);
      expect(await alertsOf(deviceId, "?open=true")).toEqual([expect.objectContaining({breachStartedAt: minute(2), firedAt: minute(4)})]);
    });
  });

  it("takes an alert inserted as the previous release does (no breachStartedAt: while a deploy rolls) with its firedAt", async () => {
    const deviceId = await createDevice(api, auth, "AL-OLD-RELEASE");
    const rule = await newRule(deviceId, {condition: "above", thresholdCelsius: 8});
    await db.query(
      `insert into ${db.schema}."alerts" ("id", "created_at", "updated_at", "rule_id", "device_id", "temperature_celsius", "fired_at", "last_reading_at", "peak_temperature_celsius")
       values (gen_random_uuid(), now(), now(), $1, $2, 9, $3, $3, 9)`,
      [rule.id, deviceId, minute(7)]
    );
    expect(await alertsOf(deviceId)).toEqual([
      expect.objectContaining({breachStartedAt: minute(7), firedAt: minute(7), severity: "warning", version: 1})
    ]);
  });

  describe("no_data episodes", () => {
    const noDataAlerts = async (deviceId: string) => (await alertsOf(deviceId)).filter((a) => a.silentSince !== null);

    it("opens an episode for a device silent longer than silenceSeconds, within the sweep interval, and resolves it at the next arrival", async () => {
      const deviceId = await createDevice(api, auth, "AL-SILENT");
      const rule = await newRule(deviceId, {kind: "no_data", silenceSeconds: 60});
      const arrival = await api
        .post(`/api/v1/devices/${deviceId}/readings`)
        .set(auth)
        .send({temperatureCelsius: 4, recordedAt: new Date().toISOString()})
        .expect(201);
      const [device] = await db.query<{lastArrivalAt: Date}>(
        `select "last_arrival_at" as "lastArrivalAt" from ${db.schema}."devices" where "id" = $1`,
        [deviceId]
      );
      expect(device!.lastArrivalAt.toISOString()).toBe(arrival.body.reading.createdAt);
      await new Promise((resolve) => setTimeout(resolve, 3 * SWEEP_MS));
      expect(await noDataAlerts(deviceId)).toEqual([]);

      // Two minutes of silence, as if: the arrival (and the rule's creation) moved back.
      const silentSince = new Date(Date.now() - 120_000);
      await db.query(`update ${db.schema}."alert_rules" set "created_at" = $2 where "id" = $1`, [
        rule.id,
        new Date(silentSince.getTime() - 1_000)
      ]);
      await db.query(`update ${db.schema}."devices" set "last_arrival_at" = $2 where "id" = $1`, [deviceId, silentSince]);
      const opened = await until("the sweep to open the no_data episode", async () => (await noDataAlerts(deviceId))[0]);
      expect(opened).toMatchObject({
        silentSince: silentSince.toISOString(),
        breachStartedAt: silentSince.toISOString(),
        firedAt: new Date(silentSince.getTime() + 60_000).toISOString(),
        temperatureCelsius: null,
        readingCount: 0,
        resolvedAt: null
      });
      expect((await db.query(`select "open_alert_id" from ${db.schema}."alert_rules" where "id" = $1`, [rule.id]))[0]).toEqual({
        open_alert_id: opened.id
      });

      // The device speaks (a back-filled reading from an hour ago counts: it arrived).
      const back = await api
        .post(`/api/v1/devices/${deviceId}/readings`)
        .set(auth)
        .send({temperatureCelsius: 4, recordedAt: new Date(Date.now() - 3_600_000).toISOString()})
        .expect(201);
      const [resolved] = await noDataAlerts(deviceId);
      expect(resolved).toMatchObject({id: opened.id, resolvedAt: back.body.reading.createdAt});
      expect((await eventsOf(opened.id)).map((e) => e.type)).toEqual(["alert.fired", "alert.resolved"]);
      await new Promise((resolve) => setTimeout(resolve, 3 * SWEEP_MS));
      expect(await noDataAlerts(deviceId)).toHaveLength(1);
    });

    it("watches a rule from when it was created: a device that never sent anything is silent since then", async () => {
      const deviceId = await createDevice(api, auth, "AL-NEVER");
      const rule = await newRule(deviceId, {kind: "no_data", silenceSeconds: 60});
      const since = new Date(Date.now() - 90_000);
      await db.query(`update ${db.schema}."alert_rules" set "created_at" = $2 where "id" = $1`, [rule.id, since]);
      const opened = await until("the sweep to open the episode", async () => (await noDataAlerts(deviceId))[0]);
      expect(opened).toMatchObject({silentSince: since.toISOString(), firedAt: new Date(since.getTime() + 60_000).toISOString()});
    });

    it("resolves the episode of a deactivated device, and opens none for it", async () => {
      const deviceId = await createDevice(api, auth, "AL-GONE");
      const rule = await newRule(deviceId, {kind: "no_data", silenceSeconds: 60});
      await db.query(`update ${db.schema}."alert_rules" set "created_at" = now() - interval '10 minutes' where "id" = $1`, [rule.id]);
      await db.query(`update ${db.schema}."devices" set "last_arrival_at" = now() - interval '5 minutes' where "id" = $1`, [deviceId]);
      const opened = await until("the episode to open", async () => (await noDataAlerts(deviceId))[0]);
      await api.delete(`/api/v1/devices/${deviceId}`).set(auth).expect(204);
      await until(
        "the episode to resolve",
        async () => (await db.query(`select 1 from ${db.schema}."alerts" where "id" = $1 and "resolved_at" is not null`, [opened.id]))[0]
      );
      await new Promise((resolve) => setTimeout(resolve, 3 * SWEEP_MS));
      expect(await db.count("alerts", `"device_id" = $1`, [deviceId])).toBe(1);
    });

    it("records the arrivals of watched devices written together and racing, without a deadlock or a failed write", async () => {
      const devices = await Promise.all(["AL-ARR-1", "AL-ARR-2", "AL-ARR-3"].map((serial) => createDevice(api, auth, serial)));
      for (const deviceId of devices) await newRule(deviceId, {kind: "no_data", silenceSeconds: 600});
      await db.query(`update ${db.schema}."devices" set "last_arrival_at" = null where "id" = any($1::uuid[])`, [devices]);
      const base = Date.now() - 3_600_000;
      const statuses = await Promise.all(
        Array.from({length: 60}, (_, i) =>
          api
            .post(`/api/v1/devices/${devices[(i * 7) % 3]}/readings`)
            .set(auth)
            .send({temperatureCelsius: 4, recordedAt: new Date(base + i * 1_000).toISOString()})
            .then((res) => res.status)
        )
      );
      expect(statuses.filter((s) => s !== 201)).toEqual([]);
      expect(await db.count("devices", `"id" = any($1::uuid[]) and "last_arrival_at" > now() - interval '1 minute'`, [devices])).toBe(3);
    });

    it("opens one episode however many sweeps race (once across instances)", async () => {
      const deviceId = await createDevice(api, auth, "AL-RACE");
      const rule = await newRule(deviceId, {kind: "no_data", silenceSeconds: 60});
      // Disabled while the device goes silent, so that the scheduled sweep leaves it to the racers.
      await api.patch(`/api/v1/alert-rules/${rule.id}`).set(auth).send({isEnabled: false}).expect(200);
      await db.query(`update ${db.schema}."devices" set "last_arrival_at" = now() - interval '5 minutes' where "id" = $1`, [deviceId]);
      await db.query(
        `update ${db.schema}."alert_rules" set "is_enabled" = true, "evaluated_from" = now() - interval '5 minutes' where "id" = $1`,
        [rule.id]
      );
      const sweep = inject(NoDataSweep);
      await Promise.all(Array.from({length: 6}, () => sweep.sweepTenant(tenant)));
      await new Promise((resolve) => setTimeout(resolve, 2 * SWEEP_MS));
      expect(await db.count("alerts", `"rule_id" = $1`, [rule.id])).toBe(1);
    });
  });
});
