import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {SseClient} from "../helpers/sse-client.js";
import {newTenant} from "../helpers/tokens.js";
import {WebhookReceiver} from "../helpers/webhook-receiver.js";
import {call, tenantAuth} from "./helpers/load.js";
import {type AppProcess, startApp, startOwnRedis, waitFor} from "./helpers/processes.js";

/**
 * Notifications across real processes: two API instances (both relaying and delivering, as by
 * default), one Redis and one Postgres. Events are written to the outbox by SQL, as the alert
 * code's transaction will (a row and a NOTIFY delivered on commit).
 */
describe("notifications across instances", () => {
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let apis: AppProcess[] = [];
  let receiver: WebhookReceiver;
  let db: pg.Client;
  const env = () => ({REDIS_URL: redis.url, QUEUE_PREFIX: `faults-notify-${process.pid}`, WEBHOOK_ALLOW_PRIVATE: "true"});

  const appendBySql = async (tenant: string, type: string, notify = true) => {
    const id = crypto.randomUUID();
    const body = {id, type, occurredAt: new Date().toISOString(), tenantId: tenant, data: {alert: {id: "a", version: 1}}};
    await db.query("begin");
    await db.query(`insert into "${tenant}".events (id, type, occurred_at, body) values ($1, $2, now(), $3)`, [
      id,
      type,
      JSON.stringify(body)
    ]);
    if (notify) await db.query(`select pg_notify('smart_thermo_outbox', $1)`, [tenant]);
    await db.query("commit");
    return id;
  };

  beforeAll(async () => {
    redis = await startOwnRedis();
    apis = await Promise.all([startApp(env()), startApp(env())]);
    receiver = await new WebhookReceiver().start();
    db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
  }, 120_000);
  afterAll(async () => {
    for (const app of apis) await app?.stop("SIGKILL");
    await receiver?.stop();
    await db?.end();
    await redis?.stop();
  });

  it("an event written while B serves a stream reaches it, and the webhook is sent once, not once per instance", async () => {
    const tenant = newTenant("notify_multi");
    const auth = await tenantAuth(tenant);
    const [a, b] = apis as [AppProcess, AppProcess];
    const endpoint = await call(a.baseUrl, auth, "POST", "/api/v1/admin/webhooks", {url: receiver.url("/multi")});
    const stream = await SseClient.open(`${b.baseUrl}/api/v1/stream`, {Authorization: auth});
    expect(stream.status).toBe(200);
    await waitFor(() => stream.retry === 5000, 10_000, "the stream to open");
    // Give B's reader a moment to attach before the first event (it starts from the log's end).
    await new Promise((resolve) => setTimeout(resolve, 300));

    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await appendBySql(tenant, "alert.fired"));
    await waitFor(() => stream.events.length >= 5, 15_000, "5 events on B's stream");
    expect(stream.events.map((e) => JSON.parse(e.data).id)).toEqual(ids);
    await waitFor(() => receiver.on("/multi").length >= 5, 15_000, "5 webhooks");
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(
      receiver
        .on("/multi")
        .map((r) => r.headers["webhook-id"])
        .sort()
    ).toEqual([...ids].sort());

    const test = await call(b.baseUrl, auth, "POST", `/api/v1/admin/webhooks/${endpoint.id}/test`);
    await waitFor(() => receiver.on("/multi").some((r) => r.headers["webhook-id"] === test.eventId), 15_000, "the test event");
    stream.close();
  }, 60_000);

  it("delivers an event committed while every instance was down, once one is back", async () => {
    const tenant = newTenant("notify_down");
    const auth = await tenantAuth(tenant);
    await call(apis[0]!.baseUrl, auth, "POST", "/api/v1/admin/webhooks", {url: receiver.url("/down")});
    for (const app of apis) await app.stop("SIGKILL");
    // Committed with its NOTIFY, which nobody hears: what a crash right after the commit leaves.
    const id = await appendBySql(tenant, "alert.fired");
    apis = [await startApp(env())];
    await waitFor(() => receiver.on("/down").length === 1, 30_000, "the webhook after the restart");
    expect(receiver.on("/down")[0]!.headers["webhook-id"]).toBe(id);
  }, 120_000);
});
