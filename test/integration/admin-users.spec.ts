import {randomUUID} from "node:crypto";
import {PlatformTest} from "@tsed/common";
import pg from "pg";
import {afterAll, afterEach, beforeAll, describe, expect, it, vi} from "vitest";
import {CALLER_USER_TTL_MS, CallerUsers, USER_FEED_POLL_MS} from "../../src/modules/users/caller-users.js";
import {UserRepository} from "../../src/modules/users/user.repository.js";
import type {ChangeFeed} from "../../src/platform/db/change-feed.js";
import {playRace, pollFromNow, raceOrders} from "../helpers/feed-race.js";
import {checkProperty} from "../helpers/property.js";
import {asTenant} from "../helpers/service-context.js";
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
  afterEach(() => vi.restoreAllMocks());
  /** The users' change feed of this instance's CallerUsers. */
  const callersFeed = () => (PlatformTest.get<CallerUsers>(CallerUsers) as unknown as {feed: ChangeFeed}).feed;

  /** Polls `probe` every 100 ms for up to 6 s; the ms it took to return true, or undefined. */
  async function msUntil(probe: () => Promise<boolean>): Promise<number | undefined> {
    const since = Date.now();
    while (Date.now() - since < 6_000) {
      if (await probe()) return Date.now() - since;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return undefined;
  }

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
    // His creation's notice first: the deletion alone, not the creation's poll, must lock him out.
    await pollFromNow(callersFeed());
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
    // The users' change feed names him at its next poll (a second), well before the 5 s.
    expect(lockedOutAfter!).toBeLessThanOrEqual(USER_FEED_POLL_MS + 1_000);
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

  it("reuses a caller's row past the old 4 s while the feed answers, and shows a row changed in SQL within the feed's poll", async () => {
    const fay = await bearer(tenant, {sub: "fay", claims: {name: "Fay"}});
    expect((await api.get("/api/v1/me").set(fay)).body.displayName).toBe("Fay");
    // Her creation is a change too: the feed names it at its next poll, and the row is read once more.
    await pollFromNow(callersFeed());
    expect((await api.get("/api/v1/me").set(fay)).status).toBe(200);
    const reads = vi.spyOn(PlatformTest.get<UserRepository>(UserRepository), "findSnapshotBySubject");
    await new Promise((resolve) => setTimeout(resolve, CALLER_USER_TTL_MS + 500));
    expect((await api.get("/api/v1/me").set(fay)).status).toBe(200);
    expect(reads, "the row is not read again while the feed says nothing of it").not.toHaveBeenCalled();

    await db.query(`update "${tenant}".users set display_name = 'Fay Renamed' where subject = 'fay'`);
    const shownAfter = await msUntil(async () => (await api.get("/api/v1/me").set(fay)).body.displayName === "Fay Renamed");
    expect(shownAfter).toBeDefined();
    expect(shownAfter!).toBeLessThanOrEqual(USER_FEED_POLL_MS + 1_000);
  });

  it("still locks a deleted user out within 5 s while the feed does not answer", async () => {
    const gus = await bearer(tenant, {sub: "gus"});
    const row = (await api.get("/api/v1/me").set(gus)).body;
    // The feed's statement made to fail, as an unreachable or stalled Postgres would make it.
    const feed = callersFeed() as unknown as {options: {sql: string}};
    const sql = feed.options.sql;
    feed.options.sql = "select 1 / 0";
    try {
      await db.query(`update "${tenant}".users set deleted_at = now() where id = $1`, [row.id]);
      const lockedOutAfter = await msUntil(async () => (await api.get("/api/v1/me").set(gus)).status === 403);
      expect(lockedOutAfter).toBeDefined();
      expect(lockedOutAfter!).toBeLessThanOrEqual(5_000);
    } finally {
      feed.options.sql = sql;
    }
  });

  it("answers a changed row after the next poll, whatever the order of a read, the change and the polls (race property)", async () => {
    await asTenant(tenant, async () => undefined); // the schema, when this test runs alone
    const callers = PlatformTest.get<CallerUsers>(CallerUsers);
    const feed = callersFeed();
    await checkProperty(
      "a read raced by a change is not kept past the poll that names the change",
      raceOrders,
      async (order) => {
        const subject = `race-${randomUUID()}`;
        await db.query(
          `insert into "${tenant}".users (id, subject, display_name, created_at, updated_at) values ($1, $2, 'before', now(), now())`,
          [randomUUID(), subject]
        );
        await pollFromNow(feed); // the creation's notice comes before this case's read
        await playRace(order, {
          feed,
          reader: PlatformTest.get<UserRepository>(UserRepository),
          query: "findSnapshotBySubject",
          read: () => asTenant(tenant, () => callers.find(tenant, subject)),
          change: () => db.query(`update "${tenant}".users set display_name = 'after' where subject = $1`, [subject])
        });
        expect((await asTenant(tenant, () => callers.find(tenant, subject)))?.displayName).toBe("after");
      },
      {searchMs: 5_000, minRuns: 12, maxRuns: 60}
    );
  });
});
