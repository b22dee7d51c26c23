import {randomBytes} from "node:crypto";
import {readFileSync} from "node:fs";
import http from "node:http";
import type {JWK} from "jose";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {loadConfig} from "../../src/config/app-config.js";
import {JWKS_COOLDOWN_MS} from "../../src/platform/auth/access-token-verifier.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

/** A token naming a key id nobody published; its signature is junk (it never gets that far). */
function randomKidToken(tenant: string): string {
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return `${b64({alg: "RS256", typ: "JWT", kid: randomBytes(12).toString("hex")})}.${b64({sub: "flood", tenantId: tenant, iss: process.env.AUTH_ISSUER, aud: process.env.AUTH_AUDIENCE, exp: now + 600})}.${randomBytes(256).toString("base64url")}`;
}

/**
 * The attack of the review: unauthenticated requests whose tokens name random key ids, right
 * after a restart (the server has fetched no key yet). With a JWKS of our own that counts its
 * hits: every valid token must keep getting 200, and the unknown ids must cost at most one fetch
 * per cool-down (JWKS_COOLDOWN_MS, 30 s; this test takes a few seconds).
 */
describe("a flood of unknown key ids locks nobody out", () => {
  let api: Api;
  let jwks: http.Server;
  let hits = 0;
  const tenant = newTenant("flood");

  beforeAll(async () => {
    const {trusted} = JSON.parse(readFileSync(process.env.TEST_JWT_KEYS_FILE!, "utf8")) as {trusted: JWK};
    const {kty, n, e, kid, alg} = trusted;
    const publicJwk = {kty, n, e, kid, alg};
    jwks = http.createServer((_req, res) => {
      hits++;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({keys: [{...publicJwk, use: "sig"}]}));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    const {port} = jwks.address() as {port: number};
    const config = loadConfig();
    api = await startTestServer({auth: {...config.auth, jwksUri: `http://127.0.0.1:${port}/jwks.json`}});
  });
  afterAll(async () => {
    await stopTestServer();
    await new Promise<void>((resolve) => jwks.close(() => resolve()));
  });

  it("answers every valid token 200 through 1,000 random-kid requests, with at most one JWKS fetch per cool-down", async () => {
    const statuses = {flood: new Map<number, number>(), valid: new Map<number, number>()};
    const count = (map: Map<number, number>, status: number) => map.set(status, (map.get(status) ?? 0) + 1);
    const started = Date.now();
    // 20 waves of 50 unknown ids at once, each with 5 valid tokens in its midst. Every valid token
    // is new (never verified before), so each one needs the key, not the verified-token cache.
    for (let wave = 0; wave < 20; wave++) {
      const valid = await Promise.all(Array.from({length: 5}, () => bearer(tenant, {roles: ["viewer"]})));
      const requests = [
        ...Array.from({length: 50}, () =>
          api
            .get("/api/v1/devices")
            .set("Authorization", `Bearer ${randomKidToken(tenant)}`)
            .then((res) => count(statuses.flood, res.status))
        ),
        ...valid.map((auth) =>
          api
            .get("/api/v1/devices")
            .set(auth)
            .then((res) => count(statuses.valid, res.status))
        )
      ];
      await Promise.all(requests);
    }
    const elapsed = Date.now() - started;
    console.log(
      JSON.stringify({
        jwksFlood: {
          requests: 1_000,
          validRequests: 100,
          jwksHits: hits,
          elapsedMs: elapsed,
          flood: Object.fromEntries(statuses.flood),
          valid: Object.fromEntries(statuses.valid)
        }
      })
    );

    expect(Object.fromEntries(statuses.flood)).toEqual({401: 1_000});
    expect(Object.fromEntries(statuses.valid)).toEqual({200: 100});
    // The first request fetches the set; an unknown id refetches at most once per cool-down after it.
    expect(hits).toBeGreaterThanOrEqual(1);
    expect(hits).toBeLessThanOrEqual(1 + Math.ceil(elapsed / JWKS_COOLDOWN_MS));
  });
});
