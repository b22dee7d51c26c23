import net from "node:net";
import {setTimeout as sleep} from "node:timers/promises";
import {inject} from "@tsed/common";
import mqtt, {type MqttClient} from "mqtt";
import {afterAll, afterEach, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {MqttReadingsIngest} from "../../src/modules/device-clients/mqtt-readings-ingest.js";
import {MAX_UNAUTHENTICATED_PACKET_BYTES, MqttServer} from "../../src/platform/mqtt/mqtt-server.js";
import {createDevice, provisionedBearer} from "../helpers/factories.js";
import {minute} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";

const CONNECT_TIMEOUT_MS = 1_000;
const MAX_CONNECTIONS = 6;
const MAX_UNAUTHENTICATED_PER_ADDRESS = 3;
const MAX_PAYLOAD_BYTES = 64 * 1024;
const DEVICE_PER_MINUTE = 10;

/** MQTT's remaining length: a variable byte integer, 7 bits a byte, low bits first. */
function remainingLength(value: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return Buffer.from(bytes);
}

/** Resolves true when the socket closes within `ms`, false when it is still open then. */
function closesWithin(socket: net.Socket | NodeJS.ReadWriteStream, ms: number): Promise<boolean> {
  if ((socket as net.Socket).destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * The bounds that hold before and around authentication (item "Bounded before authentication" of
 * docs/api.md's MQTT section): frame lengths read before aedes buffers a packet, the connect
 * timeout, MQTT_MAX_CONNECTIONS, unauthenticated connections per address; and the rate limit taken
 * before a payload is parsed. Raw TCP (node:net) for what no MQTT client would send.
 */
describe("MQTT limits", () => {
  let api: Api;
  let server: MqttServer;
  let port: number;
  let auth: Record<string, string>;
  const sockets: net.Socket[] = [];
  const clients: MqttClient[] = [];

  const raw = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
      socket.on("error", () => undefined);
      socket.once("error", reject);
      sockets.push(socket);
    });
  const deviceWithKey = async (serial: string) => {
    const deviceId = await createDevice(api, auth, serial);
    const res = await api.post(`/api/v1/devices/${deviceId}/keys`).set(auth);
    expect(res.status).toBe(201);
    return {deviceId, ...(res.body as {id: string; key: string})};
  };
  const connect = async (device: {id: string; key: string}) => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: device.id,
      password: device.key,
      reconnectPeriod: 0,
      connectTimeout: 3_000,
      protocolVersion: 4
    });
    clients.push(client);
    return client;
  };
  /** Writes `bytes` of filler with backpressure until written or the socket closes; resolves with what was written. */
  const pump = async (socket: net.Socket, bytes: number) => {
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let written = 0;
    while (written < bytes && !socket.destroyed) {
      written += chunk.length;
      if (!socket.write(chunk))
        await new Promise<void>((resolve) => {
          socket.once("drain", resolve);
          socket.once("close", resolve);
        });
    }
    return written;
  };

  beforeAll(async () => {
    api = await startTestServer({
      rateLimit: {devicePerMinute: DEVICE_PER_MINUTE, tenantPerMinute: 0, tenantReadsPerMinute: 0, tenantHeavyReads: 1_000},
      mqtt: {
        ...loadConfig().mqtt,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        maxConnections: MAX_CONNECTIONS,
        maxUnauthenticatedPerAddress: MAX_UNAUTHENTICATED_PER_ADDRESS,
        maxPayloadBytes: MAX_PAYLOAD_BYTES
      }
    });
    server = inject(MqttServer);
    port = await server.listen(inject(MqttReadingsIngest), {port: 0, host: "127.0.0.1"});
    const tenant = newTenant("mqlim");
    auth = await provisionedBearer(api, tenant);
  });
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    for (const client of clients.splice(0)) client.end(true);
    await until("every connection closed", async () => server.openConnections === 0, 5_000);
  });
  afterAll(async () => {
    await server?.drain(2_000);
    await stopTestServer();
  });

  it("closes a connection whose CONNECT announces 250 MiB at its fixed header, before taking the filler", async () => {
    const socket = await raw();
    const closed = closesWithin(socket, 2_000);
    socket.write(Buffer.concat([Buffer.from([0x10]), remainingLength(250 * 1024 * 1024)]));
    const written = await Promise.race([pump(socket, 96 * 1024 * 1024), sleep(2_500).then(() => Number.NaN)]);
    expect(await closed).toBe(true);
    // What the kernels' buffers took before the reset, not 96 MiB.
    expect(written).toBeLessThan(32 * 1024 * 1024);
  });

  it("before its CONNACK a connection may announce no more than a few kB", async () => {
    const socket = await raw();
    const closed = closesWithin(socket, 1_000);
    socket.write(Buffer.concat([Buffer.from([0x10]), remainingLength(MAX_UNAUTHENTICATED_PACKET_BYTES + 1)]));
    expect(await closed).toBe(true);
  });

  it("closes an authenticated connection whose PUBLISH announces more than BODY_LIMIT plus a topic; one just over BODY_LIMIT still gets its 413", async () => {
    const device = await deviceWithKey("LIM-PUB");
    const reports: {status: number}[] = [];
    const client = await connect(device);
    await client.subscribeAsync(`devices/${device.deviceId}/errors`, {qos: 1});
    client.on("message", (_topic, payload) => reports.push(JSON.parse(payload.toString()) as {status: number}));
    await client.publishAsync(`devices/${device.deviceId}/readings`, Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20), {qos: 1});
    await until("the 413 report", async () => reports.length === 1, 3_000);
    expect(reports[0]!.status).toBe(413);

    const closed = closesWithin(client.stream, 1_000);
    client.stream.write(Buffer.concat([Buffer.from([0x32]), remainingLength(MAX_PAYLOAD_BYTES + 2 + 65_535 + 2 + 1)]));
    expect(await closed).toBe(true);
  });

  it("closes a connection that sends no CONNECT within MQTT_CONNECT_TIMEOUT_MS", async () => {
    const socket = await raw();
    const opened = Date.now();
    expect(await closesWithin(socket, CONNECT_TIMEOUT_MS + 2_000)).toBe(true);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 100);
  });

  it("admits at most MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS connections of one address not yet past CONNACK; authenticated ones do not count", async () => {
    const device = await deviceWithKey("LIM-ADDR");
    const authenticated = [await connect(device), await connect(device)];
    const pending = await Promise.all(Array.from({length: MAX_UNAUTHENTICATED_PER_ADDRESS}, () => raw()));
    const extra = await raw();
    expect(await closesWithin(extra, 300)).toBe(true);
    for (const socket of pending) expect(socket.destroyed).toBe(false);
    for (const client of authenticated) expect(client.connected).toBe(true);

    for (const socket of pending) socket.destroy();
    await until("the unauthenticated connections gone", async () => server.openConnections === authenticated.length, 2_000);
    await connect(device);
  });

  it("holds at most MQTT_MAX_CONNECTIONS connections", async () => {
    const device = await deviceWithKey("LIM-MAX");
    const open: MqttClient[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) open.push(await connect(device));
    expect(await closesWithin(await raw(), 300)).toBe(true);
    open[0]!.end(true);
    await until("one connection gone", async () => server.openConnections === MAX_CONNECTIONS - 1, 2_000);
    await connect(device);
  });

  it("takes the rate-limit point before parsing: invalid payloads beyond the device's budget get 429, not 400", async () => {
    const device = await deviceWithKey("LIM-RATE");
    const client = await connect(device);
    await client.subscribeAsync(`devices/${device.deviceId}/errors`, {qos: 1});
    const statuses: number[] = [];
    client.on("message", (_topic, payload) => statuses.push((JSON.parse(payload.toString()) as {status: number}).status));
    const messages = 3 * DEVICE_PER_MINUTE;
    for (let i = 0; i < messages; i++) await client.publishAsync(`devices/${device.deviceId}/readings`, "not json", {qos: 1});
    await until("a report per message", async () => statuses.length === messages, 5_000);
    expect(statuses.filter((status) => status === 400)).toHaveLength(DEVICE_PER_MINUTE);
    expect(statuses.filter((status) => status === 429)).toHaveLength(messages - DEVICE_PER_MINUTE);
    // A valid reading is refused as well now: the budget is spent.
    await client.publishAsync(`devices/${device.deviceId}/readings`, JSON.stringify({temperatureCelsius: 20, recordedAt: minute(1)}), {
      qos: 1
    });
    await until("its report", async () => statuses.length === messages + 1, 3_000);
    expect(statuses.at(-1)).toBe(429);
  });
});
