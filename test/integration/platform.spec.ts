import {MikroORM} from "@mikro-orm/postgresql";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {analyticsOrmOptions, defaultOrmOptions} from "../../src/config/mikro-orm.config.js";
import {migrateTenantSchema} from "../../src/platform/tenancy/tenant-migrator.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

describe("platform: health, OpenAPI, migrations", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startTestServer();
  });
  afterAll(stopTestServer);

  it("reports liveness and readiness of both databases and Redis", async () => {
    expect((await api.get("/health/live")).body).toEqual({status: "ok"});
    const ready = await api.get("/health/ready");
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({status: "ready", checks: {database: "up", analytics: "up", redis: "up"}});
  });

  it("does not say which framework answers (no X-Powered-By)", async () => {
    const res = await api.get("/health/live");
    expect(res.status).toBe(200);
    expect(res.headers["x-powered-by"]).toBeUndefined();
  });

  it("serves an OpenAPI 3 document with every route, the bearer scheme and model constraints", async () => {
    const res = await api.get("/doc/swagger.json");
    expect(res.status).toBe(200);
    const spec = res.body;
    expect(spec.openapi).toMatch(/^3\./);
    expect(spec.components.securitySchemes.bearer).toMatchObject({type: "http", scheme: "bearer"});
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining(["/api/v1/me", "/api/v1/devices", "/api/v1/devices/{deviceId}", "/health/live", "/health/ready"])
    );
    const create = spec.paths["/api/v1/devices"].post;
    expect(create.security).toEqual([{bearer: []}]);
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(["201", "400", "401", "403", "409"]));
    // The body schema the route declares, followed through its $ref whatever the model is named:
    // it must exist, carry the constraints, and offer no server-owned field to the client.
    const declared = create.requestBody?.content?.["application/json"]?.schema;
    expect(declared, "POST /api/v1/devices declares a JSON body").toBeDefined();
    const ref = declared.$ref as string | undefined;
    const body = ref ? spec.components.schemas[ref.replace("#/components/schemas/", "")] : declared;
    expect(body, `schema ${ref}`).toMatchObject({type: "object", required: expect.arrayContaining(["serialNumber"])});
    expect(body.properties.serialNumber).toMatchObject({type: "string", minLength: 1, maxLength: 64});
    expect(Object.keys(body.properties).filter((name) => ["id", "createdAt", "updatedAt", "owner", "ownerId"].includes(name))).toEqual([]);
    expect((await api.get("/doc/")).status).toBe(200);
  });

  it("exposes Prometheus metrics, with request latency by route template", async () => {
    await api.get("/api/v1/devices").set(await bearer(newTenant("metrics")));
    const res = await api.get("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toContain("text/plain");
    expect(res.text).toMatch(/http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/devices",status="200"\} \d+/);
    for (const name of ["readings_ingested_total", "alerts_opened_total", "job_duration_seconds"]) expect(res.text).toContain(name);
  });

  it("counts ingested readings, duplicates and opened alerts", async () => {
    // A metric missing from the exposition fails here (a NaN would compare equal to NaN + 3).
    const metric = async (name: string) => {
      const value = new RegExp(`^${name} (\\S+)$`, "m").exec((await api.get("/metrics")).text)?.[1];
      if (value === undefined) throw new Error(`metric ${name} is not exposed`);
      return Number(value);
    };
    const auth = await bearer(newTenant("counters"));
    const deviceId = (await api.post("/api/v1/devices").set(auth).send({serialNumber: "COUNT-1"})).body.id;
    await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send({condition: "above", thresholdCelsius: 30}).expect(201);
    const before = {
      ingested: await metric("readings_ingested_total"),
      duplicates: await metric("reading_duplicates_total"),
      alerts: await metric("alerts_opened_total")
    };
    const at = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
    const readings = [
      {temperatureCelsius: 20, recordedAt: at(3)},
      {temperatureCelsius: 35, recordedAt: at(2)},
      {temperatureCelsius: 36, recordedAt: at(1)}
    ];
    await api.post(`/api/v1/devices/${deviceId}/readings/batch`).set(auth).send({readings}).expect(200);
    await api
      .post(`/api/v1/devices/${deviceId}/readings/batch`)
      .set(auth)
      .send({readings: readings.slice(0, 2)})
      .expect(200);
    expect(await metric("readings_ingested_total")).toBe(before.ingested + 3);
    expect(await metric("reading_duplicates_total")).toBe(before.duplicates + 2);
    expect(await metric("alerts_opened_total")).toBe(before.alerts + 1);
  });

  it("counts the items of each group commit write, by lanes: a single reading is one item of each lane it passes", async () => {
    const lanes = ["readings_http", "ingest_transaction", "daily_stats_refresh"];
    const totals = async () => {
      const text = (await api.get("/metrics")).text;
      return lanes.map((name) =>
        ["count", "sum"].map((field) =>
          Number(new RegExp(`^group_commit_items_${field}\\{lanes="${name}"\\} (\\S+)$`, "m").exec(text)?.[1] ?? 0)
        )
      );
    };
    const auth = await bearer(newTenant("group_metrics"));
    const deviceId = (await api.post("/api/v1/devices").set(auth).send({serialNumber: "GROUP-METRICS-1"})).body.id;
    const before = await totals();
    await api
      .post(`/api/v1/devices/${deviceId}/readings`)
      .set(auth)
      .send({temperatureCelsius: 21, recordedAt: new Date(Date.now() - 60_000).toISOString()})
      .expect(201);
    // One write of one item on each: the tenant's lane, its connection's transaction, the DailyStats merge.
    expect(await totals()).toEqual(before.map(([writes, items]) => [writes! + 1, items! + 1]));
  });

  it("applies migrations a second time as a no-op", async () => {
    const settings = loadConfig();
    const tenant = newTenant("mig");
    await api.get("/api/v1/me").set(await bearer(tenant));
    expect(await migrateTenantSchema(settings, tenant)).toEqual([]);
    for (const options of [defaultOrmOptions(settings), analyticsOrmOptions(settings)]) {
      const orm = await MikroORM.init(options);
      try {
        expect(await orm.getMigrator().up()).toEqual([]);
        expect(await orm.getMigrator().getPendingMigrations()).toEqual([]);
      } finally {
        await orm.close(true);
      }
    }
  });
});
