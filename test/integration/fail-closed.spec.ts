import {createServer} from "node:net";
import {PlatformTest} from "@tsed/common";
import pg from "pg";
import {afterAll, afterEach, beforeAll, describe, expect, it, vi} from "vitest";
import {DeviceKeyVerifier} from "../../src/platform/device-auth/device-key-verifier.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

/** A real driver error of an unreachable database: connecting to a port nothing listens on. */
async function refusedConnectionError(): Promise<Error> {
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const {port} = server.address() as {port: number};
      server.close(() => resolve(port));
    });
  });
  const client = new pg.Client({host: "127.0.0.1", port, user: "postgres", connectionTimeoutMillis: 2_000});
  try {
    await client.connect();
  } catch (error) {
    return error as Error;
  }
  await client.end();
  throw new Error(`something listens on ${port}`);
}

describe("defaults that fail closed (the test server's configuration is the default one)", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startTestServer();
  });
  afterAll(stopTestServer);
  afterEach(() => vi.restoreAllMocks());

  it("gives a token without a role of ours AUTH_DEFAULT_ROLE=viewer: it reads, it cannot write", async () => {
    const tenant = newTenant("norole");
    const noRole = await bearer(tenant, {roles: ["user", "offline_access"]});
    expect((await api.get("/api/v1/devices").set(noRole)).status).toBe(200);
    const write = await api.post("/api/v1/devices").set(noRole).send({serialNumber: "NOROLE-1"});
    expect(write.status).toBe(403);
    expect(write.body).toMatchObject({status: 403, name: "FORBIDDEN"});
  });

  it("puts Cache-Control: no-store on every /api answer, errors included", async () => {
    const auth = await bearer(newTenant("nostore"));
    const answers = {
      "200": await api.get("/api/v1/devices").set(auth),
      "201": await api.post("/api/v1/devices").set(auth).send({serialNumber: "NOSTORE-1"}),
      "400": await api.post("/api/v1/devices").set(auth).send({}),
      "401": await api.get("/api/v1/devices"),
      "403": await api.get("/api/v1/admin/users").set(auth),
      "404 of a device": await api.get(`/api/v1/devices/${crypto.randomUUID()}`).set(auth),
      "404 of no route": await api.get("/api/v1/no-such-route").set(auth),
      "401 of a device key": await api.post("/api/v1/device/readings").set("Authorization", "Device nope").send({})
    };
    for (const [label, res] of Object.entries(answers)) {
      expect(String(res.status), label).toBe(label.split(" ")[0]);
      expect(res.headers["cache-control"], label).toBe("no-store");
    }
  });

  it("answers a device key it cannot check with a fixed 503: the driver's text (host, port) stays in the log", async () => {
    const cause = await refusedConnectionError();
    expect(cause.message).toMatch(/ECONNREFUSED 127\.0\.0\.1:\d+/);
    vi.spyOn(PlatformTest.get<DeviceKeyVerifier>(DeviceKeyVerifier), "verify").mockRejectedValue(cause);
    const res = await api
      .post("/api/v1/device/readings")
      .set("Authorization", "Device stk_0123456789abcdef_secretsecretsecret")
      .send({temperatureCelsius: 20, recordedAt: new Date().toISOString()});
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("5");
    expect(res.body).toMatchObject({
      status: 503,
      name: "SERVICE_UNAVAILABLE",
      message: "Device keys cannot be checked now; retry later",
      errors: []
    });
    expect(res.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|5432/);
  });

  it("serves /metrics outside production without METRICS_TOKEN (development, tests)", async () => {
    expect((await api.get("/metrics")).status).toBe(200);
  });
});

describe("production without METRICS_TOKEN", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startTestServer({nodeEnv: "production", metricsToken: null});
  });
  afterAll(stopTestServer);

  it("does not serve /metrics: 404, as for a path that does not exist", async () => {
    const res = await api.get("/metrics");
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({status: 404, name: "NOT_FOUND"});
    expect(res.text).not.toContain("# TYPE");
  });
});
