import {describe, expect, it} from "vitest";
import {EnvError, parseConfig} from "./app-config.js";

describe("parseConfig", () => {
  it('applies the defaults README "Environment" documents', () => {
    const env = parseConfig({NODE_ENV: "production"});
    expect(env).toMatchObject({
      port: 8083,
      // The application's role, never a superuser (docs/database-role.md); no admin URL unless given.
      databaseUrl: "postgres://smart_thermo@localhost:5432/smart_thermo",
      analyticsDatabaseUrl: "postgres://smart_thermo@localhost:5432/smart_thermo_analytics",
      databaseAdminUrl: null,
      redisUrl: "redis://localhost:6379",
      db: {poolMin: 2, poolMax: 10, statementTimeoutMs: 30000, allowSuperuser: false},
      auth: {issuer: "http://localhost:8080/realms/smart-thermo", audience: "smart-thermo-api", tenantClaim: "tenantId", devIssuer: false}
    });
  });

  it("divides the ingest connections' 1,024 prepared statements among them unless told otherwise, and bounds a lock wait there", () => {
    expect(parseConfig({}).db).toMatchObject({ingestConnections: 1, ingestPreparedPerConnection: 1024, ingestLockTimeoutMs: 50});
    expect(parseConfig({DB_INGEST_CONNECTIONS: "4"}).db).toMatchObject({ingestConnections: 4, ingestPreparedPerConnection: 256});
    expect(parseConfig({DB_INGEST_CONNECTIONS: "3"}).db.ingestPreparedPerConnection).toBe(342);
    expect(parseConfig({DB_INGEST_CONNECTIONS: "4", DB_INGEST_PREPARED_PER_CONNECTION: "500"}).db.ingestPreparedPerConnection).toBe(500);
    expect(parseConfig({DB_INGEST_CONNECTIONS: "0"}).db.ingestPreparedPerConnection).toBe(1024);
    expect(parseConfig({DB_INGEST_LOCK_TIMEOUT_MS: "0"}).db.ingestLockTimeoutMs).toBe(0);
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

  it("fails closed by default: role viewer, registered tenants in production, no metrics token", () => {
    expect(parseConfig({})).toMatchObject({
      nodeEnv: "production",
      auth: {defaultRole: "viewer"},
      tenantProvisioning: "registered",
      metricsToken: null
    });
    expect(parseConfig({NODE_ENV: "production"}).tenantProvisioning).toBe("registered");
    // A developer's first token creates its tenant; so do the tests'.
    expect(parseConfig({NODE_ENV: "development"}).tenantProvisioning).toBe("auto");
    expect(parseConfig({}, {developmentWhenUnset: true}).tenantProvisioning).toBe("auto");
    expect(parseConfig({NODE_ENV: "test"}).tenantProvisioning).toBe("auto");
  });

  it("reads the access settings: default role, tenant provisioning, metrics token", () => {
    expect(parseConfig({AUTH_DEFAULT_ROLE: "operator", TENANT_PROVISIONING: "auto", METRICS_TOKEN: "a-long-enough-secret"})).toMatchObject({
      auth: {defaultRole: "operator"},
      tenantProvisioning: "auto",
      metricsToken: "a-long-enough-secret"
    });
    expect(() => parseConfig({AUTH_DEFAULT_ROLE: "root"})).toThrow(/AUTH_DEFAULT_ROLE/);
    expect(() => parseConfig({TENANT_PROVISIONING: "open"})).toThrow(/TENANT_PROVISIONING/);
    expect(() => parseConfig({METRICS_TOKEN: "short"})).toThrow(/METRICS_TOKEN/);
  });

  it("reads the export limits: a per-tenant cap below the pool, a minimum rate, a ten-minute statement timeout", () => {
    expect(parseConfig({}).export).toMatchObject({
      poolMax: 4,
      maxPerTenant: 2,
      statementTimeoutMs: 600_000,
      minBytesPerSecond: 16_384,
      rateWindowMs: 30_000
    });
    expect(parseConfig({EXPORT_POOL_MAX: "10"}).export.maxPerTenant).toBe(5);
    expect(parseConfig({EXPORT_POOL_MAX: "10", EXPORT_MAX_PER_TENANT: "9"}).export.maxPerTenant).toBe(9);
    expect(() => parseConfig({EXPORT_POOL_MAX: "4", EXPORT_MAX_PER_TENANT: "4"})).toThrow(/EXPORT_MAX_PER_TENANT.*below/);
  });

  it("reads the retention grace in days (default 7)", () => {
    expect(parseConfig({}).retentionGraceMs).toBe(7 * 86_400_000);
    expect(parseConfig({RETENTION_GRACE_DAYS: "0"}).retentionGraceMs).toBe(0);
    expect(() => parseConfig({RETENTION_GRACE_DAYS: "-1"})).toThrow(/RETENTION_GRACE_DAYS/);
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

  it("reads the notification settings: retry schedule, private receivers only in development, CORS origins", () => {
    expect(parseConfig({NODE_ENV: "production"}).webhooks).toEqual({
      retryScheduleMs: [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
      timeoutMs: 10_000,
      allowPrivate: false,
      concurrency: 32
    });
    expect(parseConfig({}).stream).toEqual({maxPerTenant: 200, pingMs: 15_000});
    expect(parseConfig({}).notifications).toEqual({scanMs: 15_000, outboxRetentionMs: 14 * 86_400_000});
    expect(parseConfig({NOTIFY_SCAN_S: "2", OUTBOX_RETENTION_DAYS: "30", STREAM_PING_S: "1"})).toMatchObject({
      notifications: {scanMs: 2_000, outboxRetentionMs: 30 * 86_400_000},
      stream: {pingMs: 1_000}
    });
    expect(() => parseConfig({NOTIFY_SCAN_S: "61"})).toThrow(/NOTIFY_SCAN_S/);
    expect(() => parseConfig({OUTBOX_RETENTION_DAYS: "7"})).toThrow(/OUTBOX_RETENTION_DAYS/);
    expect(parseConfig({NODE_ENV: "development"}).webhooks.allowPrivate).toBe(true);
    expect(parseConfig({NODE_ENV: "production", WEBHOOK_RETRY_SCHEDULE: "0, 250ms,1m"}).webhooks.retryScheduleMs).toEqual([0, 250, 60_000]);
    expect(parseConfig({CORS_ORIGINS: "https://app.example.com, http://localhost:5173"}).corsOrigins).toEqual([
      "https://app.example.com",
      "http://localhost:5173"
    ]);
    expect(parseConfig({}).corsOrigins).toEqual([]);
    expect(() => parseConfig({WEBHOOK_RETRY_SCHEDULE: "0,soon"})).toThrow(/WEBHOOK_RETRY_SCHEDULE\[1\]/);
    expect(() => parseConfig({CORS_ORIGINS: "https://app.example.com/path"})).toThrow(/CORS_ORIGINS/);
    expect(() => parseConfig({STREAM_MAX_PER_TENANT: "0"})).toThrow(/STREAM_MAX_PER_TENANT/);
  });
});
