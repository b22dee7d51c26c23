import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {loadConfig} from "../../src/config/app-config.js";
import {createDevice, createRule, provisionedBearer} from "../helpers/factories.js";
import {minute, TenantDb} from "../helpers/tenant-db.js";

interface AlertBody {
  id: string;
  ruleId: string;
  readingId: string | null;
  temperatureCelsius: number;
  firedAt: string;
  lastReadingAt: string;
  peakTemperatureCelsius: number;
  readingCount: number;
  resolvedAt: string | null;
  acknowledgedAt: string | null;
  acknowledgedById: string | null;
}

describe("alert rules and alert episodes", () => {
  let api: Api;
  let tenant: string;
  let auth: Record<string, string>;
  let db: TenantDb;

  const newDevice = (serialNumber: string, as = auth) => createDevice(api, as, serialNumber);
  const newRule = async (deviceId: string, body: object, as = auth) => (await createRule(api, as, deviceId, body)).id;
  const post = (deviceId: string, temperatureCelsius: number, at: number) =>
    api
      .post(`/api/v1/devices/${deviceId}/readings`)
      .set(auth)
      .send({temperatureCelsius, recordedAt: minute(at)});
  const postBatch = (deviceId: string, readings: [number, number][]) =>
    api
      .post(`/api/v1/devices/${deviceId}/readings/batch`)
      .set(auth)
      .send({readings: readings.map(([temperatureCelsius, at]) => ({temperatureCelsius, recordedAt: minute(at)}))});
  const alertsOf = async (deviceId: string, query = ""): Promise<AlertBody[]> => {
    const res = await api.get(`/api/v1/devices/${deviceId}/alerts${query}`).set(auth);
    expect(res.status).toBe(200);
    return res.body;
  };

  beforeAll(async () => {
    // Each single reading its own statement: these specs force races and count statements in
    // Postgres, where requests to several instances meet (group-commit.spec covers the grouping).
    api = await startTestServer({readings: {...loadConfig().readings, groupCommit: false}});
    tenant = newTenant("alert");
    auth = await provisionedBearer(api, tenant);
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    await db?.close();
    await stopTestServer();
  });

  describe("rules", () => {
    it("creates, lists, patches only the fields sent, and deletes rules", async () => {
      const deviceId = await newDevice("AR-CRUD");
      const created = await api
        .post(`/api/v1/devices/${deviceId}/alert-rules`)
        .set(auth)
        .send({condition: "above", thresholdCelsius: 30, deviceId: "x", id: "y"});
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({deviceId, condition: "above", thresholdCelsius: 30, isEnabled: true});
      const ruleId = created.body.id;
      expect(ruleId).not.toBe("y");
      await newRule(deviceId, {condition: "below", thresholdCelsius: 2, isEnabled: false});

      const list = await api.get(`/api/v1/devices/${deviceId}/alert-rules`).set(auth);
      expect(list.body).toMatchObject({total: 2, page: 1, pageSize: 20});
      expect(list.body.items.map((r: {condition: string; isEnabled: boolean}) => [r.condition, r.isEnabled])).toEqual([
        ["above", true],
        ["below", false]
      ]);
      const second = await api.get(`/api/v1/devices/${deviceId}/alert-rules?page=2&pageSize=1`).set(auth);
      expect(second.body).toMatchObject({total: 2, page: 2, pageSize: 1, items: [expect.objectContaining({condition: "below"})]});

      const patched = await api.patch(`/api/v1/alert-rules/${ruleId}`).set(auth).send({thresholdCelsius: 28.5});
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({condition: "above", thresholdCelsius: 28.5, isEnabled: true, deviceId});

      expect((await api.delete(`/api/v1/alert-rules/${ruleId}`).set(auth)).status).toBe(204);
      expect((await api.delete(`/api/v1/alert-rules/${ruleId}`).set(auth)).status).toBe(404);
      expect((await api.patch(`/api/v1/alert-rules/${ruleId}`).set(auth).send({isEnabled: false})).status).toBe(404);
    });

    it.each([
      ["an unknown condition", {condition: "sideways", thresholdCelsius: 30}],
      ["a missing threshold", {condition: "above"}],
      ["a threshold out of range", {condition: "below", thresholdCelsius: -300}],
      ["a null threshold", {condition: "below", thresholdCelsius: null}]
    ])("rejects %s with 400", async (_label, body) => {
      const deviceId = await newDevice(`AR-BAD-${Math.random().toString(36).slice(2, 10)}`);
      const res = await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send(body);
      expect(res.status).toBe(400);
      expect(res.body.errors.length).toBeGreaterThan(0);
      expect(await db.count("alert_rules", "device_id = $1", [deviceId])).toBe(0);
    });

    it("rejects an unknown condition in PATCH too", async () => {
      const deviceId = await newDevice("AR-PATCH-BAD");
      const ruleId = await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      expect((await api.patch(`/api/v1/alert-rules/${ruleId}`).set(auth).send({condition: "sideways"})).status).toBe(400);
    });

    it("keeps rules, alerts and devices of other tenants out of reach (404)", async () => {
      const deviceId = await newDevice("AR-TENANT");
      const ruleId = await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      await post(deviceId, 40, 1);
      const [alert] = await alertsOf(deviceId);
      const stranger = await bearer(newTenant("alert2"));
      expect((await api.get(`/api/v1/devices/${deviceId}/alert-rules`).set(stranger)).status).toBe(404);
      expect(
        (await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(stranger).send({condition: "above", thresholdCelsius: 1})).status
      ).toBe(404);
      expect((await api.patch(`/api/v1/alert-rules/${ruleId}`).set(stranger).send({isEnabled: false})).status).toBe(404);
      expect((await api.delete(`/api/v1/alert-rules/${ruleId}`).set(stranger)).status).toBe(404);
      expect((await api.get(`/api/v1/devices/${deviceId}/alerts`).set(stranger)).status).toBe(404);
      expect((await api.post(`/api/v1/alerts/${alert!.id}/acknowledge`).set(stranger)).status).toBe(404);
      expect((await alertsOf(deviceId))[0]!.acknowledgedAt).toBeNull();
    });

    it("takes at most 20 rules per device (409 past it), also when requests race for the last places", async () => {
      const deviceId = await newDevice("AR-CAP");
      for (let i = 0; i < 18; i++) await newRule(deviceId, {condition: "above", thresholdCelsius: 30 + i});
      // Five at once for the last two places: two get them, three are refused, never 21 rules.
      const racing = await Promise.all(
        Array.from({length: 5}, (_, i) =>
          api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "below", thresholdCelsius: i})
        )
      );
      expect(racing.map((r) => r.status).sort()).toEqual([201, 201, 409, 409, 409]);
      expect(racing.find((r) => r.status === 409)!.body).toMatchObject({status: 409, name: "CONFLICT"});
      expect((await api.get(`/api/v1/devices/${deviceId}/alert-rules?pageSize=100`).set(auth)).body.total).toBe(20);
    });

    it("archives a deleted rule: its open alert resolves and stays listed, the rule is gone from lists and routes and evaluates nothing", async () => {
      const deviceId = await newDevice("AR-ARCHIVE");
      const ruleId = await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      const kept = await newRule(deviceId, {condition: "above", thresholdCelsius: 35});
      expect((await post(deviceId, 40, 1)).body.alerts).toHaveLength(2);
      const [before] = (await alertsOf(deviceId)).filter((a) => a.ruleId === ruleId);
      expect(before!.resolvedAt).toBeNull();

      const deletedAt = Date.now();
      expect((await api.delete(`/api/v1/alert-rules/${ruleId}`).set(auth)).status).toBe(204);

      // The alert history stays; the open episode is resolved at the deletion.
      const after = (await alertsOf(deviceId)).filter((a) => a.ruleId === ruleId);
      expect(after.map((a) => a.id)).toEqual([before!.id]);
      expect(Date.parse(after[0]!.resolvedAt!)).toBeGreaterThanOrEqual(deletedAt - 1_000);
      expect(await alertsOf(deviceId, "?open=true")).toEqual([expect.objectContaining({ruleId: kept})]);

      // Gone for the API: lists, PATCH, DELETE.
      const list = await api.get(`/api/v1/devices/${deviceId}/alert-rules`).set(auth);
      expect(list.body).toMatchObject({total: 1, items: [expect.objectContaining({id: kept})]});
      expect((await api.patch(`/api/v1/alert-rules/${ruleId}`).set(auth).send({isEnabled: true})).status).toBe(404);
      expect((await api.delete(`/api/v1/alert-rules/${ruleId}`).set(auth)).status).toBe(404);

      // It evaluates no more readings, single or batch (the other rule still does).
      expect((await post(deviceId, 20, 2)).body.alerts.map((a: AlertBody) => a.ruleId)).toEqual([kept]);
      expect((await post(deviceId, 45, 3)).body.alerts.map((a: AlertBody) => a.ruleId)).toEqual([kept]);
      const batch = await postBatch(deviceId, [
        [20, 4],
        [50, 5]
      ]);
      expect(batch.status).toBe(200);
      expect((await alertsOf(deviceId)).filter((a) => a.ruleId === ruleId)).toHaveLength(1);
      expect(await db.count("alert_rules", "id = $1 and archived_at is not null and not is_enabled", [ruleId])).toBe(1);
    });

    it("leaves archived rules out of the 20-rule cap", async () => {
      const deviceId = await newDevice("AR-CAP-ARCHIVED");
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push(await newRule(deviceId, {condition: "above", thresholdCelsius: 30 + i}));
      const full = await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "below", thresholdCelsius: 0});
      expect(full.status).toBe(409);
      expect((await api.delete(`/api/v1/alert-rules/${ids[0]}`).set(auth)).status).toBe(204);
      await newRule(deviceId, {condition: "below", thresholdCelsius: 0});
      expect(
        (await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "below", thresholdCelsius: 1})).status
      ).toBe(409);
      expect((await api.get(`/api/v1/devices/${deviceId}/alert-rules?pageSize=100`).set(auth)).body.total).toBe(20);
    });

    it("takes no new rules on an inactive device", async () => {
      const deviceId = await newDevice("AR-INACTIVE");
      await api.delete(`/api/v1/devices/${deviceId}`).set(auth);
      expect(
        (await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 30})).status
      ).toBe(404);
    });
  });

  describe("episodes", () => {
    it("opens an alert on the first violation, updates it with the next ones and resolves it with the first reading back inside", async () => {
      const deviceId = await newDevice("EP-LIFECYCLE");
      const ruleId = await newRule(deviceId, {condition: "above", thresholdCelsius: 30});

      expect((await post(deviceId, 25, 0)).body.alerts).toEqual([]);
      const opened = await post(deviceId, 31, 1);
      expect(opened.status).toBe(201);
      expect(opened.body.alerts).toEqual([
        expect.objectContaining({
          ruleId,
          deviceId,
          readingId: opened.body.reading.id,
          temperatureCelsius: 31,
          firedAt: minute(1),
          lastReadingAt: minute(1),
          peakTemperatureCelsius: 31,
          readingCount: 1,
          resolvedAt: null
        })
      ]);
      const alertId = opened.body.alerts[0].id;

      const updated = await post(deviceId, 36, 2);
      expect(updated.body.alerts).toEqual([
        expect.objectContaining({id: alertId, lastReadingAt: minute(2), peakTemperatureCelsius: 36, readingCount: 2, resolvedAt: null})
      ]);
      await post(deviceId, 33, 3);

      const resolved = await post(deviceId, 29, 4);
      expect(resolved.body.alerts).toEqual([
        expect.objectContaining({
          id: alertId,
          firedAt: minute(1),
          lastReadingAt: minute(3),
          peakTemperatureCelsius: 36,
          readingCount: 3,
          resolvedAt: minute(4)
        })
      ]);
      expect((await post(deviceId, 28, 5)).body.alerts).toEqual([]);

      const again = await post(deviceId, 32, 6);
      expect(again.body.alerts).toEqual([expect.objectContaining({firedAt: minute(6), readingCount: 1, resolvedAt: null})]);
      expect(again.body.alerts[0].id).not.toBe(alertId);

      const all = await alertsOf(deviceId);
      expect(all.map((a) => [a.firedAt, a.resolvedAt])).toEqual([
        [minute(6), null],
        [minute(1), minute(4)]
      ]);
      expect((await alertsOf(deviceId, "?open=true")).map((a) => a.firedAt)).toEqual([minute(6)]);
      expect((await alertsOf(deviceId, "?open=false")).map((a) => a.firedAt)).toEqual([minute(1)]);
    });

    it("evaluates a batch in recordedAt order whatever the order sent, and counts the episodes it opened", async () => {
      const deviceId = await newDevice("EP-BATCH-ORDER");
      const ruleId = await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      const res = await postBatch(deviceId, [
        [29, 13],
        [34, 14],
        [31, 11],
        [25, 10],
        [35, 12]
      ]);
      expect(res.body).toMatchObject({inserted: 5, duplicates: 0, alertsFired: 2});
      const alerts = await alertsOf(deviceId);
      expect(
        alerts.map((a) => ({
          firedAt: a.firedAt,
          lastReadingAt: a.lastReadingAt,
          peak: a.peakTemperatureCelsius,
          count: a.readingCount,
          resolvedAt: a.resolvedAt,
          ruleId: a.ruleId
        }))
      ).toEqual([
        {firedAt: minute(14), lastReadingAt: minute(14), peak: 34, count: 1, resolvedAt: null, ruleId},
        {firedAt: minute(11), lastReadingAt: minute(12), peak: 35, count: 2, resolvedAt: minute(13), ruleId}
      ]);
    });

    it("does not re-evaluate duplicates", async () => {
      const deviceId = await newDevice("EP-DUPLICATES");
      await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      const batch: [number, number][] = [
        [31, 1],
        [32, 2]
      ];
      await postBatch(deviceId, batch);
      const retried = await postBatch(deviceId, batch);
      expect(retried.body).toMatchObject({inserted: 0, duplicates: 2, alertsFired: 0});
      expect((await post(deviceId, 31, 1)).body).toMatchObject({duplicate: true, alerts: []});
      const [alert] = await alertsOf(deviceId);
      expect(alert).toMatchObject({readingCount: 2, peakTemperatureCelsius: 32});
    });

    it("applies `below` rules with the lowest temperature as peak, and each rule keeps its own episode", async () => {
      const deviceId = await newDevice("EP-BELOW");
      const below = await newRule(deviceId, {condition: "below", thresholdCelsius: 2});
      const above = await newRule(deviceId, {condition: "above", thresholdCelsius: 8});
      const res = await postBatch(deviceId, [
        [1.5, 1],
        [-4, 2],
        [2, 3],
        [9, 4]
      ]);
      expect(res.body.alertsFired).toBe(2);
      const alerts = await alertsOf(deviceId);
      expect(alerts.find((a) => a.ruleId === below)).toMatchObject({peakTemperatureCelsius: -4, readingCount: 2, resolvedAt: minute(3)});
      expect(alerts.find((a) => a.ruleId === above)).toMatchObject({peakTemperatureCelsius: 9, readingCount: 1, resolvedAt: null});
    });

    it("re-derives episodes around a late reading: it splits, extends backwards and resolves, keeping ids and acknowledgements", async () => {
      const deviceId = await newDevice("EP-LATE");
      await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      const [opened] = (await post(deviceId, 31, 10)).body.alerts as AlertBody[];
      await post(deviceId, 32, 12);
      expect((await api.post(`/api/v1/alerts/${opened!.id}/acknowledge`).set(auth)).status).toBe(200);

      // 20 °C at 10:11 was measured between the two violations: in recordedAt order the episode
      // ended there and a second one began at 10:12 (acknowledged as part of the first).
      const split = await post(deviceId, 20, 11);
      expect(split.status).toBe(201);
      expect(split.body.alerts).toEqual([
        expect.objectContaining({id: opened!.id, firedAt: minute(10), lastReadingAt: minute(10), readingCount: 1, resolvedAt: minute(11)}),
        expect.objectContaining({firedAt: minute(12), readingCount: 1, resolvedAt: null, acknowledgedAt: expect.any(String)})
      ]);
      // A violation measured before the first episode began moves its start back (same row).
      expect((await post(deviceId, 40, 9)).body.alerts).toEqual([
        expect.objectContaining({
          id: opened!.id,
          firedAt: minute(9),
          temperatureCelsius: 40,
          readingCount: 2,
          peakTemperatureCelsius: 40,
          resolvedAt: minute(11)
        })
      ]);
      await post(deviceId, 25, 13);
      // Back-filled readings after the newest one's episodes ended: a new episode of their own.
      const backfill = await postBatch(deviceId, [
        [33, 5],
        [29, 6]
      ]);
      expect(backfill.body.alertsFired).toBe(1);

      const alerts = await alertsOf(deviceId);
      expect(
        alerts.map((a) => [a.firedAt, a.lastReadingAt, a.readingCount, a.peakTemperatureCelsius, a.resolvedAt, a.acknowledgedAt !== null])
      ).toEqual([
        [minute(12), minute(12), 1, 32, minute(13), true],
        [minute(9), minute(10), 2, 40, minute(11), true],
        [minute(5), minute(5), 1, 33, minute(6), false]
      ]);
    });

    it("lets a reading further behind than ALERT_LATE_HORIZON (24 h) change no episode", async () => {
      const deviceId = await newDevice("EP-HORIZON");
      await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      await post(deviceId, 20, 3 * 24 * 60);
      // Two days before the newest reading: stored (a duplicate would say so), but no episode.
      const old = await post(deviceId, 45, 24 * 60);
      expect(old.status).toBe(201);
      expect(old.body.alerts).toEqual([]);
      expect(await alertsOf(deviceId)).toEqual([]);
      // Within the horizon it would have opened one.
      expect((await post(deviceId, 45, 3 * 24 * 60 - 60)).body.alerts).toEqual([
        expect.objectContaining({firedAt: minute(3 * 24 * 60 - 60), resolvedAt: minute(3 * 24 * 60)})
      ]);
    });

    it("disabling a rule resolves its open alert and stops evaluating it; enabling it evaluates readings from then on; changing only the threshold keeps the episode", async () => {
      const deviceId = await newDevice("EP-DISABLE");
      const ruleId = await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      await post(deviceId, 35, 1);
      await api.patch(`/api/v1/alert-rules/${ruleId}`).set(auth).send({thresholdCelsius: 33});
      expect(await alertsOf(deviceId, "?open=true")).toHaveLength(1);
      expect((await post(deviceId, 34, 2)).body.alerts).toEqual([expect.objectContaining({readingCount: 2})]);

      expect((await api.patch(`/api/v1/alert-rules/${ruleId}`).set(auth).send({isEnabled: false})).status).toBe(200);
      expect(await alertsOf(deviceId, "?open=true")).toEqual([]);
      expect((await alertsOf(deviceId))[0]!.resolvedAt).not.toBeNull();
      expect((await post(deviceId, 50, 3)).body.alerts).toEqual([]);

      const enabled = await api.patch(`/api/v1/alert-rules/${ruleId}`).set(auth).send({isEnabled: true});
      const enabledAt = Date.parse(enabled.body.evaluatedFrom);
      expect(Math.abs(enabledAt - Date.now())).toBeLessThan(60_000);
      // Measured while the rule was off: not judged by it.
      expect((await post(deviceId, 51, 4)).body.alerts).toEqual([]);
      const now = new Date(enabledAt + 1_000).toISOString();
      const fresh = await api.post(`/api/v1/devices/${deviceId}/readings`).set(auth).send({temperatureCelsius: 51, recordedAt: now});
      expect(fresh.body.alerts).toEqual([expect.objectContaining({firedAt: new Date(now).toISOString(), readingCount: 1})]);
    });

    it("serialises writes that change a device's episodes: ten violations racing end in one open episode holding them all", async () => {
      const deviceId = await newDevice("EP-RACE");
      const ruleId = await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      const temperatures = [31, 32, 33, 34, 35, 36, 37, 38, 39, 40];
      // The test holds the rule row locked until all ten writers wait for it, then lets them go at once.
      const responses = await db.overlapOnRow("alert_rules", ruleId, 10, () =>
        Promise.all(temperatures.map((t, i) => post(deviceId, t, 100 + 9 - i)))
      );
      expect(responses.map((r) => r.status)).toEqual(Array(10).fill(201));
      expect(await db.count("alerts", "rule_id = $1 and resolved_at is null", [ruleId])).toBe(1);
      const alerts = await alertsOf(deviceId);
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatchObject({
        firedAt: minute(100),
        temperatureCelsius: 40,
        readingCount: 10,
        peakTemperatureCelsius: 40,
        lastReadingAt: minute(109),
        resolvedAt: null
      });
    });

    it("stays consistent when violations and a resolving reading race on an open alert", async () => {
      const deviceId = await newDevice("EP-RACE-RESOLVE");
      const ruleId = await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      await post(deviceId, 31, 0);
      // Five violations and one in-threshold reading (the newest) arrive at once.
      const readings: [number, number][] = [
        [32, 1],
        [33, 2],
        [34, 3],
        [35, 4],
        [36, 5],
        [20, 6]
      ];
      const responses = await db.overlapOnRow("alert_rules", ruleId, 6, () =>
        Promise.all(readings.map(([t, at]) => post(deviceId, t, at)))
      );
      expect(responses.map((r) => r.status)).toEqual(Array(6).fill(201));
      expect(await db.count("alerts", "rule_id = $1 and resolved_at is null", [ruleId])).toBe(0);
      const alerts = await alertsOf(deviceId);
      // Whatever order they committed in: one episode, closed by the in-threshold reading, holding every violation.
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatchObject({readingCount: 6, peakTemperatureCelsius: 36, lastReadingAt: minute(5), resolvedAt: minute(6)});
    });
  });

  describe("listing and acknowledging", () => {
    it("records who acknowledged and when; acknowledging again keeps the first; filters by acknowledged", async () => {
      const deviceId = await newDevice("ACK-1");
      await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      await postBatch(deviceId, [
        [31, 1],
        [20, 2],
        [31, 3]
      ]);
      const [newest, oldest] = await alertsOf(deviceId);
      const me = (await api.get("/api/v1/me").set(auth)).body;

      const before = Date.now();
      const acked = await api.post(`/api/v1/alerts/${oldest!.id}/acknowledge`).set(auth);
      const after = Date.now();
      expect(acked.status).toBe(200);
      expect(acked.body).toMatchObject({id: oldest!.id, acknowledgedById: me.id});
      const acknowledgedAt = new Date(acked.body.acknowledgedAt).getTime();
      expect(acknowledgedAt >= before && acknowledgedAt <= after).toBe(true);

      const colleague = await bearer(tenant);
      const again = await api.post(`/api/v1/alerts/${oldest!.id}/acknowledge`).set(colleague);
      expect(again.body).toMatchObject({acknowledgedById: me.id, acknowledgedAt: acked.body.acknowledgedAt});

      expect((await alertsOf(deviceId, "?acknowledged=true")).map((a) => a.id)).toEqual([oldest!.id]);
      expect((await alertsOf(deviceId, "?acknowledged=false")).map((a) => a.id)).toEqual([newest!.id]);
      expect(await alertsOf(deviceId, "?acknowledged=false&open=false")).toEqual([]);
      expect((await api.get(`/api/v1/devices/${deviceId}/alerts?open=maybe`).set(auth)).status).toBe(400);
      expect((await api.post(`/api/v1/alerts/6b1f3c1e-0000-4000-8000-000000000000/acknowledge`).set(auth)).status).toBe(404);
    });

    it("lists at most 50 alerts, newest first", async () => {
      const deviceId = await newDevice("ACK-MANY");
      await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      // 60 episodes: violation, recovery, violation, ...
      const readings = Array.from({length: 120}, (_, i): [number, number] => [i % 2 === 0 ? 31 : 20, i]);
      expect((await postBatch(deviceId, readings)).body.alertsFired).toBe(60);
      const alerts = await alertsOf(deviceId);
      expect(alerts).toHaveLength(50);
      expect(alerts[0]!.firedAt).toBe(minute(118));
      const fired = alerts.map((a) => a.firedAt);
      expect(fired).toEqual([...fired].sort().reverse());
    });
  });

  it("documents the rule and alert models with constraints and examples", async () => {
    const schemas = (await api.get("/doc/swagger.json")).body.components.schemas;
    expect(schemas.AlertRuleCreate.properties.condition).toMatchObject({
      enum: expect.arrayContaining(["above", "below"]),
      example: "above"
    });
    expect(schemas.AlertRuleCreate.properties.thresholdCelsius).toMatchObject({minimum: -273.15, maximum: 1000, example: 30});
    expect(schemas.AlertRuleCreate.properties).toMatchObject({
      kind: {enum: ["threshold", "no_data"], default: "threshold"},
      forSeconds: {type: "integer", minimum: 0, maximum: 86400, default: 0},
      clearDeltaCelsius: {minimum: 0, maximum: 100, default: 0},
      severity: {enum: ["warning", "critical"], default: "warning"},
      silenceSeconds: {minimum: 60, maximum: 604800},
      remindEverySeconds: {minimum: 300, maximum: 604800}
    });
    // Which fields are required depends on the kind: the service answers 400 naming them.
    expect(schemas.AlertRuleCreate.required ?? []).toEqual([]);
    expect(schemas.AlertRuleUpdatePartial.required ?? []).toEqual([]);
    expect(schemas.Alert.properties).toMatchObject({
      peakTemperatureCelsius: {example: 37.1},
      readingCount: {type: "integer"},
      resolvedAt: {format: "date-time", nullable: true},
      retractedAt: {format: "date-time", nullable: true},
      breachStartedAt: {format: "date-time"},
      severity: {enum: ["warning", "critical"]},
      version: {type: "integer"}
    });
  });
});
