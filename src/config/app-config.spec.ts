import {describe, expect, it} from "vitest";
import {EnvError, parseConfig} from "./app-config.js";

describe("parseConfig", () => {
  it('applies the defaults README "Environment" documents', () => {
    const env = parseConfig({NODE_ENV: "production"});
    expect(env).toMatchObject({
      port: 8083,
      databaseUrl: "postgres://postgres@localhost:5432/smart_thermo",
      analyticsDatabaseUrl: "postgres://postgres@localhost:5432/smart_thermo_analytics",
      redisUrl: "redis://localhost:6379",
      db: {poolMin: 2, poolMax: 10, statementTimeoutMs: 30000},
      auth: {issuer: "http://localhost:8080/realms/smart-thermo", audience: "smart-thermo-api", tenantClaim: "tenantId", devIssuer: false}
    });
  });

  it("fails closed: the development issuer only with an explicit NODE_ENV=development and no AUTH_ISSUER", () => {
    expect(parseConfig({NODE_ENV: "development"}).auth).toMatchObject({
      devIssuer: true,
      issuer: "http://localhost/smart-thermo-dev-issuer"
    });
    expect(parseConfig({NODE_ENV: "development", AUTH_ISSUER: "https://idp.example/realms/x"}).auth.devIssuer).toBe(false);
    expect(parseConfig({NODE_ENV: "production"}).auth.devIssuer).toBe(false);
    expect(parseConfig({NODE_ENV: "test"}).auth.devIssuer).toBe(false);
    // `node dist/src/index.js` without NODE_ENV is production.
    expect(parseConfig({})).toMatchObject({nodeEnv: "production", auth: {devIssuer: false}});
    // The developer commands (npm run token, seed, …) run as development when it is unset, like npm start.
    expect(parseConfig({}, {developmentWhenUnset: true})).toMatchObject({nodeEnv: "development", auth: {devIssuer: true}});
  });

  it("reads the access settings: default role, tenant provisioning, metrics token", () => {
    expect(parseConfig({})).toMatchObject({auth: {defaultRole: "operator"}, tenantProvisioning: "auto", metricsToken: null});
    expect(
      parseConfig({AUTH_DEFAULT_ROLE: "viewer", TENANT_PROVISIONING: "registered", METRICS_TOKEN: "a-long-enough-secret"})
    ).toMatchObject({
      auth: {defaultRole: "viewer"},
      tenantProvisioning: "registered",
      metricsToken: "a-long-enough-secret"
    });
    expect(() => parseConfig({AUTH_DEFAULT_ROLE: "root"})).toThrow(/AUTH_DEFAULT_ROLE/);
    expect(() => parseConfig({TENANT_PROVISIONING: "open"})).toThrow(/TENANT_PROVISIONING/);
    expect(() => parseConfig({METRICS_TOKEN: "short"})).toThrow(/METRICS_TOKEN/);
  });

  it("derives the analytics database from DATABASE_URL", () => {
    expect(parseConfig({DATABASE_URL: "postgres://u:p@db:6543/app"}).analyticsDatabaseUrl).toBe("postgres://u:p@db:6543/app_analytics");
  });

  it("names every bad variable at once", () => {
    try {
      parseConfig({PORT: "http", DB_POOL_MIN: "20", DB_POOL_MAX: "5", DATABASE_URL: "mysql://x/y", NODE_ENV: "staging"});
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(EnvError);
      const message = (error as Error).message;
      for (const name of ["PORT", "DB_POOL_MIN", "DATABASE_URL", "NODE_ENV"]) expect(message).toContain(name);
    }
  });
});
