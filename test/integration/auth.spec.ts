import {SignJWT} from "jose";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {newTenant, token} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

describe("JWT verification", () => {
  let api: Api;
  const tenant = newTenant("auth");
  beforeAll(async () => {
    api = await startTestServer();
  });
  afterAll(stopTestServer);

  const me = (authorization?: string) => {
    const req = api.get("/api/v1/me");
    return authorization === undefined ? req : req.set("Authorization", authorization);
  };

  it("accepts a valid token and answers with the caller's user", async () => {
    const res = await me(`Bearer ${await token({tenant, sub: "alice"})}`);
    expect(res.status).toBe(200);
    expect(res.body.subject).toBe("alice");
  });

  it("answers 401 in the error shape without a token", async () => {
    const res = await me();
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({status: 401, name: "UNAUTHORIZED", errors: []});
  });

  const unsigned = (alg: string) => {
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    return `${b64({alg, typ: "JWT", kid: "test-key-1"})}.${b64({sub: "x", tenantId: tenant, iss: process.env.AUTH_ISSUER, aud: process.env.AUTH_AUDIENCE, exp: now + 600})}.`;
  };

  it.each([
    ["alg none", async () => unsigned("none")],
    ["HS256 signed with the public modulus as secret", async () => new SignJWT({tenantId: tenant}).setProtectedHeader({alg: "HS256", kid: "test-key-1"}).setIssuer(process.env.AUTH_ISSUER!).setAudience(process.env.AUTH_AUDIENCE!).setSubject("x").setExpirationTime("10m").sign(new TextEncoder().encode("test-key-1"))],
    ["wrong issuer", () => token({tenant, issuer: "http://evil.test/realms/smart-thermo"})],
    ["wrong audience", () => token({tenant, audience: "another-api"})],
    ["expired", () => token({tenant, expiresIn: -120})],
    ["no expiry", () => token({tenant, noExpiry: true})],
    ["unknown kid", () => token({tenant, kid: "rotated-away"})],
    ["no kid", () => token({tenant, kid: null})],
    ["signed by a key the JWKS does not publish", () => token({tenant, untrustedKey: true})],
    ["tampered payload", async () => {
      const [h, p, s] = (await token({tenant})).split(".");
      const payload = JSON.parse(Buffer.from(p!, "base64url").toString());
      payload.tenantId = "someone_else";
      return `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
    }],
    ["garbage", async () => "not.a.jwt"]
  ])("rejects a token with %s → 401", async (_label, make) => {
    const res = await me(`Bearer ${await make()}`);
    expect(res.status).toBe(401);
    expect(res.body.name).toBe("UNAUTHORIZED");
  });

  it.each([
    ["missing", undefined],
    ["empty", ""],
    ["upper case", "Building_A"],
    ["reserved public", "public"],
    ["reserved pg_ prefix", "pg_catalog"],
    ["information_schema", "information_schema"],
    ["SQL injection", 'x"; drop schema public cascade; --'],
    ["too long", `a${"b".repeat(63)}`],
    ["not a string", 42]
  ])("rejects a %s tenant claim → 403 and creates no schema", async (_label, tenantClaim) => {
    const res = await me(`Bearer ${await token(tenantClaim === undefined ? {} : {tenant: tenantClaim})}`);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({status: 403, name: "FORBIDDEN"});
  });

  it("never takes the tenant from a header or the query", async () => {
    const victim = newTenant("victim");
    const res = await api
      .get(`/api/v1/devices?tenantId=${victim}`)
      .set("Authorization", `Bearer ${await token({tenant})}`)
      .set("X-Tenant-Id", victim);
    expect(res.status).toBe(200);
    const probe = await api.get("/api/v1/devices").set("Authorization", `Bearer ${await token({tenant: victim})}`);
    expect(probe.body.total).toBe(0);
  });
});
