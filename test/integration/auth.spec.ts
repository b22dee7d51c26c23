import {createPublicKey} from "node:crypto";
import {type JWK, SignJWT} from "jose";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {createDevice} from "../helpers/factories.js";
import {newTenant, token} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

/** Every schema of the tenant database, and whether each holds a tenant's `devices` table. */
async function schemas(db: pg.Client): Promise<Map<string, boolean>> {
  const {rows} = await db.query<{name: string; tenantTables: boolean}>(
    `select s.schema_name as "name",
            exists (select 1 from information_schema.tables t where t.table_schema = s.schema_name and t.table_name = 'devices') as "tenantTables"
       from information_schema.schemata s`
  );
  return new Map(rows.map((row) => [row.name, row.tenantTables]));
}

/**
 * Schemas that appeared between two snapshots, other than the test tenants of the spec files
 * running alongside (every one of them is named by newTenant: `test_…`).
 */
function appeared(before: Map<string, boolean>, after: Map<string, boolean>): string[] {
  return [...after.keys()].filter((name) => !before.has(name) && !name.startsWith("test_"));
}

describe("JWT verification", () => {
  let api: Api;
  let db: pg.Client;
  const tenant = newTenant("auth");
  beforeAll(async () => {
    api = await startTestServer();
    db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await stopTestServer();
  });

  const me = (authorization?: string) => {
    const req = api.get("/api/v1/me");
    return authorization === undefined ? req : req.set("Authorization", authorization);
  };

  it("accepts a valid token and answers with the caller's user", async () => {
    const res = await me(`Bearer ${await token({tenant, sub: "alice"})}`);
    expect(res.status).toBe(200);
    expect(res.body.subject).toBe("alice");
  });

  it("answers 401 in the error shape without a token, with RFC 6750's WWW-Authenticate", async () => {
    const res = await me();
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({status: 401, name: "UNAUTHORIZED", errors: []});
    expect(res.headers["www-authenticate"]).toBe('Bearer realm="smart-thermo"');
    const invalid = await me(`Bearer ${await token({tenant, expiresIn: -120})}`);
    expect(invalid.headers["www-authenticate"]).toBe('Bearer realm="smart-thermo", error="invalid_token"');
  });

  const unsigned = (alg: string) => {
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    return `${b64({alg, typ: "JWT", kid: "test-key-1"})}.${b64({sub: "x", tenantId: tenant, iss: process.env.AUTH_ISSUER, aud: process.env.AUTH_AUDIENCE, exp: now + 600})}.`;
  };

  it.each([
    ["alg none", async () => unsigned("none")],
    ["wrong issuer", () => token({tenant, issuer: "http://evil.test/realms/smart-thermo"})],
    ["wrong audience", () => token({tenant, audience: "another-api"})],
    ["expired", () => token({tenant, expiresIn: -120})],
    ["no expiry", () => token({tenant, noExpiry: true})],
    ["unknown kid", () => token({tenant, kid: "rotated-away"})],
    ["no kid", () => token({tenant, kid: null})],
    ["signed by a key the JWKS does not publish", () => token({tenant, untrustedKey: true})],
    [
      "tampered payload",
      async () => {
        const [h, p, s] = (await token({tenant})).split(".");
        const payload = JSON.parse(Buffer.from(p!, "base64url").toString());
        payload.tenantId = "someone_else";
        return `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
      }
    ],
    ["garbage", async () => "not.a.jwt"]
  ])("rejects a token with %s → 401", async (_label, make) => {
    const res = await me(`Bearer ${await make()}`);
    expect(res.status).toBe(401);
    expect(res.body.name).toBe("UNAUTHORIZED");
  });

  /**
   * Algorithm confusion: an attacker takes the key the issuer publishes and uses its bytes as an
   * HMAC secret. A verifier that lets the token's `alg` choose how the key is used would accept
   * it. The key material is what the JWKS serves right now, in the spellings a library may turn a
   * public key into (PEM as SPKI or PKCS#1, with and without the final newline, DER, the JWK JSON).
   */
  describe("HS256/HS512 signed with the JWKS's own public key as the HMAC secret", () => {
    let published: JWK;
    beforeAll(async () => {
      const jwks = (await (await fetch(process.env.AUTH_JWKS_URI!)).json()) as {keys: JWK[]};
      published = jwks.keys.find((key) => key.kid === "test-key-1")!;
      expect(published).toMatchObject({kty: "RSA", kid: "test-key-1"});
    });

    const material: [string, () => Uint8Array][] = [
      ["SPKI PEM", () => Buffer.from(createPublicKey({key: published, format: "jwk"}).export({type: "spki", format: "pem"}) as string)],
      [
        "SPKI PEM without the final newline",
        () => Buffer.from((createPublicKey({key: published, format: "jwk"}).export({type: "spki", format: "pem"}) as string).trimEnd())
      ],
      ["PKCS#1 PEM", () => Buffer.from(createPublicKey({key: published, format: "jwk"}).export({type: "pkcs1", format: "pem"}) as string)],
      ["SPKI DER", () => createPublicKey({key: published, format: "jwk"}).export({type: "spki", format: "der"})],
      ["JWK JSON", () => Buffer.from(JSON.stringify(published))],
      ["modulus bytes", () => Buffer.from(published.n!, "base64url")]
    ];
    it.each(material.flatMap(([label, secret]) => ["HS256", "HS512"].map((alg) => [alg, label, secret] as const)))(
      "rejects %s keyed with the %s → 401",
      async (alg, _label, secret) => {
        const forged = await new SignJWT({tenantId: tenant, realm_access: {roles: ["admin"]}})
          .setProtectedHeader({alg, typ: "JWT", kid: "test-key-1"})
          .setIssuer(process.env.AUTH_ISSUER!)
          .setAudience(process.env.AUTH_AUDIENCE!)
          .setSubject("attacker")
          .setExpirationTime("10m")
          .sign(secret());
        const res = await me(`Bearer ${forged}`);
        expect(res.status).toBe(401);
        expect(res.body.name).toBe("UNAUTHORIZED");
      }
    );
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
    const before = await schemas(db);
    const res = await me(`Bearer ${await token(tenantClaim === undefined ? {} : {tenant: tenantClaim})}`);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({status: 403, name: "FORBIDDEN"});

    const after = await schemas(db);
    expect(appeared(before, after)).toEqual([]);
    // Postgres would fold an unquoted name to lower case and cut it at 63 bytes: none of those either.
    const spellings =
      typeof tenantClaim === "string" && tenantClaim
        ? [tenantClaim, tenantClaim.toLowerCase(), tenantClaim.slice(0, 63)]
        : [String(tenantClaim)];
    for (const name of spellings) {
      // A reserved schema exists already; it must not have been given a tenant's tables.
      expect(after.get(name) ?? false, `schema ${name}`).toBe(before.get(name) ?? false);
      const {rows} = await db.query(`select 1 from "public"."tenants" where "id" = $1`, [name]);
      expect(rows, `registry row ${name}`).toEqual([]);
    }
    expect(after.get("public"), "public survives").toBe(false);
  });

  it("never takes the tenant from a header or the query", async () => {
    const victim = newTenant("victim");
    const auth = {Authorization: `Bearer ${await token({tenant})}`};
    const device = await createDevice(api, auth, "HEADER-1");
    const res = await api
      .get(`/api/v1/devices?tenantId=${victim}&tenant=${victim}`)
      .set(auth)
      .set("X-Tenant-Id", victim)
      .set("X-Tenant", victim);
    expect(res.status).toBe(200);
    // The caller's own tenant answered, with the device seeded there...
    expect(res.body.total).toBe(1);
    expect(res.body.items.map((item: {id: string}) => item.id)).toEqual([device]);
    // ...and the named tenant was never touched: no schema, no registry row.
    const {rows} = await db.query(
      `select (select count(*)::int from information_schema.schemata where schema_name = $1) as "schemas",
              (select count(*)::int from "public"."tenants" where "id" = $1) as "registered"`,
      [victim]
    );
    expect(rows[0]).toEqual({schemas: 0, registered: 0});
  });
});
