import {randomUUID} from "node:crypto";
import {inject} from "@tsed/common";
import {afterAll, beforeAll, beforeEach, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {NotificationScan} from "../../src/modules/notifications/notification-scan.service.js";
import {createDevice, provisionedBearer} from "../helpers/factories.js";
import {useOwnDatabases} from "../helpers/own-databases.js";
import {TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";
import {WebhookReceiver} from "../helpers/webhook-receiver.js";

interface Hook {
  type: string;
  tenantId: string;
  data: {alert: {id: string; deviceId: string; version: number}; afterSilence?: boolean};
}

const SCAN_MS = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The notifications' scheduled scan (docs/api.md, "Silences" and "Notifications: events") with its
 * BullMQ scheduler running every SCAN_MS: the end of a silence sends the open, unacknowledged
 * alerts it held back (`afterSilence: true`), and rules with remindEverySeconds send
 * `alert.reminder` while an alert stays open, unacknowledged and not silenced.
 */
describe("after a silence, and reminders", () => {
  let restoreEnv: (() => void) | undefined;
  let api: Api;
  let tenant: string;
  let admin: Record<string, string>;
  let db: TenantDb;
  let receiver: WebhookReceiver;
  let seconds = 0;

  const hooks = (path: string) => receiver.on(path).map((r) => JSON.parse(r.body) as Hook);
  /** Readings a second apart, in the recent past, in posting order. */
  const post = async (deviceId: string, temperatureCelsius: number) => {
    const recordedAt = new Date(Date.now() - 60_000 + ++seconds * 100).toISOString();
    const res = await api.post(`/api/v1/devices/${deviceId}/readings`).set(admin).send({recordedAt, temperatureCelsius});
    expect(res.status).toBe(201);
    return res.body as {alerts: {id: string}[]};
  };
  const device = async (serial: string, rule: object = {}) => {
    const id = await createDevice(api, admin, serial);
    await api
      .post(`/api/v1/devices/${id}/alert-rules`)
      .set(admin)
      .send({condition: "above", thresholdCelsius: 30, ...rule})
      .expect(201);
    return id;
  };
  const endpoint = async (path: string, eventTypes = ["alert.*"]) =>
    (
      await api
        .post("/api/v1/admin/webhooks")
        .set(admin)
        .send({url: receiver.url(path), eventTypes})
        .expect(201)
    ).body.id as string;
  const openAlert = async (deviceId: string) => {
    const [alert] = (await api.get(`/api/v1/devices/${deviceId}/alerts?open=true`).set(admin).expect(200)).body as {id: string}[];
    return alert!.id;
  };
  /** A silence's end is handled once every event before it was relayed: wait for the relay. */
  const relayed = () => until("the outbox to be relayed", async () => (await db.count("events", `"dispatched_at" is null`)) === 0);

  beforeAll(async () => {
    restoreEnv = await useOwnDatabases("notifysched");
    api = await startTestServer({
      runWorkers: true,
      queuePrefix: `${loadConfig().queuePrefix}:notifysched`,
      webhooks: {...loadConfig().webhooks, retryScheduleMs: [0, 150, 150], timeoutMs: 600, allowPrivate: true},
      notifications: {scanMs: SCAN_MS, outboxRetentionMs: 14 * 86_400_000}
    });
    tenant = newTenant("nsched");
    admin = await provisionedBearer(api, tenant, {roles: ["admin"]});
    db = await new TenantDb(tenant).connect();
    receiver = await new WebhookReceiver().start();
  });
  afterAll(async () => {
    await receiver?.stop();
    await db?.close();
    await stopTestServer();
    restoreEnv?.();
  });
  beforeEach(async () => {
    // One endpoint per test: the tests' deliveries never mix.
    await db.query(`update ${db.schema}."webhook_endpoints" set "is_enabled" = false`);
  });

  it("sends the open, unacknowledged alerts a silence held back once it ends, and nothing for one that fired and resolved inside it", async () => {
    await endpoint("/silence");
    const open = await device("AS-OPEN");
    const resolved = await device("AS-RESOLVED");
    const acknowledged = await device("AS-ACK");
    const outside = await device("AS-OUTSIDE");
    const silence = await api
      .post("/api/v1/silences")
      .set(admin)
      .send({endsAt: new Date(Date.now() + 3_600_000).toISOString(), comment: "maintenance"})
      .expect(201);

    await post(open, 35);
    await post(resolved, 35);
    await post(resolved, 20);
    const [ackAlert] = (await post(acknowledged, 35)).alerts;
    await api.post(`/api/v1/alerts/${ackAlert!.id}/acknowledge`).set(admin).send({}).expect(200);
    await relayed();
    const suppressed = await db.count("webhook_deliveries", `"status" = 'suppressed'`);
    expect(suppressed).toBe(5); // three alert.fired, one alert.resolved and one alert.acknowledged, all held back
    await sleep(3 * SCAN_MS);
    expect(hooks("/silence")).toEqual([]); // a silence in force releases nothing

    const endedAt = Date.now();
    await api.delete(`/api/v1/silences/${silence.body.id}`).set(admin).expect(200);
    const [sent] = await until("the held-back alert to be sent", async () => hooks("/silence").length > 0 && hooks("/silence"));
    expect(receiver.on("/silence")[0]!.at - endedAt).toBeLessThan(60_000);
    expect(sent).toMatchObject({type: "alert.fired", data: {afterSilence: true, alert: {id: await openAlert(open), deviceId: open}}});

    // An alert that fires after the silence is sent at once, and nothing more comes for the others.
    await post(outside, 35);
    await until("the new alert", async () => hooks("/silence").length >= 2);
    await sleep(4 * SCAN_MS);
    const all = hooks("/silence");
    expect(all.map((h) => [h.data.alert.deviceId, h.type, h.data.afterSilence ?? false])).toEqual([
      [open, "alert.fired", true],
      [outside, "alert.fired", false]
    ]);
  });

  it("hands an alert on to the silence still covering it when an overlapping one ends", async () => {
    await endpoint("/overlap");
    const id = await device("AS-OVERLAP");
    const first = await api
      .post("/api/v1/silences")
      .set(admin)
      .send({deviceId: id, endsAt: new Date(Date.now() + 3_600_000).toISOString(), comment: "first"})
      .expect(201);
    const second = await api
      .post("/api/v1/silences")
      .set(admin)
      .send({deviceId: id, endsAt: new Date(Date.now() + 3_600_000).toISOString(), comment: "second"})
      .expect(201);
    await post(id, 35);
    await relayed();
    await api.delete(`/api/v1/silences/${first.body.id}`).set(admin).expect(200);
    await until(
      "the first silence to be released",
      async () => (await db.count("silences", `"released_at" is not null and "id" = $1`, [first.body.id])) === 1
    );
    await sleep(2 * SCAN_MS);
    expect(hooks("/overlap")).toEqual([]);
    await api.delete(`/api/v1/silences/${second.body.id}`).set(admin).expect(200);
    const [sent] = await until("the alert after the second silence", async () => hooks("/overlap").length > 0 && hooks("/overlap"));
    expect(sent).toMatchObject({type: "alert.fired", data: {afterSilence: true, alert: {deviceId: id}}});
  });

  it("scans every tenant in one job: a second tenant's ended silence sends its held-back alert too", async () => {
    const other = newTenant("nsched2");
    const otherAdmin = await provisionedBearer(api, other, {roles: ["admin"]});
    // Both tenants have work for the same scan: an ended silence each.
    await endpoint("/first-tenant");
    const mine = await device("MT-1");
    const otherDevice = await createDevice(api, otherAdmin, "MT-2");
    await api
      .post(`/api/v1/devices/${otherDevice}/alert-rules`)
      .set(otherAdmin)
      .send({condition: "above", thresholdCelsius: 30})
      .expect(201);
    await api
      .post("/api/v1/admin/webhooks")
      .set(otherAdmin)
      .send({url: receiver.url("/second-tenant")})
      .expect(201);
    const silences = [];
    for (const [as, deviceId] of [
      [admin, mine],
      [otherAdmin, otherDevice]
    ] as const) {
      const silence = await api
        .post("/api/v1/silences")
        .set(as)
        .send({deviceId, endsAt: new Date(Date.now() + 3_600_000).toISOString(), comment: "two tenants"})
        .expect(201);
      silences.push([as, silence.body.id as string] as const);
      const recordedAt = new Date(Date.now() - 30_000).toISOString();
      await api.post(`/api/v1/devices/${deviceId}/readings`).set(as).send({recordedAt, temperatureCelsius: 35}).expect(201);
    }
    await relayed();
    await sleep(2 * SCAN_MS);
    for (const [as, id] of silences) await api.delete(`/api/v1/silences/${id}`).set(as).expect(200);
    await until("both tenants' held-back alerts", async () => hooks("/first-tenant").length === 1 && hooks("/second-tenant").length === 1);
    expect(hooks("/first-tenant")[0]).toMatchObject({data: {afterSilence: true, alert: {deviceId: mine}}});
    expect(hooks("/second-tenant")[0]).toMatchObject({tenantId: other, data: {afterSilence: true, alert: {deviceId: otherDevice}}});
  });

  it("reminds every remindEverySeconds after firedAt while the alert is open, unacknowledged and not silenced", async () => {
    await endpoint("/remind", ["alert.reminder"]);
    const reminded = await device("RM-1", {remindEverySeconds: 300});
    const silenced = await device("RM-SILENCED", {remindEverySeconds: 300});
    const never = await device("RM-NONE");
    for (const id of [reminded, silenced, never]) await post(id, 35);
    await api
      .post("/api/v1/silences")
      .set(admin)
      .send({deviceId: silenced, endsAt: new Date(Date.now() + 3_600_000).toISOString(), comment: "quiet"})
      .expect(201);
    const alertId = await openAlert(reminded);
    await sleep(3 * SCAN_MS);
    expect(hooks("/remind")).toEqual([]); // not due before remindEverySeconds

    // 2.5 periods ago: one reminder (for the latest slot), not two.
    await db.query(`update ${db.schema}."alerts" set "fired_at" = now() - interval '750 seconds'`);
    const [reminder] = await until("a reminder", async () => hooks("/remind").length > 0 && hooks("/remind"));
    expect(reminder).toMatchObject({type: "alert.reminder", data: {alert: {id: alertId, deviceId: reminded}}});
    await sleep(4 * SCAN_MS);
    expect(hooks("/remind")).toHaveLength(1);
    const [row] = await db.query<{late: number}>(
      `select extract(epoch from "last_reminded_at" - "fired_at")::int as "late" from ${db.schema}."alerts" where "id" = $1`,
      [alertId]
    );
    expect(row!.late).toBe(600);

    // The next slot, then acknowledged: no more.
    await db.query(
      `update ${db.schema}."alerts" set "fired_at" = "fired_at" - interval '300 seconds', "last_reminded_at" = "last_reminded_at" - interval '300 seconds' where "id" = $1`,
      [alertId]
    );
    await until("a second reminder", async () => hooks("/remind").length === 2);
    await api.post(`/api/v1/alerts/${alertId}/acknowledge`).set(admin).send({}).expect(200);
    await db.query(
      `update ${db.schema}."alerts" set "fired_at" = "fired_at" - interval '3000 seconds', "last_reminded_at" = "last_reminded_at" - interval '3000 seconds'`
    );
    await sleep(4 * SCAN_MS);
    expect(hooks("/remind").map((h) => h.data.alert.deviceId)).toEqual([reminded, reminded]);
  });

  it("purges dispatched events past OUTBOX_RETENTION_DAYS with their delivery log, and keeps younger, undispatched or pending ones", async () => {
    const endpointId = await endpoint("/purge");
    const event = async (name: string, dispatchedDaysAgo: number | null, occurredDaysAgo = 20) => {
      const id = randomUUID();
      await db.query(
        `insert into ${db.schema}."events" ("id", "type", "occurred_at", "body", "dispatched_at")
         values ($1, 'webhook.test', now() - make_interval(days => $2), $3, now() - make_interval(days => $4))`,
        [id, occurredDaysAgo, JSON.stringify({id, name}), dispatchedDaysAgo ?? 0]
      );
      if (dispatchedDaysAgo === null) await db.query(`update ${db.schema}."events" set "dispatched_at" = null where "id" = $1`, [id]);
      return id;
    };
    const delivery = async (eventId: string, status: string) => {
      const id = randomUUID();
      await db.query(
        `insert into ${db.schema}."webhook_deliveries" ("id", "endpoint_id", "event_id", "status", "attempts", "next_attempt_at")
         values ($1, $2, $3, $4, 1, now() + interval '1 day')`,
        [id, endpointId, eventId, status]
      );
      await db.query(
        `insert into ${db.schema}."webhook_attempts" ("delivery_id", "attempted_at", "status_code", "duration_ms") values ($1, now(), 500, 3)`,
        [id]
      );
      return id;
    };
    const old = await event("old", 15);
    const oldDelivery = await delivery(old, "failed");
    const pendingOld = await event("old, a delivery still pending", 15);
    await delivery(pendingOld, "pending");
    const young = await event("dispatched 13 days ago", 13);
    const undispatchedOld = await event("never dispatched", null);

    const purged = await inject(NotificationScan).purge();
    expect(purged).toBeGreaterThanOrEqual(1);
    const left = (await db.query<{id: string}>(`select "id"::text as "id" from ${db.schema}."events"`)).map((row) => row.id);
    expect(left).not.toContain(old);
    expect(left).toEqual(expect.arrayContaining([pendingOld, young, undispatchedOld]));
    expect(await db.count("webhook_deliveries", `"id" = $1`, [oldDelivery])).toBe(0);
    expect(await db.count("webhook_attempts", `"delivery_id" = $1`, [oldDelivery])).toBe(0);
  });
});
