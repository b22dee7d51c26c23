import {execFile} from "node:child_process";
import {inject} from "@tsed/common";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {TenantRegistry} from "../../src/platform/tenancy/tenant-registry.repository.js";

/** `npm run tenant -- …`, as an operator runs it (the same node flags as the npm script). */
function tenantCli(...args: string[]): Promise<{status: number | null; output: string}> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "@swc-node/register/esm-register", "src/cli/tenant.ts", ...args],
      {encoding: "utf8", env: process.env, timeout: 60_000},
      (error, stdout, stderr) => {
        resolve({status: error ? (typeof error.code === "number" ? error.code : null) : 0, output: `${stdout}${stderr}`});
      }
    );
  });
}

/** Each CLI run starts node and compiles the CLI's sources: seconds each on a loaded machine. */
const CLI_TEST_TIMEOUT_MS = 180_000;

describe("TENANT_PROVISIONING=registered: only tenants created with `npm run tenant` exist", () => {
  let api: Api;
  let db: pg.Client;
  beforeAll(async () => {
    api = await startTestServer({tenantProvisioning: "registered"});
    db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await stopTestServer();
  });

  const traces = async (tenant: string) => {
    const schema = await db.query("select 1 from information_schema.schemata where schema_name = $1", [tenant]);
    const registered = await db.query("select 1 from public.tenants where id = $1", [tenant]);
    return {schema: schema.rowCount, registered: registered.rowCount};
  };

  it("refuses a valid token of an unregistered tenant with 403 and creates nothing", async () => {
    const tenant = newTenant("unregistered");
    for (const request of [api.get("/api/v1/me"), api.post("/api/v1/devices").send({serialNumber: "X-1"})]) {
      const res = await request.set(await bearer(tenant, {roles: ["admin"]}));
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({status: 403, name: "FORBIDDEN", message: expect.stringMatching(/not registered/)});
    }
    expect(await traces(tenant)).toEqual({schema: 0, registered: 0});
  });

  it(
    "serves a tenant once `npm run tenant -- create` has registered it, with its timezone; a rerun changes nothing",
    async () => {
      const tenant = newTenant("registered");
      const auth = await bearer(tenant, {roles: ["admin"]});
      expect((await api.get("/api/v1/me").set(auth)).status).toBe(403);

      const created = await tenantCli("create", tenant, "--timezone", "Europe/Berlin");
      expect(created.output).toContain(`tenant ${tenant} registered (timezone Europe/Berlin)`);
      expect(created.status).toBe(0);
      expect(await traces(tenant)).toEqual({schema: 1, registered: 1});

      expect((await api.get("/api/v1/me").set(auth)).status).toBe(200);
      expect((await api.get("/api/v1/admin/tenant").set(auth)).body).toMatchObject({id: tenant, timezone: "Europe/Berlin"});

      const again = await tenantCli("create", tenant);
      expect(again.output).toContain("was registered already (timezone Europe/Berlin)");
      expect(again.status).toBe(0);
      // Asking for another timezone on a rerun is refused: that change recomputes statistics, the API does it.
      const otherZone = await tenantCli("create", tenant, "--timezone", "Asia/Tokyo");
      expect(otherZone.status).toBe(1);
      expect(otherZone.output).toContain("PATCH /api/v1/admin/tenant");
      expect((await api.get("/api/v1/admin/tenant").set(auth)).body.timezone).toBe("Europe/Berlin");
    },
    CLI_TEST_TIMEOUT_MS
  );

  it(
    "refuses a bad tenant id or timezone with exit code 2 and its usage, creating nothing",
    async () => {
      const tenant = newTenant("badzone");
      const zone = await tenantCli("create", tenant, "--timezone", "Mars/Olympus");
      expect(zone.status).toBe(2);
      expect(zone.output).toContain("not an IANA timezone");
      expect(await traces(tenant)).toEqual({schema: 0, registered: 0});

      // (Each run starts a node process: two cases here; tenant-id.spec has the id rules.)
      const usages = await Promise.all([tenantCli("create", "Upper_Case"), tenantCli("remove", "building_a")]);
      for (const run of usages) {
        expect(run.status, run.output).toBe(2);
        expect(run.output).toContain("usage: npm run tenant -- create");
      }
    },
    CLI_TEST_TIMEOUT_MS
  );

  it("walks every registered tenant once, in id order, whatever the page size (TenantRegistry.pages)", async () => {
    // Registry rows only (no schemas): nothing but the walk reads them, and they go at the end.
    const added = Array.from({length: 5}, () => newTenant("pages"));
    await db.query(`insert into public.tenants ("id") select unnest($1::text[])`, [added]);
    try {
      const ids = async () => (await db.query<{id: string}>(`select "id" from public.tenants order by "id"`)).rows.map((row) => row.id);
      const all = await ids();
      const known = new Set(all);
      const registry = inject(TenantRegistry);
      for (const size of [1, 2, all.length, all.length + 1]) {
        const walked: string[] = [];
        for await (const page of registry.pages(size)) {
          expect(page.length).toBeGreaterThan(0);
          expect(page.length).toBeLessThanOrEqual(size);
          walked.push(...page.map((tenant) => tenant.id));
        }
        // Other files register (and remove) tenants of their own on this database meanwhile: each
        // tenant once, and every tenant of the start in id order, but for those gone before the walk reached them.
        expect(new Set(walked).size, `page size ${size}`).toBe(walked.length);
        const walkedKnown = walked.filter((id) => known.has(id));
        const present = new Set(await ids());
        expect(walkedKnown, `page size ${size}`).toEqual(all.filter((id) => present.has(id) || walkedKnown.includes(id)));
      }
    } finally {
      await db.query(`delete from public.tenants where "id" = any($1::text[])`, [added]);
    }
  });
});
