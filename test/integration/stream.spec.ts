import Http from "node:http";
import type {AddressInfo} from "node:net";
import {inject, PlatformTest} from "@tsed/common";
import fc from "fast-check";
import {Redis} from "ioredis";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {EventStreamLog} from "../../src/modules/notifications/event-stream-log.js";
import {LIVE_READINGS_PER_WRITE} from "../../src/modules/notifications/live-readings.js";
import {RELAY_INTERVAL_MS} from "../../src/modules/notifications/outbox-relay.service.js";
import {StreamHub} from "../../src/modules/notifications/stream-hub.service.js";
import {outboxRelayEvents} from "../../src/platform/observability/metrics.js";
import {appendEvent, type EventBody} from "../../src/platform/outbox/outbox.js";
import {TenantContext} from "../../src/platform/tenancy/tenant-context.js";
import {runAsTenant} from "../../src/platform/tenancy/tenant-scope.js";
import {createDevice, provisionedBearer} from "../helpers/factories.js";
import {SseClient} from "../helpers/sse-client.js";
import {useOwnDatabases} from "../helpers/own-databases.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";

const DEVICE_A = "0b7e7a43-3c47-4b8e-9b1b-55d2b6f0a1c4";
const DEVICE_B = "1c8f8b54-4d58-4c9f-8c2c-66e3c7f1b2d5";

/** The live stream (docs/api.md, "Live stream"), on a listening server, with events appended through the outbox as the alert code will. */
describe("live stream", () => {
  let restoreEnv: (() => void) | undefined;
  let api: Api;
  let server: Http.Server;
  let base: string;
  let redis: Redis;
  const MAX = 3;
  const PING_MS = 300;

  const append = (tenant: string, type: string, data: object = {}) =>
    runAsTenant(tenant, () => inject(TenantContext).em.transactional((em) => appendEvent(em, {type, data})));
  const open = (query: string, headers: Record<string, string>, options?: {paused?: boolean}) =>
    SseClient.open(`${base}/api/v1/stream${query}`, headers, options);
  const received = (client: SseClient, n: number) =>
    until(`${n} events on the stream`, async () => client.events.length >= n && client.events);

  beforeAll(async () => {
    // Databases of its own: the outbox relay of every server with workers claims the events of
    // every tenant it can see, and another spec's server (another queue prefix) would take ours.
    restoreEnv = await useOwnDatabases("stream");
    api = await startTestServer({
      runWorkers: true,
      queuePrefix: `${loadConfig().queuePrefix}:stream`,
      stream: {maxPerTenant: MAX, pingMs: PING_MS},
      corsOrigins: ["https://app.example.com"]
    });
    server = Http.createServer(PlatformTest.callback());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    redis = new Redis(loadConfig().redisUrl);
  });
  afterAll(async () => {
    redis?.disconnect();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await stopTestServer();
    restoreEnv?.();
  });

  it("streams the tenant's events with increasing ids, retry first; nothing of other tenants; 401 without a token", async () => {
    const tenant = newTenant("sse");
    const auth = await provisionedBearer(api, tenant);
    expect((await open("", {})).status).toBe(401);
    const client = await open("", auth);
    expect(client.status).toBe(200);
    expect(client.response!.headers["content-type"]).toMatch(/^text\/event-stream/);
    await until("the retry line", async () => client.retry === 5000);
    await until("the stream to be attached", async () => inject(StreamHub).count(tenant) === 1);

    const other = newTenant("sse_other");
    await api
      .get("/api/v1/me")
      .set(await bearer(other))
      .expect(200);
    await append(other, "alert.fired");
    const first = await append(tenant, "alert.fired", {alert: {id: "x", deviceId: DEVICE_A, version: 1}});
    const second = await append(tenant, "alert.resolved", {alert: {id: "x", deviceId: DEVICE_A, version: 2}});
    const events = await received(client, 2);
    expect(events.map((e) => e.event)).toEqual(["alert.fired", "alert.resolved"]);
    expect(events.map((e) => (JSON.parse(e.data) as EventBody).id)).toEqual([first.id, second.id]);
    expect(JSON.parse(events[0]!.data)).toEqual(first);
    const [a, b] = events.map((e) => e.id!.split("-").map(Number)) as [number[], number[]];
    expect(a[0]! < b[0]! || (a[0] === b[0] && a[1]! < b[1]!)).toBe(true);
    client.close();
  });

  it("puts reading.created on the stream after the commit of a reading, on the group-commit and the alert (transactional) paths", async () => {
    const tenant = newTenant("ssereadings");
    const admin = await bearer(tenant, {roles: ["admin"]});
    const quiet = await createDevice(api, admin, "SSE-R-1");
    const ruled = await createDevice(api, admin, "SSE-R-2");
    await api.post(`/api/v1/devices/${ruled}/alert-rules`).set(admin).send({condition: "above", thresholdCelsius: 30}).expect(201);
    const client = await open("?types=reading.created", admin);
    await until("the stream to be attached", async () => inject(StreamHub).count(tenant) === 1);
    const base = Date.now() - 60_000;
    const at = (s: number) => new Date(base + s * 1000).toISOString();

    const single = await api
      .post(`/api/v1/devices/${quiet}/readings`)
      .set(admin)
      .send({recordedAt: at(1), temperatureCelsius: 20})
      .expect(201);
    const batch = await api
      .post(`/api/v1/devices/${quiet}/readings/batch`)
      .set(admin)
      .send({
        readings: [
          {recordedAt: at(2), temperatureCelsius: 21},
          {recordedAt: at(1), temperatureCelsius: 20},
          {recordedAt: at(3), temperatureCelsius: 22}
        ]
      })
      .expect(200);
    expect(batch.body).toMatchObject({inserted: 2, duplicates: 1});
    // Fires an alert: the transactional path.
    const firing = await api
      .post(`/api/v1/devices/${ruled}/readings`)
      .set(admin)
      .send({recordedAt: at(4), temperatureCelsius: 35})
      .expect(201);
    expect(firing.body.alerts).toHaveLength(1);

    const events = await received(client, 4);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(client.events).toHaveLength(4); // the duplicate is not announced
    const bodies = events.map(
      (e) => JSON.parse(e.data) as EventBody<{deviceId: string; reading: {id: string; temperatureCelsius: number}}>
    );
    expect(bodies.map((b) => [b.type, b.data.deviceId, b.data.reading.temperatureCelsius])).toEqual([
      ["reading.created", quiet, 20],
      ["reading.created", quiet, 21],
      ["reading.created", quiet, 22],
      ["reading.created", ruled, 35]
    ]);
    expect(bodies[0]!.data.reading).toMatchObject({id: single.body.reading.id, deviceId: quiet, recordedAt: at(1)});
    expect(bodies[3]!.data.reading.id).toBe(firing.body.reading.id);
    expect(bodies.every((b) => b.tenantId === tenant)).toBe(true);
    client.close();
  });

  it(`announces a write's newest ${LIVE_READINGS_PER_WRITE} readings of a device, each saying how many the write stored`, async () => {
    const tenant = newTenant("ssebulk");
    const admin = await bearer(tenant, {roles: ["admin"]});
    const deviceId = await createDevice(api, admin, "SSE-BULK");
    const client = await open("?types=reading.created", admin);
    await until("the stream to be attached", async () => inject(StreamHub).count(tenant) === 1);
    const base = Date.now() - 3_600_000;
    // 25 readings sent newest first: the newest 10 are announced, oldest of them first.
    const readings = Array.from({length: 25}, (_, i) => ({
      recordedAt: new Date(base + (24 - i) * 60_000).toISOString(),
      temperatureCelsius: 24 - i
    }));
    await api.post(`/api/v1/devices/${deviceId}/readings/batch`).set(admin).send({readings}).expect(200);
    const events = await received(client, LIVE_READINGS_PER_WRITE);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(client.events).toHaveLength(LIVE_READINGS_PER_WRITE);
    const bodies = events.map((e) => JSON.parse(e.data) as EventBody<{reading: {temperatureCelsius: number}; readingsInWrite: number}>);
    expect(bodies.map((b) => b.data.reading.temperatureCelsius)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    expect(new Set(bodies.map((b) => b.data.readingsInWrite))).toEqual(new Set([25]));
  });

  it("sends a comment line every STREAM_PING_S, and renews the client's slot with it", async () => {
    const tenant = newTenant("sseping");
    const auth = await bearer(tenant);
    const client = await open("", auth);
    await until("the stream to be attached", async () => inject(StreamHub).count(tenant) === 1);
    const slots = `${loadConfig().queuePrefix}:stream:stream-slots:${tenant}`;
    const [, leaseBefore] = await redis.zrange(slots, 0, -1, "WITHSCORES");
    const started = Date.now();
    await until("five pings", async () => client.comments.filter((c) => c === "ping").length >= 5);
    const elapsed = Date.now() - started;
    // Five pings take about five periods: not one ping per event, not the 15 s default; and longer
    // than a slot's lease (three periods), which the pings must have renewed, key and all.
    expect(elapsed).toBeGreaterThan(3 * PING_MS);
    expect(client.events).toEqual([]);
    const [, leaseAfter] = await redis.zrange(slots, 0, -1, "WITHSCORES");
    expect(Number(leaseAfter)).toBeGreaterThan(Number(leaseBefore));
    // The key still expires (slots of an instance that dies must go), renewed with its slots.
    expect(await redis.pttl(slots)).toBeGreaterThan(0);
    client.close();
  });

  it("filters by deviceId and types", async () => {
    const tenant = newTenant("ssefilter");
    const auth = await provisionedBearer(api, tenant);
    const client = await open(`?deviceId=${DEVICE_B}&types=alert.resolved,reading.*`, auth);
    await until("the stream to be attached", async () => inject(StreamHub).count(tenant) === 1);
    await append(tenant, "alert.fired", {device: {id: DEVICE_B}});
    await append(tenant, "alert.resolved", {device: {id: DEVICE_A}});
    const wanted = await append(tenant, "alert.resolved", {device: {id: DEVICE_B}});
    const reading = await append(tenant, "reading.created", {deviceId: DEVICE_B});
    const events = await received(client, 2);
    expect(events.map((e) => (JSON.parse(e.data) as EventBody).id)).toEqual([wanted.id, reading.id]);
    expect((await open("?types=alert", auth)).status).toBe(400);
    expect((await open("?deviceId=nope", auth)).status).toBe(400);
    client.close();
  });

  it("replays what a client missed after Last-Event-ID, then goes on live; a lost position gets event: reset", async () => {
    const tenant = newTenant("ssereplay");
    const auth = await provisionedBearer(api, tenant);
    const first = await open("", auth);
    await until("the stream to be attached", async () => inject(StreamHub).count(tenant) === 1);
    const e1 = await append(tenant, "alert.fired");
    const [seen] = await received(first, 1);
    first.close();
    await until("the stream to be detached", async () => inject(StreamHub).count(tenant) === 0);
    const e2 = await append(tenant, "alert.acknowledged");
    const e3 = await append(tenant, "alert.resolved");
    const log = inject(EventStreamLog);
    await until("both events in the log", async () => (await log.readAfter(tenant, seen!.id!)).length === 2);

    const resumed = await open("", {...auth, "Last-Event-ID": seen!.id!});
    const e4 = await append(tenant, "alert.fired");
    const events = await received(resumed, 3);
    expect(events.map((e) => (JSON.parse(e.data) as EventBody).id)).toEqual([e2.id, e3.id, e4.id]);
    expect(events.map((e) => (JSON.parse(e.data) as EventBody).id)).not.toContain(e1.id);
    resumed.close();
    // The same from the query (a new EventSource cannot set the header).
    const fromQuery = await open(`?lastEventId=${seen!.id!}`, auth);
    expect((await received(fromQuery, 3)).map((e) => (JSON.parse(e.data) as EventBody).id)).toEqual([e2.id, e3.id, e4.id]);
    fromQuery.close();

    // A position older than the replay window (15 min): reset, then live. So is one this stream never gave.
    const lost = await open("", {...auth, "Last-Event-ID": `${Date.now() - 16 * 60_000}-0`});
    await until("the reset", async () => lost.events.some((e) => e.event === "reset"));
    const garbage = await open("", {...auth, "Last-Event-ID": "not-an-id"});
    await until("the reset", async () => garbage.events.some((e) => e.event === "reset"));
    const ahead = await open("", {...auth, "Last-Event-ID": `${Date.now() + 60_000}-0`});
    await until("the reset", async () => ahead.events.some((e) => e.event === "reset"));
    ahead.close();
    const e5 = await append(tenant, "alert.fired");
    const [, live] = await received(lost, 2);
    expect(JSON.parse(live!.data).id).toBe(e5.id);
    lost.close();
    garbage.close();
  });

  it("takes a single-use stream token instead of the Authorization header", async () => {
    const tenant = newTenant("ssetoken");
    const auth = await bearer(tenant);
    const issued = await api.post("/api/v1/stream/tokens").set(auth).expect(201);
    expect(issued.body).toEqual({streamToken: expect.stringMatching(/^stk_[A-Za-z0-9_-]{43}$/), expiresAt: expect.any(String)});
    const client = await open(`?streamToken=${issued.body.streamToken}`, {});
    expect(client.status).toBe(200);
    await until("the stream to be attached", async () => inject(StreamHub).count(tenant) === 1);
    const again = await open(`?streamToken=${issued.body.streamToken}`, {});
    expect(again.status).toBe(401);
    expect((await open(`?streamToken=stk_${"A".repeat(43)}`, {})).status).toBe(401);
    expect((await api.post("/api/v1/stream/tokens")).status).toBe(401);
    client.close();
  });

  it(`refuses a stream beyond STREAM_MAX_PER_TENANT (${MAX}) with 429, and takes one again once a stream closed`, async () => {
    const tenant = newTenant("ssecap");
    const auth = await provisionedBearer(api, tenant);
    const clients = await Promise.all(Array.from({length: MAX}, () => open("", auth)));
    expect(clients.map((c) => c.status)).toEqual(Array(MAX).fill(200));
    await until("the streams to be attached", async () => inject(StreamHub).count(tenant) === MAX);
    const refused = await open("", auth);
    expect(refused.status).toBe(429);
    clients[0]!.close();
    await until("the stream to be detached", async () => inject(StreamHub).count(tenant) === MAX - 1);
    await until(
      "a slot to be free",
      async () => (await redis.zcard(`${loadConfig().queuePrefix}:stream:stream-slots:${tenant}`)) === MAX - 1
    );
    const next = await open("", auth);
    expect(next.status).toBe(200);
    for (const c of [...clients, next]) c.close();
  });

  it("disconnects a client that stops reading", async () => {
    const tenant = newTenant("sseslow");
    const auth = await provisionedBearer(api, tenant);
    const slow = await open("", auth, {paused: true});
    await until("the stream to be attached", async () => inject(StreamHub).count(tenant) === 1);
    const padding = "x".repeat(64 * 1024);
    for (let i = 0; i < 200 && inject(StreamHub).count(tenant) > 0; i++) await append(tenant, "reading.created", {padding});
    await until("the slow client to be dropped", async () => inject(StreamHub).count(tenant) === 0, 30_000);
    slow.close();
  }, 60_000);

  it("lets the CORS_ORIGINS web origins call the API from a browser, and no other", async () => {
    const preflight = await api.options("/api/v1/stream").set({
      Origin: "https://app.example.com",
      "Access-Control-Request-Method": "GET",
      "Access-Control-Request-Headers": "authorization,last-event-id"
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe("https://app.example.com");
    expect(preflight.headers["access-control-allow-headers"]).toMatch(/Authorization.*Last-Event-ID/);
    const read = await api.get("/health/live").set({Origin: "https://app.example.com"}).expect(200);
    expect(read.headers["access-control-allow-origin"]).toBe("https://app.example.com");
    const stranger = await api.get("/health/live").set({Origin: "https://evil.example.net"}).expect(200);
    expect(stranger.headers["access-control-allow-origin"]).toBeUndefined();
    const strangerPreflight = await api
      .options("/api/v1/stream")
      .set({Origin: "https://evil.example.net", "Access-Control-Request-Method": "GET"});
    expect(strangerPreflight.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it(`relays a burst of events in a few transactions, not one each (a tenant's drains begin at most every ${RELAY_INTERVAL_MS} ms): each once, in order`, async () => {
    const tenant = newTenant("sseburst");
    const auth = await provisionedBearer(api, tenant);
    const client = await open("", auth);
    await until("the stream to be attached", async () => inject(StreamHub).count(tenant) === 1);
    const before = await relayTransactions();
    // One after the other, each in a transaction of its own, each committed with its NOTIFY.
    const appended: EventBody[] = [];
    for (let i = 0; i < 30; i++)
      appended.push(await append(tenant, "alert.fired", {alert: {id: `burst-${i}`, deviceId: DEVICE_A, version: 1}}));
    const events = await received(client, appended.length);
    expect(events.map((e) => (JSON.parse(e.data) as EventBody).id)).toEqual(appended.map((body) => body.id));
    expect((await relayTransactions()) - before).toBeLessThan(10);
    client.close();
  });

  it("gives stream ids that increase per tenant, each event once, whatever the concurrency of appends", async () => {
    const seed = Date.now();
    console.log(JSON.stringify({streamIdsProperty: {seed}}));
    const log = inject(EventStreamLog);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({min: 1, max: 8}), {minLength: 1, maxLength: 6}), async (waves) => {
        const tenant = newTenant("sseorder");
        await api
          .get("/api/v1/me")
          .set(await bearer(tenant))
          .expect(200);
        const appended: string[] = [];
        for (const size of waves) {
          const bodies = await Promise.all(Array.from({length: size}, () => append(tenant, "alert.fired")));
          appended.push(...bodies.map((b) => b.id));
        }
        const entries = await until("every event in the log", async () => {
          const all = await log.readAfter(tenant, "0-0");
          return all.length >= appended.length && all;
        });
        const ids = entries.map((e) => e.id);
        for (let i = 1; i < ids.length; i++) expect(compare(ids[i - 1]!, ids[i]!)).toBe(-1);
        expect(entries.map((e) => JSON.parse(e.body).id).sort()).toEqual([...appended].sort());
      }),
      {seed, numRuns: 8, interruptAfterTimeLimit: 60_000, endOnFailure: true}
    );
  }, 120_000);
});

/** Relay transactions run by this process so far (outbox_relay_events' count). */
async function relayTransactions(): Promise<number> {
  const {values} = await outboxRelayEvents.get();
  return values.find((value) => value.metricName === "outbox_relay_events_count")?.value ?? 0;
}

function compare(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint];
  return am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
}
