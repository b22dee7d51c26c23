import http from "node:http";
import net from "node:net";
import {setTimeout as sleep} from "node:timers/promises";
import {PlatformTest} from "@tsed/common";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {COPY_OUT_APPLICATION_NAME} from "../../src/platform/db/copy-out.js";
import {closeDbs, createDevice, tenantDb} from "../helpers/stats-fixtures.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";

const RANGE = "from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&format=csv";
/** 300,000 readings: ~27 MB of CSV, far more than the loopback socket buffers take without the reader. */
const ROWS = 300_000;
const MIN_BYTES_PER_S = 64 * 1024;
const RATE_WINDOW_MS = 2_000;

/**
 * A client that reads a few bytes at a time, as an attacker holding a download open would: it
 * never lets the socket idle (no stall timeout fires), it just takes ~640 bytes a second.
 */
function tricklingGet(port: number, path: string, headers: Record<string, string>) {
  const socket = net.connect({port, host: "127.0.0.1"});
  let head = "";
  let received = 0;
  const ticker = setInterval(() => {
    const available = socket.readableLength;
    if (available === 0) return;
    const chunk = socket.read(Math.min(64, available)) as Buffer | null;
    if (!chunk) return;
    received += chunk.length;
    if (!head.includes("\r\n\r\n")) head += chunk.toString("latin1");
  }, 100);
  socket.once("close", () => clearInterval(ticker));
  socket.on("error", () => undefined);
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("")}\r\n`
  );
  return {
    /** The status line and headers, once they have arrived. */
    head: () => (head.includes("\r\n\r\n") ? head.slice(0, head.indexOf("\r\n\r\n")) : undefined),
    received: () => received,
    close: () => {
      clearInterval(ticker);
      socket.destroy();
    }
  };
}

/** Export queries of this tenant running now. */
async function exportBackends(tenant: string): Promise<number> {
  const {rows} = await tenantDb().query<{n: number}>(
    `select count(*)::int as n from pg_stat_activity
      where application_name = $1 and state <> 'idle' and datname = current_database() and query like $2`,
    [COPY_OUT_APPLICATION_NAME, `%"${tenant}"%`]
  );
  return rows[0]!.n;
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function insertReadings(tenant: string, auth: Record<string, string>, devices: number, rows: number): Promise<void> {
  await createDevice(api(), auth, `${tenant}-0`);
  await tenantDb().query(
    `insert into "${tenant}".devices (id, created_at, updated_at, serial_number, name, owner_id)
     select gen_random_uuid(), now(), now(), 'S-' || g, 'Sensor ' || g, (select owner_id from "${tenant}".devices limit 1) from generate_series(1, $1::int - 1) g`,
    [devices]
  );
  await tenantDb().query(
    `insert into "${tenant}".temperature_readings (device_id, temperature_celsius, humidity, battery_level, recorded_at)
     select d.id, 20 + (g % 100) * 0.01, 45.5, 0.87, timestamptz '2026-01-01T00:00:00Z' + g * interval '30 seconds'
       from generate_series(0, $1::int / $2::int - 1) g cross join "${tenant}".devices d`,
    [rows, devices]
  );
}

let currentApi: Api;
const api = () => currentApi;

describe("exports cannot be starved across tenants (pool of 4, at most 2 per tenant, a minimum rate)", () => {
  let server: http.Server;
  let port: number;
  const slowTenant = newTenant("expslow");
  const otherTenant = newTenant("expother");
  let slowAuth: Record<string, string>;
  let otherAuth: Record<string, string>;

  beforeAll(async () => {
    currentApi = await startTestServer({
      export: {
        ...loadConfig().export,
        poolMax: 4,
        maxPerTenant: 2,
        minBytesPerSecond: MIN_BYTES_PER_S,
        rateWindowMs: RATE_WINDOW_MS,
        stallTimeoutMs: 60_000
      }
    });
    server = http.createServer(PlatformTest.callback());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
    slowAuth = await bearer(slowTenant, {roles: ["viewer"]});
    otherAuth = await bearer(otherTenant, {roles: ["viewer"]});
    await insertReadings(slowTenant, await bearer(slowTenant), 100, ROWS);
    await insertReadings(otherTenant, await bearer(otherTenant), 10, 20_000);
  }, 180_000);
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await stopTestServer();
    await closeDbs();
  });

  it(
    "gives four slow readers of one tenant two exports and two 429s, serves another tenant meanwhile, and cuts the slow ones",
    {timeout: 120_000},
    async () => {
      const started = Date.now();
      const slow = [
        tricklingGet(port, `/api/v1/readings/export?${RANGE}`, slowAuth),
        tricklingGet(port, `/api/v1/readings/export?${RANGE}`, slowAuth)
      ];
      await until("both slow exports to start", () => slow.every((client) => client.head()?.startsWith("HTTP/1.1 200")));
      const firstByteAt = Date.now();
      expect(await exportBackends(slowTenant)).toBe(2);

      // The third and fourth of the tenant: refused at once, in the error shape, with Retry-After.
      for (let i = 0; i < 2; i++) {
        const refused = await api().get(`/api/v1/readings/export?${RANGE}`).set(slowAuth);
        expect(refused.status).toBe(429);
        expect(refused.body).toMatchObject({status: 429, name: "TOO_MANY_REQUESTS", message: expect.stringMatching(/exports/)});
        expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
        expect(refused.headers["cache-control"]).toBe("no-store");
      }

      // Another tenant's export finds a connection while the slow ones still hold theirs.
      const otherStarted = Date.now();
      const other = await api().get(`/api/v1/readings/export?${RANGE}`).set(otherAuth);
      const otherMs = Date.now() - otherStarted;
      expect(other.status).toBe(200);
      expect(other.text.split("\n")).toHaveLength(1 + 20_000 + 1);
      expect(await exportBackends(slowTenant)).toBe(2);

      // The slow readers are cut once a window passes below the minimum rate, and their queries stop.
      await until("the slow exports' queries to stop", async () => (await exportBackends(slowTenant)) === 0, 30_000);
      const cutAfterMs = Date.now() - firstByteAt;
      const receivedBySlow = slow.map((client) => client.received());
      slow.forEach((client) => client.close());
      console.log(
        `RESULT export-fairness slow_readers=4 admitted=2 refused_429=2 other_tenant_export_ms=${otherMs} slow_cut_after_ms=${cutAfterMs} ` +
          `min_rate_bytes_per_s=${MIN_BYTES_PER_S} window_ms=${RATE_WINDOW_MS} slow_client_bytes=${receivedBySlow.join("/")} total_ms=${Date.now() - started}`
      );
      expect(cutAfterMs).toBeLessThan(4 * RATE_WINDOW_MS + 5_000);

      // Their slots are free again: the tenant exports as usual.
      const again = await api().get(`/api/v1/readings/export?from=2026-01-01T00:00:00Z&to=2026-01-01T00:10:00Z`).set(slowAuth);
      expect(again.status).toBe(200);
      expect(again.text.split("\n")).toHaveLength(1 + 100 * 20 + 1);
    }
  );

  it("does not cut a reader that keeps up, however long its file", {timeout: 60_000}, async () => {
    const res = await api().get(`/api/v1/readings/export?${RANGE}`).set(slowAuth);
    expect(res.status).toBe(200);
    expect(res.text.split("\n")).toHaveLength(1 + ROWS + 1);
  });
});

describe("the export route takes a heavy-read slot", () => {
  const tenant = newTenant("expheavy");
  let auth: Record<string, string>;
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    currentApi = await startTestServer({
      rateLimit: {devicePerMinute: 0, tenantPerMinute: 0, tenantReadsPerMinute: 0, tenantHeavyReads: 1},
      export: {...loadConfig().export, poolMax: 4, maxPerTenant: 3, minBytesPerSecond: 0}
    });
    server = http.createServer(PlatformTest.callback());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
    auth = await bearer(tenant);
    await insertReadings(tenant, auth, 20, 100_000);
  }, 120_000);
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await stopTestServer();
    await closeDbs();
  });

  it("refuses a history read of the tenant (429) while its export runs, and serves it after", {timeout: 60_000}, async () => {
    const slow = tricklingGet(port, `/api/v1/readings/export?${RANGE}`, auth);
    await until("the export to start", () => slow.head()?.startsWith("HTTP/1.1 200"));
    const {body: devices} = await api().get("/api/v1/devices?pageSize=1").set(auth);
    const history = () => api().get(`/api/v1/devices/${devices.items[0].id}/readings?limit=5`).set(auth);
    const refused = await history();
    expect(refused.status).toBe(429);
    expect(refused.body.message).toMatch(/heavy reads/);
    slow.close();
    await until("the export to end", async () => (await exportBackends(tenant)) === 0);
    expect((await until("a free heavy-read slot", async () => (await history()).status === 200 || undefined)) as boolean).toBe(true);
  });
});
