import {PlatformTest} from "@tsed/common";
import {afterAll, afterEach, beforeAll, describe, expect, it, vi} from "vitest";
import type {ChangeFeed} from "../../src/platform/db/change-feed.js";
import {DeviceKeyVerifier} from "../../src/platform/device-auth/device-key-verifier.js";
import {createDevice, provisionedBearer} from "../helpers/factories.js";
import {playRace, raceOrders} from "../helpers/feed-race.js";
import {checkProperty} from "../helpers/property.js";
import {minute, TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";

/**
 * Device keys (docs/api.md "Devices as clients") and a device's own HTTP route: the key alone names
 * the device and tenant; the answers, idempotency, alerts and DailyStats are the user routes'.
 */
describe("device keys and device ingestion over HTTP", () => {
  let api: Api;
  let tenant: string;
  let auth: Record<string, string>;
  let db: TenantDb;

  const createKey = (deviceId: string, as = auth) => api.post(`/api/v1/devices/${deviceId}/keys`).set(as);
  const listKeys = (deviceId: string, as = auth) => api.get(`/api/v1/devices/${deviceId}/keys`).set(as);
  const revokeKey = (deviceId: string, keyId: string, as = auth) => api.delete(`/api/v1/devices/${deviceId}/keys/${keyId}`).set(as);
  const devicePost = (key: string, body: unknown) =>
    api
      .post("/api/v1/device/readings")
      .set({Authorization: `Device ${key}`})
      .send(body as object);
  const newKey = async (deviceId: string) => {
    const res = await createKey(deviceId);
    expect(res.status).toBe(201);
    return res.body as {id: string; key: string; createdAt: string};
  };

  beforeAll(async () => {
    api = await startTestServer();
    tenant = newTenant("keys");
    auth = await provisionedBearer(api, tenant);
    db = await new TenantDb(tenant).connect();
  });
  afterAll(async () => {
    await db?.close();
    await stopTestServer();
  });
  afterEach(() => vi.restoreAllMocks());

  it("creates a key shown once, stores only its SHA-256, lists it without secret and with lastUsedAt once used", async () => {
    const deviceId = await createDevice(api, auth, "K-LIFE");
    const created = await newKey(deviceId);
    expect(created.key).toMatch(new RegExp(`^stdk_${created.id}_[A-Za-z0-9_-]{43}$`));
    const [stored] = await db.query<{digest: Buffer}>(`select secret_sha256 as digest from public.device_keys where id = $1`, [created.id]);
    expect(stored!.digest.length).toBe(32);
    expect(JSON.stringify(await db.query(`select * from public.device_keys where id = $1`, [created.id]))).not.toContain(
      created.key.slice(-43)
    );

    const before = await listKeys(deviceId);
    expect(before.status).toBe(200);
    expect(before.body.items).toEqual([{id: created.id, createdAt: created.createdAt, lastUsedAt: null}]);
    expect(JSON.stringify(before.body)).not.toContain(created.key);

    expect((await devicePost(created.key, {temperatureCelsius: 21, recordedAt: minute(1)})).status).toBe(201);
    const used = await until("lastUsedAt to be recorded", async () => {
      const res = await listKeys(deviceId);
      return res.body.items[0].lastUsedAt ? res.body.items[0] : undefined;
    });
    expect(new Date(used.lastUsedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it("allows two active keys (rotation: both work), refuses a third with 409, and revoking one leaves the other working", async () => {
    const deviceId = await createDevice(api, auth, "K-ROTATE");
    const first = await newKey(deviceId);
    const second = await newKey(deviceId);
    const third = await createKey(deviceId);
    expect(third.status).toBe(409);
    expect(third.body).toMatchObject({status: 409, name: "CONFLICT"});
    expect((await devicePost(first.key, {temperatureCelsius: 20, recordedAt: minute(10)})).status).toBe(201);
    expect((await devicePost(second.key, {temperatureCelsius: 20, recordedAt: minute(11)})).status).toBe(201);

    expect((await revokeKey(deviceId, first.id)).status).toBe(204);
    expect((await revokeKey(deviceId, first.id)).status).toBe(204); // idempotent
    const refused = await devicePost(first.key, {temperatureCelsius: 20, recordedAt: minute(12)});
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({status: 401, name: "UNAUTHORIZED"});
    expect((await devicePost(second.key, {temperatureCelsius: 20, recordedAt: minute(13)})).status).toBe(201);
    expect((await listKeys(deviceId)).body.items.map((k: {id: string}) => k.id)).toEqual([second.id]);
    expect((await createKey(deviceId)).status).toBe(201); // a free slot again
  });

  it("answers 401 to a missing, malformed, unknown or tampered key, and nothing is stored", async () => {
    const deviceId = await createDevice(api, auth, "K-BAD");
    const {key} = await newKey(deviceId);
    const body = {temperatureCelsius: 20, recordedAt: minute(20)};
    const tampered = `${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`;
    const unknown = key.replace(/^stdk_[0-9a-f-]{36}/, "stdk_6b1f3c1e-0000-4000-8000-000000000000");
    for (const header of [undefined, "Device", "Device nonsense", `Bearer ${key}`, `Device ${tampered}`, `Device ${unknown}`]) {
      const request = api.post("/api/v1/device/readings");
      const res = await (header ? request.set({Authorization: header}) : request).send(body);
      expect(res.status, String(header)).toBe(401);
    }
    expect(await db.count("temperature_readings", "device_id = $1", [deviceId])).toBe(0);
  });

  it("key routes answer 404 for another tenant's device or key; deactivating a device revokes its keys", async () => {
    const deviceId = await createDevice(api, auth, "K-DEACT");
    // Two keys, each unused until its refused revoke: the post after it then reads the key from the
    // database, not from a verifier cache that a wrongly revoked key would outlive for a while.
    const {id, key} = await newKey(deviceId);
    const spare = await newKey(deviceId);
    const stillWorks = async (keyId: string, secret: string, recordedAt: string) => {
      expect((await devicePost(secret, {temperatureCelsius: 20, recordedAt})).status, "the key after a refused revoke").toBe(201);
      const [row] = await db.query<{revokedAt: Date | null}>(`select revoked_at as "revokedAt" from public.device_keys where id = $1`, [
        keyId
      ]);
      expect(row!.revokedAt).toBeNull();
    };
    const other = await bearer(newTenant("keys2"));
    expect((await createKey(deviceId, other)).status).toBe(404);
    expect((await listKeys(deviceId, other)).status).toBe(404);
    expect((await revokeKey(deviceId, id, other)).status).toBe(404);
    await stillWorks(id, key, minute(28));
    const otherDevice = await createDevice(api, auth, "K-DEACT-2");
    expect((await revokeKey(otherDevice, spare.id)).status).toBe(404);
    await stillWorks(spare.id, spare.key, minute(29));

    expect((await api.delete(`/api/v1/devices/${deviceId}`).set(auth)).status).toBe(204);
    expect((await devicePost(key, {temperatureCelsius: 20, recordedAt: minute(30)})).status).toBe(401);
    expect((await createKey(deviceId)).status).toBe(404);

    const patched = await createDevice(api, auth, "K-PATCH");
    const patchedKey = await newKey(patched);
    expect((await api.patch(`/api/v1/devices/${patched}`).set(auth).send({isActive: false})).status).toBe(200);
    expect((await devicePost(patchedKey.key, {temperatureCelsius: 20, recordedAt: minute(31)})).status).toBe(401);
  });

  it("the key names the device: single and batch answers, duplicates and 400s are the user routes'", async () => {
    const deviceId = await createDevice(api, auth, "K-ANSWERS");
    const {key} = await newKey(deviceId);
    const one = await devicePost(key, {
      temperatureCelsius: 21.5,
      humidity: 40,
      recordedAt: "2026-01-01T12:30:00+02:00",
      deviceId: "someone-else"
    });
    expect(one.status).toBe(201);
    expect(one.body).toMatchObject({
      duplicate: false,
      alerts: [],
      reading: {deviceId, temperatureCelsius: 21.5, humidity: 40, recordedAt: "2026-01-01T10:30:00.000Z"}
    });
    const again = await devicePost(key, {temperatureCelsius: 25, recordedAt: "2026-01-01T10:30:00Z"});
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({duplicate: true, reading: {id: one.body.reading.id, temperatureCelsius: 21.5}});

    const batch = await devicePost(key, {
      readings: [
        {temperatureCelsius: 20, recordedAt: minute(40)},
        {temperatureCelsius: 20, recordedAt: "2026-01-01T10:30:00Z"}
      ]
    });
    expect(batch.status).toBe(200);
    expect(batch.body).toMatchObject({inserted: 1, duplicates: 1, alertsFired: 0});
    expect(batch.body.items.map((i: {status: string}) => i.status)).toEqual(["accepted", "duplicate"]);
    const array = await devicePost(key, [{temperatureCelsius: 20, recordedAt: minute(41)}]);
    expect(array.status).toBe(200);
    expect(array.body).toMatchObject({inserted: 1, duplicates: 0});

    const bad = await devicePost(key, {
      readings: [
        {temperatureCelsius: 20, recordedAt: minute(42)},
        {temperatureCelsius: 2000, recordedAt: minute(43)}
      ]
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: {instancePath: string}) => e.instancePath)).toEqual(["/readings/1/temperatureCelsius"]);
    expect(bad.body.message).toContain("readings.1.temperatureCelsius");
    const future = await devicePost(key, {temperatureCelsius: 20, recordedAt: new Date(Date.now() + 3_600_000).toISOString()});
    expect(future.status).toBe(400);
    expect(future.body.errors).toEqual([expect.objectContaining({instancePath: "/recordedAt", keyword: "maxFutureSkew"})]);
    for (const junk of [null, "text", 42, {}, {readings: []}, {temperatureCelsius: "21"}]) {
      const res = await api
        .post("/api/v1/device/readings")
        .set({Authorization: `Device ${key}`, "Content-Type": "application/json"})
        .send(JSON.stringify(junk));
      expect(res.status, JSON.stringify(junk)).toBe(400);
    }
    expect(await db.count("temperature_readings", "device_id = $1", [deviceId])).toBe(3);
  });

  it("alerts and DailyStats come out exactly as through the user route", async () => {
    const viaUser = await createDevice(api, auth, "K-SAME-USER");
    const viaKey = await createDevice(api, auth, "K-SAME-KEY");
    const {key} = await newKey(viaKey);
    for (const deviceId of [viaUser, viaKey]) {
      expect(
        (await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 30})).status
      ).toBe(201);
    }
    const steps: unknown[] = [
      {temperatureCelsius: 25, recordedAt: minute(100)},
      {temperatureCelsius: 31, recordedAt: minute(101)},
      {
        readings: [
          {temperatureCelsius: 35, recordedAt: minute(103)},
          {temperatureCelsius: 29, recordedAt: minute(104)}
        ]
      },
      {temperatureCelsius: 33, recordedAt: minute(102)} // late: splits nothing, extends the episode
    ];
    for (const step of steps) {
      const batch = typeof step === "object" && step !== null && "readings" in step;
      const user = await api
        .post(`/api/v1/devices/${viaUser}/readings${batch ? "/batch" : ""}`)
        .set(auth)
        .send(step as object);
      const device = await devicePost(key, step);
      expect(device.status).toBe(user.status);
      const strip = (body: Record<string, unknown>) =>
        JSON.parse(
          JSON.stringify(body)
            .replaceAll(viaUser, "D")
            .replaceAll(viaKey, "D")
            .replace(/"(id|readingId|ruleId|createdAt|updatedAt)":"[^"]*"/g, '"$1":"x"')
        );
      expect(strip(device.body)).toEqual(strip(user.body));
    }
    const episodes = async (deviceId: string) =>
      (await api.get(`/api/v1/devices/${deviceId}/alerts`).set(auth)).body.map(
        ({firedAt, lastReadingAt, resolvedAt, readingCount, peakTemperatureCelsius}: Record<string, unknown>) => ({
          firedAt,
          lastReadingAt,
          resolvedAt,
          readingCount,
          peakTemperatureCelsius
        })
      );
    expect(await episodes(viaKey)).toEqual(await episodes(viaUser));
    expect((await episodes(viaKey)).length).toBe(1);
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
    expect(await stats(viaKey)).toEqual(await stats(viaUser));
    expect((await stats(viaKey))[0]).toMatchObject({readingCount: 5});
  });

  it("documents the key routes and the device route with its own security scheme", async () => {
    const spec = (await api.get("/doc/swagger.json")).body;
    expect(spec.components.securitySchemes.deviceKey).toMatchObject({type: "apiKey", in: "header", name: "Authorization"});
    expect(spec.paths["/api/v1/device/readings"].post.security).toEqual([{deviceKey: []}]);
    expect(Object.keys(spec.paths["/api/v1/device/readings"].post.responses)).toEqual(
      expect.arrayContaining(["200", "201", "400", "401", "404", "413", "429", "503"])
    );
    expect(Object.keys(spec.paths["/api/v1/devices/{deviceId}/keys"].post.responses)).toEqual(
      expect.arrayContaining(["201", "401", "403", "404", "409"])
    );
    expect(spec.paths["/api/v1/devices/{deviceId}/keys/{keyId}"].delete).toBeDefined();
  });

  it("refuses a revoked key after the next poll, whatever the order of a key read, the revocation and the polls (race property)", async () => {
    const deviceId = await createDevice(api, auth, "K-RACE");
    const verifier = PlatformTest.get<DeviceKeyVerifier>(DeviceKeyVerifier);
    const feed = (verifier as unknown as {feed: ChangeFeed}).feed;
    await checkProperty(
      "a key read raced by its revocation is not kept past the poll that names it",
      raceOrders,
      async (order) => {
        const {id, key} = await newKey(deviceId);
        await playRace(order, {
          feed,
          reader: verifier,
          query: "readKey",
          read: () => verifier.verify(key),
          change: () => db.query(`update public.device_keys set revoked_at = now() where id = $1`, [id])
        });
        expect(await verifier.verify(key)).toBeNull();
      },
      {searchMs: 5_000, minRuns: 12, maxRuns: 40}
    );
  });
});
