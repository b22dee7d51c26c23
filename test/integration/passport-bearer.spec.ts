import {PlatformApplication, PlatformTest} from "@tsed/common";
import {afterAll, afterEach, beforeAll, describe, expect, it, vi} from "vitest";
import {AccessTokenVerifier} from "../../src/platform/auth/access-token-verifier.js";
import {JwksKeySet} from "../../src/platform/auth/jwks-key-set.js";
import {VerifiedTokenFirstPassportMiddleware} from "../../src/platform/auth/verified-token-first.middleware.js";
import {Strategy} from "passport-jwt";
import {createDevice} from "../helpers/factories.js";
import {bearer, newTenant, token} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

/**
 * Bearer tokens go through @tsed/passport (AccessTokenVerifier's protocol, passport-jwt's
 * strategy): what that must and must not cost, and the traps of the libraries.
 */
describe("bearer tokens through @tsed/passport", () => {
  let api: Api;
  let auth: Record<string, string>;
  const tenant = newTenant("passport");
  beforeAll(async () => {
    api = await startTestServer();
    auth = await bearer(tenant, {roles: ["operator"]});
    expect((await api.get("/api/v1/me").set(auth)).status).toBe(200);
  });
  afterAll(stopTestServer);
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("installs no passport middleware in front of every route (no passport.initialize, no session)", () => {
    const express = PlatformTest.get<PlatformApplication>(PlatformApplication).getApp() as unknown as {router: {stack: {name: string}[]}};
    const names = express.router.stack.map((layer) => layer.name);
    expect(names.length).toBeGreaterThan(0);
    expect(names).not.toContain("initialize");
    expect(names).not.toContain("authenticate");
  });

  it("runs passport on no public route and no device route, even when they carry a bearer token", async () => {
    const deviceId = await createDevice(api, auth, "PASSPORT-1");
    const created = await api.post(`/api/v1/devices/${deviceId}/keys`).set(auth);
    expect(created.status).toBe(201);
    const authorize = vi.spyOn(VerifiedTokenFirstPassportMiddleware.prototype, "use");
    for (const path of ["/health/live", "/health/ready", "/doc/swagger.json"])
      expect((await api.get(path).set(auth)).status, path).toBe(200);
    const device = await api
      .post("/api/v1/device/readings")
      .set({Authorization: `Device ${created.body.key}`})
      .send({temperatureCelsius: 21.5, recordedAt: new Date().toISOString()});
    expect(device.status).toBeLessThan(300);
    expect(authorize).not.toHaveBeenCalled();
  });

  it("answers a token verified before from the verified-token cache: no passport, key lookup, signature check or $onVerify", async () => {
    const fresh = await bearer(tenant, {roles: ["viewer"]});
    const calls = {
      passport: vi.spyOn(Strategy.prototype, "authenticate"),
      key: vi.spyOn(JwksKeySet.prototype, "get"),
      onVerify: vi.spyOn(AccessTokenVerifier.prototype, "$onVerify")
    };
    const counts = () => Object.values(calls).map((spy) => spy.mock.calls.length);
    expect((await api.get("/api/v1/me").set(fresh)).status).toBe(200);
    expect(counts()).toEqual([1, 1, 1]);
    expect((await api.get("/api/v1/me").set(fresh)).status).toBe(200);
    expect((await api.get("/api/v1/devices").set(fresh)).status).toBe(200);
    expect(counts()).toEqual([1, 1, 1]);
    // A token refused once is not remembered: it goes through passport again, and is refused again.
    const expired = {Authorization: `Bearer ${await token({tenant, expiresIn: -120})}`};
    for (let i = 0; i < 2; i++) expect((await api.get("/api/v1/me").set(expired)).status).toBe(401);
    expect(counts()[0]).toBe(3);
  });

  it("lets no `protocol` query or body field pick another passport strategy for a valid token", async () => {
    expect((await api.get("/api/v1/devices?protocol=local").set(auth)).status).toBe(200);
    const created = await api.post("/api/v1/devices?protocol=basic").set(auth).send({serialNumber: "PASSPORT-2"});
    expect(created.status).toBe(201);
  });

  it("takes the token from the Authorization header only", async () => {
    const raw = await token({tenant});
    for (const request of [
      api.get(`/api/v1/me?access_token=${raw}`),
      api.get(`/api/v1/me?auth_token=${raw}`),
      api.get("/api/v1/me").set("Cookie", `access_token=${raw}`),
      api.get("/api/v1/me").set("Authorization", `JWT ${raw}`),
      api.get("/api/v1/me").set("Authorization", raw)
    ]) {
      const res = await request;
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({status: 401, name: "UNAUTHORIZED"});
    }
  });
});
