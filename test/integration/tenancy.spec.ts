import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {countStatements} from "../helpers/sql-statements.js";
import {loadConfig} from "../../src/config/app-config.js";
import {migrateTenantSchema} from "../../src/platform/tenancy/tenant-migrator.js";

describe("tenancy", () => {
  let api: Api;
  let db: pg.Client;
  beforeAll(async () => {
    api = await startTestServer();
    db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await stopTestServer();
  });

  it("creates the tenant's schema, named exactly its id, and registers it on first use", async () => {
    const tenant = newTenant("prov");
    expect((await api.get("/api/v1/me").set(await bearer(tenant))).status).toBe(200);
    const schema = await db.query("select 1 from information_schema.schemata where schema_name = $1", [tenant]);
    expect(schema.rowCount).toBe(1);
    // Tables, not the monthly partitions of temperature_readings (readings-partitions.spec.ts checks those).
    const tables = await db.query(
      "select c.relname as table_name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition order by 1",
      [tenant]
    );
    expect(tables.rows.map((r) => r.table_name)).toEqual([
      "alert_rules",
      "alerts",
      "devices",
      "events",
      "mikro_orm_migrations",
      "silences",
      "temperature_readings",
      "users",
      "webhook_attempts",
      "webhook_deliveries",
      "webhook_endpoints"
    ]);
    const registry = await db.query("select timezone from public.tenants where id = $1", [tenant]);
    expect(registry.rows).toEqual([{timezone: "UTC"}]);
  });

  it("migrates a tenant without listing the other tenants' tables (which another process may be dropping)", async () => {
    const tenant = newTenant("scoped");
    const {result, statements} = await countStatements(() => migrateTenantSchema(loadConfig(), tenant));
    expect(result.length).toBeGreaterThan(3);
    // MikroORM's own check for its migrations table lists every table of the database.
    expect(statements.filter((sql) => /from information_schema\.tables/i.test(sql))).toEqual([]);
    expect(statements.some((sql) => sql.includes(`create table if not exists "${tenant}"."mikro_orm_migrations"`))).toBe(true);
    // A second run finds the table and nothing to apply.
    expect(await migrateTenantSchema(loadConfig(), tenant)).toEqual([]);
  });

  it("provisions two new tenants requested concurrently, each many times", async () => {
    const tenants = [newTenant("race"), newTenant("race")];
    const responses = await Promise.all(
      tenants.flatMap((tenant) => Array.from({length: 6}, async () => api.get("/api/v1/me").set(await bearer(tenant, {sub: "same-user"}))))
    );
    expect(responses.map((r) => r.status)).toEqual(Array(12).fill(200));
    for (const tenant of tenants) {
      const users = await db.query(`select count(*)::int as n from "${tenant}".users`);
      expect(users.rows[0].n).toBe(1);
      const migrations = await db.query(`select count(*)::int as n from "${tenant}".mikro_orm_migrations`);
      expect(migrations.rows[0].n).toBeGreaterThan(0);
    }
  });

  it("keeps tenant A's devices invisible to tenant B (list, get, patch, delete → 404)", async () => {
    const a = newTenant("a");
    const b = newTenant("b");
    const created = await api
      .post("/api/v1/devices")
      .set(await bearer(a))
      .send({serialNumber: "SHARED-1"});
    expect(created.status).toBe(201);
    const id = created.body.id;
    const asB = await bearer(b);

    const list = await api.get("/api/v1/devices").set(asB);
    expect(list.body).toMatchObject({items: [], total: 0});
    expect((await api.get(`/api/v1/devices/${id}`).set(asB)).status).toBe(404);
    expect((await api.patch(`/api/v1/devices/${id}`).set(asB).send({name: "stolen"})).status).toBe(404);
    expect((await api.delete(`/api/v1/devices/${id}`).set(asB)).status).toBe(404);
    // The same serial number is free in another tenant.
    expect((await api.post("/api/v1/devices").set(asB).send({serialNumber: "SHARED-1"})).status).toBe(201);

    const still = await api.get(`/api/v1/devices/${id}`).set(await bearer(a));
    expect(still.body).toMatchObject({name: "Sensor-SHARED-1", isActive: true});
  });
});
