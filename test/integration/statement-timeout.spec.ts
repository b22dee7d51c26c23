import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {createDevice} from "../helpers/factories.js";
import {TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";

describe("a statement that outlasts DB_STATEMENT_TIMEOUT_MS", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startTestServer({db: {...loadConfig().db, statementTimeoutMs: 300}});
  });
  afterAll(async () => {
    await stopTestServer();
  });

  it("answers 503 with Retry-After (the database is too busy for it now), not 500", async () => {
    const tenant = newTenant("timeout");
    const auth = await bearer(tenant);
    await createDevice(api, auth, "TIMEOUT-1");
    const db = await new TenantDb(tenant).connect();
    try {
      // The device list waits for this lock until Postgres cancels it.
      await db.query("begin");
      await db.query(`lock table ${db.schema}."devices" in access exclusive mode`);
      const res = await api.get("/api/v1/devices").set(auth);
      expect(res.status).toBe(503);
      expect(res.headers["retry-after"]).toMatch(/^\d+$/);
      expect(res.body).toMatchObject({status: 503, name: "SERVICE_UNAVAILABLE"});
    } finally {
      await db.query("rollback");
      await db.close();
    }
    expect((await api.get("/api/v1/devices").set(auth)).status).toBe(200);
  });
});
