import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

const METRICS_TOKEN = "metrics-token-for-the-tests-0123456789";

describe("HTTP hardening: security headers, request ids, the metrics token", () => {
  let api: Api;
  let auth: Record<string, string>;
  beforeAll(async () => {
    api = await startTestServer({metricsToken: METRICS_TOKEN});
    auth = await bearer(newTenant("headers"));
  });
  afterAll(stopTestServer);

  it.each([
    ["a 200", () => api.get("/api/v1/devices").set(auth)],
    ["a 401", () => api.get("/api/v1/devices")],
    ["a 404 outside any route", () => api.get("/nothing-here")],
    ["a probe", () => api.get("/health/live")]
  ])("puts helmet's headers and a CSP that allows nothing on %s", async (_label, request) => {
    const res = await request();
    expect(res.headers["content-security-policy"]).toBe("default-src 'none';frame-ancestors 'none'");
    expect(res.headers).toMatchObject({
      "x-content-type-options": "nosniff",
      "x-frame-options": "SAMEORIGIN",
      "referrer-policy": "no-referrer",
      "cross-origin-opener-policy": "same-origin",
      "strict-transport-security": expect.stringContaining("max-age=")
    });
    expect(res.headers["x-powered-by"]).toBeUndefined();
  });

  it("gives Swagger UI a CSP of its own: scripts and styles of this origin (and its inline configuration), nothing else", async () => {
    const page = await api.get("/doc/");
    expect(page.status).toBe(200);
    const csp = Object.fromEntries(
      String(page.headers["content-security-policy"])
        .split(";")
        .map((directive) => directive.trim().split(/\s+/))
        .map(([name, ...sources]) => [name, sources])
    );
    expect(csp).toMatchObject({
      "default-src": ["'self'"],
      "script-src": ["'self'", "'unsafe-inline'"],
      "connect-src": ["'self'"],
      "object-src": ["'none'"],
      "frame-ancestors": ["'none'"]
    });
    // The page loads nothing from elsewhere that the policy would block.
    const sources = [...String(page.text).matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(source, source).not.toMatch(/^(https?:)?\/\/(?!fonts\.(googleapis|gstatic)\.com)/);
  });

  it("echoes a short, safe X-Request-Id and replaces any other with its own", async () => {
    const echoed = await api.get("/health/live").set("X-Request-Id", "proxy-trace.42:abc_DEF");
    expect(echoed.headers["x-request-id"]).toBe("proxy-trace.42:abc_DEF");
    const generated = /^[0-9a-f]{32}$/;
    for (const given of ["x".repeat(65), "id with spaces", "<script>alert(1)</script>", "a\tb", "naïve", ""]) {
      const res = await api.get("/health/live").set("X-Request-Id", given);
      expect(res.headers["x-request-id"], JSON.stringify(given)).toMatch(generated);
    }
    const none = await api.get("/health/live");
    expect(none.headers["x-request-id"]).toMatch(generated);
    expect((await api.get("/health/live")).headers["x-request-id"]).not.toBe(none.headers["x-request-id"]);
  });

  it("serves /metrics only with the metrics token when METRICS_TOKEN is set", async () => {
    for (const authorization of [undefined, "Bearer wrong-token", `Bearer ${METRICS_TOKEN}x`, METRICS_TOKEN, `Basic ${METRICS_TOKEN}`]) {
      const request = api.get("/metrics");
      const res = await (authorization === undefined ? request : request.set("Authorization", authorization));
      expect(res.status, String(authorization)).toBe(401);
      expect(res.body).toMatchObject({status: 401, name: "UNAUTHORIZED"});
      expect(res.headers["www-authenticate"]).toBe('Bearer realm="metrics"');
      expect(res.text).not.toContain("http_request_duration");
    }
    // A tenant's access token is not the metrics token either.
    expect((await api.get("/metrics").set(auth)).status).toBe(401);

    const res = await api.get("/metrics").set("Authorization", `Bearer ${METRICS_TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    expect(res.text).toContain("# TYPE");
  });
});
