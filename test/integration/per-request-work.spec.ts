import {EntityManager} from "@mikro-orm/core";
import {afterAll, afterEach, beforeAll, describe, expect, it, vi} from "vitest";
import {VerifiedTokenFirstPassportMiddleware} from "../../src/platform/auth/verified-token-first.middleware.js";
import {ANALYTICS_CONTEXT, DEFAULT_CONTEXT} from "../../src/platform/db/orm-contexts.js";
import {createDevice} from "../helpers/factories.js";
import {bearer, newTenant} from "../helpers/tokens.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

/**
 * What a request costs is also what it does not do: these check that work a route does not need
 * is not done on it (issue 15's cuts), through the real application.
 */
describe("per-request work: nothing a route does not need", () => {
  let api: Api;
  let auth: Record<string, string>;
  beforeAll(async () => {
    api = await startTestServer();
    auth = await bearer(newTenant("perreq"));
    expect((await api.get("/api/v1/devices").set(auth)).status).toBe(200); // the tenant is provisioned
  });
  afterAll(stopTestServer);
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** The entity managers forked while `request` runs, by ORM context name. */
  async function forksDuring(request: () => Promise<{status: number}>): Promise<Record<string, number>> {
    const fork = vi.spyOn(EntityManager.prototype, "fork");
    try {
      expect((await request()).status).toBeLessThan(300);
      const counts: Record<string, number> = {};
      for (const instance of fork.mock.contexts as EntityManager[]) counts[instance.name] = (counts[instance.name] ?? 0) + 1;
      return counts;
    } finally {
      fork.mockRestore(); // a second call counts afresh
    }
  }

  it("forks no entity manager for a route that touches no database", async () => {
    expect(await forksDuring(() => api.get("/health/live"))).toEqual({});
    expect(await forksDuring(() => api.get("/doc/swagger.json"))).toEqual({});
  });

  it("forks only the tenant data's entity manager for a route that reads tenant data only", async () => {
    const forks = await forksDuring(() => api.get("/api/v1/devices").set(auth));
    expect(forks[DEFAULT_CONTEXT]).toBeGreaterThanOrEqual(1);
    expect(forks[ANALYTICS_CONTEXT]).toBeUndefined();
  });

  it("forks no entity manager for a single reading's group write or GET latest: their statements go around the ORM", async () => {
    const device = await createDevice(api, auth, "perreq-1");
    const post = () =>
      api.post(`/api/v1/devices/${device}/readings`).set(auth).send({temperatureCelsius: 21.5, recordedAt: new Date().toISOString()});
    expect((await post()).status).toBe(201); // the device's write path is known (no alert rule)
    // The DailyStats merge forks the analytics manager (its own transaction); the tenant's is never forked.
    expect((await forksDuring(post))[DEFAULT_CONTEXT]).toBeUndefined();
    expect(await forksDuring(() => api.get(`/api/v1/devices/${device}/readings/latest`).set(auth))).toEqual({});
  });

  it("answers a caller seen in the last seconds from memory: GET /me and the deleted-user check query nothing", async () => {
    const caller = await bearer(newTenant("perreq_me"));
    const first = await api.get("/api/v1/me").set(caller);
    expect(first.status).toBe(200);
    expect(await forksDuring(() => api.get("/api/v1/me").set(caller))).toEqual({});
    expect((await api.get("/api/v1/me").set(caller)).body).toEqual(first.body);
  });

  it("authenticates nobody on a public route, even one that sends a token", async () => {
    // The middleware of @Authorize: the verified-token cache, then passport.
    const verify = vi.spyOn(VerifiedTokenFirstPassportMiddleware.prototype, "use");
    expect((await api.get("/health/live").set(auth)).status).toBe(200);
    expect((await api.get("/metrics").set(auth)).status).toBe(200);
    expect(verify).not.toHaveBeenCalled();
    expect((await api.get("/api/v1/me").set(auth)).status).toBe(200);
    expect(verify).toHaveBeenCalledTimes(1);
  });
});
