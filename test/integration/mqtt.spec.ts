import net from "node:net";
import {setTimeout as sleep} from "node:timers/promises";
import {inject} from "@tsed/common";
import mqtt, {type MqttClient} from "mqtt";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {MqttReadingsIngest} from "../../src/modules/device-clients/mqtt-readings-ingest.js";
import {MqttServer} from "../../src/platform/mqtt/mqtt-server.js";
import {createDevice, provisionedBearer} from "../helpers/factories.js";
import {minute, TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";

/** Per-device budget of this file: the rate-limit test spends it, the others stay below. */
const DEVICE_PER_MINUTE = 8;

/**
 * The MQTT endpoint (docs/api.md "Devices as clients") on a free port, with the real write path:
 * CONNECT with a device key, publish only to the device's own topic, QoS 1 acknowledged only
 * once the readings are committed, errors reported on the device's errors topic, group commit.
 */
describe("MQTT ingestion", () => {
  let api: Api;
  let server: MqttServer;
  let port: number;
  let tenant: string;
  let auth: Record<string, string>;
  let db: TenantDb;
  const clients: MqttClient[] = [];

  const newKey = async (deviceId: string, as = auth) => {
    const res = await api.post(`/api/v1/devices/${deviceId}/keys`).set(as);
    expect(res.status).toBe(201);
    return res.body as {id: string; key: string};
  };
  const newDeviceWithKey = async (serial: string, as = auth) => {
    const deviceId = await createDevice(api, as, serial);
    return {deviceId, ...(await newKey(deviceId, as))};
  };
  const connect = async (username: string, password: string, options: mqtt.IClientOptions = {}) => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username,
      password,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      protocolVersion: 4,
      ...options
    });
    clients.push(client);
    return client;
  };
  const rowsOf = (deviceId: string) => db.count("temperature_readings", "device_id = $1", [deviceId]);
  const closed = (client: MqttClient) =>
    new Promise<void>((resolve) => (client.connected ? client.once("close", () => resolve()) : resolve()));
  const reading = (t: number, at: string) => JSON.stringify({temperatureCelsius: t, recordedAt: at});
  /** Whether a backend waits for the transaction `xid` (pg_locks is the whole server's: other tests' waits must not count). */
  const waitingOn = async (xid: string) =>
    (
      await db.query<{n: number}>(
        `select count(*)::int as n from pg_locks where not granted and locktype = 'transactionid' and transactionid::text = $1`,
        [xid]
      )
    )[0]!.n > 0;
  const acceptsTcp = (tcpPort: number) =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect(tcpPort, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });

  beforeAll(async () => {
    api = await startTestServer({
      rateLimit: {devicePerMinute: DEVICE_PER_MINUTE, tenantPerMinute: 0, tenantReadsPerMinute: 0, tenantHeavyReads: 1_000}
    });
    server = inject(MqttServer);
    port = await server.listen(inject(MqttReadingsIngest), {port: 0, host: "127.0.0.1"});
    tenant = newTenant("mqtt");
    auth = await provisionedBearer(api, tenant);
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    for (const client of clients) client.end(true);
    await server?.drain(2_000);
    await db?.close();
    await stopTestServer();
  });

  it("acknowledges a QoS 1 reading only once its row is committed: held while the write waits, visible when the PUBACK arrives", async () => {
    const {deviceId, id, key} = await newDeviceWithKey("M-ACK");
    const rule = await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 90});
    const client = await connect(id, key);
    const seenAtPuback: Promise<number>[] = [];
    client.on("packetreceive", (packet) => {
      if (packet.cmd === "puback") seenAtPuback.push(rowsOf(deviceId));
    });

    // The group commit reads the device's rules FOR SHARE: while a transaction holds them FOR
    // UPDATE the write cannot commit, and no PUBACK may arrive.
    await db.query("begin");
    await db.query(`select 1 from ${db.schema}.alert_rules where id = $1 for update`, [rule.body.id]);
    let acknowledged = false;
    const publishing = client
      .publishAsync(`devices/${deviceId}/readings`, reading(21, minute(1)), {qos: 1})
      .then(() => (acknowledged = true));
    await sleep(500);
    expect(acknowledged).toBe(false);
    expect(seenAtPuback).toHaveLength(0);
    await db.query("commit");
    await publishing;
    expect(await Promise.all(seenAtPuback)).toEqual([1]);

    // Each count read before the next publish: a count still queued when that one commits would see it too.
    for (let i = 2; i <= 4; i++) {
      await client.publishAsync(`devices/${deviceId}/readings`, reading(21, minute(i)), {qos: 1});
      await Promise.all(seenAtPuback);
    }
    expect(await Promise.all(seenAtPuback)).toEqual([1, 2, 3, 4]);
  });

  it("refuses CONNECT without a valid key: wrong password, key id of another key, unknown, none", async () => {
    const a = await newDeviceWithKey("M-AUTH-A");
    const b = await newDeviceWithKey("M-AUTH-B");
    const tampered = `${a.key.slice(0, -1)}${a.key.endsWith("A") ? "B" : "A"}`;
    for (const [username, password] of [
      [a.id, tampered],
      [b.id, a.key],
      ["6b1f3c1e-0000-4000-8000-000000000000", a.key.replace(a.id, "6b1f3c1e-0000-4000-8000-000000000000")],
      [a.id, ""],
      ["", ""]
    ] as const) {
      await expect(connect(username, password), `${username}`).rejects.toThrow(/Bad username or password|Not authorized/i);
    }
  });

  it("revoking a key refuses CONNECT and closes its open connection within 5 s; the other key keeps working", async () => {
    const {deviceId, id, key} = await newDeviceWithKey("M-REVOKE");
    const second = await newKey(deviceId);
    const open = await connect(id, key);
    const other = await connect(second.id, second.key);
    const gone = closed(open);
    const revokedAt = Date.now();
    expect((await api.delete(`/api/v1/devices/${deviceId}/keys/${id}`).set(auth)).status).toBe(204);
    await gone;
    await until(
      "CONNECT refused for the revoked key",
      () =>
        connect(id, key).then(
          () => false,
          () => true
        ),
      5_000
    );
    expect(Date.now() - revokedAt).toBeLessThan(5_000);
    await other.publishAsync(`devices/${deviceId}/readings`, reading(20, minute(1)), {qos: 1});
    expect(await rowsOf(deviceId)).toBe(1);
  });

  it("a device cannot publish for another device or tenant, nor subscribe to their topics", async () => {
    const mine = await newDeviceWithKey("M-MINE");
    const neighbour = await createDevice(api, auth, "M-NEIGHBOUR");
    const otherTenant = newTenant("mqtt2");
    const otherAuth = await bearer(otherTenant);
    const foreign = await createDevice(api, otherAuth, "M-FOREIGN");

    const subscriber = await connect(mine.id, mine.key);
    for (const topic of [
      `devices/${neighbour}/errors`,
      `devices/${neighbour}/readings`,
      `devices/${foreign}/errors`,
      "devices/+/readings",
      "#"
    ]) {
      await expect(subscriber.subscribeAsync(topic, {qos: 1}), topic).rejects.toMatchObject({packet: {granted: [128]}});
    }
    expect((await subscriber.subscribeAsync(`devices/${mine.deviceId}/errors`, {qos: 1})).map((g) => g.qos)).toEqual([1]);

    for (const target of [neighbour, foreign]) {
      const client = await connect(mine.id, mine.key);
      const gone = closed(client);
      client.publish(`devices/${target}/readings`, reading(20, minute(1)), {qos: 1});
      await gone;
    }
    const client = await connect(mine.id, mine.key);
    const gone = closed(client);
    client.publish(`devices/${mine.deviceId}/errors`, "{}", {qos: 1});
    await gone;
    expect(await rowsOf(neighbour)).toBe(0);
    const [row] = await db.query<{n: number}>(`select count(*)::int as n from "${otherTenant}".temperature_readings`);
    expect(row!.n).toBe(0);
    expect(await rowsOf(mine.deviceId)).toBe(0);
  });

  it("resends a message whose PUBACK was lost from the client's own session on reconnect, and stores it once", async () => {
    const {deviceId, id, key} = await newDeviceWithKey("M-DUP");
    const rule = await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 90});
    // A persistent session (clean: false), reconnected by hand below: mqtt.js keeps the unacknowledged
    // QoS 1 message in its outgoing store and resends it when the session resumes.
    const client = await connect(id, key, {clean: false, clientId: `m-dup-${deviceId}`});
    const sent: {messageId?: number}[] = [];
    client.on("packetsend", (packet) => {
      if (packet.cmd === "publish") sent.push({messageId: packet.messageId});
    });
    const payload = JSON.stringify({
      readings: [
        {temperatureCelsius: 20, recordedAt: minute(1)},
        {temperatureCelsius: 21, recordedAt: minute(2)}
      ]
    });

    // Hold the write (the rules FOR UPDATE), so that the connection can die before the PUBACK.
    await db.query("begin");
    await db.query(`select 1 from ${db.schema}.alert_rules where id = $1 for update`, [rule.body.id]);
    const [{xid}] = (await db.query<{xid: string}>(`select txid_current()::text as xid`)) as [{xid: string}];
    let acknowledged = false;
    const published = client.publishAsync(`devices/${deviceId}/readings`, payload, {qos: 1}).then(() => (acknowledged = true));
    await until("the message to be held by the write", async () => waitingOn(xid), 5_000);
    const gone = closed(client);
    client.stream.destroy();
    await gone;
    expect(acknowledged, "PUBACK before the write committed").toBe(false);
    // The first delivery commits; its PUBACK has no connection to go to.
    await db.query("commit");
    await until("the first delivery to be committed", async () => (await rowsOf(deviceId)) === 2, 5_000);

    // As its automatic reconnect would (a manual reconnect() without them starts from empty stores).
    client.reconnect({incomingStore: client.incomingStore, outgoingStore: client.outgoingStore});
    await until("the resent message to be acknowledged", async () => acknowledged, 10_000);
    await published;
    // The same packet twice (mqtt.js resends from its store without setting DUP).
    expect(sent.map((packet) => packet.messageId)).toEqual([sent[0]!.messageId, sent[0]!.messageId]);
    expect(await rowsOf(deviceId)).toBe(2);
    // A later reading at an instant already stored is a duplicate too: the first value stays.
    await client.publishAsync(`devices/${deviceId}/readings`, reading(25, minute(2)), {qos: 1});
    expect(await rowsOf(deviceId)).toBe(2);
    const [kept] = await db.query<{t: number}>(
      `select temperature_celsius as t from ${db.schema}.temperature_readings where device_id = $1 and recorded_at = $2`,
      [deviceId, minute(2)]
    );
    expect(kept!.t).toBe(21);
  });

  it("acknowledges an invalid payload, stores nothing and reports it on the errors topic in the API's error shape", async () => {
    const {deviceId, id, key} = await newDeviceWithKey("M-INVALID");
    const client = await connect(id, key);
    await client.subscribeAsync(`devices/${deviceId}/errors`, {qos: 1});
    const reports: Record<string, unknown>[] = [];
    client.on("message", (_topic, payload) => reports.push(JSON.parse(payload.toString()) as Record<string, unknown>));
    const bad = [
      JSON.stringify({
        readings: [
          {temperatureCelsius: 20, recordedAt: minute(1)},
          {temperatureCelsius: 5000, recordedAt: minute(2)}
        ]
      }),
      "not json",
      JSON.stringify({temperatureCelsius: 20, recordedAt: new Date(Date.now() + 3_600_000).toISOString()}),
      '{"temperatureCelsius": 20, "recordedAt": "2026-01-01T00:00:00Z", "x": "\\u0000"}',
      JSON.stringify({readings: []})
    ];
    for (const payload of bad) await client.publishAsync(`devices/${deviceId}/readings`, payload, {qos: 1});
    await until("an error report per invalid message", async () => reports.length === bad.length, 5_000);
    for (const report of reports)
      expect(report).toEqual({status: 400, name: "BAD_REQUEST", message: expect.any(String), errors: expect.any(Array)});
    expect(reports[0]!.errors).toEqual([expect.objectContaining({instancePath: "/readings/1/temperatureCelsius", keyword: "maximum"})]);
    expect(reports[2]!.errors).toEqual([expect.objectContaining({instancePath: "/recordedAt", keyword: "maxFutureSkew"})]);
    expect(await rowsOf(deviceId)).toBe(0);
    // The connection is still good.
    await client.publishAsync(`devices/${deviceId}/readings`, reading(20, minute(3)), {qos: 1});
    expect(await rowsOf(deviceId)).toBe(1);
  });

  it("alerts and DailyStats come out exactly as through HTTP ingestion", async () => {
    const viaHttp = await createDevice(api, auth, "M-SAME-HTTP");
    const viaMqtt = await newDeviceWithKey("M-SAME-MQTT");
    for (const deviceId of [viaHttp, viaMqtt.deviceId]) {
      expect(
        (await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 30})).status
      ).toBe(201);
    }
    const client = await connect(viaMqtt.id, viaMqtt.key);
    const steps: object[] = [
      {temperatureCelsius: 25, recordedAt: minute(100)},
      {temperatureCelsius: 31, recordedAt: minute(101)},
      {
        readings: [
          {temperatureCelsius: 35, recordedAt: minute(103)},
          {temperatureCelsius: 29, recordedAt: minute(104)}
        ]
      },
      {temperatureCelsius: 33, recordedAt: minute(102)},
      {
        readings: [
          {temperatureCelsius: 40, recordedAt: minute(110)},
          {temperatureCelsius: 20, recordedAt: minute(111)},
          {temperatureCelsius: 19, recordedAt: minute(112)}
        ]
      }
    ];
    for (const step of steps) {
      const res = await api
        .post(`/api/v1/devices/${viaHttp}/readings${"readings" in step ? "/batch" : ""}`)
        .set(auth)
        .send(step);
      expect(res.status).toBeLessThan(300);
      await client.publishAsync(`devices/${viaMqtt.deviceId}/readings`, JSON.stringify(step), {qos: 1});
    }
    const episodes = async (deviceId: string) =>
      (await api.get(`/api/v1/devices/${deviceId}/alerts`).set(auth)).body.map(
        ({firedAt, lastReadingAt, resolvedAt, readingCount, peakTemperatureCelsius, temperatureCelsius}: Record<string, unknown>) => ({
          firedAt,
          lastReadingAt,
          resolvedAt,
          readingCount,
          peakTemperatureCelsius,
          temperatureCelsius
        })
      );
    expect(await episodes(viaMqtt.deviceId)).toEqual(await episodes(viaHttp));
    expect((await episodes(viaHttp)).length).toBe(2);
    const stats = async (deviceId: string) =>
      (await api.get(`/api/v1/devices/${deviceId}/stats/daily?from=2026-01-01&to=2026-01-02`).set(auth)).body.map(
        ({date, readingCount, avgTemperatureCelsius, minTemperatureCelsius, maxTemperatureCelsius}: Record<string, unknown>) => ({
          date,
          readingCount,
          avgTemperatureCelsius,
          minTemperatureCelsius,
          maxTemperatureCelsius
        })
      );
    // A PUBACK follows the commit of the readings; their DailyStats merge follows it (no device reads them).
    const expected = await stats(viaHttp);
    expect(expected[0]).toMatchObject({readingCount: 8});
    await until(
      "the MQTT device's DailyStats to equal the HTTP device's",
      async () => JSON.stringify(await stats(viaMqtt.deviceId)) === JSON.stringify(expected),
      5_000
    );
  });

  it("writes the readings of many devices together: one transaction serves many messages", async () => {
    const devices = await Promise.all(Array.from({length: 12}, (_, i) => newDeviceWithKey(`M-GROUP-${i}`)));
    const connected = await Promise.all(devices.map((d) => connect(d.id, d.key)));
    await Promise.all(
      connected.map((client, i) => client.publishAsync(`devices/${devices[i]!.deviceId}/readings`, reading(20, minute(1)), {qos: 1}))
    );
    const rows = await db.query<{xmin: string}>(
      `select xmin::text from ${db.schema}.temperature_readings where device_id = any($1::uuid[])`,
      [devices.map((d) => d.deviceId)]
    );
    expect(rows).toHaveLength(12);
    expect(new Set(rows.map((r) => r.xmin)).size).toBeLessThan(12);
  });

  it("counts MQTT messages against the same per-device budget as HTTP: past it, 429 on the errors topic, nothing stored", async () => {
    const {deviceId, id, key} = await newDeviceWithKey("M-RATE");
    const client = await connect(id, key);
    await client.subscribeAsync(`devices/${deviceId}/errors`, {qos: 1});
    const reports: Record<string, unknown>[] = [];
    client.on("message", (_topic, payload) => reports.push(JSON.parse(payload.toString()) as Record<string, unknown>));
    for (let i = 0; i < DEVICE_PER_MINUTE / 2; i++) {
      expect(
        (
          await api
            .post("/api/v1/device/readings")
            .set({Authorization: `Device ${key}`})
            .send({temperatureCelsius: 20, recordedAt: minute(i)})
        ).status
      ).toBe(201);
    }
    for (let i = DEVICE_PER_MINUTE / 2; i < DEVICE_PER_MINUTE; i++)
      await client.publishAsync(`devices/${deviceId}/readings`, reading(20, minute(i)), {qos: 1});
    expect(reports).toEqual([]);
    await client.publishAsync(`devices/${deviceId}/readings`, reading(20, minute(100)), {qos: 1});
    await until("the 429 report", async () => reports.length > 0, 5_000);
    expect(reports[0]).toMatchObject({status: 429, name: "TOO_MANY_REQUESTS", retryAfterSeconds: expect.any(Number)});
    expect(await rowsOf(deviceId)).toBe(DEVICE_PER_MINUTE);
    expect(
      (
        await api
          .post("/api/v1/device/readings")
          .set({Authorization: `Device ${key}`})
          .send({temperatureCelsius: 20, recordedAt: minute(101)})
      ).status
    ).toBe(429);
  });

  it("drains on shutdown: stops accepting, commits and acknowledges what it holds, then closes", async () => {
    const {deviceId, id, key} = await newDeviceWithKey("M-DRAIN");
    const rule = await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 90});
    const client = await connect(id, key);
    let rowsAtPuback: Promise<number> | undefined;
    client.on("packetreceive", (packet) => {
      if (packet.cmd === "puback") rowsAtPuback = rowsOf(deviceId);
    });
    const gone = closed(client);
    await db.query("begin");
    await db.query(`select 1 from ${db.schema}.alert_rules where id = $1 for update`, [rule.body.id]);
    const [{xid}] = (await db.query<{xid: string}>(`select txid_current()::text as xid`)) as [{xid: string}];
    const published = client.publishAsync(`devices/${deviceId}/readings`, reading(20, minute(1)), {qos: 1});
    await until("the message to be held by the write", async () => waitingOn(xid), 5_000);
    const draining = server.drain(10_000);
    await until("the listener to stop accepting", async () => !(await acceptsTcp(port)), 5_000);
    await expect(connect(id, key)).rejects.toThrow();
    await db.query("commit");
    await published;
    expect(await rowsAtPuback).toBe(1);
    await gone;
    await draining;
  });
});
