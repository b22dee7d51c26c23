import {setTimeout as sleep} from "node:timers/promises";
import {inject} from "@tsed/common";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import type {Backend} from "../../src/platform/db/lost-connection.js";
import {ANSWER_GRACE_MS, BACKEND_SQL, TenantAffineConnections} from "../../src/platform/db/tenant-affine-connections.js";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";
import {createDevice, provisionedBearer} from "../helpers/factories.js";
import {asTenant} from "../helpers/service-context.js";
import {startPartitionableProxy} from "../helpers/partitionable-proxy.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {newTenant} from "../helpers/tokens.js";
import {until} from "../helpers/wait.js";

const STATEMENT_TIMEOUT_MS = 1_000;

/**
 * The tenant-affine connections (single readings' group statement, GET latest) when the network
 * to Postgres goes silent: no error, no close, just no answer. They live as long as the process
 * and carry every statement of their share of the tenants, so one left waiting would hold all of
 * those until TCP gives up, a quarter of an hour later.
 */
describe("tenant-affine connections across a network partition", () => {
  let api: Api;
  let proxy: Awaited<ReturnType<typeof startPartitionableProxy>>;
  let main: pg.Client;

  beforeAll(async () => {
    const config = loadConfig();
    const direct = new URL(config.databaseUrl);
    proxy = await startPartitionableProxy({host: direct.hostname, port: Number(direct.port || 5432)});
    const throughProxy = new URL(direct);
    throughProxy.port = String(proxy.port);
    // Only the tenants' database goes through the proxy; the analytics one (DailyStats) stays direct.
    api = await startTestServer({
      databaseUrl: throughProxy.toString(),
      db: {...config.db, statementTimeoutMs: STATEMENT_TIMEOUT_MS}
    });
    main = new pg.Client({connectionString: config.databaseUrl});
    await main.connect();
  });
  afterAll(async () => {
    proxy?.heal();
    await stopTestServer();
    await main?.end();
    await proxy?.close();
  });

  it("answers 503 within the statement timeout and a grace, then serves the tenants again on new connections", async () => {
    const tenant = newTenant("partition");
    const auth = await provisionedBearer(api, tenant);
    const deviceId = await createDevice(api, auth, "PART-1");
    const post = (recordedAt: string) =>
      api.post(`/api/v1/devices/${deviceId}/readings`).set(auth).send({temperatureCelsius: 21.5, recordedAt});
    const stored = async () =>
      (await main.query(`select "recorded_at" from ${quoteTenantSchema(tenant)}."temperature_readings" order by 1`)).rows.map((row) =>
        (row.recorded_at as Date).toISOString()
      );
    // Both connections open and used: the reading's ingest connection and its read connection.
    expect((await post("2026-03-10T08:00:00.000Z")).status).toBe(201);
    expect((await api.get(`/api/v1/devices/${deviceId}/readings/latest`).set(auth)).status).toBe(200);

    const [givenUp] = await asTenant(tenant, () =>
      inject(TenantAffineConnections).queryRows<Backend>(tenant, BACKEND_SQL, {}, {prepare: false})
    );

    proxy.partition();
    const started = Date.now();
    const [written, read] = await Promise.all([
      post("2026-03-10T08:00:30.000Z"),
      api.get(`/api/v1/devices/${deviceId}/readings/latest`).set(auth)
    ]);
    const waited = Date.now() - started;

    for (const res of [written, read]) {
      expect(res.status, JSON.stringify(res.body)).toBe(503);
      expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
    }
    // Not before the statement could have run out its time, and not much after.
    expect(waited).toBeGreaterThanOrEqual(STATEMENT_TIMEOUT_MS + ANSWER_GRACE_MS);
    expect(waited).toBeLessThan(STATEMENT_TIMEOUT_MS + ANSWER_GRACE_MS + 4_000);

    proxy.heal();
    expect((await post("2026-03-10T08:01:00.000Z")).status).toBe(201);
    const latest = await api.get(`/api/v1/devices/${deviceId}/readings/latest`).set(auth);
    expect(latest.status).toBe(200);
    expect(latest.body.recordedAt).toBe("2026-03-10T08:01:00.000Z");
    // The given-up connection was reset, not closed: its unsent statement was dropped, not delivered
    // once the network healed (to commit after the answer 503, perhaps after its day's repair).
    await sleep(500);
    expect(await stored()).toEqual(["2026-03-10T08:00:00.000Z", "2026-03-10T08:01:00.000Z"]);

    // The unanswered write may have committed: its day is marked for the DailyStats repair once
    // the tenants' database is reachable again, with the backend it was sent to, which the repair
    // ends first (it may still commit what it received).
    const mark = await until("the unanswered write's day marked for repair", async () => {
      const {rows} = await main.query<{lostBackends: Backend[]}>(
        `select "lost_backends" as "lostBackends" from "public"."daily_stats_dirty_days" where "tenant_id" = $1 and "date" = '2026-03-10'`,
        [tenant]
      );
      return rows[0];
    });
    expect(mark.lostBackends).toEqual([givenUp]);
  });
});
