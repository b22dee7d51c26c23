import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {CALLER_USER_TTL_MS} from "../../src/modules/users/caller-users.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

describe("admin: users (soft delete)", () => {
  let api: Api;
  let db: pg.Client;
  const tenant = newTenant("users");
  beforeAll(async () => {
    api = await startTestServer();
    db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await stopTestServer();
  });

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

  it("erases the deleted user's e-mail and name, and keeps its row and subject for audit", async () => {
    const admin = await bearer(tenant, {roles: ["admin"]});
    const carol = await bearer(tenant, {sub: "carol", claims: {email: "carol@example.test", name: "Carol Example"}});
    const row = (await api.get("/api/v1/me").set(carol)).body;
    expect(row).toMatchObject({email: "carol@example.test", displayName: "Carol Example"});
    expect((await api.delete(`/api/v1/admin/users/${row.id}`).set(admin)).status).toBe(204);

    const stored = await db.query(`select subject, email, display_name, deleted_at from "${tenant}".users where id = $1`, [row.id]);
    expect(stored.rows).toEqual([{subject: "carol", email: null, display_name: null, deleted_at: expect.any(Date)}]);
    const audit = (await api.get("/api/v1/admin/users?withDeleted=true").set(admin)).body.find((u: {id: string}) => u.id === row.id);
    expect(audit).toMatchObject({subject: "carol", email: null, displayName: null});
  });

  it("locks a user deleted by another instance out of every route within 5 s", async () => {
    const dave = await bearer(tenant, {sub: "dave", roles: ["admin"]});
    const row = (await api.get("/api/v1/me").set(dave)).body;
    const deviceId = (await api.post("/api/v1/devices").set(dave).send({serialNumber: "DAVE-1"})).body.id;
    // This instance has just seen dave as a live user; another instance deletes him (its
    // deletion cannot reach this instance's cache, only the database).
    expect((await api.get(`/api/v1/devices/${deviceId}`).set(dave)).status).toBe(200);
    await db.query(`update "${tenant}".users set deleted_at = now(), email = null, display_name = null where id = $1`, [row.id]);
    const deletedAt = Date.now();

    let lockedOutAfter: number | undefined;
    while (Date.now() - deletedAt < 6_000) {
      const res = await api.get(`/api/v1/devices/${deviceId}`).set(dave);
      if (res.status === 403) {
        lockedOutAfter = Date.now() - deletedAt;
        expect(res.body).toMatchObject({status: 403, name: "FORBIDDEN"});
        break;
      }
      expect(res.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(lockedOutAfter).toBeDefined();
    expect(lockedOutAfter!).toBeLessThanOrEqual(CALLER_USER_TTL_MS + 500);
    // And on every other kind of route: admin, write, read.
    expect((await api.get("/api/v1/admin/users").set(dave)).status).toBe(403);
    expect(
      (
        await api
          .post(`/api/v1/devices/${deviceId}/readings`)
          .set(dave)
          .send({temperatureCelsius: 20, recordedAt: new Date().toISOString()})
      ).status
    ).toBe(403);
    expect((await api.delete(`/api/v1/devices/${deviceId}`).set(dave)).status).toBe(403);
  });

  it("locks a user out at once on the instance that deleted it", async () => {
    const admin = await bearer(tenant, {roles: ["admin"]});
    const erin = await bearer(tenant, {sub: "erin", roles: ["operator"]});
    const row = (await api.get("/api/v1/me").set(erin)).body;
    expect((await api.get("/api/v1/devices").set(erin)).status).toBe(200);
    expect((await api.delete(`/api/v1/admin/users/${row.id}`).set(admin)).status).toBe(204);
    expect((await api.get("/api/v1/devices").set(erin)).status).toBe(403);
  });
});
