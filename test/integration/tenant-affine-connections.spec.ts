import {inject} from "@tsed/common";
import {DriverException} from "@mikro-orm/core";
import type {EntityManager} from "@mikro-orm/postgresql";
import {MikroOrmRegistry} from "@tsed/mikro-orm";
import type pg from "pg";
import {Socket} from "node:net";
import {afterAll, beforeAll, describe, expect, it, vi} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {ReadingService} from "../../src/modules/readings/reading.service.js";
import {
  TENANT_AFFINE_APPLICATION_NAME,
  TENANT_READS_APPLICATION_NAME,
  TenantAffineConnections
} from "../../src/platform/db/tenant-affine-connections.js";
import {lostBackendOf, mayHaveCommitted} from "../../src/platform/db/lost-connection.js";
import {isStalePreparedPlan, queryRows} from "../../src/platform/db/sql.js";
import {DEFAULT_CONTEXT} from "../../src/platform/db/orm-contexts.js";
import {TenantContext} from "../../src/platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";
import {createDevice, createRule} from "../helpers/factories.js";
import {closeDbs, tenantDb} from "../helpers/stats-fixtures.js";
import {asTenant} from "../helpers/service-context.js";
import {startTestServer, stopTestServer, type Api} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {lockWaitersOf} from "../helpers/lock-waiters.js";
import {until} from "../helpers/wait.js";

const CONNECTIONS = 3;
const PREPARED_PER_CONNECTION = 2;
const READ_CONNECTIONS = 2;
const READS_PREPARED_PER_CONNECTION = 2;

/**
 * The group ingest statement's own connections (TenantAffineConnections), and GET latest's: each
 * tenant always on the same one, a bounded number of prepared statements per connection, a read
 * never behind a write, a connection that dies replaced, Postgres' errors converted as on the
 * ORM's pool.
 */
describe("tenant-affine ingest connections", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startTestServer({
      runWorkers: false,
      db: {
        ...loadConfig().db,
        ingestConnections: CONNECTIONS,
        ingestPreparedPerConnection: PREPARED_PER_CONNECTION,
        // Tests below tell where a write runs by the connection on which it waits for a lock: there
        // it waits, rather than moving to the ORM's pool (tenant-connections-lock-wait.spec.ts).
        ingestLockTimeoutMs: 0,
        readConnections: READ_CONNECTIONS,
        readsPreparedPerConnection: READS_PREPARED_PER_CONNECTION
      }
    });
  });
  afterAll(async () => {
    await stopTestServer();
    await closeDbs();
  });

  /** Runs `sql` on the tenant's affine connection, unprepared (the probes must not spend the budget they check). */
  const onConnectionOf = <T>(tenant: string, sql: string, bindings: Record<string, unknown> = {}) =>
    asTenant(tenant, () => inject(TenantAffineConnections).queryRows<T>(tenant, sql, bindings, {prepare: false}));
  const backendOf = async (tenant: string) => (await onConnectionOf<{pid: number}>(tenant, `select pg_backend_pid() as "pid"`))[0]!.pid;

  it("runs prepared statements again at once after a migration changed the type of a column they return, on a new connection", async () => {
    // Connections of their own, with their budgets unspent by the tests around.
    const connections = new TenantAffineConnections();
    const tenant = newTenant("affine_retype");
    const schema = quoteTenantSchema(tenant);
    const auth = await bearer(tenant);
    const deviceId = await createDevice(api, auth, "AFFINE-RETYPE");
    // Stored directly: through the API, the tenant's ingest statement would take a place in the
    // budget of the connections the tests below count.
    await tenantDb().query(
      `insert into ${schema}."temperature_readings" ("device_id", "temperature_celsius", "humidity", "recorded_at") values ($1, 4.5, 40, now())`,
      [deviceId]
    );
    // One text, prepared on the tenant's ingest connection, on its read connection and on the ORM's pool (queryRows).
    const humiditySql = `select "humidity" from ${schema}."temperature_readings" where "device_id" = :deviceId`;
    const onIngest = () => connections.queryRows<{humidity: number}>(tenant, humiditySql, {deviceId});
    const onReads = () => connections.readRows<{humidity: number}>(tenant, humiditySql, {deviceId});
    const orm = inject(MikroOrmRegistry).get(DEFAULT_CONTEXT)!;
    const onPool = (em = orm.em.fork()) => queryRows<{humidity: number}>(em as EntityManager, humiditySql, {deviceId}, {prepare: true});
    /** The backend of the tenant's connection, and whether the text is prepared there. */
    const probe = async (run: (sql: string) => Promise<{pid: number; prepared: boolean}[]>) =>
      (
        await run(
          `select pg_backend_pid() as "pid", exists (select from pg_prepared_statements where statement like 'select "humidity" from ${schema}%') as "prepared"`
        )
      )[0]!;
    try {
      for (const run of [onIngest, onReads, onPool]) expect(await run()).toEqual([{humidity: 40}]);
      const ingestBefore = await probe((sql) => connections.queryRows(tenant, sql, {}, {prepare: false}));
      const readsBefore = await probe((sql) => connections.readRows(tenant, sql, {}, {prepare: false}));
      expect([ingestBefore.prepared, readsBefore.prepared]).toEqual([true, true]);

      // Postgres refuses to run a prepared statement whose result's row type changed: "cached plan
      // must not change result type" (0A000), on every execution, until the statement is made anew.
      await tenantDb().query(`alter table ${schema}."temperature_readings" alter column "humidity" type real`);

      for (let i = 0; i < 2; i++) for (const run of [onIngest, onReads, onPool]) expect(await run()).toEqual([{humidity: 40}]);
      const ingestAfter = await probe((sql) => connections.queryRows(tenant, sql, {}, {prepare: false}));
      const readsAfter = await probe((sql) => connections.readRows(tenant, sql, {}, {prepare: false}));
      expect([ingestAfter.prepared, readsAfter.prepared]).toEqual([true, true]);
      expect(ingestAfter.pid).not.toBe(ingestBefore.pid);
      expect(readsAfter.pid).not.toBe(readsBefore.pid);
      // On the pool, inside a transaction, the transaction fails once (for the RetryStrategy to run it again); then it runs.
      await tenantDb().query(`alter table ${schema}."temperature_readings" alter column "humidity" type float8`);
      await expect(orm.em.fork().transactional((em) => onPool(em))).rejects.toSatisfy(isStalePreparedPlan);
      expect(await orm.em.fork().transactional((em) => onPool(em))).toEqual([{humidity: 40}]);
    } finally {
      await connections.$onDestroy();
    }
  });

  it("sends a tenant's statements always to the same connection, and spreads the tenants over all of them", async () => {
    // 30 random tenants leave one of 3 connections without any once in 60,000 runs.
    const tenants = Array.from({length: 30}, () => newTenant("affine"));
    const first = new Map<string, number>();
    for (const tenant of tenants) first.set(tenant, await backendOf(tenant));
    // Again, concurrently this time: still each on its own backend.
    const again = await Promise.all(tenants.map((tenant) => backendOf(tenant)));
    expect(again).toEqual(tenants.map((tenant) => first.get(tenant)));
    const backends = [...new Set(first.values())];
    expect(backends).toHaveLength(CONNECTIONS);
    // They are the ingest connections, not the ORM's pool. (Not a count of every such connection:
    // other files' servers keep theirs on the same database.)
    const {rows} = await tenantDb().query<{pid: number}>(
      `select "pid" from pg_stat_activity where application_name = $1 and "pid" = any($2)`,
      [TENANT_AFFINE_APPLICATION_NAME, backends]
    );
    expect(rows.map((row) => row.pid).sort()).toEqual([...backends].sort());
  });

  it("writes the group statement of single readings there, prepared until the connection's budget is spent", async () => {
    const tenants = Array.from({length: 8}, () => newTenant("affine_ingest"));
    const byBackend = new Map<number, string[]>();
    for (const tenant of tenants) {
      const deviceId = await createDevice(api, await bearer(tenant), "AFFINE-1");
      await asTenant(tenant, () =>
        inject(ReadingService).ingest({
          tenantId: tenant,
          deviceId,
          readings: [{temperatureCelsius: 21, humidity: null, batteryLevel: null, recordedAt: new Date(Date.now() - 60_000)}],
          single: true
        })
      );
      const pid = await backendOf(tenant);
      byBackend.set(pid, [...(byBackend.get(pid) ?? []), tenant]);
    }
    for (const [pid, mine] of byBackend) {
      const [{prepared}] = (await onConnectionOf<{prepared: string[]}>(
        mine[0]!,
        `select coalesce(array_agg(statement), '{}') as "prepared" from pg_prepared_statements`
      )) as [{prepared: string[]}];
      // Each tenant's statement is its own text: prepared for the connection's first tenants only.
      expect(prepared, `backend ${pid}`).toHaveLength(Math.min(mine.length, PREPARED_PER_CONNECTION));
      for (const text of prepared) expect(text).toMatch(/insert into "test_affine_ingest_[^"]+"\."temperature_readings"/);
    }
    expect(Math.max(...[...byBackend.values()].map((mine) => mine.length))).toBeGreaterThan(PREPARED_PER_CONNECTION);
    // Eight tenants over three connections of two: at least one connection holds a tenant past its budget, still written.
    const stored: (number | null)[] = [];
    for (const tenant of tenants)
      stored.push((await tenantDb().query(`select 1 from ${quoteTenantSchema(tenant)}."temperature_readings"`)).rowCount);
    expect(stored).toEqual(tenants.map(() => 1));
  });

  /** Runs `sql` on the tenant's read connection, unprepared. */
  const onReadConnectionOf = <T>(tenant: string, sql: string) =>
    asTenant(tenant, () => inject(TenantAffineConnections).readRows<T>(tenant, sql, {}, {prepare: false}));

  it("reads GET latest on connections of its own, each tenant on one, prepared until their budget is spent", async () => {
    // Tenants until every read connection has three: past its budget of two.
    const byBackend = new Map<number, string[]>();
    while (byBackend.size < READ_CONNECTIONS || [...byBackend.values()].some((mine) => mine.length < 3)) {
      const tenant = newTenant("affine_reads");
      const [{pid}] = (await onReadConnectionOf<{pid: number}>(tenant, `select pg_backend_pid() as "pid"`)) as [{pid: number}];
      byBackend.set(pid, [...(byBackend.get(pid) ?? []), tenant]);
    }
    expect(byBackend.size).toBe(READ_CONNECTIONS);
    const recordedAt = new Date(Date.now() - 60_000);
    for (const tenant of [...byBackend.values()].flat()) {
      const auth = await bearer(tenant);
      const deviceId = await createDevice(api, auth, "AFFINE-READS");
      await asTenant(tenant, () =>
        inject(ReadingService).ingest({
          tenantId: tenant,
          deviceId,
          readings: [{temperatureCelsius: 4.5, humidity: null, batteryLevel: null, recordedAt}],
          single: true
        })
      );
      const latest = await api.get(`/api/v1/devices/${deviceId}/readings/latest`).set(auth);
      expect(latest.status).toBe(200);
      expect(latest.body).toMatchObject({deviceId, temperatureCelsius: 4.5, recordedAt: recordedAt.toISOString()});
    }
    for (const [pid, mine] of byBackend) {
      const [{prepared}] = (await onReadConnectionOf<{prepared: string[]}>(
        mine[0]!,
        `select coalesce(array_agg(statement), '{}') as "prepared" from pg_prepared_statements`
      )) as [{prepared: string[]}];
      expect(prepared, `backend ${pid}`).toHaveLength(READS_PREPARED_PER_CONNECTION);
      for (const text of prepared) expect(text).toMatch(/^select h\.\* from "test_affine_reads_[^"]+"\."devices"/);
    }
    const {rows} = await tenantDb().query<{pid: number}>(
      `select "pid" from pg_stat_activity where application_name = $1 and "pid" = any($2)`,
      [TENANT_READS_APPLICATION_NAME, [...byBackend.keys()]]
    );
    expect(rows).toHaveLength(READ_CONNECTIONS);
  });

  it("is bypassed inside a transaction, where a statement must see what the transaction wrote (TenantContext.inTransaction)", async () => {
    const tenant = newTenant("affine_tx");
    await asTenant(tenant, async () => {
      const context = inject(TenantContext);
      expect(context.inTransaction).toBe(false);
      // A transaction of a manager other than the request's (which is not even forked yet)...
      const orm = inject(MikroOrmRegistry).get(DEFAULT_CONTEXT)!;
      await orm.em.fork({disableContextResolution: true}).transactional(async () => expect(context.inTransaction).toBe(true));
      // ...and one of the request's own.
      await context.em.transactional(async () => expect(context.inTransaction).toBe(true));
      expect(context.inTransaction).toBe(false);
    });
  });

  it("answers GET latest while a write of the same tenant waits for a lock on its ingest connection", async () => {
    const tenant = newTenant("affine_read_lock");
    const auth = await bearer(tenant);
    const deviceId = await createDevice(api, auth, "AFFINE-READ-LOCK");
    const rule = await createRule(api, auth, deviceId, {condition: "above", thresholdCelsius: 90});
    const reading = (minutesAgo: number) => ({
      temperatureCelsius: 21,
      humidity: null,
      batteryLevel: null,
      recordedAt: new Date(Date.now() - minutesAgo * 60_000)
    });
    const first = reading(10);
    await asTenant(tenant, () => inject(ReadingService).ingest({tenantId: tenant, deviceId, readings: [first], single: true}));
    const db = await tenantDb().connect();
    try {
      await db.query("begin");
      await db.query(`select 1 from ${quoteTenantSchema(tenant)}."alert_rules" where "id" = $1 for update`, [rule.id]);
      const write = asTenant(tenant, () =>
        inject(ReadingService).ingest({tenantId: tenant, deviceId, readings: [reading(5)], single: true})
      );
      expect(await lockWaiterOf(db, tenant)).toBe(TENANT_AFFINE_APPLICATION_NAME);
      const answered = await Promise.race([
        api.get(`/api/v1/devices/${deviceId}/readings/latest`).set(auth),
        new Promise<"still waiting">((resolve) => setTimeout(() => resolve("still waiting"), 3_000))
      ]);
      expect(answered).not.toBe("still waiting");
      expect(answered).toMatchObject({status: 200, body: {recordedAt: first.recordedAt.toISOString()}});
      await db.query("rollback");
      await write;
    } finally {
      await db.query("rollback").catch(() => undefined);
      db.release();
    }
  });

  /** The connection (its application_name) on which a statement of the tenant waits for a lock on its rules, once one does. */
  const lockWaiterOf = (db: pg.PoolClient, tenant: string) =>
    until("a statement of the tenant waiting for a lock", async () => (await lockWaitersOf(db, tenant))[0]);

  it("takes a group there, but a batch larger than a group to the ORM's pool (one tenant's big batches run side by side)", async () => {
    const tenant = newTenant("affine_route");
    const auth = await bearer(tenant);
    const deviceId = await createDevice(api, auth, "AFFINE-ROUTE");
    const rule = await createRule(api, auth, deviceId, {condition: "above", thresholdCelsius: 90});
    const readings = (count: number, from: number) =>
      Array.from({length: count}, (_, i) => ({
        temperatureCelsius: 21,
        humidity: null,
        batteryLevel: null,
        recordedAt: new Date(from + i * 1_000)
      }));
    /** Which connection the write's statement runs on: it waits there for the rule's row, locked meanwhile. */
    const connectionOfWrite = async (batch: ReturnType<typeof readings>) => {
      // One connection of the pool for the transaction holding the lock.
      const db = await tenantDb().connect();
      try {
        await db.query("begin");
        await db.query(`select 1 from ${quoteTenantSchema(tenant)}."alert_rules" where "id" = $1 for update`, [rule.id]);
        const write = asTenant(tenant, () =>
          inject(ReadingService).ingest({tenantId: tenant, deviceId, readings: batch, single: batch.length === 1})
        );
        const waiting = await lockWaiterOf(db, tenant);
        await db.query("rollback");
        await write;
        return waiting;
      } finally {
        db.release();
      }
    };
    const now = Date.now();
    expect(await connectionOfWrite(readings(1, now - 3_600_000))).toBe(TENANT_AFFINE_APPLICATION_NAME);
    expect(await connectionOfWrite(readings(600, now - 7_200_000))).toBe("smart-thermo");
  });

  /** `n` tenants whose statements share one connection. */
  async function tenantsOnOneConnection(n: number): Promise<string[]> {
    const byBackend = new Map<number, string[]>();
    for (;;) {
      const tenant = newTenant("affine_group");
      const pid = await backendOf(tenant);
      const mine = [...(byBackend.get(pid) ?? []), tenant];
      if (mine.length === n) return mine;
      byBackend.set(pid, mine);
    }
  }

  describe("statements that meet on a connection", () => {
    beforeAll(() => tenantDb().query(`create table if not exists "public"."affine_probe" ("tenant" text, "xid" xid8)`));
    afterAll(() => tenantDb().query(`drop table if exists "public"."affine_probe"`));

    /** Inserts a probe row through the tenant's connection, as one statement of a group; its transaction id. */
    const probe = (tenant: string) =>
      asTenant(tenant, () =>
        inject(TenantAffineConnections).queryRows<{xid: string}>(
          tenant,
          `insert into "public"."affine_probe" ("tenant", "xid") values (:tenant, pg_current_xact_id()) returning "xid"::text as "xid"`,
          {tenant}
        )
      );
    /** The socket of the ingest connection a tenant's statements go to (TenantAffineConnections' own, private). */
    const ingestSocketOf = async (tenant: string): Promise<Socket> => {
      const connections = inject(TenantAffineConnections) as unknown as {
        slotOf(tenantId: string, count: number): number;
        slots: {ingest: {connection: Promise<{client: {connection: {stream: Socket}}}>}[]};
      };
      const slot = connections.slots.ingest[connections.slotOf(tenant, CONNECTIONS)]!;
      return (await slot.connection).client.connection.stream;
    };
    const committed = async (tenants: string[]) =>
      (await tenantDb().query(`select "tenant" from "public"."affine_probe" where "tenant" = any($1)`, [tenants])).rowCount;

    it("are committed together, in one transaction", async () => {
      const tenants = await tenantsOnOneConnection(4);
      // The writes to the socket of their connection (opened already: tenantsOnOneConnection probed it).
      const socket = await ingestSocketOf(tenants[0]!);
      const writes = [vi.spyOn(socket, "_write"), vi.spyOn(socket, "_writev")];
      // Submitted in one tick: the first opens the connection's next transaction, the others join it.
      const results = await Promise.all(tenants.map((tenant) => probe(tenant)));
      expect(new Set(results.map(([row]) => row!.xid)).size).toBe(1);
      expect(await committed(tenants)).toBe(4);
      // BEGIN, the four statements and COMMIT in one write: one round trip, one system call.
      expect(writes.reduce((sum, spy) => sum + spy.mock.calls.length, 0)).toBe(1);
    });

    it("each get their own outcome when one of them fails: the others commit, alone", async () => {
      const tenants = await tenantsOnOneConnection(4);
      const failing = tenants[1]!;
      const outcomes = await Promise.allSettled(
        tenants.map((tenant) =>
          tenant === failing
            ? asTenant(tenant, () => inject(TenantAffineConnections).queryRows(tenant, `select 1 / :zero::int as "x"`, {zero: 0}))
            : probe(tenant)
        )
      );
      expect(outcomes.map((outcome) => outcome.status)).toEqual(tenants.map((tenant) => (tenant === failing ? "rejected" : "fulfilled")));
      expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(DriverException);
      expect(await committed(tenants)).toBe(3);
    });

    it("fails every statement of a transaction whose connection is lost under it as of unknown outcome, naming its backend", async () => {
      const tenants = await tenantsOnOneConnection(4);
      const backend = await backendOf(tenants[0]!);
      const killer = tenants[2]!;
      const outcomes = await Promise.allSettled(
        tenants.map((tenant) =>
          tenant === killer
            ? asTenant(tenant, () => inject(TenantAffineConnections).queryRows(tenant, `select pg_terminate_backend(pg_backend_pid())`, {}))
            : probe(tenant)
        )
      );
      // Those answered before the session ended too: whether their transaction committed is unknown.
      expect(outcomes.map((outcome) => outcome.status)).toEqual(tenants.map(() => "rejected"));
      for (const outcome of outcomes) {
        const reason = (outcome as PromiseRejectedResult).reason;
        expect(mayHaveCommitted(reason), String(reason)).toBe(true);
        expect(lostBackendOf(reason)?.pid).toBe(backend);
      }
      expect(await committed(tenants)).toBe(0);
    });
  });

  it("replaces a connection whose backend was terminated, and converts Postgres' errors as the ORM does", async () => {
    const tenant = newTenant("affine_kill");
    const before = await backendOf(tenant);
    await tenantDb().query(`select pg_terminate_backend($1)`, [before]);
    // The next statement may meet the dead connection once (a 503 for a request); the one after runs on a new backend.
    const after = await backendOf(tenant).catch(() => backendOf(tenant));
    expect(after).not.toBe(before);
    await expect(onConnectionOf(tenant, `select 1 / :zero::int as "x"`, {zero: 0})).rejects.toBeInstanceOf(DriverException);
  });
});
