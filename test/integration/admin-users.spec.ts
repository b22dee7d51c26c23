import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

describe("admin: users (soft delete)", () => {
  let api: Api;
  const tenant = newTenant("users");
  beforeAll(async () => {
    api = await startTestServer();
  });
  afterAll(stopTestServer);

  it("lets only admins list users, and hides soft-deleted ones from every query", async () => {
    const admin = await bearer(tenant, {sub: "admin", roles: ["user", "admin"]});
    const bob = await bearer(tenant, {sub: "bob"});
    await api.get("/api/v1/me").set(admin);
    const bobRow = (await api.get("/api/v1/me").set(bob)).body;
    await api.post("/api/v1/devices").set(bob).send({serialNumber: "BOB-1"});

    expect((await api.get("/api/v1/admin/users").set(bob)).status).toBe(403);
    const listed = await api.get("/api/v1/admin/users").set(admin);
    expect(listed.status).toBe(200);
    expect(listed.body.map((u: {subject: string}) => u.subject).sort()).toEqual(["admin", "bob"]);

    expect((await api.delete(`/api/v1/admin/users/${bobRow.id}`).set(admin)).status).toBe(204);
    const after = await api.get("/api/v1/admin/users").set(admin);
    expect(after.body.map((u: {subject: string}) => u.subject)).toEqual(["admin"]);
    const audit = await api.get("/api/v1/admin/users?withDeleted=true").set(admin);
    const deleted = audit.body.find((u: {subject: string}) => u.subject === "bob");
    expect(deleted.deletedAt).toBeTruthy();
    // A deleted user's token no longer gets a user row back (nor a new one).
    const me = await api.get("/api/v1/me").set(bob);
    expect(me.status).toBe(403);
    // Their device stays.
    expect((await api.get("/api/v1/devices").set(admin)).body.total).toBe(1);
    expect((await api.delete(`/api/v1/admin/users/${bobRow.id}`).set(admin)).status).toBe(404);
  });
});
