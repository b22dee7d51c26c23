import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

describe("rate limits: ingestion and reads (Redis-backed), heavy reads at once", () => {
  let api: Api;
  let db: pg.Client;
  beforeAll(async () => {
    api = await startTestServer({rateLimit: {devicePerMinute: 3, tenantPerMinute: 4, tenantReadsPerMinute: 6, tenantHeavyReads: 2}});
    db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await stopTestServer();
  });

  const post = (auth: Record<string, string>, deviceId: string, i: number) =>
    api
      .post(`/api/v1/devices/${deviceId}/readings`)
      .set(auth)
      .send({temperatureCelsius: 20, recordedAt: new Date(Date.now() - 600_000 + i * 1000).toISOString()});

  it("answers 429 with Retry-After past the per-device budget, and the per-tenant one across devices", async () => {
    const auth = await bearer(newTenant("rl"));
    const one = (await api.post("/api/v1/devices").set(auth).send({serialNumber: "RL-1"})).body.id;
    const two = (await api.post("/api/v1/devices").set(auth).send({serialNumber: "RL-2"})).body.id;

    const first = [];
    for (let i = 0; i < 4; i++) first.push(await post(auth, one, i));
    expect(first.map((r) => r.status)).toEqual([201, 201, 201, 429]);
    const limited = first[3]!;
    expect(limited.body).toMatchObject({status: 429, name: "TOO_MANY_REQUESTS"});
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);

    // Device two has its own budget, but the tenant has spent 3 of its 4 (a request refused per device spends none).
    const second = [await post(auth, two, 10), await post(auth, two, 11)];
    expect(second.map((r) => r.status)).toEqual([201, 429]);

    // Reads have a budget of their own, and another tenant is unaffected.
    expect((await api.get(`/api/v1/devices/${one}`).set(auth)).status).toBe(200);
    const other = await bearer(newTenant("rl"));
    const device = (await api.post("/api/v1/devices").set(other).send({serialNumber: "RL-1"})).body.id;
    expect((await post(other, device, 0)).status).toBe(201);
  });

  it("counts a device id written in upper case against the same device's budget", async () => {
    const auth = await bearer(newTenant("rl"));
    const id = (await api.post("/api/v1/devices").set(auth).send({serialNumber: "RL-CASE"})).body.id as string;
    const statuses = [];
    for (const [i, spelling] of [id, id.toUpperCase(), id.toUpperCase(), id.replace(/[a-f]/, (c) => c.toUpperCase())].entries())
      statuses.push((await post(auth, spelling, i)).status);
    expect(statuses).toEqual([201, 201, 201, 429]);
    // The upper-case spelling is the same device everywhere else too: its readings are the device's.
    const history = await api.get(`/api/v1/devices/${id.toUpperCase()}/readings`).set(auth);
    expect(history.body.data.map((r: {deviceId: string}) => r.deviceId)).toEqual([id, id, id]);
  });

  it("answers 429 with Retry-After past the tenant's reads per minute, for that tenant only", async () => {
    const auth = await bearer(newTenant("rl"));
    const statuses = [];
    for (let i = 0; i < 7; i++) statuses.push((await api.get("/api/v1/devices").set(auth)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 429]);
    const limited = await api.get("/api/v1/me").set(auth);
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({status: 429, name: "TOO_MANY_REQUESTS"});
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    // Writes are not reads: the tenant's devices still post readings.
    const device = (await api.post("/api/v1/devices").set(auth).send({serialNumber: "RL-READS"})).body.id;
    expect((await post(auth, device, 0)).status).toBe(201);
    expect((await api.get("/api/v1/devices").set(await bearer(newTenant("rl")))).status).toBe(200);
  });

  it("refuses a tenant's third heavy read while two run, and takes it again once they are done", async () => {
    const tenant = newTenant("rl");
    const auth = await bearer(tenant);
    const device = (await api.post("/api/v1/devices").set(auth).send({serialNumber: "RL-HEAVY"})).body.id;
    const history = () =>
      api
        .get(`/api/v1/devices/${device}/readings`)
        .set(auth)
        .then((res) => res);
    // Hold the tenant's readings table: its history reads wait in the database, as slow scans would.
    // (In a connection of its own: inside a transaction pg_stat_activity is a frozen snapshot.)
    const holder = new pg.Client({connectionString: process.env.DATABASE_URL});
    await holder.connect();
    await holder.query("begin");
    await holder.query(`lock table "${tenant}".temperature_readings in access exclusive mode`);
    const running = [history(), history()];
    const holderPid = (await holder.query("select pg_backend_pid() as pid")).rows[0].pid;
    const waiting = async () =>
      Number((await db.query("select count(*) from pg_stat_activity where $1 = any(pg_blocking_pids(pid))", [holderPid])).rows[0].count);
    for (let tries = 0; (await waiting()) < 2; tries++) {
      expect(tries, "the two reads never reached the database").toBeLessThan(100);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const third = await history();
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({status: 429, name: "TOO_MANY_REQUESTS", message: expect.stringMatching(/heavy reads/)});
    // A light read of the same tenant, and another tenant's heavy read, are not held up.
    expect((await api.get(`/api/v1/devices/${device}`).set(auth)).status).toBe(200);
    const other = await bearer(newTenant("rl"));
    const otherDevice = (await api.post("/api/v1/devices").set(other).send({serialNumber: "RL-HEAVY"})).body.id;
    expect((await api.get(`/api/v1/devices/${otherDevice}/readings`).set(other)).status).toBe(200);
    await holder.query("commit");
    await holder.end();
    expect((await Promise.all(running)).map((res) => res.status)).toEqual([200, 200]);
    expect((await history()).status).toBe(200);
  });
});
