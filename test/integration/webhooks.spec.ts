import {inject} from "@tsed/common";
import {Webhook} from "standardwebhooks";
import {afterAll, beforeAll, beforeEach, describe, expect, it} from "vitest";
import {AppConfig, loadConfig} from "../../src/config/app-config.js";
import {appendEvent, type EventBody} from "../../src/platform/outbox/outbox.js";
import {TenantContext} from "../../src/platform/tenancy/tenant-context.js";
import {runAsTenant} from "../../src/platform/tenancy/tenant-scope.js";
import {TenantDb} from "../helpers/tenant-db.js";
import {useOwnDatabases} from "../helpers/own-databases.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {provisionedBearer} from "../helpers/factories.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";
import {WebhookReceiver} from "../helpers/webhook-receiver.js";

interface Attempt {
  attemptedAt: string;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}
interface Delivery {
  id: string;
  eventId: string;
  eventType: string;
  status: string;
  attemptCount: number;
  nextAttemptAt: string | null;
  attempts: Attempt[];
}

/**
 * Webhooks (docs/api.md, "Receiving webhooks") end to end: the API, the outbox relay and the
 * BullMQ delivery workers of one process, a receiver on this machine (WEBHOOK_ALLOW_PRIVATE on),
 * and the standardwebhooks library verifying signatures on the receiver's side.
 */
describe("webhooks", () => {
  let restoreEnv: (() => void) | undefined;
  let api: Api;
  let tenant: string;
  let admin: Record<string, string>;
  let db: TenantDb;
  let receiver: WebhookReceiver;

  const create = (body: object, as = admin) => api.post("/api/v1/admin/webhooks").set(as).send(body);
  const deliveries = async (endpointId: string, query = "") =>
    (await api.get(`/api/v1/admin/webhooks/${endpointId}/deliveries${query}`).set(admin).expect(200)).body.items as Delivery[];
  const deliveryOf = async (endpointId: string, eventId: string) => (await deliveries(endpointId)).find((d) => d.eventId === eventId);
  const settled = (endpointId: string, eventId: string, status = "succeeded") =>
    until(`delivery of ${eventId} to be ${status}`, async () => {
      const delivery = await deliveryOf(endpointId, eventId);
      return delivery?.status === status ? delivery : undefined;
    });
  const newEndpoint = async (path: string, body: object = {}) => {
    const res = await create({url: receiver.url(path), ...body});
    expect(res.status).toBe(201);
    return res.body as {id: string; secret: string};
  };
  /** An alert event, appended the way the alert code will: in a tenant transaction. */
  const appendAlertEvent = (type = "alert.fired", data: object = {}) =>
    runAsTenant(tenant, () =>
      inject(TenantContext).em.transactional((em) =>
        appendEvent(em, {type, data: {alert: {id: "a1", ruleId: null, deviceId: null, version: 1}, ...data}})
      )
    );

  beforeAll(async () => {
    // Databases of its own: the outbox relay of every server with workers claims the events of
    // every tenant it can see, and another spec's server (another queue prefix) would take ours.
    restoreEnv = await useOwnDatabases("webhooks");
    api = await startTestServer({
      runWorkers: true,
      queuePrefix: `${loadConfig().queuePrefix}:webhooks`,
      webhooks: {...loadConfig().webhooks, retryScheduleMs: [0, 150, 150], timeoutMs: 600, allowPrivate: true}
    });
    tenant = newTenant("hooks");
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
  beforeEach(() => {
    receiver.answer = () => ({status: 200});
  });

  it("creates an endpoint whose secret is shown once, and lists and reads it without the secret", async () => {
    const created = await newEndpoint("/life", {description: "ops chat"});
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(created).toMatchObject({eventTypes: ["alert.*"], isEnabled: true, disabledReason: null, description: "ops chat"});
    const one = await api.get(`/api/v1/admin/webhooks/${created.id}`).set(admin).expect(200);
    const all = await api.get("/api/v1/admin/webhooks").set(admin).expect(200);
    expect(JSON.stringify([one.body, all.body])).not.toContain(created.secret);
    expect(all.body.items.map((e: {id: string}) => e.id)).toContain(created.id);

    const patched = await api
      .patch(`/api/v1/admin/webhooks/${created.id}`)
      .set(admin)
      .send({isEnabled: false, disabledReason: "maintenance"});
    expect(patched.body).toMatchObject({isEnabled: false, disabledReason: "maintenance"});
    const enabled = await api
      .patch(`/api/v1/admin/webhooks/${created.id}`)
      .set(admin)
      .send({isEnabled: true, eventTypes: ["alert.fired"]});
    expect(enabled.body).toMatchObject({isEnabled: true, disabledReason: null, eventTypes: ["alert.fired"], description: "ops chat"});

    await api.delete(`/api/v1/admin/webhooks/${created.id}`).set(admin).expect(204);
    await api.get(`/api/v1/admin/webhooks/${created.id}`).set(admin).expect(404);
  });

  it("answers 400 in the error shape for every bad input, 403 below admin, 404 for another tenant's endpoint", async () => {
    const bad = [
      {},
      {url: "not a url"},
      {url: "ftp://example.com/x"},
      {url: `https://example.com/${"a".repeat(2_000)}`},
      {url: receiver.url(), eventTypes: ["reading.created"]},
      {url: receiver.url(), eventTypes: []},
      {url: receiver.url(), eventTypes: "alert.*"},
      {url: 42}
    ];
    for (const body of bad) {
      const res = await create(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body).toMatchObject({status: 400, name: expect.any(String), message: expect.any(String)});
    }
    await create({url: receiver.url()}, await bearer(tenant, {roles: ["operator"]})).expect(403);
    const other = await newEndpoint("/other-tenant");
    const stranger = await bearer(newTenant("hooks2"), {roles: ["admin"]});
    await api.get(`/api/v1/admin/webhooks/${other.id}`).set(stranger).expect(404);
    await api.get(`/api/v1/admin/webhooks/not-a-uuid`).set(admin).expect(400);
    await api.delete(`/api/v1/admin/webhooks/${other.id}`).set(admin).expect(204);
  });

  it("sends webhook.test signed per Standard Webhooks, and logs the attempt", async () => {
    const endpoint = await newEndpoint("/test");
    const {eventId} = (await api.post(`/api/v1/admin/webhooks/${endpoint.id}/test`).set(admin).expect(202)).body as {eventId: string};
    const delivery = await settled(endpoint.id, eventId);
    const [request] = receiver.on("/test");
    expect(request!.headers["webhook-id"]).toBe(eventId);
    const body = new Webhook(endpoint.secret).verify(request!.body, request!.headers as Record<string, string>) as EventBody;
    expect(body).toMatchObject({id: eventId, type: "webhook.test", tenantId: tenant, data: {endpointId: endpoint.id}});
    expect(() =>
      new Webhook(`whsec_${Buffer.alloc(24).toString("base64")}`).verify(request!.body, request!.headers as Record<string, string>)
    ).toThrow();
    expect(delivery).toMatchObject({eventType: "webhook.test", attemptCount: 1, nextAttemptAt: null});
    expect(delivery.attempts).toEqual([{attemptedAt: expect.any(String), statusCode: 200, error: null, durationMs: expect.any(Number)}]);
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("retries a failing receiver on the schedule with the same webhook-id, then succeeds", async () => {
    const endpoint = await newEndpoint("/flaky");
    let calls = 0;
    receiver.answer = (r) => (r.path === "/flaky" && ++calls < 3 ? {status: 500} : {status: 204});
    const event = await appendAlertEvent();
    const delivery = await settled(endpoint.id, event.id);
    expect(delivery.attempts.map((a) => a.statusCode)).toEqual([500, 500, 204]);
    const ids = new Set(receiver.on("/flaky").map((r) => r.headers["webhook-id"]));
    expect([...ids]).toEqual([event.id]);
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("gives up after the schedule's last attempt; a receiver that does not answer in time fails each attempt", async () => {
    const endpoint = await newEndpoint("/hang");
    receiver.answer = (r) => (r.path === "/hang" ? "hang" : {status: 200});
    const event = await appendAlertEvent();
    const delivery = await settled(endpoint.id, event.id, "failed");
    expect(delivery.attempts).toHaveLength(3);
    for (const attempt of delivery.attempts) {
      expect(attempt).toMatchObject({statusCode: null, error: "no answer within 600 ms"});
      expect(attempt.durationMs).toBeGreaterThanOrEqual(590);
    }
    expect(delivery.nextAttemptAt).toBeNull();
    const endpointNow = (await api.get(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin)).body;
    expect(endpointNow).toMatchObject({isEnabled: true, failingSince: expect.any(String)});
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("honours Retry-After", async () => {
    const endpoint = await newEndpoint("/busy");
    let calls = 0;
    receiver.answer = (r) => (r.path === "/busy" && ++calls === 1 ? {status: 503, headers: {"Retry-After": "1"}} : {status: 200});
    const event = await appendAlertEvent();
    await settled(endpoint.id, event.id);
    const [first, second] = receiver.on("/busy");
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1_000);
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("does not follow a redirect: a 3xx is a failed attempt", async () => {
    const endpoint = await newEndpoint("/moved");
    receiver.answer = (r) => (r.path === "/moved" ? {status: 302, headers: {Location: receiver.url("/elsewhere")}} : {status: 200});
    const event = await appendAlertEvent();
    const delivery = await settled(endpoint.id, event.id, "failed");
    expect(delivery.attempts.map((a) => a.statusCode)).toEqual([302, 302, 302]);
    expect(receiver.on("/elsewhere")).toHaveLength(0);
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("disables the endpoint on 410 Gone, after which it gets no deliveries", async () => {
    const endpoint = await newEndpoint("/gone");
    receiver.answer = (r) => (r.path === "/gone" ? {status: 410} : {status: 200});
    const event = await appendAlertEvent();
    const delivery = await settled(endpoint.id, event.id, "failed");
    expect(delivery.attempts.map((a) => a.statusCode)).toEqual([410]);
    const after = (await api.get(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin)).body;
    expect(after).toMatchObject({isEnabled: false, disabledReason: "The receiver answered 410 Gone"});
    const next = await appendAlertEvent();
    await until(
      "the event to be relayed",
      async () => (await db.count("events", "id = $1 and dispatched_at is not null", [next.id])) === 1
    );
    expect(await deliveryOf(endpoint.id, next.id)).toBeUndefined();
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("disables an endpoint that has failed for 5 days", async () => {
    const endpoint = await newEndpoint("/down");
    receiver.answer = (r) => (r.path === "/down" ? {status: 500} : {status: 200});
    await db.query(`update ${db.schema}.webhook_endpoints set failing_since = now() - interval '5 days 1 minute' where id = $1`, [
      endpoint.id
    ]);
    const event = await appendAlertEvent();
    const delivery = await settled(endpoint.id, event.id, "failed");
    expect(delivery.attempts).toHaveLength(1);
    const after = (await api.get(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin)).body;
    expect(after).toMatchObject({isEnabled: false, disabledReason: "Every delivery failed for 5 days"});
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("replays a delivered event with the same webhook-id, and filters the log by status", async () => {
    const endpoint = await newEndpoint("/replay");
    const event = await appendAlertEvent();
    await settled(endpoint.id, event.id);
    const replayed = await api.post(`/api/v1/admin/webhooks/${endpoint.id}/deliveries/${event.id}/replay`).set(admin).expect(202);
    expect(replayed.body).toEqual({deliveryId: expect.any(String)});
    const delivery = await until("the replay's attempt", async () => {
      const d = await deliveryOf(endpoint.id, event.id);
      return d?.attemptCount === 2 && d.status === "succeeded" ? d : undefined;
    });
    expect(delivery.attempts).toHaveLength(2);
    expect(receiver.on("/replay").map((r) => r.headers["webhook-id"])).toEqual([event.id, event.id]);
    expect(await deliveries(endpoint.id, "?status=failed")).toEqual([]);
    expect((await deliveries(endpoint.id, "?status=succeeded")).map((d) => d.eventId)).toEqual([event.id]);
    await api.get(`/api/v1/admin/webhooks/${endpoint.id}/deliveries?status=nope`).set(admin).expect(400);
    await api.post(`/api/v1/admin/webhooks/${endpoint.id}/deliveries/00000000-0000-4000-8000-000000000000/replay`).set(admin).expect(404);
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("signs with both secrets for 24 h after a rotation; each verifies on its own", async () => {
    const endpoint = await newEndpoint("/rotate");
    const rotated = await api.post(`/api/v1/admin/webhooks/${endpoint.id}/rotate-secret`).set(admin).expect(200);
    const {secret, previousSecretExpiresAt} = rotated.body as {secret: string; previousSecretExpiresAt: string};
    expect(secret).not.toBe(endpoint.secret);
    expect(new Date(previousSecretExpiresAt).getTime() - Date.now()).toBeGreaterThan(23.9 * 3_600_000);
    const event = await appendAlertEvent();
    await settled(endpoint.id, event.id);
    const [request] = receiver.on("/rotate");
    expect(String(request!.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    for (const key of [secret, endpoint.secret]) {
      expect(new Webhook(key).verify(request!.body, request!.headers as Record<string, string>)).toMatchObject({id: event.id});
    }
    // Once the overlap is over, only the new secret signs.
    await db.query(`update ${db.schema}.webhook_endpoints set previous_secret_expires_at = now() - interval '1 second' where id = $1`, [
      endpoint.id
    ]);
    const later = await appendAlertEvent();
    await settled(endpoint.id, later.id);
    const second = receiver.on("/rotate")[1]!;
    expect(String(second.headers["webhook-signature"]).split(" ")).toHaveLength(1);
    expect(() => new Webhook(endpoint.secret).verify(second.body, second.headers as Record<string, string>)).toThrow();
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("sends only the event types an endpoint subscribed to", async () => {
    const endpoint = await newEndpoint("/typed", {eventTypes: ["alert.resolved"]});
    const fired = await appendAlertEvent("alert.fired");
    const resolved = await appendAlertEvent("alert.resolved");
    await settled(endpoint.id, resolved.id);
    expect(await deliveryOf(endpoint.id, fired.id)).toBeUndefined();
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("delivers an event committed while no relay heard of it (a process killed after the commit): the sweep relays it", async () => {
    const endpoint = await newEndpoint("/sweep");
    // What a crash between the commit and the relay leaves: a committed row, and no NOTIFY anyone heard.
    const id = "5b3c0a53-8f1e-4b7e-9d43-5d8f2f0c9e21";
    const body = {id, type: "alert.fired", occurredAt: new Date().toISOString(), tenantId: tenant, data: {}};
    await db.query(`insert into ${db.schema}.events (id, type, occurred_at, body) values ($1, 'alert.fired', now(), $2)`, [
      id,
      JSON.stringify(body)
    ]);
    await until("the swept event's delivery", () => deliveryOf(endpoint.id, id).then((d) => d?.status === "succeeded"), 25_000);
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  }, 40_000);

  it("refuses loopback and plain-http URLs when private receivers are not allowed, at creation and at delivery", async () => {
    const config = inject(AppConfig);
    const endpoint = await newEndpoint("/strict");
    config.webhooks.allowPrivate = false;
    try {
      const refused = await create({url: receiver.url("/strict")});
      expect(refused.status).toBe(400);
      expect(refused.body.message).toMatch(/https/);
      expect((await create({url: "https://127.0.0.1/hook"})).body.message).toMatch(/not public/);
      expect((await create({url: "https://[::ffff:127.0.0.1]/hook"})).body.message).toMatch(/not public/);
      // An endpoint stored while they were allowed gets no request once they are not.
      const event = await appendAlertEvent();
      const delivery = await settled(endpoint.id, event.id, "failed");
      expect(delivery.attempts.map((a) => a.error)).toEqual(["url must use https", "url must use https", "url must use https"]);
      expect(receiver.on("/strict")).toHaveLength(0);
    } finally {
      config.webhooks.allowPrivate = true;
    }
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("holds back alert events in a silence's scope (logged as suppressed); replay sends them anyway", async () => {
    const endpoint = await newEndpoint("/silenced");
    await db.query(
      `insert into ${db.schema}.silences (id, starts_at, ends_at, comment, created_by) values (gen_random_uuid(), now() - interval '1 minute', now() + interval '1 hour', 'test', 'test')`
    );
    try {
      const event = await appendAlertEvent();
      const delivery = await settled(endpoint.id, event.id, "suppressed");
      expect(delivery.attempts).toEqual([]);
      expect(receiver.on("/silenced")).toHaveLength(0);
      await api.post(`/api/v1/admin/webhooks/${endpoint.id}/deliveries/${event.id}/replay`).set(admin).expect(202);
      await settled(endpoint.id, event.id, "succeeded");
    } finally {
      await db.query(`delete from ${db.schema}.silences`);
    }
    await api.delete(`/api/v1/admin/webhooks/${endpoint.id}`).set(admin).expect(204);
  });

  it("allows at most 20 endpoints per tenant", async () => {
    const own = newTenant("hooks20");
    const as = await bearer(own, {roles: ["admin"]});
    for (let i = 0; i < 20; i++) await create({url: receiver.url(`/n${i}`)}, as).expect(201);
    const res = await create({url: receiver.url("/n20")}, as);
    expect(res.status).toBe(409);
  });
});
