import mqtt, {type MqttClient} from "mqtt";
import pg from "pg";
import {afterAll, describe, expect, it} from "vitest";
import {newTenant} from "../helpers/tokens.js";
import {call, tenantAuth} from "./helpers/load.js";
import {type AppProcess, freePort, startApp, startOwnRedis, waitFor} from "./helpers/processes.js";

const DEVICES = 20;
/** QoS 1 messages a device keeps unacknowledged at once (mqtt.js pipelines them). */
const WINDOW = 4;

interface Device {
  deviceId: string;
  keyId: string;
  key: string;
  /** recordedAt (ISO) of every reading published, and of those whose PUBACK arrived. */
  sent: Set<string>;
  acked: Set<string>;
  client?: MqttClient;
}

/**
 * The MQTT-only process (`npm run mqtt`) killed with SIGKILL while devices publish at QoS 1:
 * every reading that got its PUBACK must be in Postgres (the PUBACK follows the commit), and once
 * the devices reconnect to a new process and resend what was never acknowledged, every reading is
 * stored exactly once: nothing missing, nothing doubled.
 */
describe("fault: MQTT process killed while devices publish", () => {
  let api: AppProcess | undefined;
  let broker: AppProcess | undefined;
  let redis: Awaited<ReturnType<typeof startOwnRedis>> | undefined;
  const devices: Device[] = [];
  afterAll(async () => {
    for (const device of devices) device.client?.end(true);
    await broker?.stop("SIGKILL");
    await api?.stop("SIGKILL");
    await redis?.stop();
  });

  it("loses no acknowledged reading, and after resending the unacknowledged ones none is missing or doubled", async () => {
    redis = await startOwnRedis();
    const env = {REDIS_URL: redis.url, RATE_LIMIT_DEVICE_PER_MINUTE: "0", RATE_LIMIT_TENANT_PER_MINUTE: "0"};
    api = await startApp(env);
    const mqttPort = await freePort();
    const startBroker = () => startApp({...env, MQTT_PORT: String(mqttPort), MQTT_HOST: "127.0.0.1"}, "mqtt");
    broker = await startBroker();

    const tenant = newTenant("mqttkill");
    const auth = await tenantAuth(tenant);
    for (let i = 0; i < DEVICES; i++) {
      const device = await call(api.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: `MQTT-KILL-${i}`});
      const key = await call(api.baseUrl, auth, "POST", `/api/v1/devices/${device.id}/keys`);
      devices.push({deviceId: device.id, keyId: key.id, key: key.key, sent: new Set(), acked: new Set()});
    }
    const connect = (device: Device) =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
        username: device.keyId,
        password: device.key,
        reconnectPeriod: 0,
        connectTimeout: 5_000,
        clean: true
      });
    const publish = (device: Device, recordedAt: string) => {
      device.sent.add(recordedAt);
      return device
        .client!.publishAsync(`devices/${device.deviceId}/readings`, JSON.stringify({temperatureCelsius: 20, recordedAt}), {qos: 1})
        .then(
          () => void device.acked.add(recordedAt),
          () => undefined // the connection went away first: unacknowledged
        );
    };

    // Each device publishes a new reading (one second apart in device time) whenever fewer than
    // WINDOW of its messages await their PUBACK, until its connection dies.
    const base = Date.now() - 6 * 3_600_000;
    let sequence = 0;
    for (const device of devices) device.client = await connect(device);
    const loops = devices.map(async (device) => {
      const inFlight = new Set<Promise<void>>();
      while (device.client!.connected) {
        while (inFlight.size < WINDOW && device.client!.connected) {
          const task = publish(device, new Date(base + ++sequence * 1_000).toISOString());
          inFlight.add(task);
          void task.finally(() => inFlight.delete(task));
        }
        await Promise.race([...inFlight, new Promise((r) => setTimeout(r, 50))]);
      }
    });
    await waitFor(() => devices.every((d) => d.acked.size >= 20), 30_000, "every device to have acknowledged readings");
    broker.child.kill("SIGKILL");
    await broker.exited;
    await Promise.all(loops);
    for (const device of devices) device.client!.end(true);

    const db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
    const stored = async (device: Device) =>
      new Set(
        (await db.query(`select recorded_at from "${tenant}".temperature_readings where device_id = $1`, [device.deviceId])).rows.map(
          (r: {recorded_at: Date}) => r.recorded_at.toISOString()
        )
      );
    try {
      const acknowledged = devices.reduce((sum, d) => sum + d.acked.size, 0);
      const sent = devices.reduce((sum, d) => sum + d.sent.size, 0);
      const lost: string[] = [];
      /** Committed but killed before the PUBACK went out: the resend must find them as duplicates. */
      let storedUnacknowledged = 0;
      for (const device of devices) {
        const rows = await stored(device);
        for (const recordedAt of device.acked) if (!rows.has(recordedAt)) lost.push(`${device.deviceId} ${recordedAt}`);
        for (const recordedAt of device.sent) if (!device.acked.has(recordedAt) && rows.has(recordedAt)) storedUnacknowledged++;
      }
      console.log(
        JSON.stringify({
          fault: "mqtt-killed",
          sent,
          acknowledged,
          unacknowledged: sent - acknowledged,
          storedUnacknowledged,
          lost: lost.length
        })
      );
      expect(lost).toEqual([]);
      expect(sent - acknowledged).toBeGreaterThan(0); // the kill did cut messages in flight

      // A new process; each device reconnects and resends what it never got a PUBACK for.
      broker = await startBroker();
      for (const device of devices) {
        device.client = await connect(device);
        const unacknowledged = [...device.sent].filter((recordedAt) => !device.acked.has(recordedAt));
        await Promise.all(unacknowledged.map((recordedAt) => publish(device, recordedAt)));
        expect(device.acked.size).toBe(device.sent.size);
      }
      for (const device of devices) {
        const [{n}] = (
          await db.query(`select count(*)::int as n from "${tenant}".temperature_readings where device_id = $1`, [device.deviceId])
        ).rows as [{n: number}];
        expect(n).toBe(device.sent.size); // none doubled
        expect([...(await stored(device))].sort()).toEqual([...device.sent].sort()); // none missing, none extra
      }
    } finally {
      await db.end();
    }
  });
});
