import net from "node:net";
import {Queue} from "bullmq";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {newTenant} from "../helpers/tokens.js";
import {SseClient} from "../helpers/sse-client.js";
import {WebhookReceiver} from "../helpers/webhook-receiver.js";
import {call, tenantAuth} from "./helpers/load.js";
import {type AppProcess, startApp, startOwnRedis, waitFor} from "./helpers/processes.js";

interface Body {
  id: string;
  type: string;
  data: {alert: {id: string; version: number}};
}

/**
 * A live stream that reconnects as EventSource does: after its connection ends, again after
 * `retryMs` with the last id it saw as Last-Event-ID (a 503 while Redis is down just means trying
 * again). Collects every event it got, across connections.
 */
class ReconnectingStream {
  readonly events: {id?: string; event: string; data: string}[] = [];
  readonly statuses: number[] = [];
  private client: SseClient | undefined;
  private stopped = false;
  constructor(
    private readonly url: string,
    private readonly auth: string,
    private readonly retryMs = 500
  ) {}

  async run(): Promise<void> {
    while (!this.stopped) {
      const lastId = this.events.filter((e) => e.id).at(-1)?.id;
      try {
        this.client = await SseClient.open(this.url, {Authorization: this.auth, ...(lastId ? {"Last-Event-ID": lastId} : {})});
        this.statuses.push(this.client.status);
        const client = this.client;
        let taken = 0;
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            this.events.push(...client.events.slice(taken));
            taken = client.events.length;
            if (client.closed || this.stopped) {
              clearInterval(timer);
              resolve();
            }
          }, 50);
        });
      } catch {
        this.statuses.push(0);
      }
      await new Promise((resolve) => setTimeout(resolve, this.retryMs));
    }
  }

  stop(): void {
    this.stopped = true;
    this.client?.close();
  }
}

/**
 * Redis down for notifications (docs/api.md, "Notifications: events" and "Live stream"): writes
 * still commit (their events wait in the outbox), the events are delivered once Redis is back
 * (webhooks and stream), and streams reconnect. Redis comes back empty, as a restarted one
 * without persistence does: the relay must not depend on a job that lived in it.
 */
describe("fault: Redis down, notifications", () => {
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let app: AppProcess;
  let receiver: WebhookReceiver;
  const prefix = `faults-redis-notify-${process.pid}`;
  beforeAll(async () => {
    redis = await startOwnRedis();
    receiver = await new WebhookReceiver().start();
    app = await startApp({
      REDIS_URL: redis.url,
      QUEUE_PREFIX: prefix,
      WEBHOOK_ALLOW_PRIVATE: "true",
      WEBHOOK_RETRY_SCHEDULE: "0,1s,1s,1s,1s,1s,1s,1s"
    });
  });
  afterAll(async () => {
    await app?.stop("SIGKILL");
    await redis?.stop();
    await receiver?.stop();
  });

  it("commits writes while Redis is down, then delivers their events to webhooks and reconnected streams", async () => {
    const auth = await tenantAuth(newTenant("redisnotify"));
    const device = await call(app.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: "RN-1"});
    await call(app.baseUrl, auth, "POST", `/api/v1/devices/${device.id}/alert-rules`, {condition: "above", thresholdCelsius: 30});
    await call(app.baseUrl, auth, "POST", "/api/v1/admin/webhooks", {url: receiver.url("/hook")});
    let second = 0;
    const post = async (temperatureCelsius: number) => {
      const started = performance.now();
      const res = await fetch(`${app.baseUrl}/api/v1/devices/${device.id}/readings`, {
        method: "POST",
        headers: {Authorization: auth, "content-type": "application/json"},
        body: JSON.stringify({temperatureCelsius, recordedAt: new Date(Date.now() - 120_000 + ++second * 1000).toISOString()})
      });
      return {status: res.status, ms: performance.now() - started, body: (await res.json()) as {alerts: {id: string}[]}};
    };
    const hooks = () => receiver.on("/hook").map((r) => JSON.parse(r.body) as Body);
    const stream = new ReconnectingStream(`${app.baseUrl}/api/v1/stream?types=alert.*`, auth);
    const running = stream.run();
    try {
      await waitFor(() => stream.statuses.includes(200), 15_000, "the stream to open");
      const first = await post(35);
      expect(first.status).toBe(201);
      await waitFor(() => hooks().length === 1 && stream.events.length === 1, 15_000, "alert.fired on both channels");
      const upMs = [(await post(33)).ms, (await post(34)).ms];

      await redis.stop();
      const resolved = await post(20);
      const refired = await post(36);
      const downMs = [resolved.ms, refired.ms, (await post(37)).ms];
      console.log(JSON.stringify({fault: "redis-down-notifications", upMs, downMs}));
      expect([resolved.status, refired.status]).toEqual([201, 201]);
      expect(refired.body.alerts).toHaveLength(1);
      // Committed: the API reads them back from Postgres meanwhile.
      const alerts = (await call(app.baseUrl, auth, "GET", `/api/v1/devices/${device.id}/alerts`)) as {
        id: string;
        resolvedAt: string | null;
      }[];
      expect(alerts.map((a) => [a.id, a.resolvedAt === null])).toEqual([
        [refired.body.alerts[0]!.id, true],
        [first.body.alerts[0]!.id, false]
      ]);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(hooks()).toHaveLength(1);

      await redis.start();
      await waitFor(() => hooks().length === 3, 60_000, "the events written while Redis was down to reach the webhook");
      const written = [
        ["alert.fired", first.body.alerts[0]!.id],
        ["alert.resolved", first.body.alerts[0]!.id],
        ["alert.fired", refired.body.alerts[0]!.id]
      ];
      // Webhooks are sent WEBHOOK_CONCURRENCY at a time, so they may arrive in any order (docs/api.md:
      // compare data.alert.version); each once, and the resolution a later version of its alert.
      const byAlert = (bodies: Body[], type: string, alertId: string) =>
        bodies.find((h) => h.type === type && h.data.alert.id === alertId)!;
      expect(
        hooks()
          .map((h) => [h.type, h.data.alert.id])
          .sort()
      ).toEqual([...written].sort());
      expect(byAlert(hooks(), "alert.resolved", first.body.alerts[0]!.id).data.alert.version).toBeGreaterThan(
        byAlert(hooks(), "alert.fired", first.body.alerts[0]!.id).data.alert.version
      );
      await waitFor(
        () => stream.events.filter((e) => e.event !== "reset").length === 3,
        60_000,
        "the events written while Redis was down to reach the stream"
      );
      // The stream hands them on in the order they were written, with the webhooks' event ids.
      const streamed = stream.events.filter((e) => e.event !== "reset").map((e) => JSON.parse(e.data) as Body);
      expect(streamed.map((e) => [e.type, e.data.alert.id])).toEqual(written);
      expect(streamed.map((e) => e.id).sort()).toEqual(
        hooks()
          .map((h) => h.id)
          .sort()
      );

      // The schedules (outbox sweep, silences and reminders) are back in the emptied Redis.
      const queue = new Queue("notifications", {connection: {host: "127.0.0.1", port: redis.port}, prefix});
      try {
        await waitFor(
          async () => (await queue.getJobSchedulers()).length >= 3,
          15_000,
          "the notifications' job schedulers to be registered again"
        );
        expect((await queue.getJobSchedulers()).map((s) => s.key).sort()).toEqual(["notifications-scan", "outbox-purge", "outbox-sweep"]);
      } finally {
        await queue.close();
      }

      // New streams are served again.
      const fresh = await SseClient.open(`${app.baseUrl}/api/v1/stream`, {Authorization: auth});
      expect(fresh.status).toBe(200);
      fresh.close();
    } finally {
      stream.stop();
      await running;
    }
  });
});

/** A TCP proxy in front of Redis that holds every answer for `delayMs` (a slow Redis, or a slow network to it). */
async function slowProxy(target: number) {
  const state = {delayMs: 0};
  const server = net.createServer((socket) => {
    const upstream = net.connect(target, "127.0.0.1");
    socket.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      const delay = state.delayMs;
      if (delay) setTimeout(() => socket.writable && socket.write(chunk), delay);
      else socket.write(chunk);
    });
    const close = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on("error", close);
    upstream.on("error", close);
    socket.on("close", close);
    upstream.on("close", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    state,
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    stop: () => {
      server.close();
    }
  };
}

/**
 * `reading.created` goes to Redis after the commit, never awaited (LiveReadings): it must not add
 * to a write's time when Redis is slow. Rate limits are off here (they ask Redis on every request,
 * by design).
 */
describe("fault: Redis slow, ingest", () => {
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let proxy: Awaited<ReturnType<typeof slowProxy>>;
  let app: AppProcess;
  beforeAll(async () => {
    redis = await startOwnRedis();
    proxy = await slowProxy(redis.port);
    app = await startApp({
      REDIS_URL: proxy.url,
      QUEUE_PREFIX: `faults-redis-slow-${process.pid}`,
      RATE_LIMIT_DEVICE_PER_MINUTE: "0",
      RATE_LIMIT_TENANT_PER_MINUTE: "0",
      RATE_LIMIT_TENANT_READS_PER_MINUTE: "0"
    });
  });
  afterAll(async () => {
    await app?.stop("SIGKILL");
    proxy?.stop();
    await redis?.stop();
  });

  it("does not wait for the stream's XADD with every Redis answer 800 ms late, and the stream gets the readings", async () => {
    const auth = await tenantAuth(newTenant("redisslow"));
    const device = await call(app.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: "RS-1"});
    const stream = await SseClient.open(`${app.baseUrl}/api/v1/stream?types=reading.created`, {Authorization: auth});
    expect(stream.status).toBe(200);
    let second = 0;
    const post = async () => {
      const started = performance.now();
      const res = await fetch(`${app.baseUrl}/api/v1/devices/${device.id}/readings`, {
        method: "POST",
        headers: {Authorization: auth, "content-type": "application/json"},
        body: JSON.stringify({temperatureCelsius: 21, recordedAt: new Date(Date.now() - 120_000 + ++second * 100).toISOString()})
      });
      expect(res.status).toBe(201);
      await res.arrayBuffer();
      return performance.now() - started;
    };
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    for (let i = 0; i < 5; i++) await post();
    const fast: number[] = [];
    for (let i = 0; i < 10; i++) fast.push(await post());
    await waitFor(() => stream.events.length === 15, 15_000, "the fast readings on the stream");

    proxy.state.delayMs = 800;
    const slow: number[] = [];
    for (let i = 0; i < 10; i++) slow.push(await post());
    console.log(JSON.stringify({fault: "redis-slow", medianMsFast: median(fast), medianMsSlow: median(slow), slowMs: slow}));
    // The write does wait for Redis once today: the DailyStats refresh after the commit
    // invalidates the weekly cache there (the stats feature's hand-off) before the answer. The
    // stream's XADD must not add a second wait (which measured 1,610 ms): well below two Redis delays.
    expect(median(slow)).toBeLessThan(1_300);
    await waitFor(() => stream.events.length === 25, 30_000, "the readings written while Redis was slow on the stream");
    stream.close();
  });
});
