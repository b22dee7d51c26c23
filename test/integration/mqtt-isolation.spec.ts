import {setTimeout as sleep} from "node:timers/promises";
import {inject} from "@tsed/common";
import type {Aedes, AedesPublishPacket, Client} from "aedes";
import mqtt, {type MqttClient} from "mqtt";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {MqttReadingsIngest} from "../../src/modules/device-clients/mqtt-readings-ingest.js";
import {MqttServer} from "../../src/platform/mqtt/mqtt-server.js";
import {createDevice} from "../helpers/factories.js";
import {minute, TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";

/**
 * Devices cannot hear each other over MQTT (docs/aedes-persistent-subscribe.md): a device receives
 * its own errors topic and nothing else, in a live session or after reconnecting to a persistent
 * one; wills are dropped at CONNECT.
 */
describe("MQTT isolation between devices and tenants", () => {
  let api: Api;
  let server: MqttServer;
  let port: number;
  const clients: MqttClient[] = [];

  const deviceWithKey = async (tenant: string, serial: string) => {
    const auth = await bearer(tenant);
    await api.get("/api/v1/me").set(auth);
    const deviceId = await createDevice(api, auth, serial);
    const res = await api.post(`/api/v1/devices/${deviceId}/keys`).set(auth);
    expect(res.status).toBe(201);
    return {deviceId, ...(res.body as {id: string; key: string})};
  };
  const connect = async (device: {id: string; key: string}, options: mqtt.IClientOptions = {}) => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: device.id,
      password: device.key,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      protocolVersion: 4,
      ...options
    });
    clients.push(client);
    return client;
  };
  const broker = () => (server as unknown as {broker: Aedes & {clients: Record<string, Client>}}).broker;
  const reading = (t: number, at: string) => JSON.stringify({temperatureCelsius: t, recordedAt: at});

  beforeAll(async () => {
    api = await startTestServer();
    server = inject(MqttServer);
    port = await server.listen(inject(MqttReadingsIngest), {port: 0, host: "127.0.0.1"});
  });
  afterAll(async () => {
    for (const client of clients) client.end(true);
    await server?.drain(2_000);
    await stopTestServer();
  });

  it("a persistent session that asked for '#' beside its own errors topic receives nothing of another tenant's device after reconnecting", async () => {
    const a = await deviceWithKey(newTenant("mqiso_a"), "ISO-A");
    const tenantB = newTenant("mqiso_b");
    const b = await deviceWithKey(tenantB, "ISO-B");
    const session = {clean: false, clientId: "iso-a-session"};

    // One SUBSCRIBE holding the device's own errors topic and '#': the SUBACK refuses '#'.
    const first = await connect(a, session);
    const suback = new Promise<number[]>((resolve) =>
      first.on("packetreceive", (packet) => packet.cmd === "suback" && resolve(packet.granted as number[]))
    );
    first.subscribe({[`devices/${a.deviceId}/errors`]: {qos: 1}, "#": {qos: 1}}, () => undefined);
    const granted = await suback;
    expect(granted).toEqual([1, 128]);
    await first.endAsync();

    // While A is away, B publishes a reading and an invalid payload at QoS 1 (and gets an error report).
    const publisher = await connect(b);
    await publisher.publishAsync(`devices/${b.deviceId}/readings`, reading(21, minute(1)), {qos: 1});
    await publisher.publishAsync(`devices/${b.deviceId}/readings`, "tenant B's raw payload", {qos: 1});
    const db = await new TenantDb(tenantB).connect();
    try {
      await until(
        "B's reading committed",
        async () => (await db.count("temperature_readings", "device_id = $1", [b.deviceId])) === 1,
        5_000
      );
    } finally {
      await db.close();
    }

    const heard: {topic: string; payload: string}[] = [];
    const again = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: a.id,
      password: a.key,
      reconnectPeriod: 0,
      protocolVersion: 4,
      resubscribe: false,
      ...session
    });
    clients.push(again);
    again.on("message", (topic, payload) => heard.push({topic, payload: payload.toString()}));
    await sleep(1_000);
    expect(heard).toEqual([]);
  });

  it("the server keeps no session past the connection: CONNACK says sessionPresent=false to a device asking clean=false", async () => {
    const a = await deviceWithKey(newTenant("mqiso_s"), "ISO-S");
    const first = await connect(a, {clean: false, clientId: "iso-s-session"});
    await first.subscribeAsync(`devices/${a.deviceId}/errors`, {qos: 1});
    await first.endAsync();
    const connack = await new Promise<{sessionPresent: boolean}>((resolve, reject) => {
      const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
        username: a.id,
        password: a.key,
        reconnectPeriod: 0,
        protocolVersion: 4,
        clean: false,
        clientId: "iso-s-session"
      });
      clients.push(client);
      client.once("connect", (packet) => resolve(packet));
      client.once("error", reject);
    });
    expect(connack.sessionPresent).toBe(false);
  });

  it("forwards to a device only its own errors topic, whatever else reaches the delivery hook", async () => {
    const a = await deviceWithKey(newTenant("mqiso_f"), "ISO-F");
    const other = await deviceWithKey(newTenant("mqiso_g"), "ISO-G");
    const client = await connect(a, {clientId: "iso-f"});
    await until("the device's session registered", async () => findClient(a.deviceId) !== undefined, 2_000);
    const session = findClient(a.deviceId)!;
    const packet = (topic: string) =>
      ({
        cmd: "publish",
        topic,
        payload: Buffer.from("{}"),
        qos: 1,
        retain: false,
        dup: false,
        brokerId: "test",
        brokerCounter: 1
      }) as AedesPublishPacket;
    for (const topic of [
      `devices/${other.deviceId}/errors`,
      `devices/${other.deviceId}/readings`,
      `devices/${a.deviceId}/readings`,
      "$SYS/x/new/clients"
    ])
      expect(broker().authorizeForward(session, packet(topic)), topic).toBeFalsy();
    const own = packet(`devices/${a.deviceId}/errors`);
    expect(broker().authorizeForward(session, own)).toBe(own);
    client.end(true);
  });

  it("drops a will at CONNECT: nothing of it is kept for the session", async () => {
    const a = await deviceWithKey(newTenant("mqiso_w"), "ISO-W");
    await connect(a, {
      clientId: "iso-w",
      will: {topic: `devices/${a.deviceId}/readings`, payload: Buffer.from(reading(20, minute(1))), qos: 1, retain: false}
    });
    await until("the device's session registered", async () => findClient(a.deviceId) !== undefined, 2_000);
    const session = findClient(a.deviceId) as Client & {will?: unknown; _will?: unknown};
    expect(session.will ?? null).toBeNull();
    expect(session._will ?? null).toBeNull();
  });

  function findClient(deviceId: string): Client | undefined {
    return Object.values(broker().clients).find((client) => client.id.startsWith(`${deviceId}/`));
  }
});
