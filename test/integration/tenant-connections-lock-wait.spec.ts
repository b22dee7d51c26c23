import {inject} from "@tsed/common";
import {DriverException} from "@mikro-orm/core";
import type pg from "pg";
import {afterAll, beforeAll, describe, expect, it, vi} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {isLockTimeout} from "../../src/platform/db/sql.js";
import {TenantAffineConnections} from "../../src/platform/db/tenant-affine-connections.js";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";
import {createDevice, createRule} from "../helpers/factories.js";
import {asTenant} from "../helpers/service-context.js";
import {closeDbs, tenantDb} from "../helpers/stats-fixtures.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {lockWaitersOf} from "../helpers/lock-waiters.js";
import {until} from "../helpers/wait.js";

/** The ORM's pool, as pg_stat_activity names its connections. */
const POOL_APPLICATION_NAME = "smart-thermo";

/**
 * A tenant's ingest statement that waits for a lock (its device's rules held by a rule being
 * edited, or by the device's episode-changing transaction) on the one ingest connection every
 * tenant here shares: it gives up after DB_INGEST_LOCK_TIMEOUT_MS and waits on the ORM's pool
 * instead, so the other tenants' statements behind it on that connection are not held up.
 */
describe("an ingest statement waiting for a lock on a tenant-affine connection", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startTestServer({runWorkers: false, db: {...loadConfig().db, ingestConnections: 1, ingestLockTimeoutMs: 50}});
  });
  afterAll(async () => {
    await stopTestServer();
    await closeDbs();
  });

  /** A tenant with a device, and an alert rule on it that 21 °C does not cross. */
  async function tenantWithRule(label: string) {
    const tenant = newTenant(label);
    const auth = await bearer(tenant);
    const deviceId = await createDevice(api, auth, `LOCK-${label}`.toUpperCase());
    const rule = await createRule(api, auth, deviceId, {condition: "above", thresholdCelsius: 90});
    return {tenant, auth, deviceId, ruleId: rule.id};
  }
  const post = (t: {auth: Record<string, string>; deviceId: string}, minutesAgo: number) =>
    api
      .post(`/api/v1/devices/${t.deviceId}/readings`)
      .set(t.auth)
      .send({temperatureCelsius: 21, recordedAt: new Date(Date.now() - minutesAgo * 60_000).toISOString()});

  /** Holds the rule's row FOR UPDATE, as an edit of it does, until `body` is done. */
  async function withRuleLocked<T>(t: {tenant: string; ruleId: string}, body: (db: pg.PoolClient) => Promise<T>): Promise<T> {
    const db = await tenantDb().connect();
    try {
      await db.query("begin");
      await db.query(`select 1 from ${quoteTenantSchema(t.tenant)}."alert_rules" where "id" = $1 for update`, [t.ruleId]);
      return await body(db);
    } finally {
      await db.query("rollback").catch(() => undefined);
      db.release();
    }
  }

  it("serves the other tenants of its connection meanwhile, and stores the reading once the lock is released", async () => {
    const [held, other] = [await tenantWithRule("lock_held"), await tenantWithRule("lock_other")];
    // Both connections open and both devices known: the posts below take the group path.
    expect((await post(held, 10)).status).toBe(201);
    expect((await post(other, 10)).status).toBe(201);

    // Sent while the rules are locked, answered once they are released (after withRuleLocked).
    let heldPost!: Promise<{status: number}>;
    await withRuleLocked(held, async (db) => {
      heldPost = post(held, 5).then((res) => res);
      await until("the held tenant's statement waiting for its rules", async () => (await lockWaitersOf(db, held.tenant)).length > 0);
      // Another tenant's post, on the same ingest connection, is answered while the rules stay locked.
      const otherAnswer = await Promise.race([
        post(other, 5),
        new Promise<"still waiting">((resolve) => setTimeout(resolve, 3_000, "still waiting"))
      ]);
      expect(otherAnswer).not.toBe("still waiting");
      expect(otherAnswer).toMatchObject({status: 201});
      // The held statement gave up on the shared connection, and waits on the ORM's pool instead.
      await until(
        "the held statement waiting on the pool",
        async () => (await lockWaitersOf(db, held.tenant)).join() === POOL_APPLICATION_NAME
      );
    });
    expect((await heldPost).status).toBe(201);
    const {rows} = await tenantDb().query(`select count(*)::int as "n" from ${quoteTenantSchema(held.tenant)}."temperature_readings"`);
    expect(rows[0]!.n).toBe(2);
  });

  it("fails only the statement that gave up on the lock, once, and commits the others of its transaction alone", async () => {
    const [held, other] = [await tenantWithRule("lock_group_held"), await tenantWithRule("lock_group_other")];
    const connections = inject(TenantAffineConnections);
    const waitsForRules = `select 1 as "x" from ${quoteTenantSchema(held.tenant)}."alert_rules" where "id" = :ruleId::uuid for share`;
    const stored = `insert into ${quoteTenantSchema(other.tenant)}."temperature_readings" ("device_id", "temperature_celsius", "recorded_at")
                    values (:deviceId::uuid, 21, now()) returning "id"::text as "id"`;
    // The one connection's client (TenantAffineConnections' own, private), opened by a first statement.
    await asTenant(other.tenant, () => connections.queryRows(other.tenant, `select 1 as "x"`, {}, {prepare: false}));
    const {client} = await (connections as unknown as {slots: {ingest: {connection: Promise<{client: pg.Client}>}[]}}).slots.ingest[0]!
      .connection;
    const sent = vi.spyOn(client, "query");
    try {
      const outcomes = await withRuleLocked(held, () =>
        // Submitted in one tick: one transaction, which the held statement's lock timeout aborts.
        Promise.allSettled([
          asTenant(held.tenant, () => connections.queryRows(held.tenant, waitsForRules, {ruleId: held.ruleId})),
          asTenant(other.tenant, () => connections.queryRows(other.tenant, stored, {deviceId: other.deviceId}))
        ])
      );
      expect(outcomes.map((outcome) => outcome.status)).toEqual(["rejected", "fulfilled"]);
      const reason = (outcomes[0] as PromiseRejectedResult).reason;
      // Converted as on the ORM's pool (MikroORM has no class of its own for 55P03).
      expect(reason).toBeInstanceOf(DriverException);
      expect((reason as Error).message).toMatch(/lock timeout/);
      expect(isLockTimeout(reason)).toBe(true);
      // One transaction for both (one BEGIN), which the lock timeout aborted.
      expect(sent.mock.calls.filter(([config]) => config === "begin").length).toBe(1);
      // Sent once: not again alone, where it would have held the connection as long once more.
      expect(sent.mock.calls.filter(([config]) => JSON.stringify(config).includes("for share")).length).toBe(1);
      const {rows} = await tenantDb().query(`select count(*)::int as "n" from ${quoteTenantSchema(other.tenant)}."temperature_readings"`);
      expect(rows[0]!.n).toBe(1);
    } finally {
      sent.mockRestore();
    }
  });
});
