import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {createDevice, createRule, postBatch, provisionedBearer} from "../helpers/factories.js";
import {minute, TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";

interface AlertBody {
  id: string;
  ruleId: string;
  deviceId: string;
  severity: string;
  firedAt: string;
  resolvedAt: string | null;
  retractedAt: string | null;
  acknowledgedAt: string | null;
  acknowledgedById: string | null;
  acknowledgementComment: string | null;
  version: number;
}

/** GET /api/v1/alerts (the tenant's alerts across devices) and acknowledgements with comments. */
describe("the tenant's alerts", () => {
  let api: Api;
  let tenant: string;
  let auth: Record<string, string>;
  let db: TenantDb;

  const newRule = async (deviceId: string, body: object) => (await createRule(api, auth, deviceId, body)).id;
  const post = (deviceId: string, readings: [number, number][]) =>
    postBatch(
      api,
      auth,
      deviceId,
      readings.map(([temperatureCelsius, at]) => ({temperatureCelsius, recordedAt: minute(at)}))
    );
  const deviceAlerts = async (deviceId: string): Promise<AlertBody[]> =>
    (await api.get(`/api/v1/devices/${deviceId}/alerts`).set(auth)).body;

  beforeAll(async () => {
    api = await startTestServer();
    tenant = newTenant("alist");
    auth = await provisionedBearer(api, tenant);
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    await db?.close();
    await stopTestServer();
  });

  describe("GET /api/v1/alerts", () => {
    /** The alerts by name, built through the API: resolved, open, acknowledged, critical, retracted, two fired at one instant. */
    const alerts: Record<string, AlertBody> = {};

    beforeAll(async () => {
      const a = await createDevice(api, auth, "AL-A");
      const b = await createDevice(api, auth, "AL-B");
      const c = await createDevice(api, auth, "AL-C");
      await newRule(a, {condition: "above", thresholdCelsius: 30});
      const critical = await newRule(b, {condition: "above", thresholdCelsius: 30, severity: "critical"});
      await newRule(b, {condition: "above", thresholdCelsius: 34});
      await newRule(c, {condition: "above", thresholdCelsius: 30, forSeconds: 60});
      // a: fires at 1, resolves at 2, fires again at 5 (open).
      await post(a, [
        [31, 1],
        [20, 2],
        [32, 5]
      ]);
      // b: both rules fire at 3 (one instant: ordered by id).
      await post(b, [[35, 3]]);
      // c: a run from 10 to 11 lasts forSeconds and fires at 11; a late reading at 10:30 breaks it: retracted.
      await post(c, [
        [31, 10],
        [31, 11]
      ]);
      await post(c, [[20, 10.5]]);

      const [a2, a1] = await deviceAlerts(a);
      const bs = await deviceAlerts(b);
      const [c1] = await deviceAlerts(c);
      Object.assign(alerts, {
        a1,
        a2,
        c1,
        bCritical: bs.find((x) => x.ruleId === critical),
        bWarning: bs.find((x) => x.ruleId !== critical)
      });
      expect(alerts.a1).toMatchObject({resolvedAt: minute(2)});
      expect(alerts.a2).toMatchObject({resolvedAt: null, retractedAt: null});
      expect(alerts.c1!.retractedAt).not.toBeNull();
      expect(alerts.bCritical).toMatchObject({severity: "critical", resolvedAt: null});
      const ack = await api.post(`/api/v1/alerts/${alerts.bWarning!.id}/acknowledge`).set(auth);
      expect(ack.status).toBe(200);
    });

    const list = async (query = "", as = auth) => {
      const res = await api.get(`/api/v1/alerts${query}`).set(as);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body as {items: AlertBody[]; total: number; page: number; pageSize: number};
    };
    const names = (items: AlertBody[]) => items.map((item) => Object.keys(alerts).find((name) => alerts[name]!.id === item.id));
    /** b's two alerts fired at one instant: the higher id first. */
    const bPair = () => [alerts.bCritical!, alerts.bWarning!].sort((x, y) => (x.id < y.id ? 1 : -1)).map((x) => names([x])[0]);

    it("lists every device's alerts newest first (firedAt, then id), retracted ones included, paginated", async () => {
      const all = await list();
      expect(all).toMatchObject({total: 5, page: 1, pageSize: 20});
      expect(names(all.items)).toEqual(["c1", "a2", ...bPair(), "a1"]);
      const second = await list("?page=2&pageSize=2");
      expect(second).toMatchObject({total: 5, page: 2, pageSize: 2});
      expect(names(second.items)).toEqual(bPair());
      expect((await list("?page=4&pageSize=2")).items).toEqual([]);
    });

    it("filters: open is neither resolved nor retracted, open=false is either; acknowledged; severity; combined", async () => {
      expect(names((await list("?open=true")).items)).toEqual(["a2", ...bPair()]);
      expect(names((await list("?open=false")).items)).toEqual(["c1", "a1"]);
      expect(names((await list("?acknowledged=true")).items)).toEqual(["bWarning"]);
      expect(names((await list("?acknowledged=false")).items)).toEqual(["c1", "a2", "bCritical", "a1"]);
      expect(names((await list("?severity=critical")).items)).toEqual(["bCritical"]);
      expect(await list("?severity=warning&open=true&acknowledged=false&pageSize=1")).toMatchObject({total: 1, pageSize: 1});
      expect(names((await list("?severity=warning&open=true&acknowledged=false")).items)).toEqual(["a2"]);
    });

    it("is a viewer's read, and shows another tenant nothing", async () => {
      expect((await list("", await bearer(tenant, {roles: ["viewer"]}))).total).toBe(5);
      expect(await list("", await bearer(newTenant("alist_other"), {roles: ["viewer"]}))).toMatchObject({total: 0, items: []});
    });

    it("answers 400 in the error shape to filters and pages out of range", async () => {
      for (const query of ["?severity=fatal", "?open=maybe", "?acknowledged=1x", "?page=0", "?pageSize=101", "?pageSize=x"]) {
        const res = await api.get(`/api/v1/alerts${query}`).set(auth);
        expect(res.status, query).toBe(400);
        expect(res.body, query).toMatchObject({status: 400, name: "BAD_REQUEST", message: expect.any(String)});
      }
    });
  });

  describe("acknowledging with a comment", () => {
    /** A fresh open alert of a new device. */
    const openAlert = async () => {
      const deviceId = await createDevice(api, auth, `ACK-${Math.random().toString(36).slice(2, 10)}`);
      await newRule(deviceId, {condition: "above", thresholdCelsius: 30});
      await post(deviceId, [[35, 1]]);
      const [alert] = await deviceAlerts(deviceId);
      return alert!;
    };
    const acknowledge = (alertId: string, body?: unknown) => {
      const request = api.post(`/api/v1/alerts/${alertId}/acknowledge`).set(auth);
      return body === undefined ? request : request.set("Content-Type", "application/json").send(JSON.stringify(body));
    };
    /** The outbox rows announcing this alert's acknowledgement. */
    const ackEvents = (alertId: string) =>
      db.query<{body: {type: string; data: {alert: AlertBody}}}>(
        `select "body" from ${db.schema}."events" where "type" = 'alert.acknowledged' and "body"->'data'->'alert'->>'id' = $1`,
        [alertId]
      );

    it("keeps the comment with who and when, bumps the version and announces alert.acknowledged once; a second acknowledgement changes nothing", async () => {
      const alert = await openAlert();
      const me = (await api.get("/api/v1/me").set(auth)).body.id as string;
      const first = await acknowledge(alert.id, {comment: "Door was left open; closed it."});
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      expect(first.body).toMatchObject({
        id: alert.id,
        acknowledgedById: me,
        acknowledgementComment: "Door was left open; closed it.",
        version: alert.version + 1
      });
      expect(first.body.acknowledgedAt).not.toBeNull();
      const events = await ackEvents(alert.id);
      expect(events).toHaveLength(1);
      expect(events[0]!.body.data.alert).toMatchObject({
        id: alert.id,
        acknowledgementComment: "Door was left open; closed it.",
        acknowledgedById: me,
        version: alert.version + 1
      });

      const second = await acknowledge(alert.id, {comment: "someone else's"});
      expect(second.status).toBe(200);
      expect(second.body).toEqual(first.body);
      expect(await ackEvents(alert.id)).toHaveLength(1);
      expect((await deviceAlerts(first.body.deviceId))[0]).toMatchObject({acknowledgementComment: "Door was left open; closed it."});
    });

    it("works without a body, with {} and with an empty comment (no comment)", async () => {
      for (const body of [undefined, {}, {comment: ""}, {comment: null}]) {
        const alert = await openAlert();
        const res = await acknowledge(alert.id, body);
        expect(res.status, JSON.stringify(body)).toBe(200);
        expect(res.body, JSON.stringify(body)).toMatchObject({acknowledgementComment: null, version: alert.version + 1});
        expect(res.body.acknowledgedAt).not.toBeNull();
        expect(await ackEvents(alert.id)).toHaveLength(1);
      }
    });

    // (A number or a boolean is taken as its text: the API's validation coerces scalars, as for every other string field.)
    it("takes 500 characters (not bytes) and refuses 501, an object comment or a body that is not an object with a 400 that acknowledges nothing", async () => {
      const alert = await openAlert();
      for (const body of [{comment: "x".repeat(501)}, {comment: "é".repeat(501)}, {comment: {text: "a"}}, [], "text", 42]) {
        const res = await acknowledge(alert.id, body);
        expect(res.status, JSON.stringify(body).slice(0, 40)).toBe(400);
        expect(res.body).toMatchObject({status: 400, name: "BAD_REQUEST", message: expect.any(String)});
      }
      expect((await deviceAlerts(alert.deviceId))[0]).toMatchObject({acknowledgedAt: null, version: alert.version});
      expect(await ackEvents(alert.id)).toHaveLength(0);
      const ok = await acknowledge(alert.id, {comment: "é".repeat(500)});
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
      expect(ok.body.acknowledgementComment).toBe("é".repeat(500));
    });

    it("writes the acknowledgement and its event in one transaction: when the event cannot be written, the alert stays unacknowledged", async () => {
      const alert = await openAlert();
      const refuse = `${db.schema}."refuse_acknowledged_event"`;
      await db.query(`create function ${refuse}() returns trigger language plpgsql as $$ begin raise exception 'outbox refused'; end $$`);
      await db.query(
        `create trigger "refuse_acknowledged_event" before insert on ${db.schema}."events"
           for each row when (new."type" = 'alert.acknowledged') execute function ${refuse}()`
      );
      try {
        expect((await acknowledge(alert.id, {comment: "lost"})).status).toBe(500);
      } finally {
        await db.query(`drop trigger "refuse_acknowledged_event" on ${db.schema}."events"`);
        await db.query(`drop function ${refuse}()`);
      }
      expect((await deviceAlerts(alert.deviceId))[0]).toMatchObject({
        acknowledgedAt: null,
        acknowledgementComment: null,
        version: alert.version
      });
      expect((await acknowledge(alert.id, {comment: "kept"})).body).toMatchObject({acknowledgementComment: "kept"});
      expect(await ackEvents(alert.id)).toHaveLength(1);
    });

    it("answers 404 for an alert of no one, announcing nothing", async () => {
      const id = "00000000-0000-4000-8000-000000000001";
      const res = await acknowledge(id, {comment: "x"});
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({status: 404, name: "NOT_FOUND"});
      expect(await ackEvents(id)).toHaveLength(0);
    });
  });

  it("documents the list and the acknowledgement with their models and examples", async () => {
    const doc = (await api.get("/doc/swagger.json")).body;
    const {AlertPage, AcknowledgeBody} = doc.components.schemas;
    expect(AlertPage).toMatchObject({required: ["items", "total", "page", "pageSize"], properties: {total: {example: 42}}});
    expect(AcknowledgeBody.properties.comment).toMatchObject({maxLength: 500, nullable: true, example: expect.any(String)});
    const list = doc.paths["/api/v1/alerts"].get;
    expect(list["x-required-role"]).toBe("viewer");
    expect(list.parameters.map((p: {name: string}) => p.name).sort()).toEqual(["acknowledged", "open", "page", "pageSize", "severity"]);
    const acknowledge = doc.paths["/api/v1/alerts/{alertId}/acknowledge"].post;
    expect(acknowledge["x-required-role"]).toBe("operator");
    expect(acknowledge.requestBody).toMatchObject({required: false});
  });
});
