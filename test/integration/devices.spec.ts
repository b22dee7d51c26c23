import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

describe("devices", () => {
  let api: Api;
  let auth: Record<string, string>;
  beforeAll(async () => {
    api = await startTestServer();
    auth = await bearer(newTenant("dev"));
  });
  afterAll(stopTestServer);

  it("registers a device with defaults and ignores client-set server fields", async () => {
    const res = await api.post("/api/v1/devices").set(auth).send({
      serialNumber: "TH-100",
      location: "Room 1",
      id: "00000000-0000-0000-0000-000000000001",
      createdAt: "2000-01-01T00:00:00Z",
      ownerId: "00000000-0000-0000-0000-000000000002"
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({serialNumber: "TH-100", name: "Sensor-TH-100", location: "Room 1", isActive: true});
    expect(res.body.id).not.toBe("00000000-0000-0000-0000-000000000001");
    expect(res.body.ownerId).not.toBe("00000000-0000-0000-0000-000000000002");
    expect(new Date(res.body.createdAt).getFullYear()).toBeGreaterThan(2020);
    const me = await api.get("/api/v1/me").set(auth);
    expect(res.body.ownerId).toBe(me.body.id);
  });

  it("answers 409 for a duplicate serial number", async () => {
    await api.post("/api/v1/devices").set(auth).send({serialNumber: "TH-DUP"});
    const res = await api.post("/api/v1/devices").set(auth).send({serialNumber: "TH-DUP"});
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({status: 409, name: "CONFLICT"});
  });

  it.each([
    ["missing serial number", {name: "x"}],
    ["empty serial number", {serialNumber: ""}],
    ["serial number of the wrong type", {serialNumber: {nested: true}}],
    ["too long name", {serialNumber: "TH-LONG", name: "n".repeat(101)}],
    ["serial number with spaces", {serialNumber: "a b"}]
  ])("rejects %s with 400 in the error shape", async (_label, body) => {
    const res = await api.post("/api/v1/devices").set(auth).send(body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({status: 400, name: "BAD_REQUEST"});
    expect(res.body.errors.length).toBeGreaterThan(0);
  });

  it("rejects malformed JSON with 400 and an oversized body with 413", async () => {
    const bad = await api.post("/api/v1/devices").set(auth).set("Content-Type", "application/json").send("{oops");
    expect(bad.status).toBe(400);
    expect(bad.body.name).toBe("BAD_REQUEST");
    const huge = await api
      .post("/api/v1/devices")
      .set(auth)
      .send({serialNumber: "TH-HUGE", name: "x".repeat(2 * 1024 * 1024)});
    expect(huge.status).toBe(413);
    expect(huge.body.name).toBe("PAYLOAD_TOO_LARGE");
  });

  it("lists active devices with pagination and total", async () => {
    const tenantAuth = await bearer(newTenant("page"));
    for (let i = 0; i < 5; i++)
      await api
        .post("/api/v1/devices")
        .set(tenantAuth)
        .send({serialNumber: `P-${i}`});
    const page1 = await api.get("/api/v1/devices?page=1&pageSize=2").set(tenantAuth);
    const page3 = await api.get("/api/v1/devices?page=3&pageSize=2").set(tenantAuth);
    expect(page1.body).toMatchObject({total: 5, page: 1, pageSize: 2});
    expect(page1.body.items).toHaveLength(2);
    expect(page3.body.items).toHaveLength(1);
    expect((await api.get("/api/v1/devices?pageSize=0").set(tenantAuth)).status).toBe(400);
    expect((await api.get("/api/v1/devices?page=abc").set(tenantAuth)).status).toBe(400);
  });

  it("patches only the fields sent, and DELETE deactivates", async () => {
    const created = await api.post("/api/v1/devices").set(auth).send({serialNumber: "TH-PATCH", location: "Lab"});
    const id = created.body.id;
    const renamed = await api.patch(`/api/v1/devices/${id}`).set(auth).send({name: "Freezer"});
    expect(renamed.body).toMatchObject({name: "Freezer", location: "Lab", isActive: true, serialNumber: "TH-PATCH"});
    const cleared = await api.patch(`/api/v1/devices/${id}`).set(auth).send({location: null, serialNumber: "CHANGED"});
    expect(cleared.body).toMatchObject({location: null, serialNumber: "TH-PATCH"});

    expect((await api.delete(`/api/v1/devices/${id}`).set(auth)).status).toBe(204);
    expect((await api.delete(`/api/v1/devices/${id}`).set(auth)).status).toBe(204);
    const after = await api.get(`/api/v1/devices/${id}`).set(auth);
    expect(after.body.isActive).toBe(false);
    const list = await api.get("/api/v1/devices?pageSize=100").set(auth);
    expect(list.body.items.map((d: {id: string}) => d.id)).not.toContain(id);
  });

  it("answers 404 for an unknown id and 400 for a malformed one", async () => {
    expect((await api.get("/api/v1/devices/6b1f3c1e-0000-4000-8000-000000000000").set(auth)).status).toBe(404);
    const bad = await api.get("/api/v1/devices/1;drop").set(auth);
    expect(bad.status).toBe(400);
  });
});
